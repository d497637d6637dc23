/*
 * No secret in a log line. Every hardening world records the secrets it saw
 * issued (client secret, codes, access, refresh and Backstage tokens) and
 * scans every backend log line and the emulator's call record for them
 * when it stops (see __testUtils__/world.ts), so each test of this folder is
 * also a leak test. Here: a session with every kind of failure, and
 * Backstage's own request log, which needs the backend-level redaction.
 */
import {
  CLIENT_SECRET,
  entitiesFor,
  HardeningWorld,
  seedUsers,
  startHardeningWorld,
} from './__testUtils__/world';
import { redactOAuthRequestLog } from '../requestLog';

const [JANE, CAROL] = seedUsers(2);
const P = '/api/auth/bitbucket';

describe('secrets never reach a log line', () => {
  let world: HardeningWorld | undefined;
  afterEach(async () => {
    await world?.stop();
    world = undefined;
  });

  it('a session with every kind of failure: no secret in any log line, call record or error message', async () => {
    world = await startHardeningWorld({
      users: [JANE, CAROL],
      entities: entitiesFor([JANE]),
      provider: { requestTimeout: 300, profileCacheTtl: 0 },
    });
    const w = world;
    const errors: string[] = [];
    const signIn = async (uuid: string, decision?: 'grant' | 'cancel') => {
      const agent = w.newAgent();
      const outcome = await w.signIn(uuid, { agent, decision });
      if (outcome.message.error) errors.push(outcome.message.error.message);
      return { agent, ...outcome };
    };

    const jane = await signIn(JANE.uuid);
    expect((await w.refresh(jane.agent)).status).toBe(200);
    expect((await w.refresh(jane.agent)).status).toBe(200);
    // the code replayed
    const replay = await jane.agent.get(jane.callback);
    expect(replay.text).toContain('AuthenticationError');
    await signIn(CAROL.uuid); // not in the catalog
    await signIn(JANE.uuid, 'cancel');
    for (const endpoint of [
      '/site/oauth2/access_token',
      '/2.0/user',
      '/2.0/user/emails',
    ]) {
      for (const fault of [
        { status: 500 },
        { status: 401 },
        { status: 429 },
        { hang: true },
        { malformedJson: true },
      ]) {
        w.emulator.setFaults({ endpoints: { [endpoint]: fault } });
        await signIn(JANE.uuid);
        const refreshed = await w.refresh(jane.agent);
        if (refreshed.status !== 200) {
          errors.push(refreshed.body.error.message);
          w.emulator.clearFaults();
          jane.agent = (await signIn(JANE.uuid)).agent;
        }
      }
    }
    w.emulator.clearFaults();
    // sign-ins that fail after the token exchange: refused by the workspace
    // check, and past the deadline
    const late = await startHardeningWorld({
      users: [
        { ...JANE, workspaces: [{ slug: 'acme', role: 'member' }] },
        CAROL,
      ],
      entities: entitiesFor([JANE]),
      consumerPermissions: ['account', 'email', 'team'],
      provider: { allowedWorkspaces: ['acme'], signInTimeout: 400 },
    });
    await late.signIn(CAROL.uuid); // in no allowed workspace
    late.emulator.setFaults({
      endpoints: { '/2.0/user/emails': { latencyMs: 600 } },
    });
    const slow = await late.signIn(JANE.uuid);
    errors.push(slow.message.error.message);
    expect(slow.message.error.message).toContain('within signInTimeout');
    // tokens the browser never saw are scanned for too
    const seen =
      late.ledger.count('access token') + late.ledger.count('refresh token');
    expect(late.leaks()).toEqual([]);
    expect(late.ledger.count('issued token')).toBeGreaterThanOrEqual(4 - seen);
    expect(late.ledger.count('client credentials')).toBe(1);
    await late.stop(); // fails if any log line holds a secret
    w.emulator.revokeRefreshTokens();
    const revoked = await w.refresh(jane.agent);
    errors.push(revoked.body.error.message);
    expect((await w.logout(jane.agent)).status).toBe(200);

    // the scan is not vacuous: it knows secrets of every kind
    expect(w.ledger.count('client secret')).toBe(1);
    expect(w.ledger.count('authorization code')).toBeGreaterThan(10);
    expect(w.ledger.count('access token')).toBeGreaterThan(10);
    expect(w.ledger.count('refresh token')).toBeGreaterThan(10);
    expect(w.ledger.count('backstage token')).toBeGreaterThan(10);
    expect(w.logs.length).toBeGreaterThan(20);
    expect(errors.length).toBeGreaterThan(10);
    expect(
      w.leaks(...errors.map((e, i): [string, string] => [`error ${i}`, e])),
    ).toEqual([]);
    expect(errors.join('\n')).not.toContain(CLIENT_SECRET);
  }, 60_000);

  it("Backstage's request log alone writes the callback URL with the code", async () => {
    // the reason for the backend-level redaction: a stock root HTTP router
    world = await startHardeningWorld({
      users: [JANE],
      entities: entitiesFor([JANE]),
      realRouter: {},
    });
    const { code } = await world.signIn(JANE.uuid);
    const callback = world.logs.find(
      l =>
        l.meta?.type === 'incomingRequest' &&
        String(l.meta?.url).startsWith(`${P}/handler/frame`),
    );
    expect(callback?.level).toBe('info');
    expect(callback?.meta?.url).toContain(`code=${code}`);
    expect(world.leaks().map(l => l.kind)).toContain('authorization code');
    world.logs.length = 0; // seen; the world's own leak check would fail
  });

  it('with redactOAuthRequestLog (as in packages/backend): the request is logged, its code and state are not', async () => {
    world = await startHardeningWorld({
      users: [JANE],
      entities: entitiesFor([JANE]),
      realRouter: { configure: redactOAuthRequestLog },
    });
    const { code } = await world.signIn(JANE.uuid);
    expect((await world.refresh()).status).toBe(200);
    expect((await world.logout()).status).toBe(200);
    // a Referer that carries a code, e.g. from a page of the redirect flow
    await world.agent
      .get('/.backstage/health/v1/liveness')
      .set('Referer', `${world.baseUrl}${P}/handler/frame?code=${code}&x=1`);

    const requests = world.logs.filter(l => l.meta?.type === 'incomingRequest');
    const callback = requests.find(l =>
      String(l.meta?.url).startsWith(`${P}/handler/frame`),
    );
    expect(callback?.meta?.url).toMatch(
      /^\/api\/auth\/bitbucket\/handler\/frame\?code=REDACTED&state=REDACTED$/,
    );
    expect(callback?.message).toContain(
      `"GET ${P}/handler/frame?code=REDACTED&state=REDACTED HTTP/1.1" 200`,
    );
    expect(requests.map(l => l.meta?.url)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/api\/auth\/bitbucket\/start\?/),
        expect.stringMatching(/^\/api\/auth\/bitbucket\/refresh\?/),
        expect.stringMatching(/^\/api\/auth\/bitbucket\/logout\?/),
      ]),
    );
    const liveness = requests.find(l =>
      String(l.meta?.url).startsWith('/.backstage/health'),
    );
    expect(liveness?.meta?.referrer).toBe(
      `${world.baseUrl}${P}/handler/frame?code=REDACTED&x=1`,
    );
    expect(world.leaks()).toEqual([]);
  });

  it('redactOAuthRequestLog changes nothing else: the stock middleware chain still answers', async () => {
    world = await startHardeningWorld({
      users: [JANE],
      entities: entitiesFor([JANE]),
      realRouter: { configure: redactOAuthRequestLog },
    });
    const health = await world.agent.get('/.backstage/health/v1/readiness');
    expect(health.status).toBe(200);
    // helmet's headers and the error handler of the stock chain
    expect(health.headers['x-content-type-options']).toBe('nosniff');
    const missing = await world.agent.get('/api/auth/nope/start');
    expect(missing.status).toBe(404);
  });
});
