import { CacheService } from '@backstage/backend-plugin-api';
import { createHash } from 'node:crypto';
import { BitbucketProfile } from './profile';

interface Entry {
  profile: BitbucketProfile;
  fetchedAt: number;
  /** Of the workspace settings that checked the profile. */
  fingerprint: string;
}

/**
 * Profiles by session, so that a refresh within `profileCacheTtl` makes no
 * REST call: every REST call counts against the consumer's 1,000 per hour.
 *
 * The key is a SHA-256 of the consumer key and the session's refresh token,
 * never the token itself. Bitbucket rotates refresh tokens, so on each
 * refresh the entry moves to the new token's key, keeping its age.
 * Backstage's CacheService is in memory by default, or Redis / memcache when
 * the backend configures one, so that replicas share it. The memory store
 * drops an expired entry only when it is read, and the entry of a session
 * that never refreshes is never read again: this process deletes the
 * entries it wrote once they expired, so that memory stays bounded.
 */
export class ProfileCache {
  readonly #cache?: CacheService;
  readonly #clientId: string;
  readonly #ttlMs: number;
  /** The keys this process wrote, with when they expire. */
  readonly #written = new Map<string, number>();
  #sweeper?: ReturnType<typeof setInterval>;

  constructor(
    cache: CacheService | undefined,
    clientId: string,
    ttlMs: number,
  ) {
    this.#cache = ttlMs > 0 ? cache : undefined;
    this.#clientId = clientId;
    this.#ttlMs = ttlMs;
  }

  #key(refreshToken: string): string {
    const hash = createHash('sha256')
      .update(`${this.#clientId}\n${refreshToken}`)
      .digest('base64url');
    return `bitbucket-profile:v1:${hash}`;
  }

  /**
   * The profile cached for this session, if it is younger than the TTL and
   * was checked under the same workspace settings.
   */
  async get(
    refreshToken: string,
    fingerprint: string,
  ): Promise<Entry | undefined> {
    if (!this.#cache) return undefined;
    const entry = (await this.#cache
      .get(this.#key(refreshToken))
      .catch(() => undefined)) as Entry | undefined;
    if (!entry || Date.now() - entry.fetchedAt >= this.#ttlMs) return undefined;
    if (entry.fingerprint !== fingerprint) return undefined;
    return entry;
  }

  /** Stores a profile for the session of `refreshToken`. */
  async put(
    refreshToken: string | undefined,
    profile: BitbucketProfile,
    fingerprint: string,
    fetchedAt = Date.now(),
  ): Promise<void> {
    if (!this.#cache || !refreshToken) return;
    const ttl = this.#ttlMs - (Date.now() - fetchedAt);
    if (ttl <= 0) return;
    const key = this.#key(refreshToken);
    await this.#cache
      .set(key, { profile, fetchedAt, fingerprint } as any, { ttl })
      .catch(() => undefined); // a cache outage costs REST calls, not sign-ins
    this.#track(key, Date.now() + ttl);
  }

  /** Moves an entry to a rotated refresh token. */
  async move(from: string, to: string | undefined, entry: Entry) {
    if (!this.#cache || !to || to === from) return;
    // two independent cache writes: one round trip to Redis/memcache, not two
    await Promise.all([
      this.put(to, entry.profile, entry.fingerprint, entry.fetchedAt),
      this.#delete(this.#key(from)),
    ]);
  }

  #track(key: string, expiresAt: number) {
    this.#written.set(key, expiresAt);
    if (!this.#sweeper) {
      this.#sweeper = setInterval(
        () => this.#sweep(),
        Math.min(this.#ttlMs, 60_000),
      );
      this.#sweeper.unref?.();
    }
  }

  #sweep() {
    const now = Date.now();
    for (const [key, expiresAt] of this.#written) {
      if (expiresAt <= now) void this.#delete(key);
    }
    if (this.#written.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  async #delete(key: string) {
    this.#written.delete(key);
    await this.#cache?.delete(key).catch(() => undefined);
  }
}
