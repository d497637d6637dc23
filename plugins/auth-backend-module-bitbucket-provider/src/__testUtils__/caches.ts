import { CacheService } from '@backstage/backend-plugin-api';

/**
 * Like Backstage's memory store: expiry by `Date.now()`, and an expired
 * entry stays in `entries` until it is read.
 */
export function lazyMemoryCache() {
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
