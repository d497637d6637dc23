import { LoggerService } from '@backstage/backend-plugin-api';
import {
  OAuthAuthenticatorResult,
  OAuthSession,
} from '@backstage/plugin-auth-node';
import { BitbucketProviderSettings } from './config';
import { Deadline } from './deadline';
import { isInvalidGrant, sessionEndedError } from './errors';
import { BitbucketProfile } from './profile';
import { ProfileSource } from './profileSource';
import { SessionStore, StoredSession } from './sessionStore';
import { BitbucketTokenClient, BitbucketTokenResponse } from './token';

type Result = OAuthAuthenticatorResult<BitbucketProfile>;

/** A refresh answers from the cache only while the access token has longer than this to live. */
export const ACCESS_TOKEN_MARGIN_MS = 5 * 60 * 1000;
/** How long a refresh refused with `invalid_grant` waits for another replica's rotation record. */
const ROTATION_WAIT_MS = 2000;
const ROTATION_POLL_MS = 100;
/** Rotation records followed at most, from an old refresh token to the newest. */
const MAX_HOPS = 5;

/** No profile yet: everything is due. */
const EMPTY = {
  profile: undefined,
  identityFetchedAt: 0,
  membershipFetchedAt: 0,
  fingerprint: '',
};

function scopes(scope: string | undefined): Set<string> {
  return new Set((scope ?? '').split(/[\s,]+/).filter(Boolean));
}

/** Whether every scope of `requested` is in `granted`. */
export function scopeWithin(requested: string, granted: string): boolean {
  const have = scopes(granted);
  return [...scopes(requested)].every(s => have.has(s));
}

/**
 * The lifecycle of sessions against Bitbucket's rotating refresh tokens
 * (CHANGE-3052: each refresh returns a new refresh token and the old one
 * dies), for a browser with many tabs and a backend with many replicas:
 *
 * - A refresh whose access token has longer than 5 minutes to live, whose
 *   workspace check is younger than `profileCacheTtl` (under the same
 *   settings), whose user and emails are younger than `identityCacheTtl`
 *   and whose requested scope was granted, answers from the cache: no call
 *   to Bitbucket, the same access token, the same cookie.
 * - When only the workspace check (or the identity) is due, it is read
 *   again with the access token in hand: no rotation.
 * - Otherwise the refresh token is exchanged (rotated). Refreshes with the
 *   same refresh token in one process share that one call (single flight);
 *   the rotation leaves a record under the old refresh token, for
 *   `refreshGracePeriod`, so that a refresh with the old token (another
 *   tab, another replica, a reload whose answer was lost) gets the same new
 *   session and cookie instead of an `invalid_grant`. When Bitbucket answers
 *   `invalid_grant` while another replica may still be rotating (the
 *   token had a session record), the refresh waits for that record
 *   briefly; a token the store never saw costs that one call, no waiting.
 * - A logout ends the session everywhere: it leaves a tombstone under the
 *   session and its tokens before deleting their records (see
 *   {@link SessionStore}), so that no copy of any of its cookies gets an
 *   identity and no refresh still in flight writes anything live; and it
 *   kills the refresh token it carried and the newest of its chain at
 *   Bitbucket, which has no revocation endpoint, by rotating each once and
 *   throwing the answer away (CHANGE-3052: the old token dies), best effort
 *   within `signInTimeout`.
 */
export class Sessions {
  readonly #store: SessionStore;
  readonly #tokens: BitbucketTokenClient;
  readonly #profiles: ProfileSource;
  readonly #settings: BitbucketProviderSettings;
  readonly #flights = new Map<string, Promise<Result>>();
  readonly #onProfileRoundAhead?: () => void;
  readonly #logger?: LoggerService;

  constructor(options: {
    store: SessionStore;
    tokens: BitbucketTokenClient;
    profiles: ProfileSource;
    settings: BitbucketProviderSettings;
    /** Called when a token call will be followed by profile calls. */
    onProfileRoundAhead?: () => void;
    /** Receives the line of a revocation at logout that failed. */
    logger?: LoggerService;
  }) {
    this.#store = options.store;
    this.#tokens = options.tokens;
    this.#profiles = options.profiles;
    this.#settings = options.settings;
    this.#onProfileRoundAhead = options.onProfileRoundAhead;
    this.#logger = options.logger;
  }

  /**
   * Keeps a new sign-in's session for its refreshes. `fetchedAt`: when the
   * profile was read from Bitbucket (earlier than now for a profile kept
   * by the account budget), so that its roles are due on time.
   */
  async started(
    token: BitbucketTokenResponse,
    profile: BitbucketProfile,
    fetchedAt: number = Date.now(),
  ): Promise<OAuthSession> {
    const stored = this.#fromToken(token, undefined, token.scope, {
      profile,
      identityFetchedAt: fetchedAt,
      membershipFetchedAt: fetchedAt,
      fingerprint: this.#profiles.fingerprint,
    });
    if (token.refreshToken) await this.#store.put(stored, this.#ttl(stored));
    return {
      ...toSession(stored, token.refreshToken),
      expiresInSeconds: token.expiresInSeconds,
    };
  }

  /** A refresh of the session of `refreshToken`, for the `scope` requested. */
  refresh(refreshToken: string, scope: string): Promise<Result> {
    const key = `${this.#store.id(refreshToken)} ${scope}`;
    let flight = this.#flights.get(key);
    if (!flight) {
      flight = this.#refresh(refreshToken, scope).finally(() =>
        this.#flights.delete(key),
      );
      this.#flights.set(key, flight);
    }
    return flight;
  }

  /**
   * Ends the session (logout), whichever cookie of it the logout carried:
   * no copy of any of its cookies gets an identity again, here or on
   * another replica, and its refresh tokens are dead at Bitbucket. Never
   * fails: a revocation Bitbucket did not take is logged.
   */
  async ended(refreshToken: string | undefined): Promise<void> {
    if (!refreshToken) return;
    const deadline = new Deadline(this.#settings.signInTimeoutMs);
    const first = await this.#latest(refreshToken);
    await this.#store.tombstone([refreshToken, first.token]);
    // a rotation that finished before the tombstone was written (here or on
    // another replica) left a rotation record: end its new token too
    const last = await this.#latest(first.token, { evenEnded: true });
    await this.#store.forget(
      [refreshToken, first.token, last.token],
      [
        ...(first.stored?.rotatedFrom ?? []),
        ...(last.stored?.rotatedFrom ?? []),
      ],
    );
    await Promise.all(
      [...new Set([refreshToken, last.token])].map(token =>
        this.#revoke(token, deadline),
      ),
    );
  }

  /**
   * Kills a refresh token at Bitbucket: one rotation whose answer is thrown
   * away. Already dead (`invalid_grant`) is fine; any other failure is
   * logged, without the token, and swallowed.
   */
  async #revoke(refreshToken: string, deadline: Deadline): Promise<void> {
    try {
      await this.#tokens.refresh(refreshToken, undefined, deadline);
    } catch (error) {
      if (isInvalidGrant(error)) return;
      this.#logger?.warn(
        `Bitbucket logout: could not revoke the session's refresh token at Bitbucket (${
          (error as Error)?.message ?? 'unknown error'
        }). The session is ended here; the refresh token stays valid at Bitbucket until it is used or expires (3 months unused).`,
      );
    }
  }

  async #refresh(refreshToken: string, scope: string): Promise<Result> {
    const deadline = new Deadline(this.#settings.signInTimeoutMs);
    if (await this.#store.isEnded(refreshToken)) throw sessionEndedError();
    let { token, stored } = await this.#latest(refreshToken);
    if (token !== refreshToken && (await this.#store.isEnded(token))) {
      throw sessionEndedError();
    }
    // only a token the store knows may be rotating on another replica
    const known = stored !== undefined;
    // at most twice: after another replica's rotation, once more
    for (let round = 0; ; round++) {
      const forwarded = token !== refreshToken;
      if (stored && this.#tokenUsable(stored, scope, forwarded)) {
        const current = await this.#withoutBitbucket(stored);
        if (current) return answer(current);
        if (this.#profileFresh(stored)) return answer(stored);
        let checked: StoredSession | undefined;
        try {
          checked = await this.#recheck(stored, stored.accessToken, deadline);
        } catch (error) {
          // the access token was revoked at Bitbucket: exchange the refresh token
          if ((error as Error)?.name !== 'AuthenticationError') throw error;
        }
        if (checked) {
          // 'superseded': rotated meanwhile; this answer holds, unkept
          const kept = await this.#store.put(checked, this.#ttl(checked));
          if (kept === 'ended') throw sessionEndedError();
          return answer(checked);
        }
      }
      try {
        return await this.#rotate(token, scope, stored, deadline);
      } catch (error) {
        if (!isInvalidGrant(error) || round > 0 || !known) throw error;
        const next = await this.#awaitRotation(token, deadline);
        if (!next) throw error;
        ({ token, stored } = { token: next.refreshToken, stored: next });
      }
    }
  }

  /**
   * The newest session of `refreshToken`: its own record, or the one it
   * rotated to (through several rotations, while their records last).
   */
  async #latest(
    refreshToken: string,
    options: { evenEnded?: boolean } = {},
  ): Promise<{ token: string; stored?: StoredSession }> {
    let token = refreshToken;
    let stored = await this.#store.get(token);
    let forwarded: StoredSession | undefined;
    for (let hop = 0; !stored && hop < MAX_HOPS; hop++) {
      const next = await this.#store.rotated(token, options);
      if (!next) break;
      forwarded = next;
      token = next.refreshToken;
      stored = await this.#store.get(token);
    }
    return { token, stored: stored ?? forwarded };
  }

  /** Exchanges the refresh token; the new session replaces the old one. */
  async #rotate(
    refreshToken: string,
    scope: string,
    stored: StoredSession | undefined,
    deadline: Deadline,
  ): Promise<Result> {
    if (!stored || !this.#profileFresh(stored)) this.#onProfileRoundAhead?.();
    const token = await this.#tokens.refresh(refreshToken, scope, deadline);
    let next = this.#fromToken(token, refreshToken, scope, stored ?? EMPTY);
    let failure: { error: unknown } | undefined;
    try {
      const current = await this.#withoutBitbucket(next);
      if (current) next = current;
      else if (!this.#profileFresh(next)) {
        next = await this.#recheck(next, token.accessToken, deadline);
      }
    } catch (error) {
      failure = { error };
    }
    // also when the profile fetch failed: within the grace period, the
    // old refresh token still reaches the new one, and the fetch is retried
    const kept = await this.#store.rotate(refreshToken, next, this.#ttl(next));
    if (kept === 'ended') {
      // a logout ended the session while Bitbucket rotated: the new token
      // lives on neither here nor at Bitbucket
      if (token.refreshToken) await this.#revoke(token.refreshToken, deadline);
      throw sessionEndedError();
    }
    if (failure) throw failure.error;
    return answer(next);
  }

  /** The profile read again: in full when the identity is due, else the roles. */
  async #recheck(
    stored: StoredSession,
    accessToken: string,
    deadline: Deadline,
  ): Promise<StoredSession> {
    const now = Date.now();
    const identityDue =
      !stored.profile ||
      now - stored.identityFetchedAt >= this.#settings.identityCacheTtlMs;
    if (identityDue) {
      const profile = await this.#profiles.full(
        accessToken,
        deadline,
        'refresh',
        { decidedAt: stored.profile ? stored.membershipFetchedAt : undefined },
      );
      return {
        ...stored,
        profile,
        identityFetchedAt: now,
        membershipFetchedAt: now,
        fingerprint: this.#profiles.fingerprint,
      };
    }
    const profile = await this.#profiles.membership(
      accessToken,
      stored.profile!,
      deadline,
      'refresh',
    );
    return {
      ...stored,
      profile,
      membershipFetchedAt: now,
      fingerprint: this.#profiles.fingerprint,
    };
  }

  /**
   * The session with its workspace check answered without Bitbucket (the
   * catalog, every time, whatever `profileCacheTtl` says), while its
   * identity serves; undefined when Bitbucket decides (as before).
   */
  async #withoutBitbucket(
    stored: StoredSession,
  ): Promise<StoredSession | undefined> {
    if (
      !stored.profile ||
      stored.fingerprint !== this.#profiles.fingerprint ||
      Date.now() - stored.identityFetchedAt >= this.#settings.identityCacheTtlMs
    ) {
      return undefined;
    }
    const profile = await this.#profiles.withoutBitbucket(
      stored.profile,
      stored.membershipFetchedAt,
    );
    return profile && { ...stored, profile };
  }

  async #awaitRotation(
    refreshToken: string,
    deadline: Deadline,
  ): Promise<StoredSession | undefined> {
    const until =
      performance.now() +
      Math.min(
        ROTATION_WAIT_MS,
        this.#settings.refreshGracePeriodMs,
        deadline.remaining(),
      );
    while (performance.now() < until) {
      await new Promise(r => setTimeout(r, ROTATION_POLL_MS));
      const next = await this.#store.rotated(refreshToken);
      if (next) return (await this.#store.get(next.refreshToken)) ?? next;
    }
    return undefined;
  }

  /**
   * Whether the access token serves this refresh without Bitbucket: it has
   * longer than the margin to live, or, for a session another request just
   * rotated to, has not expired (that session is handed on as it is).
   */
  #tokenUsable(
    stored: StoredSession,
    scope: string,
    forwarded: boolean,
  ): boolean {
    const margin = forwarded ? 0 : ACCESS_TOKEN_MARGIN_MS;
    return (
      stored.expiresAt !== undefined &&
      stored.expiresAt - Date.now() > margin &&
      scopeWithin(scope, stored.scope)
    );
  }

  /** How long a record is worth keeping: while its token or its identity serve. */
  #ttl(stored: StoredSession): number {
    const until = Math.max(
      stored.expiresAt ?? 0,
      stored.identityFetchedAt + this.#settings.identityCacheTtlMs,
    );
    return until - Date.now();
  }

  /** Whether the cached profile serves this refresh without Bitbucket. */
  #profileFresh(stored: StoredSession): boolean {
    const { profileCacheTtlMs, identityCacheTtlMs, workspaces } =
      this.#settings;
    const now = Date.now();
    if (!stored.profile || stored.fingerprint !== this.#profiles.fingerprint) {
      return false;
    }
    if (now - stored.identityFetchedAt >= identityCacheTtlMs) return false;
    return (
      !workspaces.allowed ||
      now - stored.membershipFetchedAt < profileCacheTtlMs
    );
  }

  #fromToken(
    token: BitbucketTokenResponse,
    previousRefreshToken: string | undefined,
    requestedScope: string,
    kept: Pick<
      StoredSession,
      | 'profile'
      | 'identityFetchedAt'
      | 'membershipFetchedAt'
      | 'fingerprint'
      | 'rotatedFrom'
      | 'chain'
    >,
  ): StoredSession {
    return {
      accessToken: token.accessToken,
      tokenType: token.tokenType,
      // Bitbucket grants what was asked or refuses (invalid_scope)
      scope: token.scope || requestedScope,
      expiresAt:
        token.expiresInSeconds !== undefined
          ? Date.now() + token.expiresInSeconds * 1000
          : undefined,
      // an answer without one keeps the old (Bitbucket before CHANGE-3052)
      refreshToken: token.refreshToken ?? previousRefreshToken ?? '',
      profile: kept.profile,
      identityFetchedAt: kept.identityFetchedAt,
      membershipFetchedAt: kept.membershipFetchedAt,
      fingerprint: kept.fingerprint,
      rotatedFrom: kept.rotatedFrom,
      chain: kept.chain,
    };
  }
}

function toSession(
  stored: StoredSession,
  refreshToken: string | undefined,
): OAuthSession {
  return {
    accessToken: stored.accessToken,
    tokenType: stored.tokenType,
    scope: stored.scope,
    expiresInSeconds:
      stored.expiresAt !== undefined
        ? Math.max(0, Math.floor((stored.expiresAt - Date.now()) / 1000))
        : undefined,
    refreshToken,
  };
}

/** The refresh's result; only for a session whose profile is fresh. */
function answer(stored: StoredSession): Result {
  return {
    fullProfile: stored.profile!,
    session: toSession(stored, stored.refreshToken),
  };
}
