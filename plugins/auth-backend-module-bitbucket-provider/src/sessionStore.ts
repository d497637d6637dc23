import { CacheService } from '@backstage/backend-plugin-api';
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
} from 'node:crypto';
import { BitbucketProfile } from './profile';

/**
 * What the module keeps of one session: its Bitbucket tokens and the
 * profile with the times its parts were fetched.
 */
export interface StoredSession {
  accessToken: string;
  tokenType: string;
  /** The scope Bitbucket granted to the access token, space-separated. */
  scope: string;
  /** When the access token expires (ms since the epoch); unknown = undefined. */
  expiresAt?: number;
  refreshToken: string;
  /** None yet when the profile fetch after a rotation failed: all of it is due. */
  profile?: BitbucketProfile;
  /** When `/2.0/user` and `/2.0/user/emails` were read (ms since the epoch). */
  identityFetchedAt: number;
  /** When the workspace roles were read. */
  membershipFetchedAt: number;
  /** Of the workspace settings that checked the profile. */
  fingerprint: string;
  /**
   * The storage ids of the older refresh tokens whose rotation records lead
   * here, newest first: a logout removes them with the session.
   */
  rotatedFrom?: string[];
  /**
   * The session this record belongs to, through every rotation: the storage
   * id of its first refresh token the store saw. A logout ends it as a
   * whole (records of older versions of the module have none).
   */
  chain?: string;
}

/** What became of a write: kept, or undone because the session ended or its token rotated meanwhile. */
export type WriteOutcome = 'kept' | 'ended' | 'superseded';

/** Rotation records a session remembers as leading to it. */
const MAX_ROTATED_FROM = 5;

/** Options of {@link SessionStore}. */
export interface SessionStoreOptions {
  /** Whether session records are kept (`profileCacheTtl` > 0). */
  keepSessions: boolean;
  /** How long a rotation record lives; 0 = none are kept. */
  graceMs: number;
  /**
   * How long a logout's tombstone lives: longer than any record of the
   * session could still serve, and than a refresh may still be in flight.
   * Default 4 hours and 30 seconds (`identityCacheTtl` and `signInTimeout`).
   */
  endedMs?: number;
}

const DEFAULT_ENDED_MS = 4 * 60 * 60 * 1000 + 30_000;

const SESSION = 'bitbucket-session:v2:';
const ROTATED = 'bitbucket-rotated:v2:';
/** With no session records: which session a rotated-to token belongs to. */
const CHAIN = 'bitbucket-chain:v2:';
/** A logout's tombstone, under a token's or a session's storage id. */
const ENDED = 'bitbucket-ended:v2:';

/** HKDF's `info`, with the counter of its one output block (RFC 5869). */
const KEY_INFO = Buffer.from('backstage bitbucket session v2\x01', 'latin1');

/** A refresh token's storage id, from HKDF's extract step over it: the first 128 bits, base64url. */
const storageId = (prk: Buffer) => prk.subarray(0, 16).toString('base64url');

/** A refresh token's storage id and the key of its records. */
interface Derived {
  id: string;
  key: Buffer;
}

/**
 * The module's security-relevant state, and its rules:
 *
 * 1. Everything is stored under an HMAC of the refresh token (keyed by the
 *    consumer key), never the token itself.
 * 2. Everything is encrypted with AES-256-GCM under a key derived (HKDF-SHA256)
 *    from the refresh token the browser holds, with the storage key as
 *    associated data: whoever reads the cache (Redis, memcache) without that
 *    cookie learns no token, email or workspace, and cannot move a record
 *    to another key.
 * 3. A session record lives as long as the caller says, and goes when its
 *    refresh token rotates; the rotation record, which hands the new
 *    session to whoever still holds the old refresh token, lives `graceMs`
 *    only: that window bounds replay.
 * 4. A record that does not decrypt, or is not of the expected shape, is a
 *    miss, never an error.
 * 5. A logout leaves a tombstone (for `endedMs`) under the session and under
 *    the refresh tokens it knows, and then deletes their records. A record
 *    of an ended session does not open, however long its rotation chain; a
 *    write (a rotation, a roles re-check) reads the tombstone after writing
 *    and undoes itself when it finds one, so that a refresh still in flight
 *    at the logout leaves nothing live (a logout that wrote its tombstone
 *    after that check finds the rotation record the write left, and ends
 *    the new token too). A session record is likewise undone when its
 *    token rotated meanwhile (a roles re-check that finishes after a
 *    rotation): the rotation deletes the old record only after writing the
 *    rotation record, so one of the two always sees the other. The cache
 *    service has no compare-and-set; this write-then-check is its stand-in.
 *
 * Backstage's cache service is in memory by default (per process), or Redis
 * or memcache when configured, so that replicas share it; without one, an
 * in-process store serves. The memory store drops an expired entry only when
 * it is read, and the record of a session that never refreshes is never read
 * again: this process deletes the records it wrote once they expired.
 */
export class SessionStore {
  readonly #cache: CacheService;
  readonly #clientId: string;
  readonly #options: SessionStoreOptions;
  /**
   * The keys this process wrote, with when they expire (ms since the store
   * was made: a small integer for 24 days, not a boxed number), by prefix:
   * the key is the flat storage id, not the longer string made by joining
   * prefix and id (each live session costs one entry here; issue 21).
   */
  readonly #written = new Map<string, Map<string, number>>([
    [SESSION, new Map()],
    [ROTATED, new Map()],
    [CHAIN, new Map()],
    [ENDED, new Map()],
  ]);
  readonly #epoch = Date.now();
  #sweeper?: ReturnType<typeof setInterval>;
  #sweepEvery = 60_000;

  constructor(
    cache: CacheService | undefined,
    clientId: string,
    options: SessionStoreOptions,
  ) {
    this.#cache = cache ?? processCache();
    this.#clientId = clientId;
    this.#options = options;
  }

  /**
   * The storage id of a refresh token: an HMAC, never the token, cut to
   * 128 bits (22 characters). It names every record of the session in the
   * cache, in this process's expiry list and, as the session's chain id,
   * inside each sealed record: the 43 characters of the whole HMAC cost a
   * live session 1,589 bytes of heap against the 1.5 KB of issue 21. 128
   * bits keep ids of distinct tokens apart (a collision needs about 2^64
   * sessions) and tell nothing of the token.
   */
  id(refreshToken: string): string {
    return storageId(this.#prk(refreshToken));
  }

  /**
   * HKDF-SHA256's extract step over the refresh token, with the consumer
   * key as salt: HMAC-SHA256(consumer key, token). The storage id is its
   * first half; the record key is HKDF's expand step over all of it.
   */
  #prk(refreshToken: string): Buffer {
    return createHmac('sha256', this.#clientId).update(refreshToken).digest();
  }

  /**
   * The storage id and the record key of a refresh token, from one extract
   * step: the key is HKDF-SHA256(token, consumer key, 'backstage bitbucket
   * session v2', 32 bytes), as `crypto.hkdfSync` gives it (a 32-byte key is
   * one block of the expand step), at a third of its cost with the id
   * (issue 21).
   */
  #derive(refreshToken: string): Derived {
    const prk = this.#prk(refreshToken);
    return {
      id: storageId(prk),
      key: createHmac('sha256', prk).update(KEY_INFO).digest(),
    };
  }

  /** The session record of this refresh token. */
  async get(refreshToken: string): Promise<StoredSession | undefined> {
    if (!this.#options.keepSessions) return undefined;
    return this.#read(SESSION, refreshToken);
  }

  /**
   * Keeps `session` under its refresh token for `ttlMs`, unless its session
   * ended meanwhile or its token rotated meanwhile: then nothing is kept.
   */
  async put(session: StoredSession, ttlMs: number): Promise<WriteOutcome> {
    if (!this.#options.keepSessions || ttlMs <= 0) return 'kept';
    const token = session.refreshToken;
    const derived = this.#derive(token);
    const id = derived.id;
    const chained = { ...session, chain: session.chain ?? id };
    await this.#write(SESSION, derived, token, chained, ttlMs);
    const [ended, rotated] = await Promise.all([
      this.#ended([id, chained.chain]),
      this.#exists(ROTATED + id),
    ]);
    if (!ended && !rotated) return 'kept';
    await this.#delete(SESSION + id);
    return ended ? 'ended' : 'superseded';
  }

  /**
   * After a rotation: the new session under its refresh token, a rotation
   * record under the old one, then the old session record gone (else the
   * old token would keep its access token past the grace period). Undone
   * when the session ended meanwhile (`'ended'`: the new token must not
   * serve).
   */
  async rotate(
    from: string,
    session: StoredSession,
    ttlMs: number,
  ): Promise<WriteOutcome> {
    if (from === session.refreshToken) return this.put(session, ttlMs);
    const chain = session.chain ?? (await this.chainOf(from));
    let linked: StoredSession = { ...session, chain };
    const to = session.refreshToken;
    const old = this.#derive(from);
    const next = this.#derive(to);
    const writes: Promise<unknown>[] = [];
    if (this.#options.graceMs > 0) {
      linked = {
        ...linked,
        rotatedFrom: [old.id, ...(session.rotatedFrom ?? [])].slice(
          0,
          MAX_ROTATED_FROM,
        ),
      };
      writes.push(
        this.#write(ROTATED, old, from, linked, this.#options.graceMs),
      );
      if (!this.#options.keepSessions) {
        // no session record names the chain: a logout with `to` finds it here
        writes.push(
          this.#writeSealed(CHAIN, next, { chain }, this.#options.graceMs),
        );
      }
    }
    if (this.#options.keepSessions && ttlMs > 0) {
      writes.push(this.#write(SESSION, next, to, linked, ttlMs));
    }
    await Promise.all(writes);
    // after the rotation record: a late put of the old record sees it (see put)
    await this.#delete(SESSION + old.id);
    if (!(await this.#ended([old.id, chain]))) return 'kept';
    await Promise.all(
      [SESSION + next.id, ROTATED + old.id, CHAIN + next.id].map(key =>
        this.#delete(key),
      ),
    );
    return 'ended';
  }

  /** The session (chain) `refreshToken` belongs to, as far as the store knows. */
  async chainOf(refreshToken: string): Promise<string> {
    const session = this.#options.keepSessions
      ? await this.#read(SESSION, refreshToken, { evenEnded: true })
      : undefined;
    if (session?.chain) return session.chain;
    const marker = await this.#readSealed(CHAIN, refreshToken);
    const chain = (marker as { chain?: unknown } | undefined)?.chain;
    return typeof chain === 'string' && chain ? chain : this.id(refreshToken);
  }

  /** Whether a logout ended the session of this refresh token (its tombstone). */
  async isEnded(refreshToken: string): Promise<boolean> {
    return this.#ended([this.id(refreshToken)]);
  }

  /**
   * The session `refreshToken` rotated to, within the grace period.
   * `evenEnded`: also when a logout ended it (for the logout itself).
   */
  async rotated(
    refreshToken: string,
    options: { evenEnded?: boolean } = {},
  ): Promise<StoredSession | undefined> {
    if (this.#options.graceMs <= 0) return undefined;
    return this.#read(ROTATED, refreshToken, options);
  }

  /**
   * Ends sessions (logout): a tombstone under these refresh tokens and the
   * sessions (chains) they belong to, first, so that no write still in
   * flight brings a record back and no record of the chain opens again;
   * then their records, the rotation records they left, and the rotation
   * records `rotatedFrom` names (as a decrypted record holds it: anything
   * but a list of ids is ignored). Keys named twice are deleted once.
   */
  async forget(refreshTokens: string[], rotatedFrom?: unknown): Promise<void> {
    const ids = (Array.isArray(rotatedFrom) ? rotatedFrom : []).filter(
      (id): id is string => typeof id === 'string' && id !== '',
    );
    await this.tombstone(refreshTokens);
    const keys = new Set([
      ...refreshTokens.flatMap(token => [
        SESSION + this.id(token),
        ROTATED + this.id(token),
        CHAIN + this.id(token),
      ]),
      ...ids.map(id => ROTATED + id),
    ]);
    await Promise.all([...keys].map(key => this.#delete(key)));
  }

  /**
   * The first half of a logout: a tombstone under these refresh tokens and
   * the sessions (chains) they belong to, deleting nothing yet, so that
   * the caller can still follow the rotation records they left.
   */
  async tombstone(refreshTokens: string[]): Promise<void> {
    const chains = await Promise.all(refreshTokens.map(t => this.chainOf(t)));
    const ended = new Set([
      ...refreshTokens.map(token => this.id(token)),
      ...chains,
    ]);
    const ttl = this.#options.endedMs ?? DEFAULT_ENDED_MS;
    await Promise.all(
      [...ended].map(id =>
        this.#cache
          .set(ENDED + id, 1, { ttl })
          .then(() => this.#track(ENDED, id, Date.now() + ttl))
          .catch(() => undefined),
      ),
    );
  }

  /** Whether any of these storage ids (tokens, sessions) has a tombstone. */
  async #ended(ids: Array<string | undefined>): Promise<boolean> {
    const found = await Promise.all(
      [...new Set(ids.filter(Boolean))].map(id => this.#exists(ENDED + id)),
    );
    return found.some(Boolean);
  }

  async #exists(key: string): Promise<boolean> {
    return (await this.#cache.get(key).catch(() => undefined)) !== undefined;
  }

  async #read(
    prefix: string,
    refreshToken: string,
    options: { evenEnded?: boolean } = {},
  ): Promise<StoredSession | undefined> {
    const session = unpack(await this.#readSealed(prefix, refreshToken));
    // a session record does not repeat its refresh token: the reader has it
    if (session && session.refreshToken === undefined) {
      session.refreshToken = refreshToken;
    }
    if (!isStoredSession(session)) return undefined;
    if (!options.evenEnded && (await this.#ended([session.chain]))) {
      return undefined;
    }
    return session;
  }

  async #readSealed(prefix: string, refreshToken: string): Promise<unknown> {
    const { id, key: secret } = this.#derive(refreshToken);
    const key = prefix + id;
    const sealed = await this.#cache.get(key).catch(() => undefined);
    if (typeof sealed !== 'string') return undefined;
    return open(sealed, secret, key);
  }

  /** `session` under `refreshToken` (`derived` from it). */
  async #write(
    prefix: string,
    derived: Derived,
    refreshToken: string,
    session: StoredSession,
    ttl: number,
  ): Promise<void> {
    await this.#writeSealed(prefix, derived, pack(session, refreshToken), ttl);
  }

  async #writeSealed(
    prefix: string,
    { id, key: secret }: Derived,
    value: unknown,
    ttl: number,
  ): Promise<void> {
    const key = prefix + id;
    await this.#cache
      .set(key, seal(value, secret, key), { ttl })
      .catch(() => undefined); // a cache outage costs calls, not sign-ins
    this.#track(prefix, id, Date.now() + ttl);
  }

  #track(prefix: string, id: string, expiresAt: number) {
    this.#written.get(prefix)?.set(id, expiresAt - this.#epoch);
    // sweep as often as the shortest-lived record needs, at most every minute
    const every = Math.min(60_000, Math.max(1000, expiresAt - Date.now()));
    if (!this.#sweeper || every < this.#sweepEvery) {
      if (this.#sweeper) clearInterval(this.#sweeper);
      this.#sweepEvery = every;
      this.#sweeper = setInterval(() => this.#sweep(), every);
      this.#sweeper.unref?.();
    }
  }

  #sweep() {
    const now = Date.now() - this.#epoch;
    let left = 0;
    for (const [prefix, written] of this.#written) {
      for (const [id, expiresAt] of written) {
        if (expiresAt <= now) void this.#delete(prefix + id);
      }
      left += written.size;
    }
    if (left === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  async #delete(key: string) {
    for (const [prefix, written] of this.#written) {
      if (key.startsWith(prefix)) written.delete(key.slice(prefix.length));
    }
    await this.#cache.delete(key).catch(() => undefined);
  }
}

/*
 * The sealed JSON names the record's fields with one letter each, drops the
 * refresh token of a record kept under that token (the reader holds it),
 * the token type when it is Bitbucket's `bearer`, and the profile's `email`
 * when it is the primary confirmed one of `emails` (it is read back from
 * there). A live session costs its sealed record in the cache's memory:
 * about 450 characters of each 1,230 were these (issue 21). This is no
 * compression: the names are fixed, so the sealed length still depends on
 * the values' lengths only, as before; compressing before encrypting would
 * let the length tell what the record holds. Fields without a short name
 * (added later) are kept as they are, and a record written before this
 * (long names) still reads.
 */
const SHORT_NAMES = {
  session: {
    accessToken: 'a',
    tokenType: 't',
    scope: 's',
    expiresAt: 'x',
    refreshToken: 'r',
    profile: 'p',
    identityFetchedAt: 'i',
    membershipFetchedAt: 'm',
    fingerprint: 'f',
    rotatedFrom: 'o',
    chain: 'k',
  },
  profile: {
    uuid: 'u',
    accountId: 'c',
    nickname: 'n',
    username: 'h',
    displayName: 'd',
    avatarUrl: 'v',
    profileUrl: 'l',
    email: 'e',
    emails: 'E',
    workspaces: 'w',
  },
  email: { email: 'e', isPrimary: 'p', isConfirmed: 'c' },
  workspace: {
    slug: 's',
    uuid: 'u',
    administrator: 'a',
    permission: 'p',
  },
} as const;
type Names = Record<string, string>;
const LONG_NAMES = Object.fromEntries(
  Object.entries(SHORT_NAMES).map(([level, names]) => [
    level,
    Object.fromEntries(Object.entries(names).map(([k, v]) => [v, k])),
  ]),
) as Record<keyof typeof SHORT_NAMES, Names>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The same object, its keys renamed by `names` (others kept); `nested` maps keys to their value's own renaming. */
function rename(
  value: Record<string, unknown>,
  names: Names,
  nested: Record<string, (v: unknown) => unknown> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[names[k] ?? k] = nested[k] ? nested[k](v) : v;
  }
  return out;
}

const eachObject =
  (f: (o: Record<string, unknown>) => unknown) => (v: unknown) =>
    Array.isArray(v) ? v.map(o => (isObject(o) ? f(o) : o)) : v;

/** The primary confirmed address of `emails`, as profileSource reads it. */
function primaryEmail(emails: unknown): unknown {
  return Array.isArray(emails)
    ? emails.find(e => isObject(e) && e.isPrimary && e.isConfirmed)?.email
    : undefined;
}

function pack(session: StoredSession, keyToken: string): unknown {
  const { refreshToken, tokenType, profile, ...rest } = session;
  const kept: Record<string, unknown> = { ...rest };
  if (refreshToken !== keyToken) kept.refreshToken = refreshToken;
  if (tokenType !== 'bearer') kept.tokenType = tokenType;
  if (profile) {
    const { email, ...others } = profile;
    kept.profile =
      email !== undefined && email === primaryEmail(profile.emails)
        ? others
        : profile;
  }
  const short = SHORT_NAMES;
  return rename(kept, short.session, {
    profile: p =>
      isObject(p)
        ? rename(p, short.profile, {
            emails: eachObject(e => rename(e, short.email)),
            workspaces: eachObject(w => rename(w, short.workspace)),
          })
        : p,
  });
}

/** The record as {@link pack} wrote it (or as written before, with long names), with what it left out. */
function unpack(value: unknown): Partial<StoredSession> | undefined {
  if (!isObject(value)) return undefined;
  const long = LONG_NAMES;
  const session = rename(value, long.session, {
    p: p =>
      isObject(p)
        ? rename(p, long.profile, {
            E: eachObject(e => rename(e, long.email)),
            w: eachObject(w => rename(w, long.workspace)),
          })
        : p,
  }) as Partial<StoredSession> & Record<string, unknown>;
  session.tokenType ??= 'bearer';
  const profile = session.profile as Record<string, unknown> | undefined;
  if (isObject(profile) && profile.email === undefined) {
    const email = primaryEmail(profile.emails);
    if (email !== undefined) profile.email = email;
  }
  return session;
}

/** `v2.<iv>.<ciphertext>.<tag>`, base64url: AES-256-GCM with the key as AAD. */
function seal(value: unknown, key: Buffer, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const data = Buffer.concat([
    cipher.update(JSON.stringify(value), 'utf8'),
    cipher.final(),
  ]);
  return ['v2', iv, data, cipher.getAuthTag()]
    .map(part => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

function open(sealed: string, key: Buffer, aad: string): unknown {
  const [version, iv, data, tag] = sealed.split('.');
  if (version !== 'v2' || !iv || !data || !tag) return undefined;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      key,
      Buffer.from(iv, 'base64url'),
    );
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([
      decipher.update(Buffer.from(data, 'base64url')),
      decipher.final(),
    ]);
    return JSON.parse(plain.toString('utf8'));
  } catch {
    return undefined; // another key (another token), or tampered
  }
}

function isStoredSession(value: unknown): value is StoredSession {
  const v = value as Partial<StoredSession> | undefined;
  return (
    typeof v?.accessToken === 'string' &&
    typeof v.refreshToken === 'string' &&
    typeof v.scope === 'string' &&
    typeof v.identityFetchedAt === 'number' &&
    typeof v.membershipFetchedAt === 'number' &&
    typeof v.fingerprint === 'string' &&
    (v.profile === undefined || typeof v.profile.uuid === 'string') &&
    (v.chain === undefined || typeof v.chain === 'string')
  );
}

/** A per-process store for when the backend provides no cache service. */
function processCache(): CacheService {
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const service: CacheService = {
    async get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        entries.delete(key);
        return undefined;
      }
      return entry.value as any;
    },
    async set(key, value, options) {
      const ttl = typeof options?.ttl === 'number' ? options.ttl : 60_000;
      entries.set(key, { value, expiresAt: Date.now() + ttl });
    },
    async delete(key) {
      entries.delete(key);
    },
    withOptions: () => service,
  };
  return service;
}
