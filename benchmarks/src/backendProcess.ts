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

function providerModule(spec: BackendSpec): BackendFeature {
  switch (spec.kind) {
    case 'upstream':
      // passport-bitbucket-oauth2 hard-codes https://bitbucket.org and
      // https://api.bitbucket.org: send them to the emulator.
      rerouteBitbucketHosts(spec.bitbucketHosts);
      return require('@backstage/plugin-auth-backend-module-bitbucket-provider')
        .default;
    case 'ours':
      return require('@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider')
        .default;
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

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'sample') {
      if (message.gc) settle();
      send({ type: 'sample', id: message.id, sample: sample() });
    } else if (message.type === 'clock') {
      // preloaded with --require by the harness (src/backends.ts)
      require('./clock.cjs').setClockOffset(message.offsetMs);
      send({ type: 'clock', id: message.id });
    } else if (message.type === 'stop') {
      backend
        .stop()
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
