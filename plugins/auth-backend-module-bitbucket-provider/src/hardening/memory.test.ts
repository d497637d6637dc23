/*
 * Memory stays bounded: Backstage's default cache store (a Map in memory)
 * drops an expired entry only when it is read, so the profile cache deletes
 * the entries it wrote once they expire. The 10,000 sign-ins with the RSS
 * check run outside Jest: hardening/soak.ts.
 */
import { CacheService } from '@backstage/backend-plugin-api';
import { ProfileCache } from '../profileCache';
import { signInInfo } from '../__testUtils__/resolverContext';

/** Like Backstage's memory store: expired entries stay until they are read. */
function lazyMemoryCache() {
  const entries = new Map<string, { value: unknown; expires: number }>();
  const cache: CacheService = {
    async get(key) {
      const entry = entries.get(key);
      if (entry && entry.expires <= Date.now()) {
        entries.delete(key);
        return undefined;
      }
      return entry?.value as any;
    },
    async set(key, value, options) {
      entries.set(key, {
        value,
        expires: Date.now() + Number(options?.ttl ?? Infinity),
      });
    },
    async delete(key) {
      entries.delete(key);
    },
    withOptions: () => cache,
  };
  return { cache, entries };
}

describe('memory', () => {
  afterEach(() => jest.useRealTimers());

  it('the profile cache deletes its expired entries from a store that keeps them', async () => {
    jest.useFakeTimers();
    const { cache, entries } = lazyMemoryCache();
    const profiles = new ProfileCache(cache, 'client', 60_000);
    const profile = signInInfo().result.fullProfile;
    for (let i = 0; i < 1000; i++) {
      await profiles.put(`refresh-${i}`, profile, 'fp');
    }
    expect(entries.size).toBe(1000);

    // a session that refreshes moves its entry; the others are abandoned
    const moved = await profiles.get('refresh-1', 'fp');
    await profiles.move('refresh-1', 'refresh-1b', moved!);
    expect(entries.size).toBe(1000);

    jest.advanceTimersByTime(61_000);
    await Promise.resolve();
    expect(entries.size).toBe(0);

    // entries written later are swept in turn
    await profiles.put('refresh-late', profile, 'fp');
    jest.advanceTimersByTime(30_000);
    await Promise.resolve();
    expect(entries.size).toBe(1);
    jest.advanceTimersByTime(61_000);
    await Promise.resolve();
    expect(entries.size).toBe(0);
  });
});
