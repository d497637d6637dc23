import { CacheService, LoggerService } from '@backstage/backend-plugin-api';
import { ConfigReader } from '@backstage/config';
import { JsonObject } from '@backstage/types';
import { readBitbucketProviderSettings } from './config';
import { tokenError } from './errors';
import { BitbucketProfile } from './profile';
import { ProfileSource } from './profileSource';
import { ACCESS_TOKEN_MARGIN_MS, scopeWithin, Sessions } from './sessions';
import { SessionStore } from './sessionStore';
import { BitbucketTokenClient, BitbucketTokenResponse } from './token';
import { captureLogger, LogLine } from './__testUtils__/backend';
import { lazyMemoryCache } from './__testUtils__/caches';
import { signInInfo } from './__testUtils__/resolverContext';

const MINUTE = 60_000;
const SCOPE = 'account email';
/** What a refresh Bitbucket refused answers. */
const INVALID =
  'Your Bitbucket session has expired or was revoked (Bitbucket said: "The refresh token is invalid."). Sign in again.';
/** What a refresh of a session a logout ended answers. */
const ENDED = {
  name: 'AuthenticationError',
  message: 'This Bitbucket session was ended by a logout. Sign in again.',
};

/** Bitbucket's token endpoint, rotating refresh tokens (CHANGE-3052). */
class FakeTokenEndpoint {
  calls = 0;
  latencyMs = 0;
  expiresInSeconds = 7200;
  /** Answers every call with this error (Bitbucket down). */
  failure?: Error;
  readonly #valid = new Set<string>();
  #next = 0;

  /** Whether Bitbucket would still accept this refresh token. */
  isValid(refreshToken: string): boolean {
    return this.#valid.has(refreshToken);
  }

  /** The refresh token issued last. */
  get newest(): string {
    return `refresh-${this.#next}-xxxxxxxxxxxxxxxx`;
  }

  issue(scope = SCOPE): BitbucketTokenResponse {
    const n = ++this.#next;
    const refreshToken = `refresh-${n}-xxxxxxxxxxxxxxxx`;
    this.#valid.add(refreshToken);
    return {
      accessToken: `access-${n}-xxxxxxxxxxxxxxxx`,
      tokenType: 'bearer',
      scope,
      expiresInSeconds: this.expiresInSeconds,
      refreshToken,
    };
  }

  client(): BitbucketTokenClient {
    return {
      refresh: async (refreshToken: string, scope: string | undefined) => {
        this.calls++;
        if (this.failure) throw this.failure;
        // Bitbucket rotates when the call arrives, whenever its answer lands
        const answer = this.#valid.delete(refreshToken)
          ? this.issue(scope)
          : undefined;
        await new Promise(r => setTimeout(r, this.latencyMs));
        if (!answer) {
          throw tokenError(
            'refresh_token',
            400,
            '{"error":"invalid_grant","error_description":"The refresh token is invalid."}',
          );
        }
        return answer;
      },
    } as unknown as BitbucketTokenClient;
  }
}

/** The profile calls, counted; `membershipDelays` slows the next role checks, one each. */
function fakeProfiles(fingerprint = 'fp') {
  const calls = { full: 0, membership: 0 };
  const membershipDelays: number[] = [];
  const profile: BitbucketProfile = signInInfo().result.fullProfile;
  const source = {
    fingerprint,
    async full() {
      calls.full++;
      return profile;
    },
    async membership(_token: string, cached: BitbucketProfile) {
      calls.membership++;
      const delay = membershipDelays.shift() ?? 0;
      if (delay) await new Promise(r => setTimeout(r, delay));
      return cached;
    },
    async withoutBitbucket() {
      return undefined;
    },
  } as unknown as ProfileSource;
  return { source, calls, profile, membershipDelays };
}

const mapCache = () => lazyMemoryCache().cache;

function setup(
  options: {
    config?: JsonObject;
    cache?: CacheService;
    endpoint?: FakeTokenEndpoint;
    fingerprint?: string;
    logger?: LoggerService;
  } = {},
) {
  const settings = readBitbucketProviderSettings(
    new ConfigReader({
      clientId: 'key',
      clientSecret: 'secret',
      ...options.config,
    }),
  );
  const endpoint = options.endpoint ?? new FakeTokenEndpoint();
  const profiles = fakeProfiles(options.fingerprint);
  const store = new SessionStore(options.cache ?? mapCache(), 'key', {
    keepSessions: settings.profileCacheTtlMs > 0,
    graceMs: settings.refreshGracePeriodMs,
  });
  const sessions = new Sessions({
    store,
    tokens: endpoint.client(),
    profiles: profiles.source,
    settings,
    logger: options.logger,
  } as ConstructorParameters<typeof Sessions>[0]);
  return { sessions, endpoint, profiles, store };
}

/** Date.now() under the test's control (timers stay real). */
function clock() {
  let now = Date.now();
  jest.spyOn(Date, 'now').mockImplementation(() => now);
  return {
    advance(ms: number) {
      now += ms;
    },
  };
}

describe('Sessions', () => {
  afterEach(() => jest.restoreAllMocks());

  describe('zero-round-trip refresh', () => {
    it('answers from the cache: the same access token, its remaining life, the same cookie', async () => {
      const time = clock();
      const { sessions, endpoint, profiles } = setup();
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      time.advance(30 * MINUTE);
      const { session, fullProfile } = await sessions.refresh(
        token.refreshToken!,
        SCOPE,
      );
      expect(session).toEqual({
        accessToken: token.accessToken,
        tokenType: 'bearer',
        scope: SCOPE,
        expiresInSeconds: 7200 - 30 * 60,
        refreshToken: token.refreshToken,
      });
      expect(fullProfile).toEqual(profiles.profile);
      expect(endpoint.calls).toBe(0);
      expect(profiles.calls).toEqual({ full: 0, membership: 0 });
    });

    it.each([
      [
        'the access token has less than 5 minutes left',
        7200 * 1000 - ACCESS_TOKEN_MARGIN_MS + 1,
        SCOPE,
      ],
      ['a wider scope is requested', 0, `${SCOPE} repository`],
    ])('goes to Bitbucket when %s', async (_, after, scope) => {
      const time = clock();
      const { sessions, endpoint, profiles } = setup();
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      time.advance(after);
      const { session } = await sessions.refresh(token.refreshToken!, scope);
      expect(endpoint.calls).toBe(1);
      expect(session.refreshToken).not.toBe(token.refreshToken);
    });

    it('re-checks the workspace roles alone after profileCacheTtl, with the access token in hand', async () => {
      const time = clock();
      const { sessions, endpoint, profiles } = setup({
        config: { allowedWorkspaces: ['acme'], profileCacheTtl: '15m' },
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      time.advance(15 * MINUTE);
      const { session } = await sessions.refresh(token.refreshToken!, SCOPE);
      expect(profiles.calls).toEqual({ full: 0, membership: 1 });
      expect(endpoint.calls).toBe(0);
      expect(session.refreshToken).toBe(token.refreshToken);
      // the check is fresh again
      time.advance(10 * MINUTE);
      await sessions.refresh(token.refreshToken!, SCOPE);
      expect(profiles.calls).toEqual({ full: 0, membership: 1 });
    });

    it('reads user and emails again after identityCacheTtl', async () => {
      const time = clock();
      const { sessions, endpoint, profiles } = setup({
        config: { identityCacheTtl: '1h' },
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      time.advance(60 * MINUTE);
      await sessions.refresh(token.refreshToken!, SCOPE);
      expect(profiles.calls).toEqual({ full: 1, membership: 0 });
      expect(endpoint.calls).toBe(0);
    });

    it('a session kept under other workspace settings is checked again', async () => {
      const cache = mapCache();
      const before = setup({ cache, fingerprint: 'before' });
      const token = before.endpoint.issue();
      await before.sessions.started(token, before.profiles.profile);
      const after = setup({
        cache,
        fingerprint: 'after',
        endpoint: before.endpoint,
      });
      await after.sessions.refresh(token.refreshToken!, SCOPE);
      expect(after.profiles.calls.full + after.profiles.calls.membership).toBe(
        1,
      );
    });

    it('keeps the profile’s ages when the refresh token rotates', async () => {
      const time = clock();
      const { sessions, endpoint, profiles, store } = setup({
        config: { allowedWorkspaces: ['acme'], profileCacheTtl: '15m' },
      });
      endpoint.expiresInSeconds = 600; // rotates once the margin is reached
      const token = endpoint.issue();
      const signedInAt = Date.now();
      await sessions.started(token, profiles.profile);
      time.advance(6 * MINUTE);
      const { session } = await sessions.refresh(token.refreshToken!, SCOPE);
      expect(endpoint.calls).toBe(1);
      // within profileCacheTtl: the rotation re-read nothing …
      expect(profiles.calls).toEqual({ full: 0, membership: 0 });
      // … and the new record keeps when the profile was read
      expect(await store.get(session.refreshToken!)).toMatchObject({
        identityFetchedAt: signedInAt,
        membershipFetchedAt: signedInAt,
      });
      // so the roles are due at 15 minutes after the sign-in, not after the rotation
      time.advance(9 * MINUTE);
      await sessions.refresh(session.refreshToken!, SCOPE);
      expect(profiles.calls).toEqual({ full: 0, membership: 1 });
    });
  });

  describe('rotation', () => {
    const nearExpiry = () => {
      const endpoint = new FakeTokenEndpoint();
      endpoint.expiresInSeconds = 120; // always within the margin: every refresh rotates
      return endpoint;
    };

    it('single flight: concurrent refreshes with one refresh token make one call', async () => {
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
      });
      endpoint.latencyMs = 50;
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      const results = await Promise.all(
        Array.from({ length: 5 }, () =>
          sessions.refresh(token.refreshToken!, SCOPE),
        ),
      );
      expect(endpoint.calls).toBe(1);
      expect(new Set(results.map(r => r.session.refreshToken)).size).toBe(1);
      expect(results[0].session.refreshToken).not.toBe(token.refreshToken);
    });

    it('a lost answer is not a lost session: the old token gets the new session within the grace period', async () => {
      const time = clock();
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      const lost = await sessions.refresh(token.refreshToken!, SCOPE);
      time.advance(59_000);
      const again = await sessions.refresh(token.refreshToken!, SCOPE);
      // the same session and cookie, 59 s older
      expect(again.session).toEqual({
        ...lost.session,
        expiresInSeconds: 120 - 59,
      });
      expect(endpoint.calls).toBe(1);
    });

    it('after the grace period the old token is refused, as Bitbucket refuses it', async () => {
      const time = clock();
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
        config: { refreshGracePeriod: '1s' },
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      await sessions.refresh(token.refreshToken!, SCOPE);
      time.advance(1001);
      await expect(
        sessions.refresh(token.refreshToken!, SCOPE),
      ).rejects.toMatchObject({
        name: 'AuthenticationError',
        message:
          'Your Bitbucket session has expired or was revoked (Bitbucket said: "The refresh token is invalid."). Sign in again.',
      });
      expect(endpoint.calls).toBe(2);
    });

    it('follows several rotations from an old token to the newest session', async () => {
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      const second = await sessions.refresh(token.refreshToken!, SCOPE);
      const third = await sessions.refresh(second.session.refreshToken!, SCOPE);
      expect(endpoint.calls).toBe(2);
      // a tab still on the first token gets the newest session, as it is
      const fromFirst = await sessions.refresh(token.refreshToken!, SCOPE);
      expect(fromFirst.session.refreshToken).toBe(third.session.refreshToken);
      expect(fromFirst.session.accessToken).toBe(third.session.accessToken);
      expect(endpoint.calls).toBe(2);
    });

    it('two replicas refreshing one token at once: the one Bitbucket refuses waits for the other’s rotation record', async () => {
      const cache = mapCache();
      const endpoint = nearExpiry();
      endpoint.latencyMs = 30;
      const a = setup({ cache, endpoint });
      const b = setup({ cache, endpoint });
      const token = endpoint.issue();
      await a.sessions.started(token, a.profiles.profile);
      const [onA, onB] = await Promise.all([
        a.sessions.refresh(token.refreshToken!, SCOPE),
        b.sessions.refresh(token.refreshToken!, SCOPE),
      ]);
      expect(onB.session.refreshToken).toBe(onA.session.refreshToken);
      expect(onB.session.accessToken).toBe(onA.session.accessToken);
      expect(onA.session.refreshToken).not.toBe(token.refreshToken);
      expect(endpoint.calls).toBe(2); // one rotation, one invalid_grant
    });

    it('without a grace period, a concurrent second refresh is refused at once', async () => {
      const cache = mapCache();
      const endpoint = nearExpiry();
      endpoint.latencyMs = 30;
      const config = { refreshGracePeriod: 0 };
      const a = setup({ cache, endpoint, config });
      const b = setup({ cache, endpoint, config });
      const token = endpoint.issue();
      await a.sessions.started(token, a.profiles.profile);
      const outcomes = await Promise.allSettled([
        a.sessions.refresh(token.refreshToken!, SCOPE),
        b.sessions.refresh(token.refreshToken!, SCOPE),
      ]);
      expect(outcomes.map(o => o.status).sort()).toEqual([
        'fulfilled',
        'rejected',
      ]);
    });

    it('logout forgets the session: its access token is not served again', async () => {
      const { sessions, endpoint, profiles } = setup();
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      await sessions.ended(token.refreshToken);
      await expect(
        sessions.refresh(token.refreshToken!, SCOPE),
      ).rejects.toMatchObject(ENDED);
      expect(endpoint.calls).toBe(1); // the revocation
    });
  });

  describe('a logout ends every copy of the session, here and at Bitbucket (issue 20)', () => {
    const nearExpiry = () => {
      const endpoint = new FakeTokenEndpoint();
      endpoint.expiresInSeconds = 120; // every refresh rotates
      return endpoint;
    };

    it.each([
      ['the cache on', {}],
      ['the cache off', { profileCacheTtl: 0 }],
    ])(
      'with %s, a copy of the cookie the logout carried gets nothing, and Bitbucket no longer accepts its refresh token',
      async (_, config) => {
        const { sessions, endpoint, profiles } = setup({ config });
        const token = endpoint.issue();
        await sessions.started(token, profiles.profile);
        await sessions.ended(token.refreshToken);
        expect(endpoint.isValid(token.refreshToken!)).toBe(false);
        expect(endpoint.calls).toBe(1); // one rotation, its answer thrown away
        await expect(
          sessions.refresh(token.refreshToken!, SCOPE),
        ).rejects.toMatchObject(ENDED);
        expect(endpoint.calls).toBe(1);
      },
    );

    it('a logout with the cookie from before the last rotation (a lost answer) kills the newest refresh token at Bitbucket too', async () => {
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      const lost = await sessions.refresh(token.refreshToken!, SCOPE);
      const newest = lost.session.refreshToken!;
      expect(endpoint.isValid(newest)).toBe(true);
      await sessions.ended(token.refreshToken);
      expect(endpoint.isValid(newest)).toBe(false);
      await expect(sessions.refresh(newest, SCOPE)).rejects.toMatchObject(
        ENDED,
      );
    });

    it('a failed revocation is logged, without a token, and does not fail the logout', async () => {
      const logs: LogLine[] = [];
      const { sessions, endpoint, profiles } = setup({
        logger: captureLogger(line => logs.push(line)),
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      endpoint.failure = tokenError('refresh_token', 503, 'down');
      await expect(sessions.ended(token.refreshToken)).resolves.toBeUndefined();
      expect(logs.map(l => [l.level, l.message])).toEqual([
        [
          'warn',
          "Bitbucket logout: could not revoke the session's refresh token at Bitbucket (Bitbucket's token endpoint answered HTTP 503. Try again later.). The session is ended here; the refresh token stays valid at Bitbucket until it is used or expires (3 months unused).",
        ],
      ]);
      expect(JSON.stringify(logs)).not.toContain(token.refreshToken);
      // ended here all the same
      endpoint.failure = undefined;
      await expect(
        sessions.refresh(token.refreshToken!, SCOPE),
      ).rejects.toMatchObject(ENDED);
    });

    it('a logout while a refresh is in flight: the refresh’s answer, landing after it, serves nothing and leaves nothing live', async () => {
      const { sessions, endpoint, profiles, store } = setup({
        endpoint: nearExpiry(),
      });
      endpoint.latencyMs = 100;
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      const inFlight = sessions.refresh(token.refreshToken!, SCOPE);
      await new Promise(r => setTimeout(r, 20)); // Bitbucket has rotated
      const rotatedTo = endpoint.newest;
      expect(rotatedTo).not.toBe(token.refreshToken);
      await sessions.ended(token.refreshToken);
      await expect(inFlight).rejects.toMatchObject(ENDED);
      expect(await store.get(rotatedTo)).toBeUndefined();
      expect(await store.rotated(token.refreshToken!)).toBeUndefined();
      // the new refresh token is dead at Bitbucket as well
      expect(endpoint.isValid(rotatedTo)).toBe(false);
    });

    it('a rotation another replica finishes just before the logout’s tombstone: its new token is ended and dead at Bitbucket too', async () => {
      const { cache } = lazyMemoryCache();
      const endpoint = nearExpiry();
      let beforeTombstone: (() => Promise<unknown>) | undefined;
      // the logout's tombstone reaches the shared cache only after B's rotation
      const slowTombstones: CacheService = {
        ...cache,
        async set(key, value, options) {
          if (key.startsWith('bitbucket-ended:') && beforeTombstone) {
            const run = beforeTombstone;
            beforeTombstone = undefined;
            await run();
          }
          return cache.set(key, value, options);
        },
        withOptions: () => slowTombstones,
      };
      const a = setup({ cache: slowTombstones, endpoint });
      const b = setup({ cache, endpoint });
      const token = endpoint.issue();
      await a.sessions.started(token, a.profiles.profile);
      let onB: string | undefined;
      beforeTombstone = async () => {
        onB = (await b.sessions.refresh(token.refreshToken!, SCOPE)).session
          .refreshToken;
      };
      await a.sessions.ended(token.refreshToken);
      expect(onB).toEqual(expect.any(String));
      expect(endpoint.isValid(onB!)).toBe(false);
      const calls = endpoint.calls;
      await expect(b.sessions.refresh(onB!, SCOPE)).rejects.toMatchObject(
        ENDED,
      );
      expect(endpoint.calls).toBe(calls);
    });

    it('a roles re-check that finishes after a concurrent rotation does not bring back the old token’s record', async () => {
      const time = clock();
      const { sessions, endpoint, profiles, store } = setup({
        config: { allowedWorkspaces: ['acme'] },
      });
      const token = endpoint.issue();
      await sessions.started(token, profiles.profile);
      time.advance(16 * MINUTE); // the roles are due
      profiles.membershipDelays.push(100, 0);
      const recheck = sessions.refresh(token.refreshToken!, SCOPE);
      // another tab asks for a wider scope: a rotation, done before the re-check
      const rotated = await sessions.refresh(
        token.refreshToken!,
        'account email team',
      );
      expect(rotated.session.refreshToken).not.toBe(token.refreshToken);
      await recheck;
      expect(await store.get(token.refreshToken!)).toBeUndefined();
      // after the grace period the old cookie has no record to answer from
      time.advance(61_000);
      await expect(
        sessions.refresh(token.refreshToken!, SCOPE),
      ).rejects.toMatchObject({ message: INVALID });
    });

    it('more than 5 rotations within the grace period, then a logout: the oldest cookie is refused', async () => {
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
      });
      const first = endpoint.issue();
      await sessions.started(first, profiles.profile);
      const chain = [first.refreshToken!];
      for (let i = 0; i < 7; i++) {
        chain.push(
          (await sessions.refresh(chain[i], SCOPE)).session.refreshToken!,
        );
      }
      await sessions.ended(chain[7]);
      // the first token names the session: refused here
      await expect(sessions.refresh(chain[0], SCOPE)).rejects.toMatchObject(
        ENDED,
      );
      // the second, beyond the 5 ids the newest record keeps: its rotation
      // record does not open, and Bitbucket refuses the token
      const calls = endpoint.calls;
      await expect(sessions.refresh(chain[1], SCOPE)).rejects.toMatchObject({
        message: INVALID,
      });
      expect(endpoint.calls).toBe(calls + 1);
    });

    it('with profileCacheTtl 0, a logout with the newest cookie ends the rotation records: an older cookie replayed within the grace period is refused', async () => {
      const { sessions, endpoint, profiles } = setup({
        endpoint: nearExpiry(),
        config: { profileCacheTtl: 0 },
      });
      const first = endpoint.issue();
      await sessions.started(first, profiles.profile);
      const second = await sessions.refresh(first.refreshToken!, SCOPE);
      await sessions.ended(second.session.refreshToken);
      await expect(
        sessions.refresh(first.refreshToken!, SCOPE),
      ).rejects.toMatchObject(ENDED);
    });
  });

  it('an unknown refresh token costs one call to Bitbucket and no waiting', async () => {
    const { sessions, endpoint } = setup();
    const started = performance.now();
    await expect(
      sessions.refresh('made-up-refresh-token-xxxxxxxx', SCOPE),
    ).rejects.toMatchObject({ message: INVALID });
    expect(endpoint.calls).toBe(1);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('a kept profile keeps its fetch time: its roles are due profileCacheTtl after it was fetched, not after the sign-in', async () => {
    const time = clock();
    const { sessions, endpoint, profiles } = setup({
      config: { allowedWorkspaces: ['acme'] },
    });
    const fetchedAt = Date.now() - 29 * MINUTE; // kept by AccountBudget (profileCacheTtl 30m)
    const token = endpoint.issue();
    await sessions.started(token, profiles.profile, fetchedAt);
    time.advance(2 * MINUTE);
    await sessions.refresh(token.refreshToken!, SCOPE);
    expect(profiles.calls).toEqual({ full: 0, membership: 1 });
  });
});

describe('scopeWithin', () => {
  it.each([
    ['account', 'account email', true],
    ['account email', 'email account team', true],
    ['account repository', 'account email', false],
    ['', 'account', true],
  ])('%j within %j: %s', (requested, granted, within) => {
    expect(scopeWithin(requested, granted)).toBe(within);
  });
});
