import { ChildProcess, fork } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { APP_ORIGIN } from './driver';
import { BenchNetwork, BackendRoute } from './network';
import {
  BackendKind,
  BackendSpec,
  ChildMessage,
  ParentMessage,
  ProcessSample,
} from './protocol';
import { pinProcess } from './cpuPinning';
import { runsBuilt } from './oursBuild';
import { CLIENT_ID, CLIENT_SECRET, WORKSPACE } from './users';
// eslint-disable-next-line @backstage/no-forbidden-package-imports
import { KNOWN_KEYS } from '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider/src/config';

/** Environments of ours: the default profile cache (15 min), and none. */
export const ENV_CACHED = 'development';
export const ENV_UNCACHED = 'nocache';

const STARTUP_TIMEOUT_MS = 180_000;

/** A backend process started by the harness. */
export interface RunningBackend {
  kind: BackendKind;
  url: string;
  pid: number;
  startupMs: number;
  /** CPU time and memory now; with `gc`, after a full garbage collection. */
  sample(options?: { gc?: boolean }): Promise<ProcessSample>;
  /** Moves the process's wall clock to real time + `offsetMs` (src/clock.cjs). */
  setClock(offsetMs: number): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const relayUrl = (relay: { port: number }) => `https://127.0.0.1:${relay.port}`;

/** Whether our module reads this key under `auth.providers.bitbucket.<env>`. */
export function moduleReads(key: string): boolean {
  return (KNOWN_KEYS as readonly string[]).includes(key);
}

/**
 * Whether this module can take workspace membership from the imported
 * catalog (issue 19): then `ours` runs the recommended setup, membership
 * from the org import's Group (src/users.ts), and `ours-bitbucket` the
 * Bitbucket one. Before, both ask Bitbucket.
 */
export const CATALOG_MEMBERSHIP = moduleReads('workspaceMembershipSource');

/** What ours-bitbucket sets: membership from Bitbucket, cached as issue 19 decided. */
export const BITBUCKET_SETUP: Record<string, unknown> = {
  profileCacheTtl: '30m',
  identityCacheTtl: '8h',
  ...(CATALOG_MEMBERSHIP ? { workspaceMembershipSource: 'bitbucket' } : {}),
};

/** What ours sets on top of the bench's config: the recommended setup. */
export const RECOMMENDED_SETUP: Record<string, unknown> = CATALOG_MEMBERSHIP
  ? { workspaceMembershipSource: 'catalog' }
  : {};

/** The setup of a backend of ours, in words (for the report). */
export function setupOf(kind: BackendKind): string {
  switch (kind) {
    case 'upstream':
      return 'upstream 0.3.19, as documented';
    case 'ours':
      return CATALOG_MEMBERSHIP
        ? 'membership from the imported catalog (workspaceMembershipSource: catalog), the module defaults otherwise'
        : "membership from Bitbucket, the module's defaults (this module does not read workspaceMembershipSource yet)";
    case 'ours-bitbucket':
      return `membership from Bitbucket: ${Object.entries(BITBUCKET_SETUP)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}`;
    case 'ours-sequential':
      return "as ours' defaults, with sequentialProfileFetch: true";
    default:
      return String(kind);
  }
}

/**
 * The app-config of one backend; ours gets a second, uncached environment.
 * `oursSettings` go on top of ours' (both environments; the uncached one
 * keeps its `profileCacheTtl: 0`).
 */
export function backendConfig(
  kind: BackendKind,
  port: number,
  route: BackendRoute,
  oursSettings: Record<string, unknown> = {},
): object {
  const signIn = {
    resolvers: [{ resolver: 'userIdMatchingUserEntityAnnotation' }],
  };
  let bitbucket: object;
  if (kind === 'upstream') {
    // as documented upstream; its URLs cannot be configured
    bitbucket = {
      [ENV_CACHED]: {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        signIn,
      },
    };
  } else {
    const ours = {
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      // the two hosts of Bitbucket, each through its relay (src/network.ts)
      baseUrl: relayUrl(route.web),
      apiBaseUrl: `${relayUrl(route.api)}/2.0`,
      // makes every sign-in fetch /2.0/user/workspaces as well
      allowedWorkspaces: [WORKSPACE],
      signIn,
      // each bench user signs in dozens of times within minutes: a module
      // with a per-account sign-in budget (issue 11) has it turned off here
      ...(moduleReads('accountSignInsPerHour')
        ? { accountSignInsPerHour: 0 }
        : {}),
      // ours-bitbucket: the Bitbucket setup, fixed; the others the
      // recommended one, and the --ours keys on top
      ...(kind === 'ours-bitbucket'
        ? BITBUCKET_SETUP
        : { ...RECOMMENDED_SETUP, ...oursSettings }),
    };
    bitbucket = {
      [ENV_CACHED]: ours,
      [ENV_UNCACHED]: { ...ours, profileCacheTtl: 0 },
    };
  }
  return {
    app: { baseUrl: APP_ORIGIN },
    backend: {
      baseUrl: `http://127.0.0.1:${port}`,
      listen: { host: '127.0.0.1', port },
      database: { client: 'better-sqlite3', connection: ':memory:' },
    },
    auth: { environment: ENV_CACHED, providers: { bitbucket } },
  };
}

/**
 * Starts one backend in its own Node process (with the TypeScript transform
 * of @backstage/cli, for our module's sources), and waits until it listens.
 * Its output goes to `<workDir>/<kind>.log`.
 */
export async function startBackend(options: {
  kind: BackendKind;
  network: BenchNetwork;
  workDir: string;
  entitiesFile: string;
  /** Pin the process and its threads to these CPUs (a taskset list). */
  cpus?: string;
  /** Keys set on top of ours' config (not upstream's). */
  oursSettings?: Record<string, unknown>;
  /** Ours' built entry point; unset: its sources (src/oursBuild.ts). */
  oursEntry?: string;
}): Promise<RunningBackend> {
  const { kind, network, workDir, entitiesFile } = options;
  const port = await freePort();
  const route = network.route(kind);
  const configFile = join(workDir, `${kind}.app-config.json`);
  writeFileSync(
    configFile,
    JSON.stringify(
      backendConfig(kind, port, route, options.oursSettings),
      null,
      2,
    ),
  );
  const spec: BackendSpec = {
    kind,
    configFile,
    bitbucketHosts: {
      'bitbucket.org': { host: route.web.host, port: route.web.port },
      'api.bitbucket.org': { host: route.api.host, port: route.api.port },
    },
    entitiesFile,
    oursEntry: runsBuilt(kind) ? options.oursEntry : undefined,
  };
  const log = createWriteStream(join(workDir, `${kind}.log`));
  const child: ChildProcess = fork(
    require.resolve('./backendProcess.ts'),
    [JSON.stringify(spec)],
    {
      execArgv: [
        // first: the clock the session model moves on (src/clock.cjs)
        '--require',
        require.resolve('./clock.cjs'),
        '--expose-gc',
        // BENCH_BACKEND_FLAGS="<node or V8 flags>": for a diagnosis (docs/benchmarks.md)
        ...(process.env.BENCH_BACKEND_FLAGS?.split(' ').filter(Boolean) ?? []),
        // BENCH_CPU_PROF_DIR=<dir>: a V8 CPU profile per backend (docs/benchmarks.md)
        ...(process.env.BENCH_CPU_PROF_DIR
          ? [
              '--cpu-prof',
              `--cpu-prof-dir=${join(process.env.BENCH_CPU_PROF_DIR, kind)}`,
            ]
          : []),
        '--require',
        require.resolve('@backstage/cli/config/nodeTransform.cjs'),
      ],
      env: {
        ...process.env,
        // as a portal runs: JSON log lines (the development format colours
        // and aligns every line, a cost no production backend pays)
        NODE_ENV: process.env.BENCH_NODE_ENV ?? 'production',
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        // the run's CA: the emulator's certificate, for undici and https alike
        NODE_EXTRA_CA_CERTS: network.caFile,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);

  if (options.cpus) pinProcess(child.pid!, options.cpus);
  let exited = false;
  const exit = new Promise<void>(resolve =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  /** Answers the process still owes, by message id: a sample, or none. */
  const pending = new Map<number, (sample?: ProcessSample) => void>();
  let nextId = 0;

  const startupMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `the ${kind} backend did not start within ${
            STARTUP_TIMEOUT_MS / 1000
          } s; see ${workDir}/${kind}.log`,
        ),
      );
    }, STARTUP_TIMEOUT_MS);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.startupMs);
      } else if (message.type === 'error') {
        clearTimeout(timer);
        reject(
          new Error(`the ${kind} backend failed to start: ${message.message}`),
        );
      } else if (message.type === 'sample' || message.type === 'clock') {
        pending.get(message.id)?.(
          message.type === 'sample' ? message.sample : undefined,
        );
        pending.delete(message.id);
      }
    });
    child.once('exit', code => {
      clearTimeout(timer);
      reject(
        new Error(
          `the ${kind} backend exited with code ${code} while starting; see ${workDir}/${kind}.log`,
        ),
      );
    });
  });

  /** Sends a message that the process answers, and waits for the answer. */
  const ask = (message: (id: number) => ParentMessage) => {
    const id = nextId++;
    return new Promise<ProcessSample | undefined>((resolve, reject) => {
      if (exited) {
        reject(new Error(`the ${kind} backend has exited`));
        return;
      }
      pending.set(id, resolve);
      child.send(message(id));
    });
  };

  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    startupMs,
    sample: (sampleOptions = {}) =>
      ask(id => ({ type: 'sample', id, gc: sampleOptions.gc })).then(
        sample => sample!,
      ),
    setClock: offsetMs =>
      ask(id => ({ type: 'clock', id, offsetMs })).then(() => undefined),
    async stop() {
      if (exited) return;
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
