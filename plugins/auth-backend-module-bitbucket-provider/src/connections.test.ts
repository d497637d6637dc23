import { ConfigReader } from '@backstage/config';
import { createEmulatorTls } from '@internal/bitbucket-cloud-emulator';
import { createServer as createHttpServer } from 'node:http';
import { createServer, request, Server } from 'node:https';
import { Socket } from 'node:net';
import { Agent as HttpsAgent } from 'node:https';
import {
  Agent,
  getGlobalDispatcher,
  MockAgent,
  setGlobalDispatcher,
} from 'undici';
import {
  startSignInWorld,
  catalogUser,
  SignInWorld,
} from './__testUtils__/backend';
import { readBitbucketProviderSettings } from './config';
import {
  bitbucketConnections,
  BitbucketConnections,
  DEFAULT_PRECONNECT_HOLD_MS,
  defaultDispatcherAtLoad,
  readPreconnectPlan,
} from './connections';
import { httpRequest } from './http';

/** A GET through `pool`: the body. */
const getThrough = (pool: BitbucketConnections, url: string) =>
  httpRequest(url, { headers: {}, timeoutMs: 5000 }, pool).then(
    res => res.text,
  );

/**
 * An HTTPS server that counts its TLS connections and requests. It says
 * `Keep-Alive: timeout=5` (Node's default) unless `keepAliveHint` is false:
 * then no header, and no idle timeout of its own.
 */
async function startCountingServer(options: { keepAliveHint?: boolean } = {}) {
  const tls = await createEmulatorTls();
  const sockets = new Set<Socket>();
  const counts = { connections: 0, requests: 0 };
  const requestSockets: Socket[] = [];
  /** Answers to /slow, held until the test sends them. */
  const held: Array<() => void> = [];
  const server: Server = createServer(
    { key: tls.key, cert: tls.cert },
    (req, res) => {
      counts.requests += 1;
      requestSockets.push(req.socket);
      const answer = () => res.end(JSON.stringify({ path: req.url }));
      if (req.url === '/slow') held.push(answer);
      else answer();
    },
  );
  if (options.keepAliveHint === false) server.keepAliveTimeout = 0;
  server.on('secureConnection', socket => {
    counts.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}`,
    ca: tls.caCert,
    counts,
    sockets,
    requestSockets,
    held,
    close: () =>
      new Promise<void>(r => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function until(condition: () => boolean, what: string) {
  for (let i = 0; i < 200 && !condition(); i++) {
    await new Promise(r => setTimeout(r, 5));
  }
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

describe('BitbucketConnections', () => {
  let server: Awaited<ReturnType<typeof startCountingServer>>;
  let connections: BitbucketConnections;
  const get = (path: string) => getThrough(connections, `${server.url}${path}`);

  beforeEach(async () => {
    server = await startCountingServer();
    connections = new BitbucketConnections({
      connect: { ca: server.ca },
      maxHeldPerOrigin: 4,
    });
  });
  afterEach(async () => {
    await connections.close();
    await server.close();
  });

  it('keeps an idle connection 4 s when the server says 5 s, and 5 s when it says nothing (as api.bitbucket.org)', async () => {
    const idle = (ms: number) => new Promise(r => setTimeout(r, ms));
    // Node's server says `Keep-Alive: timeout=5`: kept 5 s less 1 s
    await get('/a');
    await idle(3500);
    await get('/b');
    expect(server.counts).toEqual({ connections: 1, requests: 2 });

    // no Keep-Alive header (and no server-side idle timeout): kept 5 s
    const silent = await startCountingServer({ keepAliveHint: false });
    const pool = new BitbucketConnections({ connect: { ca: silent.ca } });
    try {
      const getSilent = (path: string) =>
        getThrough(pool, `${silent.url}${path}`);
      await getSilent('/a');
      await idle(4500);
      await getSilent('/b');
      expect(silent.counts).toEqual({ connections: 1, requests: 2 });
    } finally {
      await pool.close();
      await silent.close();
    }
  }, 20_000);

  it('opens the connections (TCP and TLS) without sending a request', async () => {
    connections.preconnect(`${server.url}/2.0`, 3, 60_000);
    await until(() => server.counts.connections === 3, '3 connections');
    expect(server.counts.requests).toBe(0);
    expect(connections.opened).toBe(3);
    expect(connections.held()).toEqual({ [`${server.url}`]: 3 });
  });

  it('hands them to parallel calls, one each, and opens none more', async () => {
    connections.preconnect(server.url, 3, 60_000);
    await until(() => server.counts.connections === 3, '3 connections');
    const answers = await Promise.all([get('/a'), get('/b'), get('/c')]);
    expect(answers.map(a => JSON.parse(a).path)).toEqual(['/a', '/b', '/c']);
    expect(server.counts).toEqual({ connections: 3, requests: 3 });
    expect(new Set(server.requestSockets).size).toBe(3);
    expect(connections.held()).toEqual({});
  });

  it('counts the connections the pool has, and those it holds', async () => {
    await Promise.all([get('/a'), get('/b')]);
    expect(server.counts.connections).toBe(2);
    // two in the pool: a round of three needs one more
    connections.preconnect(server.url, 3, 60_000);
    expect(connections.opened).toBe(1);
    connections.preconnect(server.url, 3, 60_000);
    expect(connections.opened).toBe(1);
    await until(() => server.counts.connections === 3, '3 connections');
  });

  it('counts busy connections too: under load they are free again before a callback', async () => {
    // a request the server holds keeps the one connection busy
    const slow = get('/slow');
    await until(() => server.held.length === 1, 'the request');
    connections.preconnect(server.url, 1, 60_000);
    expect(connections.opened).toBe(0);
    connections.preconnect(server.url, 2, 60_000);
    expect(connections.opened).toBe(1);
    server.held[0]();
    expect(JSON.parse(await slow).path).toBe('/slow');
  });

  it('lets a call that comes during the handshake wait for it, not open another', async () => {
    connections.preconnect(server.url, 1, 60_000);
    expect(server.counts.connections).toBe(0); // under way
    expect(JSON.parse(await get('/now')).path).toBe('/now');
    expect(server.counts).toEqual({ connections: 1, requests: 1 });
  });

  it('closes what it held once the hold time is over', async () => {
    connections.preconnect(server.url, 2, 100);
    await until(() => server.counts.connections === 2, '2 connections');
    await until(() => server.sockets.size === 0, 'the server to see them go');
    expect(connections.held()).toEqual({});
    expect(server.counts.requests).toBe(0);
  });

  it('forgets a held connection the server closed, and calls still succeed', async () => {
    connections.preconnect(server.url, 1, 60_000);
    await until(() => server.counts.connections === 1, '1 connection');
    server.sockets.forEach(s => s.destroy());
    await until(() => connections.held()[server.url] === undefined, 'forget');
    expect(JSON.parse(await get('/after')).path).toBe('/after');
    expect(server.counts).toEqual({ connections: 2, requests: 1 });
  });

  it("turns Nagle's algorithm off on every connection, opened ahead or by the agent (tls.connect drops the agent's noDelay)", async () => {
    // with it on, a request written during the handshake waited for the
    // server's delayed ACK: 40 ms per cold refresh (issue 21)
    const noDelay = new Set<Socket>();
    const setNoDelay = Socket.prototype.setNoDelay;
    const spy = jest
      .spyOn(Socket.prototype, 'setNoDelay')
      .mockImplementation(function (this: Socket, enable?: boolean) {
        if (enable !== false) noDelay.add(this);
        return setNoDelay.call(this, enable);
      });
    const socketOf = (path: string) =>
      new Promise<Socket>((resolve, reject) => {
        const url = new URL(path, server.url);
        const req = request(url, { agent: connections.agentFor(url) }, res => {
          res.resume();
          res.on('end', () => resolve(req.socket!));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      connections.preconnect(server.url, 2, 60_000);
      // two taken from the held ones (one still in its handshake), one
      // opened by the agent
      const sockets = await Promise.all(['/a', '/b', '/c'].map(socketOf));
      expect(connections.opened).toBe(2);
      expect(server.counts).toEqual({ connections: 3, requests: 3 });
      expect(new Set(sockets).size).toBe(3);
      expect(sockets.map(s => noDelay.has(s))).toEqual([true, true, true]);
    } finally {
      spy.mockRestore();
    }
  });

  it('holds at most maxHeldPerOrigin per origin: /start needs no sign-in', async () => {
    connections.preconnect(server.url, 10, 60_000);
    expect(connections.opened).toBe(4);
    expect(connections.held()).toEqual({ [server.url]: 4 });
  });

  it('opens nothing with a hold time of 0', () => {
    connections.preconnect(server.url, 3, 0);
    expect(connections.opened).toBe(0);
  });

  it("uses the backend's own global dispatcher (a proxy, a mock) and opens nothing", async () => {
    const before = getGlobalDispatcher();
    expect(before.constructor.name).toBe('Agent');
    const target = new URL(server.url);
    expect(connections.agentFor(target)).toBeInstanceOf(HttpsAgent);
    const mine = new MockAgent();
    mine.disableNetConnect();
    mine
      .get(server.url)
      .intercept({ path: '/mocked' })
      .reply(200, 'from the mock');
    setGlobalDispatcher(mine);
    try {
      expect(connections.agentFor(target)).toBeUndefined();
      expect(await get('/mocked')).toBe('from the mock');
      expect(server.counts.requests).toBe(0);
      connections.preconnect(server.url, 3, 60_000);
      expect(connections.opened).toBe(0);
    } finally {
      setGlobalDispatcher(before);
    }
  });
});

describe('an IPv6 address as the host', () => {
  it('opens the held connection to the address, and a call takes it (apiBaseUrl: http://[::1]:…)', async () => {
    // over http: Node's TLS cannot check a certificate for a bare ::1
    const sockets: Socket[] = [];
    const server = createHttpServer((req, res) => res.end(req.url));
    server.on('connection', socket => sockets.push(socket));
    await new Promise<void>(r => server.listen(0, '::1', r));
    const { port } = server.address() as { port: number };
    const url = `http://[::1]:${port}`;
    const pool = new BitbucketConnections();
    try {
      pool.preconnect(url, 1, 60_000);
      expect(pool.held()).toEqual({ [`http://::1:${port}`]: 1 });
      await until(() => sockets.length === 1, 'the held connection');
      expect(await getThrough(pool, `${url}/2.0/user`)).toBe('/2.0/user');
      expect(sockets).toHaveLength(1);
      expect(pool.held()).toEqual({});
    } finally {
      await pool.close();
      server.closeAllConnections();
      await new Promise(r => server.close(r));
    }
  });
});

describe('the global dispatcher (issue 20)', () => {
  let connections: BitbucketConnections;
  beforeEach(() => {
    connections = new BitbucketConnections();
  });
  afterEach(() => connections.close());

  it('a custom Agent the backend set (a CA, pinning, an egress filter) carries every call, and nothing is opened ahead', () => {
    const before = getGlobalDispatcher();
    const mine = new Agent({ connect: { rejectUnauthorized: true } });
    setGlobalDispatcher(mine);
    try {
      expect(connections.agentFor(new URL('https://127.0.0.1:1'))).toBe(
        undefined,
      );
      connections.preconnect('https://127.0.0.1:1', 3, 60_000);
      expect(connections.opened).toBe(0);
    } finally {
      setGlobalDispatcher(before);
    }
  });

  it('only an Agent as undici makes it by default counts as the default when it was set before this module loaded', () => {
    const plain = new Agent();
    expect(defaultDispatcherAtLoad(plain) === plain).toBe(true);
    for (const configured of [
      new Agent({ connect: { ca: 'a custom CA' } }),
      new Agent({ connections: 4 }),
      new MockAgent(),
    ]) {
      expect(defaultDispatcherAtLoad(configured) === undefined).toBe(true);
    }
  });
});

describe('readPreconnectPlan', () => {
  const env = (extra: object) =>
    new ConfigReader({ clientId: 'id', clientSecret: 'secret', ...extra });
  const plan = (extra: object, sequentialProfileFetch?: boolean) => {
    const config = env(extra);
    return readPreconnectPlan(config, readBitbucketProviderSettings(config), {
      sequentialProfileFetch,
      path: 'auth.providers.bitbucket.production',
    });
  };

  it('opens one connection per call of the profile round', () => {
    expect(plan({})).toEqual({
      tokenUrl: 'https://bitbucket.org/site/oauth2/access_token',
      apiBaseUrl: 'https://api.bitbucket.org/2.0',
      profileRound: 2,
      holdMs: DEFAULT_PRECONNECT_HOLD_MS,
    });
    // the catalog answers the workspace check (the default): user, emails
    expect(plan({ allowedWorkspaces: ['acme'] }).profileRound).toBe(2);
    const bitbucket = { workspaceMembershipSource: 'bitbucket' };
    // user, emails, workspaces and the role in acme (member by default)
    expect(
      plan({ allowedWorkspaces: ['acme'], ...bitbucket }).profileRound,
    ).toBe(4);
    expect(
      plan({
        allowedWorkspaces: ['acme', 'beta'],
        minimumWorkspaceRole: 'member',
        ...bitbucket,
      }).profileRound,
    ).toBe(5);
    // the listing shows no owners: Bitbucket answers
    expect(
      plan({ allowedWorkspaces: ['acme'], minimumWorkspaceRole: 'owner' })
        .profileRound,
    ).toBe(4);
    expect(plan({ allowedWorkspaces: ['acme'] }, true).profileRound).toBe(1);
  });

  it('reads preconnectHoldTime', () => {
    expect(plan({ preconnectHoldTime: '30s' }).holdMs).toBe(30_000);
    expect(plan({ preconnectHoldTime: { minutes: 5 } }).holdMs).toBe(300_000);
    expect(plan({ preconnectHoldTime: 0 }).holdMs).toBe(0);
    expect(() => plan({ preconnectHoldTime: 'soon' })).toThrow(
      "Invalid config value at 'auth.providers.bitbucket.production.preconnectHoldTime': expected a duration such as '2m', { minutes: 2 } or 'PT2M', or 0 to open no connection ahead.",
    );
  });
});

describe('a sign-in through the module', () => {
  const JANE = {
    uuid: '{11111111-2222-4333-8444-555555555555}',
    accountId: '557058:jane',
    nickname: 'jane',
    displayName: 'Jane Doe',
    emails: [{ email: 'jane@example.com', primary: true, confirmed: true }],
    workspaces: [{ slug: 'acme', name: 'Acme', role: 'member' as const }],
  };
  let world: SignInWorld;

  beforeAll(async () => {
    world = await startSignInWorld({
      users: [JANE],
      entities: [catalogUser('jane', { 'bitbucket.org/user-id': JANE.uuid })],
      consumerPermissions: ['account', 'email', 'team'],
      provider: {
        allowedWorkspaces: ['acme'],
        workspaceMembershipSource: 'bitbucket',
      },
    });
  });
  afterAll(() => world.stop());

  it('opens the callback’s connections at /start, sends nothing more, and the callback takes them', async () => {
    const shared = bitbucketConnections();
    const origin = new URL(world.emulator.url).origin;
    const opened = shared.opened;
    const start = await world.agent.get(
      `/api/auth/bitbucket/start?env=development&flow=popup&origin=${encodeURIComponent(
        'http://localhost:3000',
      )}&scope=account`,
    );
    expect(start.status).toBe(302);
    // token host and API host are one origin here: the token call's
    // connection serves the profile round too, so 4 connections
    expect(shared.opened - opened).toBe(4);
    expect(shared.held()[origin]).toBe(4);
    world.emulator.resetCalls();
    const back = new URL(
      await world.emulator.authorize(start.header.location, JANE.uuid),
    );
    const frame = await world.agent.get(`${back.pathname}${back.search}`);
    expect(frame.text).toContain('authorization_response');
    expect(world.emulator.calls().map(c => `${c.method} ${c.path}`)).toEqual(
      expect.arrayContaining([
        'POST /site/oauth2/access_token',
        'GET /2.0/user',
        'GET /2.0/user/emails',
        'GET /2.0/user/workspaces',
        'GET /2.0/user/workspaces/acme/permission',
      ]),
    );
    // the consent page's two requests, the token exchange, the profile round
    expect(world.emulator.calls()).toHaveLength(7);
    // five calls on four held connections: all taken, none opened meanwhile
    expect(shared.held()[origin]).toBeUndefined();
    expect(shared.opened - opened).toBe(4);
  });
});
