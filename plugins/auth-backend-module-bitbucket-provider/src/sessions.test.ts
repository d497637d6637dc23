import { CacheService } from '@backstage/backend-plugin-api';
import { ConfigReader } from '@backstage/config';
import { JsonObject } from '@backstage/types';
import { readBitbucketProviderSettings } from './config';
import { tokenError } from './errors';
import { BitbucketProfile } from './profile';
import { ProfileSource } from './profileSource';
import { ACCESS_TOKEN_MARGIN_MS, scopeWithin, Sessions } from './sessions';
import { SessionStore } from './sessionStore';
import { BitbucketTokenClient, BitbucketTokenResponse } from './token';
import { lazyMemoryCache } from './__testUtils__/caches';
import { signInInfo } from './__testUtils__/resolverContext';

const MINUTE = 60_000;
const SCOPE = 'account email';

/** Bitbucket's token endpoint, rotating refresh tokens (CHANGE-3052). */
class FakeTokenEndpoint {
  calls = 0;
  latencyMs = 0;
  expiresInSeconds = 7200;
  readonly #valid = new Set<string>();
  #next = 0;

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
        await new Promise(r => setTimeout(r, this.latencyMs));
        if (!this.#valid.delete(refreshToken)) {
          throw tokenError(
            'refresh_token',
            400,
            '{"error":"invalid_grant","error_description":"The refresh token is invalid."}',
          );
        }
        return this.issue(scope);
      },
    } as unknown as BitbucketTokenClient;
  }
}

/** The profile calls, counted. */
function fakeProfiles(fingerprint = 'fp') {
  const calls = { full: 0, membership: 0 };
  const profile: BitbucketProfile = signInInfo().result.fullProfile;
  const source = {
    fingerprint,
    async full() {
      calls.full++;
      return profile;
    },
    async membership(_token: string, cached: BitbucketProfile) {
      calls.membership++;
      return cached;
    },
    async withoutBitbucket() {
      return undefined;
    },
  } as unknown as ProfileSource;
  return { source, calls, profile };
}

const mapCache = () => lazyMemoryCache().cache;

function setup(
  options: {
    config?: JsonObject;
    cache?: CacheService;
    endpoint?: FakeTokenEndpoint;
    fingerprint?: string;
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
  });
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
      await sessions.refresh(token.refreshToken!, SCOPE);
      expect(endpoint.calls).toBe(1);
    });
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
