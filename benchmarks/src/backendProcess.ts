/*
 * One backend under test, in its own process so that its CPU time and memory
 * are its own: the auth plugin, one Bitbucket provider module, an in-memory
 * catalog with the benchmark's users, and Backstage's default services
 * (better-sqlite3 in memory for the auth plugin's keys and user info).
 *
 * Started by the harness with `fork()`; argv[2] is a JSON BackendSpec. It
 * answers `sample` messages with its CPU time and memory, and stops on `stop`.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createBackend } from '@backstage/backend-defaults';
import { rootConfigServiceFactory } from '@backstage/backend-defaults/rootConfig';
import {
  BackendFeature,
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { Entity } from '@backstage/catalog-model';
import authPlugin from '@backstage/plugin-auth-backend';
import { authProvidersExtensionPoint } from '@backstage/plugin-auth-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  BackendSpec,
  ChildMessage,
  ParentMessage,
  ProcessSample,
} from './protocol';
import { rerouteBitbucketHosts } from './rerouteBitbucket';
import { MEMBERS_LISTED_AT } from './users';

/**
 * Our module with `sequentialProfileFetch: true`: user, then emails, then
 * workspaces. Registered under the same provider id, in place of ours.
 */
function sequentialModule(): BackendFeature {
  // The factory is not part of the package's public API: the benchmark is
  // the one place that needs this switch. Loaded here only, so that the
  // other backends' processes do not hold our module.
  const {
    createBitbucketProviderFactory,
  }: typeof import('@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider/src/provider') =
    // eslint-disable-next-line @backstage/no-forbidden-package-imports
    require('@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider/src/provider');
  return createBackendModule({
    pluginId: 'auth',
    moduleId: 'bitbucket-provider-sequential',
    register(reg) {
      reg.registerInit({
        deps: {
          providers: authProvidersExtensionPoint,
          cache: coreServices.cache,
        },
        async init({ providers, cache }) {
          providers.registerProvider({
            providerId: 'bitbucket',
            factory: createBitbucketProviderFactory({
              cache,
              sequentialProfileFetch: true,
            }),
          });
        },
      });
    },
  });
}

/**
 * Ours as users run it: the package's built JavaScript (`spec.oursEntry`,
 * `dist/index.cjs.js`, what npm installs), like upstream's; from its
 * TypeScript sources (through the transform this process was started with)
 * only when the harness was asked to (`BENCH_OURS_FROM=source`).
 */
function oursModule(spec: BackendSpec): BackendFeature {
  if (spec.oursEntry) return require(spec.oursEntry).default;
  return require('@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider')
    .default;
}

function providerModule(spec: BackendSpec): BackendFeature {
  switch (spec.kind) {
    case 'upstream':
      // passport-bitbucket-oauth2 hard-codes https://bitbucket.org and
      // https://api.bitbucket.org: send them to the emulator.
      rerouteBitbucketHosts(spec.bitbucketHosts);
      return require('@backstage/plugin-auth-backend-module-bitbucket-provider')
        .default;
    case 'ours':
    case 'ours-bitbucket':
      return oursModule(spec);
    case 'ours-sequential':
      return sequentialModule();
    default:
      throw new Error(`unknown backend kind ${String(spec.kind)}`);
  }
}

function peakRssBytes(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    if (kb) return Number(kb[1]) * 1024;
  } catch {
    // not Linux: no peak figure
  }
  return process.resourceUsage().maxRSS * 1024;
}

function sample(): ProcessSample {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    rssBytes: memory.rss,
    peakRssBytes: peakRssBytes(),
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
  };
}

/**
 * V8's last-resort GC (full, compacting, and giving freed pages back to the
 * system), as the soak does: the RSS then measures what the process keeps,
 * not the heap V8 grew for the garbage of the last burst.
 */
function settle() {
  const gc = (global as { gc?: (options?: object) => void }).gc;
  gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** How often the org import lists the workspace's members again, in the backend's (simulated) time. */
const IMPORT_EVERY_MS = 30 * 60_000;

/**
 * The org import running on its schedule while the session model moves the
 * clock on: once its listing is older than {@link IMPORT_EVERY_MS}, the
 * workspace Group gets a new listing time (the members do not change). The
 * in-memory catalog holds these same objects.
 */
function reimport(entities: Entity[]) {
  const now = Date.now();
  for (const entity of entities) {
    const annotations = entity.metadata.annotations;
    const listedAt = annotations?.[MEMBERS_LISTED_AT];
    if (listedAt && now - Date.parse(listedAt) >= IMPORT_EVERY_MS) {
      annotations[MEMBERS_LISTED_AT] = new Date(now).toISOString();
    }
  }
}

/** Each thread's name and CPU time so far (ms), from /proc/self/task. */
function threadCpu(): string[] {
  const { readdirSync } = require('node:fs');
  return (readdirSync('/proc/self/task') as string[]).map(tid => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of stat, in clock ticks (10 ms)
    const ms = (Number(fields[11]) + Number(fields[12])) * 10;
    return `${tid} ${name} ${ms}`;
  });
}

/** What a mapping of /proc/self/smaps holds, by its path. */
function mappingKind(path: string): string {
  if (!path) return 'anonymous';
  if (path.startsWith('[')) return path;
  if (path.endsWith('.node') || path.includes('.so')) return 'libraries';
  return 'files';
}

let dumps = 0;
/**
 * BENCH_SMAPS_DIR=<dir>: at every sample after a GC, where the resident
 * memory is (RSS of /proc/self/smaps by kind of mapping) and V8's own
 * figures, one JSON line per sample in <dir>/<kind>.jsonl (a diagnosis aid).
 */
function dumpMemory(kind: string) {
  const byKind: Record<string, number> = {};
  /** Anonymous mappings resident beyond 1 MB: range, permissions, kB. */
  const large: string[] = [];
  let name = '';
  let range = '';
  try {
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        range = line.split(' ', 2).join(' ');
        const path = head[1];
        name = mappingKind(path);
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss) {
        byKind[name] = (byKind[name] ?? 0) + Number(rss[1]);
        if (name === 'anonymous' && Number(rss[1]) > 1024) {
          large.push(`${range} ${rss[1]}`);
        }
      }
    }
  } catch {
    return; // not Linux
  }
  const m = process.memoryUsage();
  const { appendFileSync, mkdirSync } = require('node:fs');
  mkdirSync(process.env.BENCH_SMAPS_DIR!, { recursive: true });
  appendFileSync(
    `${process.env.BENCH_SMAPS_DIR}/${kind}.jsonl`,
    `${JSON.stringify({
      sample: dumps++,
      rssKb: Math.round(m.rss / 1024),
      heapTotalKb: Math.round(m.heapTotal / 1024),
      externalKb: Math.round(m.external / 1024),
      arrayBuffersKb: Math.round(m.arrayBuffers / 1024),
      smapsRssKb: byKind,
      largeAnonymous: large,
      threads: threadCpu(),
    })}\n`,
  );
}

/**
 * BENCH_ALLOC_PROF_DIR=<dir>: V8's sampling heap profile of every allocation
 * after start-up, garbage included (`<dir>/<backend>.heapprofile`, for Chrome
 * DevTools): where a backend's allocation, and so its GC work, comes from.
 */
async function startAllocationSampling() {
  const dir = process.env.BENCH_ALLOC_PROF_DIR;
  if (!dir) return { stop: async (_kind: string) => undefined };
  const { Session } =
    require('node:inspector') as typeof import('node:inspector');
  const session = new Session();
  session.connect();
  const post = <T = unknown>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) =>
      session.post(method, params ?? {}, (error, result) =>
        error ? reject(error) : resolve(result as T),
      ),
    );
  await post('HeapProfiler.startSampling', {
    samplingInterval: 8192,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    stop: async (kind: string) => {
      const { profile } = await post<{ profile: object }>(
        'HeapProfiler.stopSampling',
      );
      const { mkdirSync, writeFileSync } = require('node:fs');
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/${kind}.heapprofile`, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

function send(message: ChildMessage) {
  process.send?.(message);
}

async function main() {
  const startedAt = performance.now();
  const spec = JSON.parse(process.argv[2]) as BackendSpec;
  const entities = JSON.parse(
    readFileSync(spec.entitiesFile, 'utf8'),
  ) as Entity[];

  const backend = createBackend();
  backend.add(
    rootConfigServiceFactory({
      argv: ['--config', spec.configFile],
      watch: false,
    }),
  );
  backend.add(catalogServiceMock.factory({ entities }));
  backend.add(authPlugin);
  backend.add(providerModule(spec));
  await backend.start();
  const allocations = await startAllocationSampling();

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'sample') {
      if (message.gc) settle();
      if (message.gc && process.env.BENCH_SMAPS_DIR) dumpMemory(spec.kind);
      send({ type: 'sample', id: message.id, sample: sample() });
    } else if (message.type === 'clock') {
      // preloaded with --require by the harness (src/backends.ts)
      require('./clock.cjs').setClockOffset(message.offsetMs);
      reimport(entities);
      send({ type: 'clock', id: message.id });
    } else if (message.type === 'stop') {
      allocations
        .stop(spec.kind)
        .catch(() => undefined) // a profile not written still stops the backend
        .then(() => backend.stop())
        .catch(() => undefined)
        .finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', startupMs: performance.now() - startedAt });
}

main().catch(error => {
  send({ type: 'error', message: String(error?.stack ?? error) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
});
