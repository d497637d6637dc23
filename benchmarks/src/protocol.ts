/**
 * The backends the benchmark compares: upstream; ours in the recommended
 * setup (membership from the imported catalog, once the module reads
 * `workspaceMembershipSource`: src/backends.ts); ours with membership from
 * Bitbucket (`profileCacheTtl: 30m`, `identityCacheTtl: 8h`); ours fetching
 * one call after the other.
 */
export type BackendKind =
  | 'upstream'
  | 'ours'
  | 'ours-bitbucket'
  | 'ours-sequential';

export const BACKEND_KINDS: BackendKind[] = [
  'upstream',
  'ours',
  'ours-bitbucket',
  'ours-sequential',
];

export const BACKEND_LABELS: Record<BackendKind, string> = {
  upstream: '@backstage/…-bitbucket-provider 0.3.19',
  ours: 'ours',
  'ours-bitbucket': 'ours, membership from Bitbucket (30m/8h)',
  'ours-sequential': 'ours, sequential fetch',
};

/** What the harness tells a backend process to run, as JSON in argv[2]. */
export interface BackendSpec {
  kind: BackendKind;
  /** The backend's app-config, written to a file the process reads. */
  configFile: string;
  /**
   * Where bitbucket.org and api.bitbucket.org go (upstream only: ours is
   * configured with these URLs): over HTTPS, to the backend's relays.
   */
  bitbucketHosts: Record<string, { host: string; port: number }>;
  /** Catalog users, served by an in-memory catalog. */
  entitiesFile: string;
  /**
   * Ours' built entry point (`dist/index.cjs.js`) for ours and
   * ours-bitbucket; unset: its TypeScript sources (src/oursBuild.ts).
   */
  oursEntry?: string;
}

/** Resource usage of a backend process, sampled on request. */
export interface ProcessSample {
  /** process.cpuUsage(): user and system CPU, microseconds since start. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
  /** Resident set size now, bytes. */
  rssBytes: number;
  /** Peak resident set size (VmHWM), bytes. */
  peakRssBytes: number;
  heapUsedBytes: number;
  /**
   * V8's heap as committed (`memoryUsage().heapTotal`): the RSS minus this is
   * memory outside the V8 heap (native: TLS, malloc's arenas, code).
   */
  heapTotalBytes: number;
}

export type ParentMessage =
  /** `gc`: collect garbage first (the process runs with --expose-gc), for a steady RSS. */
  | { type: 'sample'; id: number; gc?: boolean }
  /** Moves the process's wall clock to real time + `offsetMs` (src/clock.cjs). */
  | { type: 'clock'; id: number; offsetMs: number }
  | { type: 'stop' };

export type ChildMessage =
  | { type: 'ready'; startupMs: number }
  | { type: 'sample'; id: number; sample: ProcessSample }
  | { type: 'clock'; id: number }
  | { type: 'error'; message: string };
