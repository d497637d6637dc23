import {
  BitbucketCloudEmulator,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { ClientCredentialsToken } from './token';
import { ACME, CONSUMER, member } from './__testUtils__/world';

describe('ClientCredentialsToken against the emulator', () => {
  let emulator: BitbucketCloudEmulator;
  let clock: number;

  async function start(accessTokenTtlSeconds: number) {
    emulator = await startEmulator({
      accessTokenTtlSeconds,
      seed: {
        consumers: [
          {
            key: CONSUMER.key,
            secret: CONSUMER.secret,
            callbackUrl: 'http://localhost',
            permissions: ['team'],
            workspaces: ['acme'],
          },
        ],
        users: [member(1, [ACME])],
      },
    });
    clock = 1_000_000;
    return new ClientCredentialsToken(
      {
        path: 'catalog.providers.bitbucketCloudOrg.test',
        credentialsPath: 'catalog.providers.bitbucketCloudOrg.test',
        tokenUrl: `${emulator.url}/site/oauth2/access_token`,
        clientId: CONSUMER.key,
        clientSecret: CONSUMER.secret,
        requestTimeoutMs: 5000,
      },
      () => clock,
    );
  }
  const grants = () =>
    emulator.calls().filter(c => c.path === '/site/oauth2/access_token').length;

  afterEach(() => emulator.close());

  it('keeps the token until 5 minutes before it expires', async () => {
    const token = await start(7200);
    const first = await token.get();
    clock += (7200 - 300) * 1000 - 1;
    expect(await token.get()).toBe(first);
    expect(grants()).toBe(1);
    clock += 1;
    const second = await token.get();
    expect(second).not.toBe(first);
    expect(grants()).toBe(2);
    expect(token.grants).toBe(2);
  });

  it('renews a short-lived token at half its lifetime', async () => {
    const token = await start(120);
    const first = await token.get();
    clock += 59_999;
    expect(await token.get()).toBe(first);
    clock += 1;
    expect(await token.get()).not.toBe(first);
  });

  it('makes one grant for concurrent callers', async () => {
    const token = await start(7200);
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => token.get()));
    expect(new Set(tokens).size).toBe(1);
    expect(grants()).toBe(1);
  });

  it('asks again after invalidate()', async () => {
    const token = await start(7200);
    const first = await token.get();
    token.invalidate();
    expect(await token.get()).not.toBe(first);
    expect(grants()).toBe(2);
  });

  it('sends grant_type=client_credentials with HTTP Basic, and no user', async () => {
    const token = await start(7200);
    await token.get();
    expect(emulator.calls()).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/site/oauth2/access_token',
        query: '',
        grantType: 'client_credentials',
        status: 200,
      }),
    ]);
  });

  it('lets a failed grant be retried', async () => {
    const token = await start(7200);
    emulator.setFaults({
      endpoints: { '/site/oauth2/access_token': { status: 503, times: 1 } },
    });
    await expect(token.get()).rejects.toThrow(
      "Bitbucket's token endpoint failed (HTTP 503, temporarily_unavailable",
    );
    await expect(token.get()).resolves.toEqual(expect.any(String));
  });
});
