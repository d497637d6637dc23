/*
 * Sessions survive Bitbucket's rotating refresh tokens (CHANGE-3052), end
 * to end against the emulator, which rotates them by default: tabs that
 * refresh at the same moment, an answer that never reached the browser, the
 * grace period's end, a wider scope, and what the shared cache holds.
 */
import { SeedUser } from '@internal/bitbucket-cloud-emulator';
import { JsonObject } from '@backstage/types';
import request from 'supertest';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  entitiesFor,
  HardeningWorld,
  seedUsers,
  sharedCache,
  startHardeningWorld,
} from './__testUtils__/world';

const [JANE] = seedUsers(1, 'jane');
const P = '/api/auth/bitbucket';
const COOKIE = 'bitbucket-refresh-token';

/** A /refresh as the app sends it, with this refresh cookie (no cookie jar). */
function refreshWith(
  world: HardeningWorld,
  refreshToken: string,
  scope = 'account',
) {
  return request(world.target)
    .get(
      `${P}/refresh?optional&env=development&scope=${encodeURIComponent(
        scope,
      )}`,
    )
    .set('X-Requested-With', 'XMLHttpRequest')
    .set('Cookie', `${COOKIE}=${refreshToken}`);
}

/** The refresh cookie an answer sets, if any. */
function setCookie(res: request.Response): string | undefined {
  // auth-node also clears the cookie's chunks (`…=; Expires=…`): the value is the set one
  const values = ([] as string[])
    .concat(res.headers['set-cookie'] ?? [])
    .filter(c => c.startsWith(`${COOKIE}=`))
    .map(c => decodeURIComponent(c.slice(COOKIE.length + 1).split(';')[0]))
    .filter(Boolean);
  return values[values.length - 1];
}

/** What a refresh with a refresh token Bitbucket no longer knows answers. */
const INVALID_REFRESH_TOKEN =
  /^Refresh failed; caused by AuthenticationError: Your Bitbucket session has expired or was revoked \(Bitbucket said: "The refresh token is invalid\."\)\. Sign in again\.$/;

/** What a refresh with a cookie of a session a logout ended answers. */
const ENDED_BY_LOGOUT =
  /^Refresh failed; caused by AuthenticationError: This Bitbucket session was ended by a logout\. Sign in again\.$/;

/** A refresh that found no session: refused (as Bitbucket refuses the token, by default), no identity issued. */
function expectNoSession(
  res: request.Response,
  message: RegExp = INVALID_REFRESH_TOKEN,
) {
  expect(res.status).toBe(401);
  expect(res.body.error.message).toMatch(message);
  expect(res.text).not.toContain('backstageIdentity');
}

const tokenCalls = (world: HardeningWorld) =>
  world.emulator.calls().filter(c => c.path === '/site/oauth2/access_token')
    .length;

describe('sessions survive rotating refresh tokens', () => {
  let world: HardeningWorld | undefined;
  afterEach(async () => {
    await world?.stop();
    world = undefined;
  });

  async function signedIn(provider: JsonObject, users: SeedUser[] = [JANE]) {
    world = await startHardeningWorld({
      users,
      entities: entitiesFor(users),
      provider,
      // 4 minutes: within the 5-minute margin, so every refresh reaches
      // Bitbucket and rotates, also with the cache on
      emulator: { accessTokenTtlSeconds: 240 },
    });
    const { refreshToken } = await world.signIn(JANE.uuid);
    world.emulator.resetCalls();
    return refreshToken!;
  }

  describe.each([
    ['the profile cache on', {}],
    ['the profile cache off', { profileCacheTtl: 0 }],
  ])('with %s', (_, provider) => {
    it.each([2, 5])(
      '%i tabs restoring the session at once all stay signed in, with one rotation',
      async tabs => {
        const first = await signedIn(provider);
        const answers = await Promise.all(
          Array.from({ length: tabs }, () => refreshWith(world!, first)),
        );
        expect(answers.map(a => a.status)).toEqual(Array(tabs).fill(200));
        expect(
          new Set(
            answers.map(a => a.body.backstageIdentity.identity.userEntityRef),
          ),
        ).toEqual(new Set([`user:default/${JANE.nickname}`]));
        // every tab gets the same new session and cookie
        const cookies = new Set(answers.map(setCookie));
        expect(cookies.size).toBe(1);
        const [rotated] = cookies;
        expect(rotated).toEqual(expect.any(String));
        expect(rotated).not.toBe(first);
        expect(
          new Set(answers.map(a => a.body.providerInfo.accessToken)).size,
        ).toBe(1);
        expect(tokenCalls(world!)).toBe(1);
        // and the session goes on from the new cookie
        const onward = await refreshWith(world!, rotated!);
        expect(onward.body.error?.message).toBeUndefined();
        expect(onward.status).toBe(200);
      },
    );

    it('a lost answer is not a lost session: a reload with the old cookie gets the rotated one', async () => {
      const first = await signedIn(provider);
      const lost = await refreshWith(world!, first); // never reaches the browser
      expect(lost.status).toBe(200);
      const reload = await refreshWith(world!, first);
      expect(reload.status).toBe(200);
      expect(setCookie(reload)).toBe(setCookie(lost));
      expect(reload.body.providerInfo.accessToken).toBe(
        lost.body.providerInfo.accessToken,
      );
      expect(tokenCalls(world!)).toBe(1);
    });
  });

  it('after the grace period the old cookie is refused, as Bitbucket refuses it', async () => {
    const first = await signedIn({ refreshGracePeriod: '1s' });
    expect((await refreshWith(world!, first)).status).toBe(200);
    await new Promise(r => setTimeout(r, 1100));
    const late = await refreshWith(world!, first);
    expectNoSession(late);
  });

  /** A /logout as the app sends it, with this refresh cookie. */
  const logoutWith = (refreshToken: string) =>
    request(world!.target)
      .post(`${P}/logout?env=development`)
      .set('X-Requested-With', 'XMLHttpRequest')
      .set('Cookie', `${COOKIE}=${refreshToken}`);

  describe('logout ends the session within the grace period too', () => {
    it('the cookie from before the last rotation is refused after a logout with the current one', async () => {
      const first = await signedIn({});
      const page = await refreshWith(world!, first); // rotates
      const current = setCookie(page)!;
      expect(current).toBeDefined();
      expect(current).not.toBe(first);
      expect((await logoutWith(current)).status).toBe(200);

      // a copy of the old cookie, replayed within the 60 s grace period
      const replay = await refreshWith(world!, first);
      expectNoSession(replay, ENDED_BY_LOGOUT);
    });

    it('a logout with the old cookie (its rotation answer was lost) ends the rotated session for it', async () => {
      const first = await signedIn({});
      expect((await refreshWith(world!, first)).status).toBe(200); // never reaches the browser
      expect((await logoutWith(first)).status).toBe(200);

      const replay = await refreshWith(world!, first);
      expectNoSession(replay, ENDED_BY_LOGOUT);
    });
  });

  /** What Bitbucket (the emulator) answers a refresh with this token now. */
  const bitbucketRefresh = async (refreshToken: string) => {
    const res = await fetch(`${world!.emulator.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(
          `${CLIENT_ID}:${CLIENT_SECRET}`,
        ).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      }).toString(),
    });
    return { status: res.status, body: await res.json() };
  };
  const DEAD = {
    status: 400,
    body: {
      error: 'invalid_grant',
      error_description: 'The refresh token is invalid.',
    },
  };

  describe('a logout ends every copy of the session, here and at Bitbucket (issue 20)', () => {
    describe.each([
      ['the profile cache on', {}],
      ['the profile cache off', { profileCacheTtl: 0 }],
    ])('with %s', (_, provider) => {
      it('a copy of the cookie the logout carried gets no identity, and Bitbucket no longer accepts its refresh token', async () => {
        const first = await signedIn(provider);
        const current = setCookie(await refreshWith(world!, first))!;
        world!.emulator.resetCalls();
        expect((await logoutWith(current)).status).toBe(200);
        // one rotation at Bitbucket, its answer thrown away
        expect(
          world!.emulator
            .calls()
            .map(c => [c.path, c.grantType ?? '', c.status]),
        ).toEqual([['/site/oauth2/access_token', 'refresh_token', 200]]);
        expectNoSession(await refreshWith(world!, current), ENDED_BY_LOGOUT);
        expectNoSession(await refreshWith(world!, first), ENDED_BY_LOGOUT);
        expect(await bitbucketRefresh(current)).toEqual(DEAD);
      });
    });

    it('a refresh in flight at the logout gets no identity, and leaves no live refresh token', async () => {
      const first = await signedIn({});
      world!.emulator.setFaults({
        endpoints: {
          '/site/oauth2/access_token': { latencyMs: 400, times: 1 },
        },
      });
      const inFlight = refreshWith(world!, first).then(r => r);
      await new Promise(r => setTimeout(r, 100));
      expect((await logoutWith(first)).status).toBe(200);
      const late = await inFlight;
      expectNoSession(late);
      expect(setCookie(late)).toBeUndefined();
      const refreshes = world!.emulator
        .calls()
        .filter(c => c.path === '/site/oauth2/access_token');
      // the logout's rotation, then the refresh's, refused
      expect(refreshes.map(c => c.status).sort()).toEqual([200, 400]);
      expectNoSession(await refreshWith(world!, first), ENDED_BY_LOGOUT);
    });

    it('a revocation Bitbucket fails is logged without a token, and the logout still ends the session here', async () => {
      const first = await signedIn({});
      world!.emulator.setFaults({
        endpoints: { '/site/oauth2/access_token': { status: 503, times: 1 } },
      });
      expect((await logoutWith(first)).status).toBe(200);
      expect(
        world!.logs
          .filter(l => l.message.startsWith('Bitbucket logout'))
          .map(l => [l.level, l.message]),
      ).toEqual([
        [
          'warn',
          expect.stringMatching(
            /^Bitbucket logout: could not revoke the session's refresh token at Bitbucket \(Bitbucket's token endpoint answered HTTP 503.*\)\. The session is ended here; the refresh token stays valid at Bitbucket until it is used or expires \(3 months unused\)\.$/,
          ),
        ],
      ]);
      expectNoSession(await refreshWith(world!, first), ENDED_BY_LOGOUT);
    });
  });

  it('a page load answers from the cache while the access token lives, and a wider scope goes to Bitbucket', async () => {
    world = await startHardeningWorld({
      users: [JANE],
      entities: entitiesFor([JANE]),
      consumerPermissions: ['account', 'email', 'repository'],
    });
    const { refreshToken, message } = await world.signIn(JANE.uuid);
    world.emulator.resetCalls();
    const loads = await Promise.all(
      [1, 2, 3].map(() => refreshWith(world!, refreshToken!)),
    );
    expect(loads.map(l => l.status)).toEqual([200, 200, 200]);
    expect(world.emulator.calls()).toEqual([]);
    // the same access token, the same cookie (none set)
    for (const load of loads) {
      expect(load.body.providerInfo.accessToken).toBe(
        message.response.providerInfo.accessToken,
      );
      expect(setCookie(load)).toBeUndefined();
    }

    const wider = await refreshWith(world, refreshToken!, 'account repository');
    expect(tokenCalls(world)).toBe(1);
    // Bitbucket narrows or widens only within the original grant
    expect(wider.status).toBe(401);
    expect(wider.body.error.message).toContain(
      'The Bitbucket OAuth consumer lacks a permission this portal requests',
    );
  });

  it('the shared cache holds no token, email, name or workspace of the sessions it keeps', async () => {
    const cache = sharedCache();
    const users = seedUsers(3, 'scan').map(u => ({
      ...u,
      workspaces: [{ slug: 'acme-secret-project', role: 'member' as const }],
    }));
    world = await startHardeningWorld({
      users,
      entities: entitiesFor(users),
      consumerPermissions: ['account', 'email', 'team'],
      provider: { allowedWorkspaces: ['acme-secret-project'] },
      emulator: { accessTokenTtlSeconds: 240 },
      features: [cache.factory],
    });
    for (const user of users) {
      const { refreshToken } = await world.signIn(user.uuid, {
        agent: world.newAgent(),
      });
      const rotated = setCookie(await refreshWith(world, refreshToken!));
      await refreshWith(world, rotated!);
    }
    const stored = JSON.stringify([...cache.entries]);
    expect(cache.entries.size).toBeGreaterThan(3);
    const secrets = [
      ...world.emulator.issuedTokens(),
      ...users.flatMap(u => [
        u.uuid,
        u.accountId,
        u.displayName,
        u.nickname,
        ...u.emails.map(e => e.email),
      ]),
      'acme-secret-project',
    ];
    expect(secrets.length).toBeGreaterThan(20);
    expect(secrets.filter(s => stored.includes(s))).toEqual([]);
  });
});
