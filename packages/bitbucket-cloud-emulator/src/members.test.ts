import { BitbucketCloudEmulator, startEmulator } from './server';
import {
  basic,
  DEMO_CLIENT,
  DEMO_USERS,
  getApi,
  httpRequest,
  postToken,
  signIn,
} from './test-helpers';

const ACME_UUID = '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}';

async function consumerToken(
  emulator: BitbucketCloudEmulator,
  scope?: string,
): Promise<string> {
  const res = await postToken(
    emulator,
    { grant_type: 'client_credentials', ...(scope ? { scope } : {}) },
    { authorization: basic(DEMO_CLIENT.id, DEMO_CLIENT.secret) },
  );
  if (res.status !== 200) {
    throw new Error(`client credentials failed: ${res.status} ${res.text}`);
  }
  return res.json().access_token;
}

describe('GET /2.0/workspaces/{workspace}/members', () => {
  let emulator: BitbucketCloudEmulator;
  let token: string;
  beforeEach(async () => {
    emulator = await startEmulator();
    token = await consumerToken(emulator);
  });
  afterEach(() => emulator.close());

  it("answers the workspace's members as workspace_membership objects", async () => {
    const res = await getApi(emulator, '/2.0/workspaces/acme/members', token);
    expect(res.status).toBe(200);
    const body = res.json();
    // a collaborator (Carol) is listed like anyone else: only the
    // permissions listing tells her apart
    expect(body).toMatchObject({ pagelen: 10, page: 1, size: 3 });
    expect(body.next).toBeUndefined();
    expect(body.values.map((m: any) => m.user.display_name)).toEqual([
      'Jane Doe',
      'Bob Builder',
      'Carol Contractor',
    ]);
    expect(body.values[0]).toEqual({
      type: 'workspace_membership',
      links: {
        self: {
          href: `${emulator.url}/2.0/workspaces/acme/members/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D`,
        },
      },
      user: {
        type: 'user',
        uuid: DEMO_USERS.jane,
        account_id: '557058:6d2b9f4e-1a3c-4b8e-9f70-2e5a1c8d4b36',
        nickname: 'jdoe',
        display_name: 'Jane Doe',
        account_status: 'active',
        has_2fa_enabled: null,
        is_staff: false,
        created_on: expect.stringMatching(/^20\d\d-/),
        links: {
          self: {
            href: `${emulator.url}/2.0/users/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D`,
          },
          html: {
            href: `${emulator.url}/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D/`,
          },
          avatar: {
            href: `${emulator.url}/account/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15/avatar.svg`,
          },
        },
      },
      workspace: {
        type: 'workspace',
        uuid: ACME_UUID,
        slug: 'acme',
        name: 'ACME Corp',
        links: {
          self: { href: `${emulator.url}/2.0/workspaces/acme` },
          html: { href: `${emulator.url}/acme/` },
        },
      },
    });
  });

  it("never shows another person's username (GDPR)", async () => {
    const res = await getApi(emulator, '/2.0/workspaces/acme/members', token);
    expect(res.text).not.toContain('"username"');
  });

  it('finds the workspace by its braced uuid, in any letter case', async () => {
    const res = await getApi(
      emulator,
      `/2.0/workspaces/${encodeURIComponent(ACME_UUID.toUpperCase())}/members`,
      token,
    );
    expect(res.status).toBe(200);
    expect(res.json().values[0].workspace.slug).toBe('acme');
  });

  it("pages with the emulator's pagelen and follows next to the last page", async () => {
    await emulator.close();
    emulator = await startEmulator({ pagelen: 1 });
    token = await consumerToken(emulator);
    const first = (
      await getApi(emulator, '/2.0/workspaces/acme/members', token)
    ).json();
    expect(first).toMatchObject({ pagelen: 1, page: 1, size: 3 });
    expect(first.values.map((m: any) => m.user.uuid)).toEqual([
      DEMO_USERS.jane,
    ]);
    expect(first.next).toBe(
      `${emulator.url}/2.0/workspaces/acme/members?page=2`,
    );
    const second = (
      await httpRequest(first.next, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json();
    expect(second.values.map((m: any) => m.user.uuid)).toEqual([
      DEMO_USERS.bob,
    ]);
    expect(second.next).toBe(
      `${emulator.url}/2.0/workspaces/acme/members?page=3`,
    );
    expect(second.previous).toBe(
      `${emulator.url}/2.0/workspaces/acme/members?page=1`,
    );
  });

  it('honours a pagelen query parameter', async () => {
    const res = await getApi(
      emulator,
      '/2.0/workspaces/acme/members?pagelen=1',
      token,
    );
    expect(res.json().next).toBe(
      `${emulator.url}/2.0/workspaces/acme/members?pagelen=1&page=2`,
    );
  });

  it('answers 404 for a workspace that does not exist', async () => {
    const res = await getApi(emulator, '/2.0/workspaces/nope/members', token);
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({
      type: 'error',
      error: { message: "No workspace with identifier 'nope'." },
    });
  });

  it('answers 403 for a workspace the consumer does not belong to', async () => {
    const res = await getApi(
      emulator,
      '/2.0/workspaces/partners/members',
      token,
    );
    expect(res.status).toBe(403);
    expect(res.json()).toEqual({
      type: 'error',
      error: { message: 'You do not have access to this workspace.' },
    });
  });

  it('answers 403 with required and granted scopes without team', async () => {
    const accountOnly = await consumerToken(emulator, 'account');
    const res = await getApi(
      emulator,
      '/2.0/workspaces/acme/members',
      accountOnly,
    );
    expect(res.status).toBe(403);
    expect(res.json()).toEqual({
      type: 'error',
      error: {
        message: 'Your credentials lack one or more required privilege scopes.',
        detail: { required: ['team'], granted: ['account'] },
      },
    });
  });

  it('answers 401 without a token, with an unknown one, and once expired', async () => {
    const none = await getApi(emulator, '/2.0/workspaces/acme/members');
    expect(none.status).toBe(401);
    const unknown = await getApi(
      emulator,
      '/2.0/workspaces/acme/members',
      'not-a-token',
    );
    expect(unknown.json()).toEqual({
      type: 'error',
      error: { message: 'Invalid access token.' },
    });
    emulator.expireAccessTokens();
    const expired = await getApi(
      emulator,
      '/2.0/workspaces/acme/members',
      token,
    );
    expect(expired.status).toBe(401);
    expect(expired.text).toBe(
      '{"type":"error","error":{"message":"Access token expired."}}',
    );
  });

  it('answers a user token of a member, and refuses a non-member', async () => {
    const jane = (await signIn(emulator, DEMO_USERS.jane)).access_token;
    const asJane = await getApi(emulator, '/2.0/workspaces/acme/members', jane);
    expect(asJane.status).toBe(200);
    expect(asJane.json().size).toBe(3);
    const carol = (await signIn(emulator, DEMO_USERS.carol)).access_token;
    const asCarol = await getApi(
      emulator,
      '/2.0/workspaces/platform/members',
      carol,
    );
    expect(asCarol.status).toBe(403);
  });

  it('reflects users added and removed at run time', async () => {
    emulator.removeUser(DEMO_USERS.bob);
    emulator.addUser({
      uuid: '{9d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d}',
      accountId: '557058:new',
      nickname: 'newbie',
      displayName: 'New Person',
      emails: [],
      workspaces: [{ slug: 'acme', uuid: ACME_UUID, role: 'member' }],
    });
    const res = await getApi(emulator, '/2.0/workspaces/acme/members', token);
    expect(res.json().values.map((m: any) => m.user.display_name)).toEqual([
      'Jane Doe',
      'Carol Contractor',
      'New Person',
    ]);
  });

  it('answers 405 to other methods', async () => {
    const res = await httpRequest(
      `${emulator.url}/2.0/workspaces/acme/members`,
      { method: 'POST', headers: { authorization: `Bearer ${token}` } },
    );
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET');
  });
});

describe('GET /2.0/workspaces/{workspace}/permissions', () => {
  let emulator: BitbucketCloudEmulator;
  let token: string;
  beforeEach(async () => {
    emulator = await startEmulator();
    token = await consumerToken(emulator);
  });
  afterEach(() => emulator.close());

  it("answers everyone's permission, collaborators included, to the workspace's consumer", async () => {
    const res = await getApi(
      emulator,
      '/2.0/workspaces/acme/permissions',
      token,
    );
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ pagelen: 10, page: 1, size: 3 });
    expect(
      body.values.map((m: any) => [m.user.display_name, m.permission]),
    ).toEqual([
      ['Jane Doe', 'owner'],
      ['Bob Builder', 'member'],
      ['Carol Contractor', 'collaborator'],
    ]);
    expect(body.values[2]).toEqual({
      type: 'workspace_membership',
      permission: 'collaborator',
      user: {
        type: 'user',
        uuid: DEMO_USERS.carol,
        account_id: '557058:0b9e4d7a-3c61-4f25-a8d2-7e1f5c3b9a60',
        nickname: 'carol',
        display_name: 'Carol Contractor',
      },
      workspace: {
        type: 'workspace',
        uuid: ACME_UUID,
        slug: 'acme',
        name: 'ACME Corp',
      },
    });
  });

  it('pages like every listing, with size', async () => {
    const res = await getApi(
      emulator,
      '/2.0/workspaces/acme/permissions?pagelen=2',
      token,
    );
    expect(res.json()).toMatchObject({
      pagelen: 2,
      page: 1,
      size: 3,
      next: `${emulator.url}/2.0/workspaces/acme/permissions?pagelen=2&page=2`,
    });
  });

  it('filters by q=permission="owner"', async () => {
    const res = await getApi(
      emulator,
      `/2.0/workspaces/acme/permissions?q=${encodeURIComponent(
        'permission="owner"',
      )}`,
      token,
    );
    expect(res.json().values.map((m: any) => m.user.uuid)).toEqual([
      DEMO_USERS.jane,
    ]);
    expect(res.json().size).toBe(1);
  });

  it("is for admins: an owner's user token, not a member's", async () => {
    const jane = (await signIn(emulator, DEMO_USERS.jane)).access_token;
    expect(
      (await getApi(emulator, '/2.0/workspaces/acme/permissions', jane)).status,
    ).toBe(200);
    const bob = (await signIn(emulator, DEMO_USERS.bob)).access_token;
    const asBob = await getApi(
      emulator,
      '/2.0/workspaces/acme/permissions',
      bob,
    );
    expect(asBob.status).toBe(403);
    expect(asBob.json()).toEqual({
      type: 'error',
      error: {
        message:
          'You must be an administrator of this workspace to list its permissions.',
      },
    });
  });

  it('refuses a workspace the consumer does not belong to, and a token without team', async () => {
    expect(
      (await getApi(emulator, '/2.0/workspaces/partners/permissions', token))
        .status,
    ).toBe(403);
    const accountOnly = await consumerToken(emulator, 'account');
    const res = await getApi(
      emulator,
      '/2.0/workspaces/acme/permissions',
      accountOnly,
    );
    expect(res.json().error.detail).toEqual({
      required: ['team'],
      granted: ['account'],
    });
  });
});

describe('POST /_emulator/workspaces/rename', () => {
  it('renames over HTTP, for tests that run the emulator as a process', async () => {
    const emulator = await startEmulator();
    try {
      const res = await httpRequest(
        `${emulator.url}/_emulator/workspaces/rename`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ workspace: 'acme', slug: 'platform-admins' }),
        },
      );
      expect(res.status).toBe(204);
      const token = await consumerToken(emulator);
      const renamed = await getApi(
        emulator,
        `/2.0/workspaces/${encodeURIComponent(ACME_UUID)}/members`,
        token,
      );
      expect(renamed.json().values[0].workspace.slug).toBe('platform-admins');
      const bad = await httpRequest(
        `${emulator.url}/_emulator/workspaces/rename`,
        { method: 'POST', body: '{}' },
      );
      expect(bad.status).toBe(400);
    } finally {
      await emulator.close();
    }
  });
});

describe('renameWorkspace', () => {
  it('changes the slug and keeps the uuid; members and the consumer follow', async () => {
    const emulator = await startEmulator();
    try {
      emulator.renameWorkspace(ACME_UUID, 'platform-admins');
      const token = await consumerToken(emulator);
      const old = await getApi(emulator, '/2.0/workspaces/acme/members', token);
      expect(old.status).toBe(404);
      const renamed = await getApi(
        emulator,
        '/2.0/workspaces/platform-admins/members',
        token,
      );
      expect(renamed.status).toBe(200);
      expect(renamed.json().values[0].workspace).toMatchObject({
        uuid: ACME_UUID,
        slug: 'platform-admins',
      });
      expect(renamed.json().size).toBe(3);
    } finally {
      await emulator.close();
    }
  });
});
