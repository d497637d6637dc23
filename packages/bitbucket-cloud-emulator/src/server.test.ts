import { demoSeedPath } from './seed';
import { startEmulator } from './server';
import { DEMO_USERS, getApi, httpRequest, signIn } from './test-helpers';

describe('startEmulator', () => {
  it('starts and closes well under a second', async () => {
    const started = performance.now();
    const emulator = await startEmulator();
    await emulator.close();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('listens on 127.0.0.1 on a random port and exposes its URLs', async () => {
    const emulator = await startEmulator();
    try {
      expect(emulator.port).toBeGreaterThan(0);
      expect(emulator.url).toBe(`http://127.0.0.1:${emulator.port}`);
      expect(emulator.apiBaseUrl).toBe(`${emulator.url}/2.0`);
      const health = await httpRequest(`${emulator.url}/_emulator/health`);
      expect(health.status).toBe(200);
      const index = await httpRequest(`${emulator.url}/`);
      expect(index.text).toContain('backstage-demo');
    } finally {
      await emulator.close();
    }
  });

  it('lists the tokens it issued at GET /_emulator/issued-tokens', async () => {
    const emulator = await startEmulator();
    try {
      const tokens = await signIn(emulator, DEMO_USERS.jane);
      const listed = await httpRequest(
        `${emulator.url}/_emulator/issued-tokens`,
      );
      expect(listed.status).toBe(200);
      expect(listed.json().sort()).toEqual(
        [tokens.access_token, tokens.refresh_token].sort(),
      );
    } finally {
      await emulator.close();
    }
  });

  it('close() is idempotent and stops listening', async () => {
    const emulator = await startEmulator();
    await Promise.all([emulator.close(), emulator.close()]);
    await expect(
      httpRequest(`${emulator.url}/_emulator/health`),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('reports a port in use', async () => {
    const first = await startEmulator();
    try {
      await expect(startEmulator({ port: first.port })).rejects.toThrow(
        `Cannot start the Bitbucket Cloud emulator: 127.0.0.1:${first.port} is already in use`,
      );
    } finally {
      await first.close();
    }
  });

  it('validates options', async () => {
    await expect(startEmulator({ pagelen: 0 })).rejects.toThrow(
      'startEmulator: pagelen must be a whole number from 1 to 100, got 0',
    );
    await expect(startEmulator({ latencyMs: -1 })).rejects.toThrow(
      'startEmulator: latencyMs must be a number >= 0, got -1',
    );
    await expect(
      startEmulator({ seed: { consumers: [], users: [{} as any] } }),
    ).rejects.toThrow('Invalid emulator seed (the seed option): users[0].uuid');
  });

  it('adds, updates and removes users at run time', async () => {
    const emulator = await startEmulator();
    try {
      const newcomer = {
        uuid: '{0a0b0c0d-1111-4222-8333-444455556666}',
        accountId: '557058:newcomer',
        nickname: 'newbie',
        displayName: 'New Comer',
        emails: [{ email: 'new@example.com', primary: true, confirmed: true }],
        workspaces: [
          {
            slug: 'acme',
            role: 'member' as const,
            uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
          },
        ],
      };
      emulator.addUser(newcomer);
      expect(() => emulator.addUser(newcomer)).toThrow('already exists');
      const token = (await signIn(emulator, newcomer.uuid)).access_token;
      expect((await getApi(emulator, '/2.0/user', token)).json().nickname).toBe(
        'newbie',
      );

      emulator.updateUser(newcomer.uuid, {
        workspaces: [
          {
            slug: 'platform',
            role: 'owner',
            uuid: '{5c9d2e7b-1f4a-4c63-9e08-b3a6d1f7c245}',
          },
        ],
      });
      const workspaces = (
        await getApi(emulator, '/2.0/user/workspaces', token)
      ).json();
      expect(
        workspaces.values.map((v: any) => [v.workspace.slug, v.administrator]),
      ).toEqual([['platform', true]]);
      expect(() =>
        emulator.updateUser(newcomer.uuid, { emails: [{ email: 'bad' }] }),
      ).toThrow(
        'Invalid emulator seed (updateUser): user.emails[0].email must be an email address',
      );
      expect(() =>
        emulator.updateUser(newcomer.uuid, { uuid: DEMO_USERS.jane }),
      ).toThrow('the uuid of a user cannot change');

      emulator.removeUser(newcomer.uuid);
      expect((await getApi(emulator, '/2.0/user', token)).status).toBe(401);
      expect(() => emulator.removeUser(newcomer.uuid)).toThrow(
        'no user with uuid',
      );
      const page = await httpRequest(
        `${emulator.url}/site/oauth2/authorize?client_id=backstage-demo&response_type=code`,
      );
      expect(page.text).not.toContain('New Comer');
    } finally {
      await emulator.close();
    }
  });

  it('accepts a seed file path', async () => {
    const emulator = await startEmulator({ seed: demoSeedPath });
    try {
      const location = await emulator.authorize(
        `${emulator.url}/site/oauth2/authorize?client_id=backstage-demo&response_type=code`,
        DEMO_USERS.eve,
      );
      expect(new URL(location).searchParams.get('code')).toBeTruthy();
    } finally {
      await emulator.close();
    }
  });

  it('keeps time by the now option: tokens expire when that clock passes their lifetime', async () => {
    let offsetMs = 0;
    const emulator = await startEmulator({ now: () => Date.now() + offsetMs });
    try {
      const tokens = await signIn(emulator, DEMO_USERS.jane);
      offsetMs = 7199 * 1000;
      expect(
        (await getApi(emulator, '/2.0/user', tokens.access_token)).status,
      ).toBe(200);
      offsetMs = 7201 * 1000;
      const expired = await getApi(emulator, '/2.0/user', tokens.access_token);
      expect(expired.status).toBe(401);
      expect(expired.json().error.message).toBe('Access token expired.');
    } finally {
      await emulator.close();
    }
  });
});
