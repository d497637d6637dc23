/*
 * Memory stays bounded: Backstage's default cache store (a Map in memory)
 * drops an expired entry only when it is read, so the session store deletes
 * the records it wrote once they expire. The 10,000 sign-ins with the RSS
 * check run outside Jest: hardening/soak.ts.
 */
import { SessionStore, StoredSession } from '../sessionStore';
import { lazyMemoryCache } from '../__testUtils__/caches';
import { signInInfo } from '../__testUtils__/resolverContext';

const session = (refreshToken: string): StoredSession => ({
  accessToken: `access-${refreshToken}`,
  tokenType: 'bearer',
  scope: 'account email',
  expiresAt: Date.now() + 7_200_000,
  refreshToken,
  profile: signInInfo().result.fullProfile,
  identityFetchedAt: Date.now(),
  membershipFetchedAt: Date.now(),
  fingerprint: 'fp',
});

describe('memory', () => {
  afterEach(() => jest.useRealTimers());

  it('the session store deletes its expired records from a store that keeps them', async () => {
    jest.useFakeTimers();
    const { cache, entries } = lazyMemoryCache();
    const store = new SessionStore(cache, 'client', {
      keepSessions: true,
      graceMs: 10_000,
    });
    for (let i = 0; i < 1000; i++) {
      await store.put(session(`refresh-${i}`), 60_000);
    }
    expect(entries.size).toBe(1000);

    // a session that refreshes rotates: its record is replaced by the new
    // one, plus a rotation record
    await store.rotate('refresh-1', session('refresh-1b'), 60_000);
    expect(entries.size).toBe(1001);

    // rotation records go first, after the grace period
    jest.advanceTimersByTime(11_000);
    await Promise.resolve();
    expect(entries.size).toBe(1000);

    jest.advanceTimersByTime(61_000);
    await Promise.resolve();
    expect(entries.size).toBe(0);

    // records written later are swept in turn
    await store.put(session('refresh-late'), 60_000);
    jest.advanceTimersByTime(30_000);
    await Promise.resolve();
    expect(entries.size).toBe(1);
    jest.advanceTimersByTime(61_000);
    await Promise.resolve();
    expect(entries.size).toBe(0);
  });
});
