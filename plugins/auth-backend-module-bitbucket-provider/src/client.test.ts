import {
  BitbucketCloudEmulator,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { BitbucketClient } from './client';
import { RateBudget } from './rateBudget';
import { BitbucketTokenClient } from './token';

const UUID = '{4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d}';
const seed = {
  consumers: [
    {
      key: 'key',
      secret: 'secret',
      callbackUrl: 'http://localhost/cb',
      permissions: ['account', 'email'],
    },
  ],
  users: [
    {
      uuid: UUID,
      accountId: '557058:4f1c2b7a',
      nickname: 'jdoe',
      displayName: 'Jane Doe',
      emails: [{ email: 'jane@example.com', primary: true, confirmed: true }],
    },
  ],
};

describe('BitbucketTokenClient and BitbucketClient against the emulator', () => {
  let emulator: BitbucketCloudEmulator;
  afterEach(() => emulator?.close());

  async function tokenFor(scope: string, legacyScopesField = false) {
    emulator = await startEmulator({ seed, legacyScopesField });
    const authorize = `${
      emulator.url
    }/site/oauth2/authorize?client_id=key&response_type=code&scope=${encodeURIComponent(
      scope,
    )}&redirect_uri=${encodeURIComponent('http://localhost/cb')}&state=s1`;
    const back = new URL(await emulator.authorize(authorize, UUID));
    expect(back.searchParams.get('state')).toBe('s1');
    const tokens = new BitbucketTokenClient({
      tokenUrl: `${emulator.url}/site/oauth2/access_token`,
      clientId: 'key',
      clientSecret: 'secret',
      timeoutMs: 2000,
    });
    return tokens.exchangeCode(
      back.searchParams.get('code')!,
      'http://localhost/cb',
    );
  }

  it.each([false, true])(
    'reads the granted scopes (legacy `scopes` field: %s)',
    async legacy => {
      const token = await tokenFor('account email', legacy);
      expect(token).toEqual({
        accessToken: expect.any(String),
        tokenType: 'bearer',
        scope: 'account email',
        expiresInSeconds: 7200,
        refreshToken: expect.any(String),
      });
    },
  );

  it('explains a token that lacks a scope, with which box to tick', async () => {
    const token = await tokenFor('account');
    const client = new BitbucketClient({
      apiBaseUrl: emulator.apiBaseUrl,
      timeoutMs: 2000,
    });
    await expect(client.fetchProfile(token.accessToken)).rejects.toMatchObject({
      name: 'NotAllowedError',
      message:
        'Bitbucket refused GET /2.0/user/emails: the access token lacks the scope \'email\' (granted: account). Tick "Account: Email" on the OAuth consumer in Bitbucket under Workspace settings > OAuth consumers > Edit, then sign in again.',
    });
  });

  it('explains an expired access token', async () => {
    const token = await tokenFor('account email');
    emulator.expireAccessTokens();
    const client = new BitbucketClient({
      apiBaseUrl: emulator.apiBaseUrl,
      timeoutMs: 2000,
    });
    await expect(
      client.getCurrentUser(token.accessToken),
    ).rejects.toMatchObject({
      name: 'AuthenticationError',
      message:
        'Bitbucket rejected the access token for GET /2.0/user (Bitbucket said: "Access token expired."). Sign in again.',
    });
  });

  it('explains a code used twice', async () => {
    emulator = await startEmulator({ seed });
    const authorize = `${
      emulator.url
    }/site/oauth2/authorize?client_id=key&response_type=code&redirect_uri=${encodeURIComponent(
      'http://localhost/cb',
    )}`;
    const code = new URL(
      await emulator.authorize(authorize, UUID),
    ).searchParams.get('code')!;
    const tokens = new BitbucketTokenClient({
      tokenUrl: `${emulator.url}/site/oauth2/access_token`,
      clientId: 'key',
      clientSecret: 'secret',
      timeoutMs: 2000,
    });
    await tokens.exchangeCode(code, 'http://localhost/cb');
    const replay = tokens.exchangeCode(code, 'http://localhost/cb');
    await expect(replay).rejects.toMatchObject({ name: 'AuthenticationError' });
    await expect(replay).rejects.toThrow(
      /^Bitbucket did not accept the sign-in code: it expired or was already used( \(Bitbucket said: ".+"\))?\. Sign in again\.$/,
    );
    await expect(replay).rejects.not.toThrow(code);
  });
});

describe('BitbucketClient pagination', () => {
  let server: Server;
  const seen: string[] = [];
  afterEach(() => new Promise(r => server.close(r)));

  it('never follows `next` to another host with the token', async () => {
    server = createServer((req, res) => {
      seen.push(`${req.url} ${req.headers.authorization}`);
      res.setHeader('Content-Type', 'application/json');
      res.end(
        JSON.stringify({
          values: [{ email: 'a@x', is_primary: true, is_confirmed: true }],
          next: 'http://evil.example/steal',
        }),
      );
    });
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const client = new BitbucketClient({
      apiBaseUrl: `http://127.0.0.1:${port}/2.0`,
      timeoutMs: 1000,
    });
    await expect(client.listEmails('tok')).resolves.toEqual([
      { email: 'a@x', isPrimary: true, isConfirmed: true },
    ]);
    expect(seen).toEqual(['/2.0/user/emails?pagelen=100 Bearer tok']);
  });
});

describe('BitbucketClient transport', () => {
  let server: Server;
  const seen: string[] = [];
  afterEach(() => new Promise(r => server.close(r)));

  async function serve(
    handler: Parameters<typeof createServer>[1],
  ): Promise<string> {
    seen.length = 0;
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      handler!(req, res);
    });
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/2.0`;
  }

  it('does not follow a redirect with the token, and says which setting to check', async () => {
    const apiBaseUrl = await serve((_req, res) => {
      res.writeHead(301, { Location: '/elsewhere/2.0/user' }).end();
    });
    const client = new BitbucketClient({ apiBaseUrl, timeoutMs: 1000 });
    await expect(client.getCurrentUser('tok')).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      message:
        'Bitbucket answered GET /2.0/user with a redirect (HTTP 301), which this module does not follow with the access token. Check that apiBaseUrl is the Bitbucket REST API itself (https://api.bitbucket.org/2.0), not a URL that redirects to it.',
    });
    expect(seen).toEqual(['GET /2.0/user Bearer tok']);
  });

  it('warns once when X-RateLimit-Remaining says the hourly budget is close', async () => {
    let remaining = 201;
    const apiBaseUrl = await serve((_req, res) => {
      remaining -= 1;
      res
        .writeHead(200, {
          'Content-Type': 'application/json',
          'X-RateLimit-Limit': '1000',
          'X-RateLimit-Remaining': String(remaining),
        })
        .end('{"uuid":"{u}"}');
    });
    const warn = jest.fn();
    const budget = new RateBudget('key', { warn } as any);
    const client = new BitbucketClient({ apiBaseUrl, timeoutMs: 1000, budget });
    await client.getCurrentUser('tok'); // 200 left: not yet
    expect(warn).not.toHaveBeenCalled();
    await client.getCurrentUser('tok'); // 199 left: under 20 %
    await client.getCurrentUser('tok'); // once a minute at most
    expect(warn.mock.calls).toEqual([
      [
        'Bitbucket rate budget of OAuth consumer key is close: 199 of 1000 calls left this hour (X-RateLimit-Remaining).',
      ],
    ]);
    expect(budget.callsLastHour).toBe(3);
  });

  it('times out a body that never ends, with the setting to raise', async () => {
    const apiBaseUrl = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"uuid":'); // and never the rest
    });
    const client = new BitbucketClient({ apiBaseUrl, timeoutMs: 200 });
    await expect(client.getCurrentUser('tok')).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      message: `Bitbucket did not answer GET /2.0/user within 200 ms. Try again; if it persists, check that ${
        new URL(apiBaseUrl).origin
      } is reachable from the backend or raise requestTimeout.`,
    });
    server.closeAllConnections();
  });

  it('names the transport failure when nothing listens', async () => {
    const apiBaseUrl = await serve(() => {});
    await new Promise(r => server.close(r));
    server = createServer(); // for afterEach
    server.listen(0, '127.0.0.1');
    const client = new BitbucketClient({ apiBaseUrl, timeoutMs: 1000 });
    await expect(client.getCurrentUser('tok')).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      message: `Could not reach Bitbucket at ${
        new URL(apiBaseUrl).origin
      } for GET /2.0/user (ECONNREFUSED). Check the baseUrl/apiBaseUrl settings and the backend's network access.`,
    });
  });
});

describe('answer size', () => {
  let server: Server;
  afterEach(() => new Promise(r => server.close(r)));

  it.each([
    ['with a Content-Length', true],
    ['streamed without one', false],
  ])(
    'drops an answer larger than 1 MiB (%s), naming the setting to check',
    async (_, withLength) => {
      let written = 0;
      server = createServer((_req, res) => {
        const chunk = Buffer.alloc(64 * 1024, 'a');
        const total = 2 * 1024 * 1024;
        res.writeHead(200, {
          'Content-Type': 'application/json',
          ...(withLength ? { 'Content-Length': String(total) } : {}),
        });
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      });
      await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
      const apiBaseUrl = `http://127.0.0.1:${
        (server.address() as AddressInfo).port
      }/2.0`;
      const client = new BitbucketClient({ apiBaseUrl, timeoutMs: 5000 });
      await expect(client.getCurrentUser('tok')).rejects.toMatchObject({
        name: 'ServiceUnavailableError',
        message:
          "Bitbucket's answer to GET /2.0/user is larger than 1048576 bytes, the most this module reads. Try again later; if it persists, check that apiBaseUrl points at the Bitbucket REST API (…/2.0).",
      });
      server.closeAllConnections();
    },
  );
});
