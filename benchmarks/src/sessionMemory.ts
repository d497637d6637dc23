import { CacheManager } from '@backstage/backend-defaults/cache';
import type { CacheService } from '@backstage/backend-plugin-api';
import { ConfigReader } from '@backstage/config';
// eslint-disable-next-line @backstage/no-forbidden-package-imports
import { SessionStore } from '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider/src/sessionStore';
import { randomBytes, randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { markdownTable, mb } from './format';

/**
 * What one live session costs in memory: `yarn bench:session-memory`.
 *
 * Puts `sessions` sessions, shaped as a sign-in with one allowed workspace
 * leaves them, into Backstage's own in-memory cache store (what a backend
 * without `backend.cache` uses) through the module's SessionStore, and
 * reads the V8 heap before and after, each after a full GC. The heap
 * figure is everything a session keeps alive: the sealed record, its key in
 * the store and the entry the store keeps to delete it when it expires.
 */
export interface SessionMemoryResult {
  sessions: number;
  /** Length of one sealed record as stored (the value Redis would hold too). */
  sealedChars: number;
  /** Length of the record's JSON before sealing. */
  plainJsonChars: number;
  heapBeforeMb: number;
  heapAfterMb: number;
  /** (heap after − heap before) / sessions. */
  heapBytesPerSession: number;
  /** Sessions read back at the end, of those checked (one in ten). */
  readBack: string;
}

/** A session as a sign-in leaves it (the emulator's token lengths). */
function session(i: number) {
  const now = Date.now();
  return {
    accessToken: randomBytes(48).toString('base64url'),
    tokenType: 'bearer',
    scope: 'account email team',
    expiresAt: now + 2 * 60 * 60_000,
    refreshToken: randomBytes(24).toString('base64url'),
    profile: {
      uuid: `{${randomUUID()}}`,
      accountId: `557058:${randomUUID()}`,
      nickname: `user${i}`,
      displayName: `Bench User ${i}`,
      avatarUrl: `https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/initials/BU-${i}.png`,
      profileUrl: `https://bitbucket.org/%7B${randomUUID()}%7D/`,
      email: `user${i}@example.com`,
      emails: [
        { email: `user${i}@example.com`, isPrimary: true, isConfirmed: true },
      ],
      workspaces: [
        {
          slug: 'bench',
          uuid: `{${randomUUID()}}`,
          administrator: false,
          permission: 'member',
        },
      ],
    },
    identityFetchedAt: now,
    membershipFetchedAt: now,
    fingerprint: randomBytes(8).toString('hex'),
  };
}

/** V8's full GC, exposed at run time (no `--expose-gc` on the command line needed). */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc');
}

function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Measures `sessions` sessions (at least 1,000 for a steady figure). */
export async function measureSessionMemory(
  sessions: number,
): Promise<SessionMemoryResult> {
  const gc = exposedGc();
  const cache = CacheManager.fromConfig(new ConfigReader({})).forPlugin('auth');
  const store = new SessionStore(cache, 'bench-client-id', {
    keepSessions: true,
    graceMs: 60_000,
  });

  // the size of one sealed record, as the store receives it
  const sample = session(0);
  let sealed = '';
  const capture = {
    get: async () => undefined,
    set: async (_key: string, value: unknown) => {
      sealed = String(value);
    },
    delete: async () => undefined,
  } as unknown as CacheService;
  await new SessionStore(capture, 'bench-client-id', {
    keepSessions: true,
    graceMs: 60_000,
  }).put(sample, 60_000);

  const ttl = 4 * 60 * 60_000;
  const checked: string[] = [];
  const before = heapAfterGc(gc);
  for (let i = 0; i < sessions; i++) {
    const one = session(i);
    if (i % Math.ceil(sessions / 10) === 0) checked.push(one.refreshToken);
    await store.put(one, ttl);
  }
  const after = heapAfterGc(gc);

  // the sessions are all there: the figure is theirs, not a cache's eviction
  let found = 0;
  for (const token of checked) if (await store.get(token)) found += 1;
  return {
    sessions,
    sealedChars: sealed.length,
    plainJsonChars: JSON.stringify(sample).length,
    heapBeforeMb: mb(before),
    heapAfterMb: mb(after),
    heapBytesPerSession: Math.round((after - before) / sessions),
    readBack: `${found} of ${checked.length}`,
  };
}

/** The result as the Markdown table `yarn bench:session-memory` prints. */
export function sessionMemoryTable(result: SessionMemoryResult): string {
  return markdownTable(
    [
      'sessions',
      'sealed record (chars)',
      'its JSON (chars)',
      'heap before / after (MB)',
      'heap per session (bytes)',
      'read back',
    ],
    [
      [
        String(result.sessions),
        String(result.sealedChars),
        String(result.plainJsonChars),
        `${result.heapBeforeMb} / ${result.heapAfterMb}`,
        String(result.heapBytesPerSession),
        result.readBack,
      ],
    ],
    ['right', 'right', 'right', 'right', 'right', 'left'],
  );
}
