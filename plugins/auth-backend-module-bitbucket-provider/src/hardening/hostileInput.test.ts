/*
 * Hostile input on the four routes of the provider: generated requests
 * (fast-check) with random and malformed state, code, env, origin,
 * redirectUrl, scope, cookies, headers and oversized values, and the named
 * attacks. Whatever comes in: no 5xx, no identity or session issued, no
 * redirect off the app's origin, and the backend still signs users in.
 */
import { encodeOAuthState } from '@backstage/plugin-auth-node';
import fc from 'fast-check';
import { IncomingHttpHeaders, request as httpRequest } from 'node:http';
import request from 'supertest';
import {
  APP_ORIGIN,
  entitiesFor,
  HardeningWorld,
  readWebMessage,
  seedUsers,
  startHardeningWorld,
} from './__testUtils__/world';

const P = '/api/auth/bitbucket';
// HARDENING_FUZZ_SCALE=10 runs ten times as many; HARDENING_FUZZ_SEED=<n>
// replays the seed a failure printed
const SCALE = Number(process.env.HARDENING_FUZZ_SCALE ?? 1);
const SEED = process.env.HARDENING_FUZZ_SEED;
const runs = (numRuns: number) => ({
  numRuns,
  ...(SEED !== undefined && { seed: Number(SEED) }),
});
const RUNS = {
  start: 2500 * SCALE,
  frame: 3000 * SCALE,
  refresh: 2500 * SCALE,
  logout: 2000 * SCALE,
};
/** The share of /handler/frame requests that replay a callback already used. */
const REPLAY_SHARE = 0.1;
const [JANE] = seedUsers(1);
const EVIL = 'https://evil.example';
const SCRIPT_URL = ['javascript', 'alert(1)'].join(':');

// ---------------------------------------------------------------------------
// Generators

/** Strings an attacker would try, and random ones. */
const hostile = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '%',
      '%zz',
      '%E0%A4%A',
      '%00',
      '\u0000',
      '\r\nSet-Cookie: injected=1',
      '../../..',
      '<script>alert(1)</script>',
      '\'"`',
      'null',
      'undefined',
      '[object Object]',
      '__proto__',
      'constructor',
      'toString',
      SCRIPT_URL,
      '{{7*7}}',
      '${7*7}',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1000, max: 6000 }).map(n => 'A'.repeat(n)),
  },
);

const origins = fc.oneof(
  fc.constant(APP_ORIGIN),
  fc.constantFrom(
    EVIL,
    'http://localhost:3000.evil.example',
    'http://localhost:30000',
    'http://localhost:3000@evil.example',
    'https://localhost:3000',
    'null',
    'file://',
    'data:text/html,x',
  ),
  fc.webUrl(),
  hostile,
);

const redirectUrls = fc.oneof(
  fc.constant(`${APP_ORIGIN}/catalog`),
  fc.constantFrom(
    `${EVIL}/`,
    '//evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    SCRIPT_URL,
    'data:text/html,<script>alert(1)</script>',
    `${APP_ORIGIN}@evil.example`,
    'http://localhost:3000.evil.example/',
    '/catalog',
  ),
  fc.webUrl(),
  hostile,
);

const hex = fc.string({
  unit: fc.constantFrom(...'0123456789abcdef'),
  maxLength: 300,
});

/** A state as auth-node encodes it, with any fields. */
const forgedState = fc
  .record(
    {
      nonce: fc.oneof(hostile, fc.base64String({ maxLength: 24 })),
      env: fc.oneof(fc.constant('development'), hostile),
      origin: origins,
      redirectUrl: redirectUrls,
      flow: fc.oneof(fc.constantFrom('popup', 'redirect'), hostile),
      scope: fc.oneof(fc.constant('account email'), hostile),
    },
    { requiredKeys: [] },
  )
  .map(fields => ({ fields, encoded: encodeOAuthState(fields as any) }));

/** How a query parameter is written: once, twice, as an array or an object. */
type Shape = 'plain' | 'twice' | 'array' | 'object';
const shape = fc.constantFrom<Shape>(
  'plain',
  'plain',
  'plain',
  'twice',
  'array',
  'object',
);

interface Param {
  key: string;
  value: string;
  shape: Shape;
}

const present = <T>(values: Array<T | undefined>): T[] =>
  values.filter((v): v is T => v !== undefined);

function queryString(params: Param[]): string {
  const e = encodeURIComponent;
  return params
    .map(({ key, value, shape: s }) => {
      switch (s) {
        case 'twice':
          return `${e(key)}=${e(value)}&${e(key)}=${e(value)}x`;
        case 'array':
          return `${e(key)}[]=${e(value)}`;
        case 'object':
          return `${e(key)}[toString]=${e(value)}`;
        default:
          return `${e(key)}=${e(value)}`;
      }
    })
    .join('&');
}

const param = (key: string, value: fc.Arbitrary<string>) =>
  fc.option(fc.record({ key: fc.constant(key), value, shape }), {
    nil: undefined,
    freq: 3,
  });

const extraParams = fc.array(
  fc.record({
    key: fc.oneof(hostile, fc.constantFrom('optional', 'error', 'code')),
    value: hostile,
    shape,
  }),
  { maxLength: 2 },
);

const COOKIE_NAMES = [
  'bitbucket-nonce',
  'bitbucket-refresh-token',
  'bitbucket-refresh-token-0',
  'bitbucket-refresh-token-1',
  'bitbucket-granted-scope',
  'backstage-session',
];

const cookies = fc.array(
  fc.record({
    name: fc.oneof(
      fc.constantFrom(...COOKIE_NAMES),
      fc.string({ maxLength: 8 }),
    ),
    value: hostile,
  }),
  { maxLength: 4 },
);

/** Header values the HTTP client can send (printable ASCII). */
const headerValue = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.constantFrom('XMLHttpRequest', APP_ORIGIN, EVIL, 'null', ''),
  fc.integer({ min: 1000, max: 6000 }).map(n => 'B'.repeat(n)),
);

const headerRecord = fc.record(
  {
    'x-requested-with': headerValue,
    origin: headerValue,
    referer: headerValue,
    'content-type': fc.constantFrom(
      'application/json',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
    ),
    'x-forwarded-for': headerValue,
    authorization: headerValue,
  },
  { requiredKeys: [] },
);

interface HostileRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  query: Param[];
  cookies: { name: string; value: string }[];
  headers: Record<string, string>;
  body?: string;
}

const body = fc.option(
  fc.oneof(
    hostile,
    fc.jsonValue().map(v => JSON.stringify(v)),
    fc.constant('{"code":'),
  ),
  { nil: undefined },
);

// ---------------------------------------------------------------------------
// Sending and checking

let sent = 0;

/** An answer to a generated request. */
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * Sends a generated request as a browser would, over a raw HTTP client:
 * supertest's client refuses answers whose headers exceed Node's 16 KiB (a
 * huge scope makes a huge Location to Bitbucket); a browser takes them.
 */
async function send(
  world: HardeningWorld,
  path: string,
  r: HostileRequest,
): Promise<Answer> {
  const qs = queryString(r.query);
  const url = `${P}${path}${qs ? `?${qs}` : ''}`;
  const headers: Record<string, string> = { ...r.headers };
  if (r.cookies.length) {
    headers.cookie = r.cookies
      .map(c => `${encodeURIComponent(c.name)}=${encodeURIComponent(c.value)}`)
      .join('; ');
  }
  const payload =
    r.body !== undefined && r.method !== 'GET' ? r.body : undefined;
  sent += 1;
  try {
    return await new Promise<Answer>((resolve, reject) => {
      const { hostname, port } = new URL(world.baseUrl);
      const req = httpRequest(
        {
          host: hostname,
          port,
          method: r.method,
          path: url,
          headers,
          agent: false,
          maxHeaderSize: 1024 * 1024,
        },
        res => {
          const chunks: Buffer[] = [];
          res.on('data', chunk => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  } catch (error) {
    // Node's HTTP server answers a request head over 16 KiB with 431 and
    // closes the socket, sometimes while the client still writes it: the
    // client then sees a reset instead of the 431. Only then is it no answer.
    const head =
      url.length +
      Object.entries(headers).reduce(
        (n, [k, v]) => n + k.length + v.length + 4,
        0,
      );
    const code = (error as NodeJS.ErrnoException).code;
    if (head > 16 * 1024 && (code === 'ECONNRESET' || code === 'EPIPE')) {
      return { status: 431, text: '', headers: {} };
    }
    throw error;
  }
}

/** The properties every answer to hostile input has. */
function checkAnswer(res: Answer, allowedRedirect: RegExp) {
  const where = `${res.status} ${res.text.slice(0, 300)}`;
  // no 5xx
  expect({ status: res.status < 500, where }).toEqual({ status: true, where });
  // no identity: not in JSON, not in a web message page
  expect(res.text).not.toContain('backstageIdentity');
  expect(res.text).not.toMatch(/"token"|%22token%22/);
  expect(res.text).not.toMatch(/accessToken%22%3A%22|"accessToken":"/);
  if (/decodeURIComponent\('/.test(res.text)) {
    const message = readWebMessage(res.text);
    expect(message.response).toBeUndefined();
    const origin = decodeURIComponent(
      res.text.match(/var origin = decodeURIComponent\('(.*?)'\)/)![1],
    );
    expect(origin).toBe(APP_ORIGIN);
  }
  // no session: no refresh token cookie with a value
  const setCookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  for (const cookie of setCookies) {
    expect(cookie).not.toMatch(/^bitbucket-refresh-token(-\d+)?=[^;]/);
  }
  // no redirect off the app or to anything but Bitbucket's authorize page
  if (res.status >= 300 && res.status < 400 && res.headers.location) {
    expect(res.headers.location).toMatch(allowedRedirect);
  }
}

/** The error of a refused request: from its web message page, or its JSON. */
function refusal(res: request.Response): string {
  expect(res.status).toBeLessThan(500);
  expect(res.text).not.toContain('backstageIdentity');
  if (/decodeURIComponent\('/.test(res.text)) {
    const message = readWebMessage(res.text);
    expect(message.response).toBeUndefined();
    return message.error.message;
  }
  expect(res.status).toBeGreaterThanOrEqual(400);
  return res.body.error.message;
}

// ---------------------------------------------------------------------------

describe('hostile input', () => {
  let world: HardeningWorld;
  /** Callback URLs whose code was already redeemed, with their nonce. */
  const redeemed: { path: string; nonce: string; state: string }[] = [];
  let authorizeUrl: RegExp;
  const appUrl = new RegExp(
    `^${APP_ORIGIN.replace(/[.:/]/g, c => `\\${c}`)}(/|$|\\?)`,
  );

  beforeAll(async () => {
    world = await startHardeningWorld({
      users: [JANE],
      entities: entitiesFor([JANE]),
      provider: { requestTimeout: 2000 },
    });
    authorizeUrl = new RegExp(
      `^${world.emulator.url.replace(
        /[.:/]/g,
        c => `\\${c}`,
      )}/site/oauth2/authorize\\?`,
    );
    // real callbacks, already used once: material for replays
    for (let i = 0; i < 3; i++) {
      const agent = world.newAgent();
      const start = await agent.get(
        `${P}/start?env=development&flow=popup&origin=${encodeURIComponent(
          APP_ORIGIN,
        )}`,
      );
      const nonce = agent.jar.getCookie('bitbucket-nonce', {
        domain: '127.0.0.1',
        path: `${P}/handler`,
        script: false,
        secure: false,
      })!.value;
      const back = new URL(
        await world.emulator.authorize(start.header.location, JANE.uuid),
      );
      world.ledger.add('authorization code', back.searchParams.get('code'));
      const first = await agent.get(`${back.pathname}${back.search}`);
      if (!readWebMessage(first.text).response) {
        throw new Error(`the sign-in for the replay material failed`);
      }
      redeemed.push({
        path: `${back.pathname}${back.search}`,
        nonce,
        state: back.searchParams.get('state')!,
      });
    }
  });
  afterAll(() => world?.stop());

  describe('generated requests (fast-check)', () => {
    it(
      `/start: ${RUNS.start} requests`,
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'PUT'),
              env: param(
                'env',
                fc.oneof(fc.constantFrom('development', 'production'), hostile),
              ),
              origin: param('origin', origins),
              redirectUrl: param('redirectUrl', redirectUrls),
              flow: param(
                'flow',
                fc.oneof(fc.constantFrom('popup', 'redirect'), hostile),
              ),
              scope: param(
                'scope',
                fc.oneof(
                  fc.constantFrom(
                    'account',
                    'account email team repository:admin',
                  ),
                  hostile,
                ),
              ),
              extra: extraParams,
              cookies,
              headers: headerRecord,
              body,
            }),
            async ({
              method,
              extra,
              cookies: c,
              headers: h,
              body: b,
              ...q
            }) => {
              const query = present([...Object.values(q), ...extra]);
              const res = await send(world, '/start', {
                method,
                query,
                cookies: c,
                headers: h,
                body: b,
              });
              checkAnswer(res, authorizeUrl);
              // a flow /start accepted redirects only to the app's origin
              const state =
                res.status === 302
                  ? new URL(res.headers.location!).searchParams.get('state')
                  : null;
              const redirects = new URLSearchParams(
                Buffer.from(state ?? '', 'hex').toString(),
              ).getAll('redirectUrl');
              expect(redirects.filter(u => !appUrl.test(u))).toEqual([]);
            },
          ),
          runs(RUNS.start),
        );
      },
      120_000 * SCALE,
    );

    it(
      `/handler/frame: ${RUNS.frame} requests, about ${
        REPLAY_SHARE * 100
      } % of them replays of used callbacks`,
      async () => {
        const sentBefore = sent;
        let replays = 0;
        const stateArb = fc.oneof(
          hex,
          hostile,
          forgedState.map(s => s.encoded),
          fc.constantFrom(...redeemed).chain(r =>
            fc.constantFrom(
              r.state,
              // a flipped digit: the state is tampered
              r.state.slice(0, -1) + (r.state.endsWith('0') ? '1' : '0'),
            ),
          ),
        );
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              method: fc.constantFrom('GET', 'GET', 'POST', 'DELETE'),
              state: param('state', stateArb),
              code: param('code', hostile),
              error: param(
                'error',
                fc.oneof(
                  fc.constantFrom(
                    'access_denied',
                    'invalid_scope',
                    'server_error',
                  ),
                  hostile,
                ),
              ),
              env: param('env', fc.oneof(fc.constant('development'), hostile)),
              extra: extraParams,
              cookies,
              headers: headerRecord,
              body,
              // a state with a nonce cookie that matches it: deeper into the flow
              matched: fc.option(forgedState, { nil: undefined }),
              // a named minority: most callbacks are generated
              replay: fc.oneof(
                {
                  weight: Math.round((1 - REPLAY_SHARE) * 100),
                  arbitrary: fc.constant(undefined),
                },
                {
                  weight: Math.round(REPLAY_SHARE * 100),
                  arbitrary: fc.constantFrom(...redeemed),
                },
              ),
            }),
            async r => {
              let query = present([
                r.state,
                r.code,
                r.error,
                r.env,
                ...r.extra,
              ]);
              const jar = [...r.cookies];
              if (r.replay) {
                replays += 1;
                // code replay, with or without the victim's nonce cookie
                query = [
                  ...new URLSearchParams(r.replay.path.split('?')[1]),
                ].map(([key, value]) => ({ key, value, shape: 'plain' }));
                jar.push({ name: 'bitbucket-nonce', value: r.replay.nonce });
              } else if (r.matched) {
                query = query.filter(p => p.key !== 'state');
                query.push({
                  key: 'state',
                  value: r.matched.encoded,
                  shape: 'plain',
                });
                jar.push({
                  name: 'bitbucket-nonce',
                  value: r.matched.fields.nonce ?? '',
                });
              }
              const res = await send(world, '/handler/frame', {
                method: r.method,
                query,
                cookies: jar,
                headers: r.headers,
                body: r.body,
              });
              checkAnswer(res, appUrl);
            },
          ),
          runs(RUNS.frame),
        );
        expect(sent - sentBefore).toBe(RUNS.frame);
        // replays stay a minority, and are there
        expect(replays).toBeGreaterThan(0);
        expect(replays / RUNS.frame).toBeLessThan(2 * REPLAY_SHARE);
      },
      120_000 * SCALE,
    );

    it(
      `/refresh: ${RUNS.refresh} requests`,
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              method: fc.constantFrom('GET', 'POST', 'PUT'),
              env: param('env', fc.oneof(fc.constant('development'), hostile)),
              scope: param(
                'scope',
                fc.oneof(
                  fc.constantFrom('account', 'account email team'),
                  hostile,
                ),
              ),
              optional: param('optional', hostile),
              extra: extraParams,
              cookies,
              headers: headerRecord,
              body,
            }),
            async ({
              method,
              extra,
              cookies: c,
              headers: h,
              body: b,
              ...q
            }) => {
              const res = await send(world, '/refresh', {
                method,
                query: present([...Object.values(q), ...extra]),
                cookies: c,
                headers: h,
                body: b,
              });
              checkAnswer(res, appUrl);
              // no valid refresh token was sent: never a session
              expect(res.status).not.toBe(200);
            },
          ),
          runs(RUNS.refresh),
        );
      },
      120_000 * SCALE,
    );

    it(
      `/logout: ${RUNS.logout} requests`,
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              method: fc.constantFrom('POST', 'POST', 'GET'),
              env: param('env', fc.oneof(fc.constant('development'), hostile)),
              extra: extraParams,
              cookies,
              headers: headerRecord,
              body,
            }),
            async ({ method, extra, cookies: c, headers: h, body: b, env }) => {
              const res = await send(world, '/logout', {
                method,
                query: present([env, ...extra]),
                cookies: c,
                headers: h,
                body: b,
              });
              checkAnswer(res, appUrl);
              // a logout answers nothing but an empty 200
              expect(res.status === 200 ? res.text : '').toBe('');
            },
          ),
          runs(RUNS.logout),
        );
      },
      120_000 * SCALE,
    );

    it('sent at least 10,000 requests, and the backend still signs users in', async () => {
      expect(sent).toBeGreaterThanOrEqual(10_000 * SCALE);
      const { message } = await world.signIn(JANE.uuid, {
        agent: world.newAgent(),
      });
      expect(message.response.backstageIdentity.identity.userEntityRef).toBe(
        `user:default/${JANE.nickname}`,
      );
    });
  });

  describe('named attacks', () => {
    const startAs = async (agent = world.newAgent(), query = '&flow=popup') => {
      const start = await agent.get(
        `${P}/start?env=development&origin=${encodeURIComponent(
          APP_ORIGIN,
        )}${query}`,
      );
      expect(start.status).toBe(302);
      const back = new URL(
        await world.emulator.authorize(start.header.location, JANE.uuid),
      );
      world.ledger.add('authorization code', back.searchParams.get('code'));
      return { agent, back, callback: `${back.pathname}${back.search}` };
    };
    const tokenCalls = () =>
      world.emulator.calls().filter(c => c.path === '/site/oauth2/access_token')
        .length;

    it('nonce mismatch (CSRF): a callback started by someone else is refused before the code is redeemed', async () => {
      const attacker = await startAs();
      // the victim has a nonce cookie of their own sign-in, or none at all
      const victim = world.newAgent();
      await victim.get(`${P}/start?env=development`);
      for (const agent of [victim, world.newAgent()]) {
        const before = tokenCalls();
        const res = await agent.get(attacker.callback);
        const message = readWebMessage(res.text);
        expect(message.response).toBeUndefined();
        expect(message.error.name).toBe('NotAllowedError');
        expect(message.error.message).toMatch(
          /^(Invalid nonce|Auth response is missing cookie nonce)$/,
        );
        expect(tokenCalls()).toBe(before);
        expect(world.refreshToken(agent)).toBeUndefined();
      }
    });

    it('code replay: a redeemed code gives no second identity', async () => {
      const { agent, callback } = await startAs();
      const first = readWebMessage((await agent.get(callback)).text);
      expect(first.response.backstageIdentity).toBeDefined();
      const replay = readWebMessage((await agent.get(callback)).text);
      expect(replay.response).toBeUndefined();
      expect(replay.error).toEqual({
        name: 'AuthenticationError',
        message: expect.stringMatching(
          /^Bitbucket did not accept the sign-in code: it expired or was already used( \(Bitbucket said: ".+"\))?\. Sign in again\.$/,
        ),
      });
    });

    it('state tampering: a changed nonce, origin, env or encoding is refused', async () => {
      const { agent, back } = await startAs();
      const state = Object.fromEntries(
        new URLSearchParams(
          Buffer.from(back.searchParams.get('state')!, 'hex').toString(),
        ),
      );
      const code = back.searchParams.get('code')!;
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ ...state, nonce: 'AAAAAAAAAAAAAAAAAAAAAA==' }, /^Invalid nonce$/],
        [
          { ...state, origin: EVIL },
          /^Origin 'https:\/\/evil\.example' is not allowed$/,
        ],
        [{ ...state, env: '' }, /^OAuth state is invalid, missing env$/],
        [
          { ...state, env: 'production' },
          /^No configuration available for the 'production' environment/,
        ],
        [{ env: 'development' }, /^OAuth state is invalid, missing nonce$/],
      ];
      for (const [fields, error] of cases) {
        const tampered = encodeOAuthState(fields as any);
        const res = await agent.get(
          `${back.pathname}?code=${code}&state=${tampered}`,
        );
        expect(refusal(res)).toMatch(error);
      }
      // not hex at all
      const res = await agent.get(`${back.pathname}?code=${code}&state=zz`);
      expect(res.status).toBeLessThan(500);
      expect(res.text).not.toContain('backstageIdentity');
      // the code was never redeemed by the tampered callbacks: the genuine one works
      const genuine = readWebMessage(
        (await agent.get(`${back.pathname}${back.search}`)).text,
      );
      expect(genuine.response.backstageIdentity).toBeDefined();
    });

    it('foreign origin: /start refuses it, and no message is ever posted to it', async () => {
      const start = await request(world.target).get(
        `${P}/start?env=development&origin=${encodeURIComponent(EVIL)}`,
      );
      expect(start.status).toBe(403);
      expect(start.body.error.message).toBe(
        "Origin 'https://evil.example' is not allowed",
      );
      const state = encodeOAuthState({
        nonce: 'n',
        env: 'development',
        origin: EVIL,
      } as any);
      const frame = await request(world.target)
        .get(`${P}/handler/frame?state=${state}&code=x`)
        .set('Cookie', 'bitbucket-nonce=n');
      // auth-node would post its error to the state's origin: refused before
      expect(frame.status).toBe(403);
      expect(frame.text).not.toContain('postMessage');
      expect(frame.body.error.message).toBe(
        "Origin 'https://evil.example' is not allowed",
      );
    });

    it('open redirect through redirectUrl: refused on /start and in a forged state; the app origin works', async () => {
      for (const target of [
        `${EVIL}/`,
        '//evil.example/',
        SCRIPT_URL,
        `${APP_ORIGIN}@evil.example/`,
        'not a url',
      ]) {
        const start = await request(world.target).get(
          `${P}/start?env=development&flow=redirect&redirectUrl=${encodeURIComponent(
            target,
          )}`,
        );
        expect(start.status).toBe(403);
        expect(start.body.error.message).toMatch(
          /^Redirect URL is not allowed/,
        );
        expect(start.headers.location).toBeUndefined();

        // a state anyone can forge: the error redirect must not follow it
        const forged = encodeOAuthState({
          nonce: 'n',
          env: 'development',
          flow: 'redirect',
          redirectUrl: target,
        } as any);
        const frame = await request(world.target).get(
          `${P}/handler/frame?state=${forged}`,
        );
        expect(frame.status).toBe(403);
        expect(frame.headers.location).toBeUndefined();
      }
      // two redirectUrls in one state: auth-node follows the last one
      const smuggled = Buffer.from(
        `nonce=n&env=development&flow=redirect&redirectUrl=${encodeURIComponent(
          `${APP_ORIGIN}/`,
        )}&redirectUrl=${encodeURIComponent(`${EVIL}/`)}`,
      ).toString('hex');
      const frame = await request(world.target).get(
        `${P}/handler/frame?state=${smuggled}`,
      );
      expect(frame.status).toBe(403);

      // the genuine redirect flow goes back to the app
      const { agent, callback } = await startAs(
        world.newAgent(),
        `&flow=redirect&redirectUrl=${encodeURIComponent(
          `${APP_ORIGIN}/catalog`,
        )}`,
      );
      const done = await agent.get(callback);
      expect(done.status).toBe(302);
      expect(done.headers.location).toBe(`${APP_ORIGIN}/catalog`);
      expect(world.refreshToken(agent)).toEqual(expect.any(String));
    });

    it('refresh and logout without X-Requested-With: 401, the session is neither used nor ended', async () => {
      const agent = world.newAgent();
      await world.signIn(JANE.uuid, { agent });
      const token = world.refreshToken(agent);
      const before = tokenCalls();

      for (const res of [
        await agent.get(`${P}/refresh?optional&env=development`),
        await agent.post(`${P}/refresh?optional&env=development`),
        await agent
          .get(`${P}/refresh?optional&env=development`)
          .set('X-Requested-With', 'fetch'),
        await agent.post(`${P}/logout?env=development`),
      ]) {
        expect(res.status).toBe(401);
        expect(res.body.error).toEqual({
          name: 'AuthenticationError',
          message: 'Invalid X-Requested-With header',
        });
        expect(res.text).not.toContain('backstageIdentity');
      }
      expect(tokenCalls()).toBe(before);
      expect(world.refreshToken(agent)).toBe(token);
      // with the header, the same session still works
      expect((await world.refresh(agent)).status).toBe(200);
    });

    it('logout from a foreign origin is refused', async () => {
      const agent = world.newAgent();
      await world.signIn(JANE.uuid, { agent });
      const res = await agent
        .post(`${P}/logout?env=development`)
        .set('X-Requested-With', 'XMLHttpRequest')
        .set('Origin', EVIL);
      expect(res.status).toBe(403);
      expect(world.refreshToken(agent)).toEqual(expect.any(String));
    });

    it('/start with a code or an error redeems nothing and starts a normal flow', async () => {
      const { back } = await startAs();
      const before = tokenCalls();
      for (const extra of [
        `code=${back.searchParams.get('code')}`,
        'error=access_denied',
        'error=server_error&error_description=x',
      ]) {
        const res = await request(world.target).get(
          `${P}/start?env=development&${extra}`,
        );
        expect(res.status).toBe(302);
        expect(res.headers.location).toMatch(authorizeUrl);
      }
      expect(tokenCalls()).toBe(before);
    });

    it('query parameters given as arrays or objects are refused with 400', async () => {
      for (const path of [
        `/start?env[toString]=1`,
        `/start?env=development&redirectUrl[]=x`,
        `/handler/frame?env=development&state[toString]=1`,
        `/handler/frame?env[]=development&code=x`,
        `/refresh?env[toString]=1`,
      ]) {
        const res = await request(world.target)
          .get(`${P}${path}`)
          .set('X-Requested-With', 'XMLHttpRequest');
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
      }
      const res = await request(world.target)
        .post(`${P}/logout?env[toString]=1`)
        .set('X-Requested-With', 'XMLHttpRequest');
      expect(res.status).toBe(400);
    });
  });
});
