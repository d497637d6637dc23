import { CacheService } from '@backstage/backend-plugin-api';
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { SessionStore, StoredSession } from './sessionStore';
import { lazyMemoryCache } from './__testUtils__/caches';
import { signInInfo } from './__testUtils__/resolverContext';

/** A cache whose raw content the test can read and change. */
function rawCache() {
  const entries = new Map<string, { value: unknown; ttl?: number }>();
  const cache: CacheService = {
    async get(key) {
      return entries.get(key)?.value as any;
    },
    async set(key, value, options) {
      entries.set(key, { value, ttl: options?.ttl as number | undefined });
    },
    async delete(key) {
      entries.delete(key);
    },
    withOptions: () => cache,
  };
  return { cache, entries };
}

const profile = {
  ...signInInfo().result.fullProfile,
  workspaces: [
    { slug: 'secret-merger-co', uuid: '{1234}', administrator: false },
  ],
};
const session = (
  refreshToken: string,
  extra: Partial<StoredSession> = {},
): StoredSession => ({
  accessToken: `access-token-of-${refreshToken}`,
  tokenType: 'bearer',
  scope: 'account email',
  expiresAt: 1_900_000_000_000,
  refreshToken,
  profile,
  identityFetchedAt: 1000,
  membershipFetchedAt: 2000,
  fingerprint: 'fp',
  ...extra,
});

const RT = 'refresh-token-AAAAAAAAAAAAAAAAAAAA';
/** `session(to)` as a rotation from `from` keeps it: it remembers the record that leads to it. */
const rotatedTo = (store: SessionStore, to: string, from: string) => ({
  ...session(to),
  rotatedFrom: [store.id(from)],
  chain: store.id(from),
});
const RT2 = 'refresh-token-BBBBBBBBBBBBBBBBBBBB';

describe('SessionStore', () => {
  afterEach(() => jest.useRealTimers());

  it('names and seals a record as earlier versions did: the id is HMAC-SHA256(consumer key, token) cut to 16 bytes, the key HKDF-SHA256(token, consumer key, "backstage bitbucket session v2")', async () => {
    const { cache, entries } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);

    const id = createHmac('sha256', 'client')
      .update(RT)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
    expect(store.id(RT)).toBe(id);
    const key = `bitbucket-session:v2:${id}`;
    const [version, iv, data, tag] = String(entries.get(key)?.value).split('.');
    expect(version).toBe('v2');
    const decipher = createDecipheriv(
      'aes-256-gcm',
      Buffer.from(
        hkdfSync('sha256', RT, 'client', 'backstage bitbucket session v2', 32),
      ),
      Buffer.from(iv, 'base64url'),
    );
    decipher.setAAD(Buffer.from(key));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([
      decipher.update(Buffer.from(data, 'base64url')),
      decipher.final(),
    ]).toString('utf8');
    expect(JSON.parse(plain)).toMatchObject({
      a: `access-token-of-${RT}`,
      k: id,
    });
  });

  it('keeps a session under an HMAC of its refresh token, encrypted: the cache holds no token, email or workspace', async () => {
    const { cache, entries } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);
    await store.rotate(RT, session(RT2), 60_000);

    expect([...entries.keys()].sort()).toEqual(
      [
        `bitbucket-rotated:v2:${store.id(RT)}`,
        `bitbucket-session:v2:${store.id(RT2)}`,
      ].sort(),
    );
    const raw = JSON.stringify([...entries]);
    for (const secret of [
      RT,
      RT2,
      `access-token-of-${RT}`,
      `access-token-of-${RT2}`,
      'jane.doe@example.com',
      'secret-merger-co',
      'Jane Doe',
      profile.uuid,
    ]) {
      expect(raw).not.toContain(secret);
    }
    expect(entries.get(`bitbucket-session:v2:${store.id(RT2)}`)).toEqual({
      value: expect.stringMatching(/^v2\.[\w-]+\.[\w-]+\.[\w-]+$/),
      ttl: 60_000,
    });
    expect(await store.get(RT2)).toEqual(rotatedTo(store, RT2, RT));
  });

  it("seals a session in 573 characters (534 before issue 20 added the session's chain id, 601 while storage ids were the whole 43-character HMAC): one-letter field names, no refresh token under its own key, no repeated email (issue 21: heap per live session)", async () => {
    const { cache, entries } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);
    // the storage id: the HMAC cut to 128 bits, also the chain id inside
    expect(store.id(RT)).toMatch(/^[\w-]{22}$/);
    expect([...entries.keys()]).toEqual([
      `bitbucket-session:v2:${store.id(RT)}`,
    ]);
    const sealed = entries.get(`bitbucket-session:v2:${store.id(RT)}`)!
      .value as string;
    // the length depends on the values only (AES-GCM: no compression)
    expect(sealed.length).toBe(573);
    // everything reads back: the refresh token, `bearer`, the email
    expect(await store.get(RT)).toEqual({
      ...session(RT),
      chain: store.id(RT),
    });
    // a rotation record still names the refresh token it leads to
    await store.rotate(RT, session(RT2), 60_000);
    expect(await store.rotated(RT)).toEqual(rotatedTo(store, RT2, RT));
    // another token type, and an email that is not the primary one, are kept
    const other = session(RT2, {
      tokenType: 'mac',
      profile: { ...profile, email: 'other@example.com' },
    });
    await store.put(other, 60_000);
    expect(await store.get(RT2)).toEqual({ ...other, chain: store.id(RT2) });
  });

  it('a record is readable only with its own refresh token, at its own key', async () => {
    const { cache, entries } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);
    // copied to the key of another token: does not open (key and AAD differ)
    const sealed = entries.get(`bitbucket-session:v2:${store.id(RT)}`)!;
    entries.set(`bitbucket-session:v2:${store.id(RT2)}`, sealed);
    expect(await store.get(RT2)).toBeUndefined();
    // another consumer key: another id
    const other = new SessionStore(cache, 'another-client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    expect(other.id(RT)).not.toBe(store.id(RT));
    expect(await other.get(RT)).toBeUndefined();
    // tampered: a miss, not an error
    const value = sealed.value as string;
    entries.set(`bitbucket-session:v2:${store.id(RT)}`, {
      value: `${value.slice(0, -4)}AAAA`,
    });
    expect(await store.get(RT)).toBeUndefined();
    entries.set(`bitbucket-session:v2:${store.id(RT)}`, { value: 'garbage' });
    expect(await store.get(RT)).toBeUndefined();
  });

  it('a rotation replaces the old record: the old token reaches the new session for the grace period only', async () => {
    jest.useFakeTimers();
    const { cache } = lazyMemoryCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);
    await store.rotate(RT, session(RT2), 60_000);
    expect(await store.get(RT)).toBeUndefined();
    expect(await store.rotated(RT)).toEqual(rotatedTo(store, RT2, RT));
    expect(await store.get(RT2)).toEqual(rotatedTo(store, RT2, RT));
    jest.advanceTimersByTime(10_001);
    expect(await store.rotated(RT)).toBeUndefined();
    expect(await store.get(RT2)).toEqual(rotatedTo(store, RT2, RT));
  });

  it('deletes from the cache the records this process wrote once they expired, and only those', async () => {
    jest.useFakeTimers({ now: 1_700_000_000_000 });
    // a store that never expires anything itself (as Backstage's memory store for unread keys)
    const { cache, entries } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);
    await store.rotate(RT, session(RT2), 120_000);
    expect(entries.size).toBe(2); // RT2's session, RT's rotation record
    await jest.advanceTimersByTimeAsync(61_000);
    // the rotation record (10 s) went; the session (120 s) stays
    expect([...entries.keys()]).toEqual([
      `bitbucket-session:v2:${store.id(RT2)}`,
    ]);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(entries.size).toBe(0);
  });

  it('a rotation keeps the ages of the profile it carries', async () => {
    const { cache } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.rotate(
      RT,
      session(RT2, { identityFetchedAt: 111, membershipFetchedAt: 222 }),
      60_000,
    );
    expect(await store.get(RT2)).toMatchObject({
      identityFetchedAt: 111,
      membershipFetchedAt: 222,
    });
  });

  it('keeps no session without keepSessions, and no rotation record with graceMs 0', async () => {
    const { cache, entries } = rawCache();
    const off = new SessionStore(cache, 'client', {
      keepSessions: false,
      graceMs: 0,
    });
    await off.put(session(RT), 60_000);
    await off.rotate(RT, session(RT2), 60_000);
    expect(entries.size).toBe(0);
    expect(await off.get(RT2)).toBeUndefined();
    expect(await off.rotated(RT)).toBeUndefined();

    const graceOnly = new SessionStore(cache, 'client', {
      keepSessions: false,
      graceMs: 10_000,
    });
    await graceOnly.rotate(RT, session(RT2), 60_000);
    // the rotation record, and which session RT2 belongs to (for its logout)
    expect([...entries.keys()].sort()).toEqual([
      `bitbucket-chain:v2:${graceOnly.id(RT2)}`,
      `bitbucket-rotated:v2:${graceOnly.id(RT)}`,
    ]);
    expect(await graceOnly.rotated(RT)).toEqual(rotatedTo(graceOnly, RT2, RT));
  });

  it('a cache outage is a miss, never an error', async () => {
    const failing: CacheService = {
      get: () => Promise.reject(new Error('ECONNREFUSED')),
      set: () => Promise.reject(new Error('ECONNREFUSED')),
      delete: () => Promise.reject(new Error('ECONNREFUSED')),
      withOptions: () => failing,
    };
    const store = new SessionStore(failing, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await expect(store.put(session(RT), 60_000)).resolves.toBe('kept');
    await expect(store.rotate(RT, session(RT2), 60_000)).resolves.toBe('kept');
    await expect(store.forget([RT])).resolves.toBeUndefined();
    await expect(store.isEnded(RT)).resolves.toBe(false);
    await expect(store.get(RT)).resolves.toBeUndefined();
    await expect(store.rotated(RT)).resolves.toBeUndefined();
  });

  it('serves from a per-process store without a cache service', async () => {
    const store = new SessionStore(undefined, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    await store.put(session(RT), 60_000);
    expect(await store.get(RT)).toEqual({
      ...session(RT),
      chain: store.id(RT),
    });
    await store.forget([RT]);
    expect(await store.get(RT)).toBeUndefined();
  });

  it('a logout forgets the session and every rotation record that leads to it', async () => {
    const { cache, entries } = rawCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    const RT3 = 'refresh-token-CCCCCCCCCCCCCCCCCCCC';
    await store.put(session(RT), 60_000);
    await store.rotate(RT, session(RT2), 60_000);
    const second = (await store.get(RT2))!;
    expect(second.rotatedFrom).toEqual([store.id(RT)]);
    await store.rotate(RT2, { ...second, refreshToken: RT3 }, 60_000);
    const third = (await store.get(RT3))!;
    expect(third.rotatedFrom).toEqual([store.id(RT2), store.id(RT)]);
    expect((await store.rotated(RT))?.refreshToken).toBe(RT2);
    expect((await store.rotated(RT2))?.refreshToken).toBe(RT3);
    expect(entries.size).toBe(3); // RT3's session, two rotation records

    await store.forget([RT3], third.rotatedFrom);
    // only the tombstones of RT3 and of its session (named after RT) are left
    expect([...entries.keys()].sort()).toEqual(
      [
        `bitbucket-ended:v2:${store.id(RT)}`,
        `bitbucket-ended:v2:${store.id(RT3)}`,
      ].sort(),
    );
    expect(await store.isEnded(RT3)).toBe(true);
    expect(await store.rotated(RT)).toBeUndefined();
    expect(await store.rotated(RT2)).toBeUndefined();
    expect(await store.get(RT3)).toBeUndefined();
  });

  describe('no record outlives a logout (issue 20)', () => {
    const store = (cache: CacheService, keepSessions = true) =>
      new SessionStore(cache, 'client', { keepSessions, graceMs: 10_000 });
    const tokens = (n: number) =>
      Array.from(
        { length: n },
        (_, i) => `refresh-token-${i}-${'Z'.repeat(20)}`,
      );

    it('a rotation that lands after the logout writes nothing live', async () => {
      const { cache } = rawCache();
      const s = store(cache);
      await s.put(session(RT), 60_000);
      await s.forget([RT]); // the logout, while a refresh of RT was in flight
      await s.rotate(RT, session(RT2), 60_000); // its answer lands
      expect(await s.get(RT2)).toBeUndefined();
      expect(await s.rotated(RT)).toBeUndefined();
    });

    it('a roles re-check whose put lands after a concurrent rotation does not bring the old token back', async () => {
      const { cache } = rawCache();
      const s = store(cache);
      await s.put(session(RT), 60_000);
      await s.rotate(RT, session(RT2), 60_000); // another tab rotated
      await s.put(session(RT), 60_000); // the re-check of RT, started before
      expect(await s.get(RT)).toBeUndefined();
      expect((await s.rotated(RT))?.refreshToken).toBe(RT2);
    });

    it('a logout ends a rotation chain longer than 5: no record of it opens', async () => {
      const { cache } = rawCache();
      const s = store(cache);
      const chain = tokens(8);
      await s.put(session(chain[0]), 60_000);
      for (let i = 1; i < chain.length; i++) {
        const from = (await s.get(chain[i - 1]))!;
        await s.rotate(
          chain[i - 1],
          { ...from, refreshToken: chain[i] },
          60_000,
        );
      }
      expect((await s.rotated(chain[0]))?.refreshToken).toBe(chain[1]);
      const newest = (await s.get(chain[7]))!;
      await s.forget([chain[7]], newest.rotatedFrom);
      for (const token of chain) {
        expect(await s.rotated(token)).toBeUndefined();
        expect(await s.get(token)).toBeUndefined();
      }
    });

    it('without session records (profileCacheTtl 0), a logout with the newest token ends the rotation records that lead to it', async () => {
      const { cache } = rawCache();
      const s = store(cache, false);
      const [t0, t1, t2] = tokens(3);
      await s.rotate(t0, session(t1), 60_000);
      await s.rotate(t1, session(t2), 60_000);
      expect((await s.rotated(t0))?.refreshToken).toBe(t1);
      await s.forget([t2]);
      expect(await s.rotated(t0)).toBeUndefined();
      expect(await s.rotated(t1)).toBeUndefined();
    });
  });

  it('remembers no rotation record where none is kept (graceMs 0)', async () => {
    const store = new SessionStore(rawCache().cache, 'client', {
      keepSessions: true,
      graceMs: 0,
    });
    await store.rotate(RT, session(RT2), 60_000);
    expect((await store.get(RT2))?.rotatedFrom).toBeUndefined();
  });
});
