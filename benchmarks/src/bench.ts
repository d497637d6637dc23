import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmulatorCall } from '@internal/bitbucket-cloud-emulator';
import {
  CATALOG_MEMBERSHIP,
  ENV_CACHED,
  ENV_UNCACHED,
  RunningBackend,
  setupOf,
  startBackend,
} from './backends';
import { oursEntryFor, runsBuilt } from './oursBuild';
import { CpuPinning, pinProcess, planCpuPinning } from './cpuPinning';
import { Browser, signInsCompleted, Timed } from './driver';
import { mb, stringifyJson } from './format';
import { BenchNetwork, NetworkModel, startBenchNetwork } from './network';
import { runSessionModel, SessionOptions, SessionResult } from './sessionModel';
import { measureSessionMemory, SessionMemoryResult } from './sessionMemory';
import { judge, Verdict } from './verdict';
import { BackendKind, ProcessSample } from './protocol';
import {
  CallCounts,
  countCalls,
  isBackendCall,
  latencyStats,
  LatencyStats,
  median,
  roundTripsPerRequest,
} from './stats';
import { benchEntities, benchSeed, benchUsers } from './users';

/** What to run. */
export interface BenchOptions {
  /** The round-trip time between the backends and Bitbucket, ms. */
  latencies: number[];
  /** Where the latency goes: every round trip (`relay`) or every call (`per-request`); src/network.ts. */
  network: NetworkModel;
  /**
   * Cold series: before each sign-in or refresh, the backend's connections
   * to Bitbucket are dropped. `consentMs`: the time the user spends on the
   * consent page in a cold sign-in.
   */
  cold: { signIns: number; refreshes: number; consentMs: number };
  /** The session model (one user over simulated hours), or null to skip it. */
  session: SessionOptions | null;
  /** Sign-ins one at a time, per backend and latency: the latency percentiles and the concurrency-1 rate. */
  signIns: number;
  /** Refreshes one at a time per series (the sequential variant runs half as many). */
  refreshes: number;
  /** Concurrency levels (1 is the sign-in series). */
  concurrency: number[];
  /**
   * Throughput above concurrency 1: a measured window of `windowMs` in all,
   * split over `rounds` in which the backends take turns, each after an
   * unmeasured ramp-up of `rampMs`.
   */
  throughput: { rampMs: number; windowMs: number; rounds: number };
  /** Unmeasured sign-ins per backend before anything is measured (no latency), and before each latency. */
  warmup: { start: number; perLatency: number };
  /** The series run in this many rounds, the backends taking turns, so that a disturbance hits them alike. */
  rounds: number;
  backends: BackendKind[];
  /** Distinct Bitbucket users seeded (and catalog users). */
  users: number;
  /**
   * Sessions put in a memory store to measure the heap of one (before the
   * backends start); 0: not measured, and the memory targets that need it
   * are not judged.
   */
  sessionMemorySessions: number;
  /**
   * Keep the backends' configs and logs (a new temporary folder) after a
   * successful run; they are always kept after a failed one.
   */
  keepLogs: boolean;
  /**
   * Give the harness and the backend under test CPUs of their own
   * (src/cpuPinning.ts) when the machine has two or more and `taskset`.
   */
  pin: boolean;
  /**
   * Keys of ours' provider config set on top of the bench's (`--ours
   * key=value`), e.g. `{ profileCacheTtl: '30m' }`; empty: the module's
   * defaults. The report names them.
   */
  oursSettings: Record<string, unknown>;
  /** Where the JSON goes (and the Markdown, by the CLI). */
  outFile: string;
  log: (line: string) => void;
}

export type BenchSettings = Omit<BenchOptions, 'outFile' | 'log'>;

export const DEFAULT_OPTIONS: BenchSettings = {
  latencies: [0, 50, 100],
  network: 'relay',
  cold: { signIns: 20, refreshes: 20, consentMs: 500 },
  session: { hours: 8, pageLoadEveryMinutes: 10, burstEvery: 6, burstTabs: 3 },
  signIns: 200,
  refreshes: 50,
  concurrency: [1, 8, 32],
  throughput: { rampMs: 500, windowMs: 10000, rounds: 10 },
  warmup: { start: 200, perLatency: 4 },
  rounds: 4,
  backends: ['upstream', 'ours', 'ours-bitbucket', 'ours-sequential'],
  users: 200,
  sessionMemorySessions: 20_000,
  keepLogs: false,
  pin: true,
  oursSettings: {},
};

/** A few iterations of everything, for the smoke test. */
export const SMOKE_OPTIONS: BenchSettings = {
  latencies: [5],
  network: 'relay',
  cold: { signIns: 2, refreshes: 2, consentMs: 50 },
  session: { hours: 1, pageLoadEveryMinutes: 20, burstEvery: 2, burstTabs: 3 },
  signIns: 3,
  refreshes: 2,
  concurrency: [1, 2],
  throughput: { rampMs: 200, windowMs: 800, rounds: 1 },
  warmup: { start: 1, perLatency: 1 },
  rounds: 1,
  backends: ['upstream', 'ours', 'ours-bitbucket', 'ours-sequential'],
  users: 5,
  sessionMemorySessions: 1000,
  keepLogs: false,
  pin: false,
  oursSettings: {},
};

export interface SeriesResult {
  latency: LatencyStats;
  /** Sequential round trips to Bitbucket per request, from the emulator's record (null without injected latency). */
  roundTrips: { median: number; max: number } | null;
  calls: CallCounts;
  /** Backend CPU time (user + system) over the series per operation, ms. */
  cpuMsPerOp: number;
  /** New connections from the backend to Bitbucket per operation (the relays' count). */
  connectionsPerOp: number;
  seconds: number;
  errors: number;
}

export interface ThroughputResult {
  concurrency: number;
  /** Sign-ins completed in the measured window (concurrency 1: the whole series). */
  signIns: number;
  seconds: number;
  signInsPerSecond: number;
  cpuMsPerSignIn: number;
  /** /handler/frame latency under this load. */
  p50: number;
  p95?: number;
  mean?: number;
  /** The other steps of a sign-in under this load, p50 ms: /start, and the consent at the emulator. */
  stepsP50?: { start: number; consent: number };
  /** CPU use of the harness (emulator + browsers) in the window, % of one core. */
  harnessCpuPercent?: number;
  /** New connections to Bitbucket per sign-in in the windows (TLS handshakes the backend paid). */
  connectionsPerSignIn?: number;
  /**
   * Sign-ins per second of each round's window, in the order of the rounds
   * (the verdict pairs them with the other backend's, round by round).
   */
  perRound?: number[];
  /** New connections per sign-in of each round's window. */
  connectionsPerRound?: number[];
  errors: number;
}

export interface CellResult {
  latencyMs: number;
  backend: BackendKind;
  signIn: SeriesResult;
  /** Refresh within the profile cache TTL (ours). Upstream has no cache: its only refresh series. */
  refreshCached: SeriesResult;
  /** Refresh with the profile cache off (ours: profileCacheTtl 0). Upstream: the same series as above. */
  refreshUncached: SeriesResult;
  /** The same three, each after the backend's connections to Bitbucket were dropped. */
  signInCold: SeriesResult;
  refreshCachedCold: SeriesResult;
  refreshUncachedCold: SeriesResult;
  throughput: ThroughputResult[];
  /** Emulator-side duration of the backend's calls in the sign-in series: shows the latency was injected. */
  backendCallMs: { min: number; p50: number };
}

export interface BackendInfo {
  kind: BackendKind;
  module: string;
  /** Its settings, in words (src/backends.ts). */
  setup: string;
  /** Where ours takes workspace membership from; null for upstream. */
  membership: 'catalog' | 'bitbucket' | null;
  /** What ran: JavaScript as npm installs it, or TypeScript sources through the transform. */
  code: 'built JavaScript' | 'TypeScript sources';
  startupMs: number;
  /** After start-up, before any request (after a full GC), MB. */
  rssBeforeMb: number;
  /** After every latency's cells (after a full GC), MB. */
  rssAfterMb: number;
  /** VmHWM: the peak, start-up included, MB. */
  peakRssMb: number;
  heapUsedBeforeMb: number;
  heapUsedAfterMb: number;
  /** After each latency's cells (after a full GC), MB. */
  rssAfterLatencyMb: Record<string, number>;
  /** After all latencies, before the session model (after a full GC), MB: the figure compared. */
  rssAfterSeriesMb: number;
  heapUsedAfterSeriesMb: number;
  /** RSS minus V8's committed heap after start-up, MB: native memory and code. */
  outsideHeapBeforeMb: number;
  /** The same when `rssAfterSeriesMb` is taken, MB. */
  outsideHeapAfterSeriesMb: number;
  /**
   * Sessions the backend keeps when `rssAfterSeriesMb` is taken: the
   * sign-ins it completed in its session-keeping environment (none expired
   * yet: the series are shorter than any session's lifetime). Upstream
   * keeps none.
   */
  liveSessionsAfterSeries: number;
  /** The backend's log file, when kept (--keep-logs). */
  log: string | null;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  platform: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  /** The CPUs of the harness and of the backends; null when not pinned. */
  pinning: CpuPinning | null;
  /**
   * Per latency phase: the CPU that processes other than the harness and
   * the backends used meanwhile (% of one core, from /proc/stat; null
   * elsewhere than Linux), and the 1-minute load average at its end.
   */
  phases: {
    latencyMs: number;
    seconds: number;
    otherCpuPercent: number | null;
    loadAverageEnd: number;
  }[];
}

export interface Ratio {
  latencyMs: number;
  metric: string;
  ours: number;
  upstream: number;
  /** ours / upstream */
  ratio: number;
}

export interface BenchResult {
  schemaVersion: 2;
  /** The commit measured, and whether our module had uncommitted changes. */
  source: { commit: string | null; moduleUncommittedChanges: boolean | null };
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  options: BenchSettings;
  method: string[];
  backends: BackendInfo[];
  cells: CellResult[];
  ratios: Ratio[];
  /** The session model, per backend (ours and upstream). */
  session: SessionResult[];
  /**
   * What one live session of ours costs in heap (src/sessionMemory.ts, in
   * the harness before the backends start); null when not measured.
   */
  sessionMemory: SessionMemoryResult | null;
  /** Every target, judged: what `yarn bench --check` checks. */
  verdict: Verdict[];
}

const MODULES: Record<BackendKind, string> = {
  upstream: '@backstage/plugin-auth-backend-module-bitbucket-provider@0.3.19',
  ours: '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider (this repo)',
  'ours-bitbucket':
    '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider (this repo), membership from Bitbucket',
  'ours-sequential':
    '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider (this repo), sequentialProfileFetch: true',
};

export const METHOD = [
  'One Bitbucket Cloud emulator in the harness process and one child process per backend, all on 127.0.0.1; the harness plays the browsers.',
  'Network model relay (default): the emulator serves HTTPS with a CA made for the run (the backends trust it through NODE_EXTRA_CA_CERTS); each backend reaches each Bitbucket host (bitbucket.org for the token, api.bitbucket.org for REST) through a TCP relay of its own that delays every byte by half the RTT each way, and holds back what a client sends on a new connection for one RTT (the TCP handshake the kernel completes at once). A new connection costs one RTT for TCP, one for TLS 1.3, then one per request. Model per-request: the emulator waits the RTT before answering each backend call, handshakes are free.',
  'The consent page (the user in the browser) goes to the emulator directly, without latency.',
  'The upstream module hard-codes https://bitbucket.org and https://api.bitbucket.org: its process wraps https.request/https.get so that those two hosts go to its relays, still over TLS with the same name (SNI, certificate check, Host header, keep-alive pool) (src/rerouteBitbucket.ts); the package is unchanged.',
  'Ours has allowedWorkspaces set, so every sign-in fetches /2.0/user, /2.0/user/emails and /2.0/user/workspaces; upstream fetches /2.0/user only. Both resolve with userIdMatchingUserEntityAnnotation against an in-memory catalog of the seeded users.',
  'A sign-in is /start, the consent page (GET + POST), then /handler/frame; its latency is the /handler/frame request, from writing the request to reading the last byte of the answer.',
  'A refresh is GET /refresh with the refresh-token cookie, as the app does on page load; Bitbucket rotates refresh tokens, the browser keeps the newest cookie.',
  "Warm: one request after another, on the connections the backend keeps alive. Cold: before each request the relays drop the backend's connections to Bitbucket (both sides) and the harness waits 25 ms for the backend to see them close: the state after an idle spell longer than any keep-alive, without waiting it out. A cold sign-in spends consentMs on the consent page between /start and the callback.",
  "Round trips come from the emulator record: the longest chain of backend calls during one request in which each call starts after the previous one was answered (handshakes are not in it; p50 / RTT shows them). Connections per operation are the relays' count of accepted connections.",
  'Series run one request at a time, in rounds in which the backends take turns; each backend is warmed up first (JIT) without latency.',
  'Sign-ins per second: concurrency 1 is the warm sign-in series (whole flows, one at a time); above 1, N browsers run whole flows in a loop and the sign-ins completed in a fixed window after a ramp-up are counted.',
  "With 2 or more CPUs (Linux, taskset), the harness runs on all CPUs but the last and the backends (taking turns) on the last: the emulator and the relays do Bitbucket's and the network's work, which in production is not the portal's CPU, and a module that calls Bitbucket more often is not charged for it. --no-pin turns this off.",
  "Ours runs from its built JavaScript (dist/index.cjs.js, built first when older than its sources: what npm installs), upstream from its published JavaScript: neither through the TypeScript transform (SWC) the backend processes are started with for the harness's own code. BENCH_OURS_FROM=source runs ours from its sources, to compare.",
  "CPU is process.cpuUsage() of the backend process (user + system) over the series or window, divided by the operations; RSS is process.memoryUsage().rss after V8's last-resort GC (full, compacting, freed pages given back), peak is VmHWM. The RSS compared between backends is taken after the last latency, 6 s after the last request (longer than any keep-alive, so no idle connection is left open), after a full GC.",
  "The session model (src/sessionModel.ts) runs last: simulated hours in which the harness moves the wall clock of the backends (a --require preload offsets Date), of the emulator and of the browsers' cookie jars, so that token expiry, cache TTLs and cookie lifetimes behave as in real hours; every page load is cold (10 simulated minutes outlast any keep-alive).",
];

/** Where a backend takes workspace membership from (src/backends.ts). */
function membershipOf(kind: BackendKind): BackendInfo['membership'] {
  if (kind === 'upstream') return null;
  return CATALOG_MEMBERSHIP && kind !== 'ours-bitbucket'
    ? 'catalog'
    : 'bitbucket';
}

/** Longer than the backends' keep-alive timeouts. */
const KEEP_ALIVE_OUTLIVED_MS = 6000;

const round2 = (n: number) => Math.round(n * 100) / 100;
const cpuMs = (a: ProcessSample, b: ProcessSample) =>
  (b.cpuUserMicros - a.cpuUserMicros + b.cpuSystemMicros - a.cpuSystemMicros) /
  1000;

function machineInfo(): MachineInfo {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageStart: os.loadavg().map(round2),
    loadAverageEnd: [],
    pinning: null,
    phases: [],
  };
}

/** The git commit of the checkout, and whether our module's folder differs from it. */
function sourceInfo(): BenchResult['source'] {
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const root = git('rev-parse', '--show-toplevel');
    return {
      commit: git('rev-parse', 'HEAD'),
      moduleUncommittedChanges:
        git(
          '-C',
          root,
          'status',
          '--porcelain',
          'plugins/auth-backend-module-bitbucket-provider',
        ) !== '',
    };
  } catch {
    return { commit: null, moduleUncommittedChanges: null };
  }
}

/** CPU time all processes used so far, ms, from /proc/stat (Linux only). */
function machineBusyMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal, in USER_HZ (1/100 s)
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return (user + nice + system + irq + softirq + (steal ?? 0)) * 10;
  } catch {
    return undefined;
  }
}

/** What the harness and the backends used so far, ms of CPU. */
async function ownCpuMs(backends: RunningBackend[]): Promise<number> {
  const harness = process.cpuUsage();
  let total = (harness.user + harness.system) / 1000;
  for (const backend of backends) {
    const s = await backend.sample();
    total += (s.cpuUserMicros + s.cpuSystemMicros) / 1000;
  }
  return total;
}

/** Splits `total` into `rounds` near-equal parts. */
function split(total: number, rounds: number): number[] {
  const n = Math.max(1, Math.min(rounds, total));
  return Array.from(
    { length: n },
    (_, i) => Math.floor((total * (i + 1)) / n) - Math.floor((total * i) / n),
  );
}

/** Requests of one series, gathered over the rounds. */
class Series {
  readonly ms: number[] = [];
  readonly trips: number[] = [];
  readonly calls: EmulatorCall[] = [];
  readonly errors: Error[] = [];
  cpuMs = 0;
  seconds = 0;
  connections = 0;

  constructor(
    readonly what: string,
    readonly latencyMs: number,
    /** The emulator's record shows round trips only when it holds each call for the RTT. */
    readonly model: NetworkModel,
  ) {}

  /**
   * Runs `count` operations one at a time and records them; `cold`: the
   * backend's connections to Bitbucket are dropped before each one (not
   * timed, and not in its CPU time).
   */
  async run(
    backend: RunningBackend,
    network: BenchNetwork,
    count: number,
    op: () => Promise<Timed>,
    cold = false,
  ) {
    const emulator = network.emulator;
    if (!cold) {
      // The turn's warm-up, not measured: the other backends' turns
      // outlast the keep-alive, so the first request of a turn finds no
      // open connection (what the cold series measure), not a warm one.
      try {
        await op();
      } catch (error) {
        this.errors.push(error as Error);
      }
    }
    emulator.resetCalls();
    const timed: Timed[] = [];
    let cpu = 0;
    let seconds = 0;
    const c0 = network.connectionsOpened(backend.kind);
    if (!cold) {
      const s0 = await backend.sample();
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        try {
          timed.push(await op());
        } catch (error) {
          this.errors.push(error as Error);
        }
      }
      seconds = (performance.now() - t0) / 1000;
      cpu = cpuMs(s0, await backend.sample());
    } else {
      for (let i = 0; i < count; i++) {
        await network.dropConnections(backend.kind);
        const s0 = await backend.sample();
        const t0 = performance.now();
        try {
          timed.push(await op());
        } catch (error) {
          this.errors.push(error as Error);
        }
        seconds += (performance.now() - t0) / 1000;
        cpu += cpuMs(s0, await backend.sample());
      }
    }
    this.connections += network.connectionsOpened(backend.kind) - c0;
    this.seconds += seconds;
    this.cpuMs += cpu;
    const calls = emulator.calls().filter(isBackendCall);
    this.calls.push(...calls);
    this.ms.push(...timed.map(t => t.ms));
    this.trips.push(...roundTripsPerRequest(timed, calls));
    checkErrors(this.what, this.errors, this.ms.length + this.errors.length);
  }

  result(): SeriesResult {
    const ops = this.ms.length || 1;
    return {
      latency: latencyStats(this.ms),
      roundTrips:
        this.latencyMs > 0 && this.model === 'per-request' && this.trips.length
          ? { median: median(this.trips), max: Math.max(...this.trips) }
          : null,
      calls: countCalls(this.calls, ops),
      cpuMsPerOp: round2(this.cpuMs / ops),
      connectionsPerOp: round2(this.connections / ops),
      seconds: round2(this.seconds),
      errors: this.errors.length,
    };
  }
}

function checkErrors(what: string, errors: Error[], count: number) {
  if (errors.length > Math.max(1, count * 0.02)) {
    throw new Error(
      `${what}: ${errors.length} of ${count} failed; first: ${errors[0].message}`,
    );
  }
}

/** What one throughput window measured. */
interface ThroughputWindow {
  /** /handler/frame latency of the sign-ins completed in the window. */
  ms: number[];
  starts: number[];
  consents: number[];
  seconds: number;
  backendCpuMs: number;
  harnessCpuMs: number;
  connections: number;
  errors: number;
}

/**
 * N browsers each run whole sign-ins in a loop; the ones that complete in
 * the window after the ramp-up are counted, with the backend's and the
 * harness's CPU time in the window.
 */
async function throughputWindow(options: {
  backend: RunningBackend;
  network: BenchNetwork;
  concurrency: number;
  rampMs: number;
  windowMs: number;
  nextUser: () => string;
  what: string;
}): Promise<ThroughputWindow> {
  const { backend, network, concurrency, rampMs, windowMs, nextUser } = options;
  // The window starts after the ramp-up and once every browser completed a
  // sign-in: the steady state, with the backend's pool grown to the load
  // (after the other backends' turns it may have closed every connection).
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const done: { end: number; timed: Timed }[] = [];
  const errors: Error[] = [];
  let backendCpuMs = 0;
  let harnessCpuMs = 0;
  let connections = 0;
  let firstDone!: () => void;
  let waiting = concurrency;
  const allFirstDone = new Promise<void>(r => {
    firstDone = r;
  });

  const sampler = (async () => {
    await sleep(rampMs);
    await allFirstDone;
    windowStart = performance.now();
    windowEnd = windowStart + windowMs;
    const s0 = await backend.sample();
    const h0 = process.cpuUsage();
    const c0 = network.connectionsOpened(backend.kind);
    await sleep(windowEnd - performance.now());
    const h1 = process.cpuUsage(h0);
    connections = network.connectionsOpened(backend.kind) - c0;
    backendCpuMs = cpuMs(s0, await backend.sample());
    harnessCpuMs = (h1.user + h1.system) / 1000;
  })();
  const lanes = Array.from({ length: concurrency }, async () => {
    const browser = new Browser(backend.url, network.emulator);
    let first = true;
    try {
      while (performance.now() < windowEnd) {
        try {
          const timed = await browser.signIn(ENV_CACHED, nextUser());
          done.push({ end: performance.now(), timed });
        } catch (error) {
          errors.push(error as Error);
        }
        if (first) {
          first = false;
          if (--waiting === 0) firstDone();
        }
      }
    } finally {
      browser.close();
    }
  });
  await Promise.all([sampler, ...lanes]);
  checkErrors(options.what, errors, done.length + errors.length);
  const counted = done.filter(d => d.end >= windowStart && d.end < windowEnd);
  return {
    ms: counted.map(d => d.timed.ms),
    starts: counted.map(d => d.timed.steps?.start ?? NaN),
    consents: counted.map(d => d.timed.steps?.consent ?? NaN),
    seconds: windowMs / 1000,
    backendCpuMs,
    harnessCpuMs,
    connections,
    errors: errors.length,
  };
}

/** The windows of one backend at one concurrency, together. */
function throughputResult(
  concurrency: number,
  windows: ThroughputWindow[],
): ThroughputResult {
  const ms = windows.flatMap(w => w.ms);
  const seconds = windows.reduce((a, w) => a + w.seconds, 0);
  const sum = (f: (w: ThroughputWindow) => number) =>
    windows.reduce((a, w) => a + f(w), 0);
  return {
    concurrency,
    signIns: ms.length,
    seconds: round2(seconds),
    signInsPerSecond: round2(ms.length / seconds),
    cpuMsPerSignIn: round2(sum(w => w.backendCpuMs) / (ms.length || 1)),
    p50: latencyStats(ms).p50,
    p95: latencyStats(ms).p95,
    mean: latencyStats(ms).mean,
    stepsP50: {
      start: latencyStats(windows.flatMap(w => w.starts)).p50,
      consent: latencyStats(windows.flatMap(w => w.consents)).p50,
    },
    harnessCpuPercent: Math.round(
      (sum(w => w.harnessCpuMs) / (seconds * 1000)) * 100,
    ),
    connectionsPerSignIn: round2(sum(w => w.connections) / (ms.length || 1)),
    perRound: windows.map(w => round2(w.ms.length / w.seconds)),
    connectionsPerRound: windows.map(w =>
      round2(w.connections / (w.ms.length || 1)),
    ),
    errors: sum(w => w.errors),
  };
}

/** The benchmark: one emulator, the backends side by side, every latency. */
export async function runBenchmark(
  options: BenchOptions,
): Promise<BenchResult> {
  const { log } = options;
  const startedAt = new Date();
  const t0 = performance.now();
  // ours as users run it, built before the CPUs are split (src/oursBuild.ts)
  const oursEntry = oursEntryFor(options.backends, log);
  const machine = machineInfo();
  machine.pinning = options.pin ? planCpuPinning() : null;
  if (machine.pinning) {
    pinProcess(process.pid, machine.pinning.harness);
    log(
      `harness on CPU ${machine.pinning.harness}, backends on CPU ${machine.pinning.backends}`,
    );
  } else if (options.pin) {
    log('not pinning CPUs: needs Linux, taskset and 2 or more CPUs');
  }
  // configs and logs of the backends: outside the repo, kept for reading
  const runDir = mkdtempSync(join(os.tmpdir(), 'bitbucket-bench-'));

  if (machine.loadAverageStart[0] > 0.5) {
    log(
      `load average ${machine.loadAverageStart[0]} at the start: other work is running, the figures (throughput and CPU first) will be noisy`,
    );
  }
  // the heap of one live session, before anything else is in this heap
  const sessionMemory = options.sessionMemorySessions
    ? await measureSessionMemory(options.sessionMemorySessions)
    : null;
  if (sessionMemory) {
    log(
      `session memory: ${sessionMemory.heapBytesPerSession} bytes of heap per live session (${sessionMemory.sessions} sessions; sealed record ${sessionMemory.sealedChars} chars)`,
    );
  }
  const users = benchUsers(options.users);
  const entitiesFile = join(runDir, 'entities.json');
  writeFileSync(entitiesFile, JSON.stringify(benchEntities(users)));
  // the harness's clock, which the session model moves on (with the backends')
  let clockOffsetMs = 0;
  const network = await startBenchNetwork({
    model: options.network,
    seed: benchSeed(users),
    backends: options.backends,
    runDir,
    now: () => Date.now() + clockOffsetMs,
  });
  const emulator = network.emulator;
  log(
    `emulator on ${emulator.url} (HTTPS, network model ${options.network}), ${
      users.length
    } users; backend logs in ${runDir}${
      options.keepLogs ? '' : ' (removed after a successful run)'
    }`,
  );
  let userCursor = 0;
  const nextUser = () => users[userCursor++ % users.length].uuid;

  const backends: RunningBackend[] = [];
  const infos = new Map<BackendKind, BackendInfo>();
  const cells: CellResult[] = [];
  let session: SessionResult[] = [];

  try {
    for (const kind of options.backends) {
      const backend = await startBackend({
        kind,
        network,
        workDir: runDir,
        entitiesFile,
        cpus: machine.pinning?.backends,
        oursSettings: options.oursSettings,
        oursEntry,
      });
      backends.push(backend);
      const sample = await backend.sample({ gc: true });
      infos.set(kind, {
        kind,
        module: MODULES[kind],
        setup: setupOf(kind),
        membership: membershipOf(kind),
        code:
          kind === 'upstream' || (runsBuilt(kind) && oursEntry)
            ? 'built JavaScript'
            : 'TypeScript sources',
        startupMs: Math.round(backend.startupMs),
        rssBeforeMb: mb(sample.rssBytes),
        rssAfterMb: NaN,
        peakRssMb: NaN,
        heapUsedBeforeMb: mb(sample.heapUsedBytes),
        heapUsedAfterMb: NaN,
        rssAfterLatencyMb: {},
        rssAfterSeriesMb: NaN,
        heapUsedAfterSeriesMb: NaN,
        outsideHeapBeforeMb: mb(sample.rssBytes - sample.heapTotalBytes),
        outsideHeapAfterSeriesMb: NaN,
        liveSessionsAfterSeries: 0,
        log: join(runDir, `${kind}.log`),
      });
      log(
        `${kind}: pid ${backend.pid}, ${backend.url}, started in ${Math.round(
          backend.startupMs,
        )} ms, RSS ${mb(sample.rssBytes)} MB`,
      );
    }

    // JIT warm-up, without latency: sign-ins and refreshes of both kinds
    network.setRtt(0);
    for (const backend of backends) {
      const browser = new Browser(backend.url, emulator);
      try {
        for (let i = 0; i < options.warmup.start; i++) {
          await browser.signIn(ENV_CACHED, nextUser());
          if (i % 4 === 0) await browser.refresh(ENV_CACHED);
        }
      } finally {
        browser.close();
      }
    }
    log(`warmed up: ${options.warmup.start} sign-ins per backend`);

    for (const latencyMs of options.latencies) {
      const phaseStart = performance.now();
      const busy0 = machineBusyMs();
      const own0 = await ownCpuMs(backends);
      network.setRtt(latencyMs);
      const tag = (kind: BackendKind) => `${latencyMs} ms ${kind}`;
      const browsers = new Map(
        backends.map(b => [b.kind, new Browser(b.url, emulator)]),
      );
      try {
        for (const backend of backends) {
          const browser = browsers.get(backend.kind)!;
          for (let i = 0; i < options.warmup.perLatency; i++) {
            await browser.signIn(ENV_CACHED, nextUser());
          }
        }

        // sign-ins one at a time, warm then cold, the backends taking turns
        const newSeries = (what: string) =>
          new Map(
            backends.map(b => [
              b.kind,
              new Series(`${tag(b.kind)} ${what}`, latencyMs, options.network),
            ]),
          );
        const signIns = newSeries('sign-ins');
        const coldSignIns = newSeries('cold sign-ins');
        const warmCounts = split(options.signIns, options.rounds);
        const coldCounts = split(options.cold.signIns, options.rounds);
        for (let round = 0; round < options.rounds; round++) {
          for (const backend of backends) {
            const browser = browsers.get(backend.kind)!;
            if (warmCounts[round]) {
              await signIns
                .get(backend.kind)!
                .run(backend, network, warmCounts[round], () =>
                  browser.signIn(ENV_CACHED, nextUser()),
                );
            }
            if (coldCounts[round]) {
              await coldSignIns
                .get(backend.kind)!
                .run(
                  backend,
                  network,
                  coldCounts[round],
                  () =>
                    browser.signIn(
                      ENV_CACHED,
                      nextUser(),
                      'account',
                      options.cold.consentMs,
                    ),
                  true,
                );
            }
          }
        }

        // refreshes one at a time, each series in its own signed-in browser
        const refreshPlan = backends.flatMap(backend => {
          const envs =
            backend.kind === 'upstream'
              ? [ENV_CACHED]
              : [ENV_CACHED, ENV_UNCACHED];
          const count =
            backend.kind === 'ours-sequential'
              ? Math.max(1, Math.ceil(options.refreshes / 2))
              : options.refreshes;
          return envs.flatMap(env =>
            [false, true].map(cold => ({
              backend,
              env,
              cold,
              count: cold ? options.cold.refreshes : count,
              browser: new Browser(backend.url, emulator),
              series: new Series(
                `${tag(backend.kind)} ${cold ? 'cold ' : ''}refreshes (${env})`,
                latencyMs,
                options.network,
              ),
            })),
          );
        });
        try {
          for (const p of refreshPlan) {
            await p.browser.signIn(p.env, nextUser());
          }
          for (let round = 0; round < options.rounds; round++) {
            for (const p of refreshPlan) {
              const count = split(p.count, options.rounds)[round] ?? 0;
              if (count) {
                await p.series.run(
                  p.backend,
                  network,
                  count,
                  () => p.browser.refresh(p.env),
                  p.cold,
                );
              }
            }
          }
        } finally {
          refreshPlan.forEach(p => p.browser.close());
        }

        // throughput, the backends taking turns at each concurrency
        const throughput = new Map<BackendKind, ThroughputResult[]>(
          backends.map(b => [b.kind, []]),
        );
        for (const concurrency of options.concurrency) {
          if (concurrency === 1) {
            for (const backend of backends) {
              const series = signIns.get(backend.kind)!.result();
              throughput.get(backend.kind)!.push({
                concurrency,
                signIns: series.latency.samples,
                seconds: series.seconds,
                signInsPerSecond: round2(
                  series.latency.samples / series.seconds,
                ),
                cpuMsPerSignIn: series.cpuMsPerOp,
                p50: series.latency.p50,
                errors: series.errors,
              });
            }
            continue;
          }
          const windows = new Map<BackendKind, ThroughputWindow[]>(
            backends.map(b => [b.kind, []]),
          );
          const { rampMs, windowMs, rounds } = options.throughput;
          for (let round = 0; round < rounds; round++) {
            // the order turns around every round: no backend always runs
            // right after the same one (or always first after a pause)
            const order = round % 2 ? [...backends].reverse() : backends;
            for (const backend of order) {
              windows.get(backend.kind)!.push(
                await throughputWindow({
                  backend,
                  network,
                  concurrency,
                  rampMs,
                  windowMs: windowMs / rounds,
                  nextUser,
                  what: `${tag(backend.kind)} at concurrency ${concurrency}`,
                }),
              );
            }
          }
          for (const backend of backends) {
            throughput
              .get(backend.kind)!
              .push(throughputResult(concurrency, windows.get(backend.kind)!));
          }
        }

        for (const backend of backends) {
          const kind = backend.kind;
          const signIn = signIns.get(kind)!.result();
          const refresh = (env: string, cold: boolean) =>
            refreshPlan
              .find(
                p => p.backend === backend && p.env === env && p.cold === cold,
              )
              ?.series.result();
          const refreshCached = refresh(ENV_CACHED, false)!;
          const refreshCachedCold = refresh(ENV_CACHED, true)!;
          const durations = signIns.get(kind)!.calls.map(c => c.durationMs);
          const cell: CellResult = {
            latencyMs,
            backend: kind,
            signIn,
            refreshCached,
            refreshUncached: refresh(ENV_UNCACHED, false) ?? refreshCached,
            signInCold: coldSignIns.get(kind)!.result(),
            refreshCachedCold,
            refreshUncachedCold:
              refresh(ENV_UNCACHED, true) ?? refreshCachedCold,
            throughput: throughput.get(kind)!,
            backendCallMs: {
              min: round2(Math.min(...durations)),
              p50: round2(median(durations)),
            },
          };
          cells.push(cell);
          log(
            `${tag(kind)}: sign-in p50 warm ${signIn.latency.p50} / cold ${
              cell.signInCold.latency.p50
            } ms (${signIn.calls.rest} REST calls), refresh p50 warm ${
              refreshCached.latency.p50
            } / ${cell.refreshUncached.latency.p50} ms, cold ${
              refreshCachedCold.latency.p50
            } / ${
              cell.refreshUncachedCold.latency.p50
            } ms, sign-ins/s ${cell.throughput
              .map(t => `${t.signInsPerSecond} (c${t.concurrency})`)
              .join(' ')}, ${signIn.cpuMsPerOp} CPU ms`,
          );
        }
      } finally {
        browsers.forEach(b => b.close());
      }
      for (const backend of backends) {
        const sample = await backend.sample({ gc: true });
        infos.get(backend.kind)!.rssAfterLatencyMb[String(latencyMs)] = mb(
          sample.rssBytes,
        );
      }
      const busy1 = machineBusyMs();
      const own1 = await ownCpuMs(backends);
      const phaseMs = performance.now() - phaseStart;
      const other =
        busy0 === undefined || busy1 === undefined
          ? null
          : Math.max(
              0,
              Math.round(((busy1 - busy0 - (own1 - own0)) / phaseMs) * 100),
            );
      machine.phases.push({
        latencyMs,
        seconds: round2(phaseMs / 1000),
        otherCpuPercent: other,
        loadAverageEnd: round2(os.loadavg()[0]),
      });
      if (other !== null && other > 10) {
        log(
          `${latencyMs} ms: other processes used about ${other} % of a core meanwhile: throughput and CPU figures are disturbed`,
        );
      }
    }

    // the same work done by every backend: the memory compared, once every
    // backend has closed its idle connections (keep-alive: 4 s in undici,
    // 5 s in Node's https agent), so that it is what they keep
    await sleep(KEEP_ALIVE_OUTLIVED_MS);
    for (const backend of backends) {
      const sample = await backend.sample({ gc: true });
      const info = infos.get(backend.kind)!;
      info.rssAfterSeriesMb = mb(sample.rssBytes);
      info.heapUsedAfterSeriesMb = mb(sample.heapUsedBytes);
      info.outsideHeapAfterSeriesMb = mb(
        sample.rssBytes - sample.heapTotalBytes,
      );
      // upstream keeps no session; ours keeps one per sign-in in its cached
      // environment (the uncached one has profileCacheTtl 0: none kept)
      info.liveSessionsAfterSeries =
        backend.kind === 'upstream'
          ? 0
          : signInsCompleted(backend.url, ENV_CACHED);
    }

    if (options.session) {
      const sessionBackends = backends.filter(
        b => b.kind !== 'ours-sequential',
      );
      const rtt = Math.max(...options.latencies);
      network.setRtt(rtt);
      session = await runSessionModel({
        ...options.session,
        rttMs: rtt,
        backends: sessionBackends,
        network,
        env: ENV_CACHED,
        users: sessionBackends.map(() => nextUser()),
        consentMs: options.cold.consentMs,
        advanceClock: async ms => {
          clockOffsetMs += ms;
          await Promise.all(backends.map(b => b.setClock(clockOffsetMs)));
        },
        clock: () => Date.now() + clockOffsetMs,
        log,
      });
    }

    for (const backend of backends) {
      const sample = await backend.sample({ gc: true });
      const info = infos.get(backend.kind)!;
      info.rssAfterMb = mb(sample.rssBytes);
      info.peakRssMb = mb(sample.peakRssBytes);
      info.heapUsedAfterMb = mb(sample.heapUsedBytes);
    }
  } catch (error) {
    (error as Error).message += ` (the backends' logs: ${runDir})`;
    throw error;
  } finally {
    await Promise.all(backends.map(b => b.stop()));
    await network.close();
  }
  if (!options.keepLogs) {
    rmSync(runDir, { recursive: true, force: true });
    infos.forEach(info => (info.log = null));
  }

  machine.loadAverageEnd = os.loadavg().map(round2);
  const settings: BenchSettings = {
    latencies: options.latencies,
    network: options.network,
    cold: options.cold,
    session: options.session,
    signIns: options.signIns,
    refreshes: options.refreshes,
    concurrency: options.concurrency,
    throughput: options.throughput,
    warmup: options.warmup,
    rounds: options.rounds,
    backends: options.backends,
    users: options.users,
    sessionMemorySessions: options.sessionMemorySessions,
    keepLogs: options.keepLogs,
    pin: options.pin,
    oursSettings: options.oursSettings,
  };
  const backendInfos = options.backends.map(kind => infos.get(kind)!);
  const result: BenchResult = {
    schemaVersion: 2,
    source: sourceInfo(),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: Math.round((performance.now() - t0) / 100) / 10,
    machine,
    options: settings,
    method: METHOD,
    backends: backendInfos,
    cells,
    ratios: ratios(cells),
    session,
    sessionMemory,
    verdict: judge({
      cells,
      backends: backendInfos,
      session,
      network: options.network,
      sessionMemory,
    }),
  };
  mkdirSync(dirname(options.outFile), { recursive: true });
  writeFileSync(options.outFile, stringifyJson(result));
  return result;
}

function cellOf(cells: CellResult[], latencyMs: number, kind: BackendKind) {
  return cells.find(c => c.latencyMs === latencyMs && c.backend === kind);
}

/** The ratios ours / upstream, per latency. */
export function ratios(cells: CellResult[]): Ratio[] {
  const out: Ratio[] = [];
  const latencies = [...new Set(cells.map(c => c.latencyMs))];
  for (const latencyMs of latencies) {
    const ours = cellOf(cells, latencyMs, 'ours');
    const upstream = cellOf(cells, latencyMs, 'upstream');
    if (!ours || !upstream) continue;
    const add = (metric: string, a: number, b: number) =>
      out.push({
        latencyMs,
        metric,
        ours: a,
        upstream: b,
        ratio: round2(a / b),
      });
    add('sign-in p50 ms', ours.signIn.latency.p50, upstream.signIn.latency.p50);
    add('sign-in p95 ms', ours.signIn.latency.p95, upstream.signIn.latency.p95);
    add('sign-in p99 ms', ours.signIn.latency.p99, upstream.signIn.latency.p99);
    add(
      'sign-in p50 ms, cold',
      ours.signInCold.latency.p50,
      upstream.signInCold.latency.p50,
    );
    add(
      'refresh p50 ms, cold (ours cached; upstream has no cache)',
      ours.refreshCachedCold.latency.p50,
      upstream.refreshCachedCold.latency.p50,
    );
    add(
      'refresh p50 ms (ours cached; upstream has no cache)',
      ours.refreshCached.latency.p50,
      upstream.refreshCached.latency.p50,
    );
    add(
      'refresh p50 ms (no cache)',
      ours.refreshUncached.latency.p50,
      upstream.refreshUncached.latency.p50,
    );
    for (const t of ours.throughput) {
      const u = upstream.throughput.find(x => x.concurrency === t.concurrency);
      if (u) {
        add(
          `sign-ins/s at concurrency ${t.concurrency}`,
          t.signInsPerSecond,
          u.signInsPerSecond,
        );
      }
    }
    add(
      'CPU ms per sign-in',
      ours.signIn.cpuMsPerOp,
      upstream.signIn.cpuMsPerOp,
    );
    add(
      'REST calls per sign-in',
      ours.signIn.calls.rest,
      upstream.signIn.calls.rest,
    );
  }
  return out;
}
