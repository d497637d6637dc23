import { BenchResult, CellResult, SeriesResult } from './bench';
import { markdownTable } from './format';
import { BackendKind } from './protocol';

const COLUMNS: BackendKind[] = ['upstream', 'ours', 'ours-sequential'];

function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined || Number.isNaN(n)) return '–';
  return n.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !b) return '–';
  return `${(a / b).toFixed(2)}×`;
}

function trips(s: SeriesResult | undefined): string {
  return s?.roundTrips ? String(s.roundTrips.median) : '–';
}

interface Row {
  label: string;
  value: (c: CellResult) => number | undefined;
  text?: (c: CellResult) => string;
  /** Ratio columns make sense for this row. */
  ratio?: boolean;
  /** The upstream figure is its only refresh series (it has no profile cache). */
  upstreamNote?: boolean;
}

function rows(concurrency: number[]): Row[] {
  const base: Row[] = [
    {
      label: 'sign-in p50 (ms)',
      value: c => c.signIn.latency.p50,
      ratio: true,
    },
    {
      label: 'sign-in p95 (ms)',
      value: c => c.signIn.latency.p95,
      ratio: true,
    },
    {
      label: 'sign-in p99 (ms)',
      value: c => c.signIn.latency.p99,
      ratio: true,
    },
    {
      label: 'round trips to Bitbucket per sign-in',
      value: c => c.signIn.roundTrips?.median,
      text: c => trips(c.signIn),
    },
    {
      label: 'calls per sign-in: token + REST',
      value: c => c.signIn.calls.rest,
      text: c =>
        `${fmt(c.signIn.calls.token, 0)} + ${fmt(c.signIn.calls.rest, 0)}`,
    },
    {
      label: 'refresh p50, profile cached (ms)',
      value: c => c.refreshCached.latency.p50,
      ratio: true,
      upstreamNote: true,
    },
    {
      label: 'refresh p95, profile cached (ms)',
      value: c => c.refreshCached.latency.p95,
      ratio: true,
      upstreamNote: true,
    },
    {
      label: 'refresh p50, no cache (ms)',
      value: c => c.refreshUncached.latency.p50,
      ratio: true,
    },
    {
      label: 'refresh p95, no cache (ms)',
      value: c => c.refreshUncached.latency.p95,
      ratio: true,
    },
    {
      label: 'round trips per refresh: cached / no cache',
      value: c => c.refreshCached.roundTrips?.median,
      text: c => `${trips(c.refreshCached)} / ${trips(c.refreshUncached)}`,
    },
    {
      label: 'calls per refresh, cached: token + REST',
      value: c => c.refreshCached.calls.rest,
      text: c =>
        `${fmt(c.refreshCached.calls.token, 0)} + ${fmt(
          c.refreshCached.calls.rest,
          0,
        )}`,
      upstreamNote: true,
    },
    {
      label: 'calls per refresh, no cache: token + REST',
      value: c => c.refreshUncached.calls.rest,
      text: c =>
        `${fmt(c.refreshUncached.calls.token, 0)} + ${fmt(
          c.refreshUncached.calls.rest,
          0,
        )}`,
    },
  ];
  for (const n of concurrency) {
    base.push({
      label: `sign-ins/s at concurrency ${n}`,
      value: c => c.throughput.find(t => t.concurrency === n)?.signInsPerSecond,
      ratio: true,
    });
  }
  const top = Math.max(...concurrency);
  base.push(
    {
      label: 'CPU ms per sign-in (concurrency 1)',
      value: c => c.signIn.cpuMsPerOp,
      ratio: true,
    },
    {
      label: `CPU ms per sign-in (concurrency ${top})`,
      value: c => c.throughput.find(t => t.concurrency === top)?.cpuMsPerSignIn,
      ratio: true,
    },
    {
      label: `harness CPU at concurrency ${top} (% of a core)`,
      value: c =>
        c.throughput.find(t => t.concurrency === top)?.harnessCpuPercent,
      text: c =>
        fmt(
          c.throughput.find(t => t.concurrency === top)?.harnessCpuPercent,
          0,
        ),
    },
    {
      label: 'CPU ms per refresh, cached / no cache',
      value: c => c.refreshCached.cpuMsPerOp,
      text: c =>
        `${fmt(c.refreshCached.cpuMsPerOp)} / ${fmt(
          c.refreshUncached.cpuMsPerOp,
        )}`,
    },
  );
  return base;
}

/** One latency's table: rows are metrics, columns the backends and the ratios. */
export function latencyTable(result: BenchResult, latencyMs: number): string {
  const cells = new Map(
    result.cells
      .filter(c => c.latencyMs === latencyMs)
      .map(c => [c.backend, c]),
  );
  const present = COLUMNS.filter(k => cells.has(k));
  const header = ['metric'];
  for (const kind of present) {
    header.push(kind === 'ours-sequential' ? 'ours, sequential' : kind);
    if (kind === 'ours' && cells.has('upstream'))
      header.push('ours / upstream');
    if (kind === 'ours-sequential' && cells.has('ours')) {
      header.push('sequential / ours');
    }
  }
  const body = rows(result.options.concurrency).map(row => {
    const out = [row.label];
    for (const kind of present) {
      const c = cells.get(kind)!;
      let text = row.text ? row.text(c) : fmt(row.value(c));
      if (kind === 'upstream' && row.upstreamNote) text += ' ¹';
      out.push(text);
      if (kind === 'ours' && cells.has('upstream')) {
        out.push(
          row.ratio
            ? ratio(row.value(c), row.value(cells.get('upstream')!))
            : '',
        );
      }
      if (kind === 'ours-sequential' && cells.has('ours')) {
        out.push(
          row.ratio ? ratio(row.value(c), row.value(cells.get('ours')!)) : '',
        );
      }
    }
    return out;
  });
  return markdownTable(
    header,
    body,
    header.map((_, i) => (i === 0 ? 'left' : 'right')),
  );
}

export function memoryTable(result: BenchResult): string {
  return markdownTable(
    [
      'backend',
      'start-up (ms)',
      'RSS before (MB)',
      'RSS after (MB)',
      'peak RSS (MB)',
      'heap before (MB)',
      'heap after (MB)',
    ],
    result.backends.map(b => [
      b.kind,
      String(b.startupMs),
      fmt(b.rssBeforeMb),
      fmt(b.rssAfterMb),
      fmt(b.peakRssMb),
      fmt(b.heapUsedBeforeMb),
      fmt(b.heapUsedAfterMb),
    ]),
    ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}

export function targetsTable(result: BenchResult): string {
  return markdownTable(
    ['RTT (ms)', 'target (ours)', 'measured', 'limit', 'met'],
    result.targets.map(t => {
      const calls = t.target.startsWith('0 REST');
      return [
        String(t.latencyMs),
        t.target,
        fmt(t.value, calls ? 2 : 1),
        t.target.includes('≥ upstream')
          ? `${fmt(t.limit)} (upstream)`
          : fmt(t.limit, calls ? 0 : 1),
        t.met ? 'met' : '**not met**',
      ];
    }),
    ['right', 'left', 'right', 'right', 'left'],
  );
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const seconds = (ms: number) => `${ms / 1000} s`;

/** The whole report, as Markdown. */
export function renderReport(result: BenchResult): string {
  const m = result.machine;
  const o = result.options;
  const machine = `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, Node ${
    m.node
  }, ${m.platform}; load average ${m.loadAverageStart.join(
    ' ',
  )} at the start, ${m.loadAverageEnd.join(' ')} at the end; ${
    m.pinning
      ? `harness (emulator and browsers) on CPU ${m.pinning.harness}, backends on CPU ${m.pinning.backends}`
      : 'no CPU pinning'
  }`;
  const others = m.phases
    .filter(p => p.otherCpuPercent !== null)
    .map(p => `${p.otherCpuPercent} % during the ${p.latencyMs} ms phase`);
  const parts = [
    `Run ${result.startedAt}, ${result.durationSeconds} s, of commit ${
      result.source.commit?.slice(0, 7) ?? 'unknown'
    }${
      result.source.moduleUncommittedChanges
        ? ' with uncommitted changes to the module'
        : ''
    }. ${machine}.${
      others.length
        ? ` Meanwhile other processes (and kernel time charged to none) used, in % of one core: ${others.join(
            ', ',
          )}.`
        : ''
    }`,
    `Per backend and latency: ${o.signIns} sign-ins one at a time; ${
      o.refreshes
    } refreshes per series (the sequential variant ${Math.ceil(
      o.refreshes / 2,
    )}); throughput counted over ${seconds(o.throughput.windowMs)} in ${plural(
      o.throughput.rounds,
      'round',
    )}, each after a ${seconds(o.throughput.rampMs)} ramp-up. ${
      o.users
    } distinct users; ${plural(
      o.rounds,
      'round',
    )} in which the backends take turns; ${plural(
      o.warmup.start,
      'warm-up sign-in',
    )} per backend first.`,
  ];
  for (const latencyMs of result.options.latencies) {
    parts.push(
      `### ${latencyMs} ms injected per Bitbucket call`,
      latencyTable(result, latencyMs),
    );
  }
  parts.push(
    '¹ upstream has no profile cache: every refresh fetches /2.0/user again; its one refresh series is shown in both rows.',
    '### Memory',
    memoryTable(result),
    '### Targets (reported, not asserted; RTT = the injected latency)',
    targetsTable(result),
  );
  return `${parts.join('\n\n')}\n`;
}
