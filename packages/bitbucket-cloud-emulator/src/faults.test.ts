import { validateFaults } from './faults';
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

describe('fault injection', () => {
  let emulator: BitbucketCloudEmulator;
  let token: string;
  beforeEach(async () => {
    emulator = await startEmulator();
    token = (await signIn(emulator, DEMO_USERS.jane)).access_token;
    emulator.resetCalls();
  });
  afterEach(() => emulator.close());

  it('answers the configured status with the Bitbucket error body under /2.0', async () => {
    emulator.setFaults({
      endpoints: { '/2.0/user': { status: 500, rate: 1 } },
    });
    for (let i = 0; i < 3; i++) {
      const res = await getApi(emulator, '/2.0/user', token);
      expect(res.status).toBe(500);
      expect(res.json()).toEqual({
        type: 'error',
        error: { message: 'Internal Server Error' },
      });
    }
    expect((await getApi(emulator, '/2.0/user/emails', token)).status).toBe(
      200,
    );
    emulator.clearFaults();
    expect((await getApi(emulator, '/2.0/user', token)).status).toBe(200);
  });

  it('never applies a fault with rate 0', async () => {
    emulator.setFaults({
      endpoints: { '/2.0/user': { status: 500, rate: 0 } },
    });
    expect((await getApi(emulator, '/2.0/user', token)).status).toBe(200);
  });

  it('applies a fault only `times` times', async () => {
    emulator.setFaults({
      endpoints: { '/2.0/user': { status: 503, times: 2 } },
    });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await getApi(emulator, '/2.0/user', token)).status);
    }
    expect(statuses).toEqual([503, 503, 200, 200]);
  });

  it('answers 429 with the rate-limit message and Retry-After', async () => {
    emulator.setFaults({
      endpoints: { '/2.0/user/emails': { status: 429, retryAfterSeconds: 30 } },
    });
    const res = await getApi(emulator, '/2.0/user/emails', token);
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.text).toBe(
      '{"type":"error","error":{"message":"Rate limit for this resource has been exceeded"}}',
    );
  });

  it('uses the RFC 6749 error shape on the token endpoint', async () => {
    emulator.setFaults({
      endpoints: { '/site/oauth2/access_token': { status: 503 } },
    });
    const res = await postToken(
      emulator,
      { grant_type: 'refresh_token', refresh_token: 'whatever' },
      { authorization: basic(DEMO_CLIENT.id, DEMO_CLIENT.secret) },
    );
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description:
        'The service is temporarily unavailable. Try again later.',
    });
    expect(emulator.calls()[0]).toMatchObject({
      path: '/site/oauth2/access_token',
      status: 503,
      grantType: 'refresh_token',
    });
  });

  it('answers 200 with truncated JSON for malformedJson', async () => {
    emulator.setFaults({ endpoints: { '/2.0/user': { malformedJson: true } } });
    const res = await getApi(emulator, '/2.0/user', token);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.text.startsWith('{"type":"user"')).toBe(true);
    expect(() => JSON.parse(res.text)).toThrow(SyntaxError);
  });

  it('deletes top-level fields with omitFields', async () => {
    emulator.setFaults({
      endpoints: { '/2.0/user': { omitFields: ['uuid', 'links'] } },
    });
    const body = (await getApi(emulator, '/2.0/user', token)).json();
    expect(body.uuid).toBeUndefined();
    expect(body.links).toBeUndefined();
    expect(body.display_name).toBe('Jane Doe');
  });

  it('sets top-level fields with setFields, after omitFields', async () => {
    emulator.setFaults({
      endpoints: {
        '/2.0/user': {
          omitFields: ['links'],
          setFields: { display_name: 'Someone Else', links: { x: 1 } },
        },
      },
    });
    const body = (await getApi(emulator, '/2.0/user', token)).json();
    expect(body.display_name).toBe('Someone Else');
    expect(body.links).toEqual({ x: 1 });
    expect(body.uuid).toBe('{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}');
    expect(() =>
      emulator.setFaults({
        endpoints: { '/2.0/user': { setFields: ['values'] } as any },
      }),
    ).toThrow(
      "Invalid fault configuration: endpoints['/2.0/user'].setFields must be an object of field names and values",
    );
  });

  it('hangs: the client times out, the call is recorded as 0, close() still resolves', async () => {
    emulator.setFaults({ endpoints: { '/2.0/user': { hang: true } } });
    const started = performance.now();
    await expect(
      httpRequest(`${emulator.url}/2.0/user`, {
        headers: { authorization: `Bearer ${token}` },
        timeoutMs: 200,
      }),
    ).rejects.toThrow('timed out after 200 ms');
    expect(performance.now() - started).toBeGreaterThanOrEqual(199);

    // A second hung request is still open when the emulator closes.
    const open = httpRequest(`${emulator.url}/2.0/user`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const outcome = open.then(
      () => 'answered',
      () => 'dropped',
    );
    await waitFor(() => emulator.calls().length === 1);
    await new Promise(resolve => setTimeout(resolve, 50));
    await emulator.close();
    expect(await outcome).toBe('dropped');
    expect(emulator.calls().map(c => [c.path, c.status])).toEqual([
      ['/2.0/user', 0],
      ['/2.0/user', 0],
    ]);
  });

  it('adds the configured latency, globally and per endpoint', async () => {
    emulator.setFaults({
      latencyMs: 60,
      endpoints: { '/2.0/user': { latencyMs: 90 } },
    });
    let started = performance.now();
    expect((await getApi(emulator, '/2.0/user/emails', token)).status).toBe(
      200,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(60);

    started = performance.now();
    expect((await getApi(emulator, '/2.0/user', token)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);

    const [emails, user] = emulator.calls();
    expect(emails.durationMs).toBeGreaterThanOrEqual(60);
    expect(user.durationMs).toBeGreaterThanOrEqual(150);
    expect(user.endedAt - user.startedAt).toBeCloseTo(user.durationMs, 6);
  });

  it('adds the start-up latency options', async () => {
    await emulator.close();
    emulator = await startEmulator({ latencyMs: 80, randomLatencyMs: 20 });
    const started = performance.now();
    expect((await httpRequest(`${emulator.url}/2.0/user`)).status).toBe(401);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(80);
    const [call] = emulator.calls();
    expect(call.durationMs).toBeGreaterThanOrEqual(80);
  });

  it('validates fault configurations, naming the bad field', () => {
    expect(() =>
      emulator.setFaults({ endpoints: { '/2.0/user': { rate: 2 } } }),
    ).toThrow(
      "Invalid fault configuration: endpoints['/2.0/user'].rate must be a number between 0 and 1",
    );
    expect(() => validateFaults({ endpoints: { user: {} } })).toThrow(
      'must be keyed by a pathname starting with "/"',
    );
    expect(() =>
      validateFaults({ endpoints: { '/x': { stauts: 500 } } }),
    ).toThrow("endpoints['/x'].stauts is not a known field");
  });
});

describe('admin endpoints', () => {
  let emulator: BitbucketCloudEmulator;
  beforeEach(async () => {
    emulator = await startEmulator();
  });
  afterEach(() => emulator.close());

  it('answers health', async () => {
    const res = await httpRequest(`${emulator.url}/_emulator/health`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('PUTs and GETs faults, which then apply', async () => {
    const config = {
      endpoints: { '/2.0/user': { status: 502, times: 1 } },
    };
    const put = await httpRequest(`${emulator.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(config),
    });
    expect(put.status).toBe(200);
    expect(put.json()).toEqual(config);
    expect(
      (await httpRequest(`${emulator.url}/_emulator/faults`)).json(),
    ).toEqual(config);

    expect((await httpRequest(`${emulator.url}/2.0/user`)).status).toBe(502);
    expect((await httpRequest(`${emulator.url}/2.0/user`)).status).toBe(401);
    expect(
      (await httpRequest(`${emulator.url}/_emulator/faults`)).json(),
    ).toEqual({
      endpoints: { '/2.0/user': { status: 502, times: 0 } },
    });

    const bad = await httpRequest(`${emulator.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ endpoints: { '/2.0/user': { status: 'x' } } }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json().error).toContain("endpoints['/2.0/user'].status");
  });

  it('serves and clears the call record, without recording admin calls', async () => {
    await httpRequest(`${emulator.url}/2.0/user?page=2&pagelen=3`);
    await httpRequest(`${emulator.url}/_emulator/health`);
    const calls = (await httpRequest(`${emulator.url}/_emulator/calls`)).json();
    expect(calls).toEqual([
      {
        method: 'GET',
        path: '/2.0/user',
        query: 'page=2&pagelen=3',
        status: 401,
        startedAt: expect.any(Number),
        endedAt: expect.any(Number),
        durationMs: expect.any(Number),
      },
    ]);
    expect(calls).toEqual(emulator.calls());
    expect(calls[0].startedAt).toBeGreaterThan(Date.UTC(2020, 0, 1));

    const cleared = await httpRequest(`${emulator.url}/_emulator/calls`, {
      method: 'DELETE',
    });
    expect(cleared.status).toBe(204);
    expect(emulator.calls()).toEqual([]);
  });

  it('is never faulted', async () => {
    emulator.setFaults({
      latencyMs: 5000,
      endpoints: { '/_emulator/health': { status: 500 } },
    });
    const res = await httpRequest(`${emulator.url}/_emulator/health`, {
      timeoutMs: 1000,
    });
    expect(res.status).toBe(200);
  });
});

describe('call record', () => {
  it('keeps arrival order, and holds no secret, code or token value', async () => {
    const emulator = await startEmulator();
    try {
      const tokens = await signIn(emulator, DEMO_USERS.jane);
      const refreshed = (
        await postToken(
          emulator,
          {
            grant_type: 'refresh_token',
            refresh_token: tokens.refresh_token,
            client_id: DEMO_CLIENT.id,
            client_secret: DEMO_CLIENT.secret,
          },
          { authorization: basic(DEMO_CLIENT.id, DEMO_CLIENT.secret) },
        )
      ).json();
      await getApi(emulator, '/2.0/user', refreshed.access_token);

      const calls = emulator.calls();
      expect(calls.map(c => `${c.method} ${c.path} ${c.status}`)).toEqual([
        'GET /site/oauth2/authorize 200',
        'POST /site/oauth2/authorize 302',
        'POST /site/oauth2/access_token 200',
        'POST /site/oauth2/access_token 200',
        'GET /2.0/user 200',
      ]);
      for (let i = 1; i < calls.length; i++) {
        expect(calls[i].startedAt).toBeGreaterThanOrEqual(
          calls[i - 1].startedAt,
        );
      }
      const record = JSON.stringify(calls);
      for (const secret of [
        DEMO_CLIENT.secret,
        tokens.access_token,
        tokens.refresh_token,
        refreshed.access_token,
        refreshed.refresh_token,
      ]) {
        expect(record).not.toContain(secret);
      }
      expect(record).not.toMatch(/code=(?!REDACTED)/);
    } finally {
      await emulator.close();
    }
  });
});

async function waitFor(
  condition: () => boolean,
  timeoutMs = 2000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('condition not met in time');
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}
