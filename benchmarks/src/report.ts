import { BenchResult, CellResult, SeriesResult } from './bench';
import { markdownTable } from './format';
import { BackendKind } from './protocol';
import { Verdict } from './verdict';

const COLUMNS: BackendKind[] = [
  'upstream',
  'ours',
  'ours-bitbucket',
  'ours-sequential',
];
/** The column headers (the setups are listed under the tables). */
const HEADERS: Record<BackendKind, string> = {
  upstream: 'upstream',
  ours: 'ours',
  'ours-bitbucket': 'ours, Bitbucket membership',
  'ours-sequential': 'ours, sequential',
};

function fmt(n: number | null | undefined, digits = 1): string {
  // NaN in the JSON is null
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
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
      label: 'round trips per sign-in (emulator record; per-request model)',
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
      label: 'round trips per refresh: cached / no cache (same)',
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
      label: `new connections per sign-in at concurrency ${top}`,
      value: c =>
        c.throughput.find(t => t.concurrency === top)?.connectionsPerSignIn,
      text: c =>
        fmt(
          c.throughput.find(t => t.concurrency === top)?.connectionsPerSignIn,
          2,
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

const inRtts = (ms: number | undefined, rtt: number) =>
  ms === undefined || !rtt ? '–' : (ms / rtt).toFixed(2);

/** The cold series: each request after the backend's connections were dropped. */
function coldRows(latencyMs: number): Row[] {
  const cold: Row[] = [
    {
      label: 'sign-in p50, cold (ms)',
      value: c => c.signInCold.latency.p50,
      ratio: true,
    },
    {
      label: 'sign-in p95, cold (ms)',
      value: c => c.signInCold.latency.p95,
      ratio: true,
    },
    {
      label: 'sign-in p50, cold − warm (ms)',
      value: c => c.signInCold.latency.p50 - c.signIn.latency.p50,
    },
    {
      label: 'refresh p50, profile cached, cold (ms)',
      value: c => c.refreshCachedCold.latency.p50,
      ratio: true,
      upstreamNote: true,
    },
    {
      label: 'refresh p50, no cache, cold (ms)',
      value: c => c.refreshUncachedCold.latency.p50,
      ratio: true,
    },
    {
      label: 'new connections per sign-in: warm / cold',
      value: c => c.signInCold.connectionsPerOp,
      text: c =>
        `${fmt(c.signIn.connectionsPerOp, 2)} / ${fmt(
          c.signInCold.connectionsPerOp,
          2,
        )}`,
    },
    {
      label: 'new connections per refresh, cold: cached / no cache',
      value: c => c.refreshCachedCold.connectionsPerOp,
      text: c =>
        `${fmt(c.refreshCachedCold.connectionsPerOp, 2)} / ${fmt(
          c.refreshUncachedCold.connectionsPerOp,
          2,
        )}`,
    },
    {
      label: 'calls per cold sign-in: token + REST',
      value: c => c.signInCold.calls.rest,
      text: c =>
        `${fmt(c.signInCold.calls.token, 0)} + ${fmt(
          c.signInCold.calls.rest,
          0,
        )}`,
    },
  ];
  if (latencyMs > 0) {
    cold.splice(3, 0, {
      label: 'sign-in p50 in round trips: warm / cold',
      value: c => c.signInCold.latency.p50,
      text: c =>
        `${inRtts(c.signIn.latency.p50, latencyMs)} / ${inRtts(
          c.signInCold.latency.p50,
          latencyMs,
        )}`,
    });
    cold.push({
      label: 'refresh p50 in round trips, cold: cached / no cache',
      value: c => c.refreshCachedCold.latency.p50,
      text: c =>
        `${inRtts(c.refreshCachedCold.latency.p50, latencyMs)} / ${inRtts(
          c.refreshUncachedCold.latency.p50,
          latencyMs,
        )}`,
    });
  }
  return cold;
}

/** One latency's table: rows are metrics, columns the backends and the ratios. */
export function latencyTable(
  result: BenchResult,
  latencyMs: number,
  which: 'warm' | 'cold' = 'warm',
): string {
  const cells = new Map(
    result.cells
      .filter(c => c.latencyMs === latencyMs)
      .map(c => [c.backend, c]),
  );
  const present = COLUMNS.filter(k => cells.has(k));
  const header = ['metric'];
  for (const kind of present) {
    header.push(HEADERS[kind]);
    if (kind === 'ours' && cells.has('upstream'))
      header.push('ours / upstream');
    if (kind === 'ours-bitbucket' && cells.has('upstream'))
      header.push('/ upstream');
    if (kind === 'ours-sequential' && cells.has('ours')) {
      header.push('sequential / ours');
    }
  }
  const body = (
    which === 'warm' ? rows(result.options.concurrency) : coldRows(latencyMs)
  ).map(row => {
    const out = [row.label];
    for (const kind of present) {
      const c = cells.get(kind)!;
      let text = row.text ? row.text(c) : fmt(row.value(c));
      if (kind === 'upstream' && row.upstreamNote) text += ' ¹';
      out.push(text);
      if (
        (kind === 'ours' || kind === 'ours-bitbucket') &&
        cells.has('upstream')
      ) {
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
      'RSS after the series (MB)',
      'heap after the series (MB)',
      'outside the V8 heap: before / after the series (MB)',
      'live sessions after the series',
      'RSS at the end (MB)',
      'peak RSS (MB)',
      'heap before (MB)',
      'heap after (MB)',
    ],
    result.backends.map(b => [
      b.kind,
      String(b.startupMs),
      fmt(b.rssBeforeMb),
      fmt(b.rssAfterSeriesMb),
      fmt(b.heapUsedAfterSeriesMb),
      `${fmt(b.outsideHeapBeforeMb)} / ${fmt(b.outsideHeapAfterSeriesMb)}`,
      String(b.liveSessionsAfterSeries ?? '–'),
      fmt(b.rssAfterMb),
      fmt(b.peakRssMb),
      fmt(b.heapUsedBeforeMb),
      fmt(b.heapUsedAfterMb),
    ]),
    [
      'left',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
    ],
  );
}

const UNIT_DIGITS: Record<Verdict['unit'], number> = {
  ms: 1,
  '×': 2,
  MB: 1,
  calls: 2,
  tabs: 0,
  connections: 2,
  bytes: 0,
};

/** Every target, judged: one line each. */
export function verdictTable(verdict: Verdict[]): string {
  return markdownTable(
    ['RTT (ms)', 'target (ours)', 'measured', 'limit', 'detail', 'met'],
    verdict.map(v => {
      const digits = UNIT_DIGITS[v.unit];
      const unit = v.unit === '×' ? '×' : ` ${v.unit}`;
      return [
        v.latencyMs === null ? 'all' : String(v.latencyMs),
        v.target,
        `${fmt(v.value, digits)}${unit}`,
        `${v.comparison} ${fmt(v.limit, digits)}${unit}`,
        v.detail,
        v.met ? 'met' : '**missed**',
      ];
    }),
    ['right', 'left', 'right', 'right', 'left', 'left'],
  );
}

/** The session model, ours and upstream side by side. */
export function sessionTable(result: BenchResult): string {
  const days = result.session;
  if (!days.length) return '';
  const row = (label: string, f: (d: (typeof days)[number]) => string) => [
    label,
    ...days.map(f),
  ];
  return markdownTable(
    ['metric', ...days.map(d => d.backend)],
    [
      row('page loads / tabs', d => `${d.pageLoads} / ${d.tabs}`),
      row('signed-out tabs', d => String(d.signedOutTabs)),
      row(
        'tabs on page loads that called Bitbucket',
        d =>
          `${d.tabsOnBitbucketLoads} (${fmt(
            (100 * d.tabsOnBitbucketLoads) / Math.max(1, d.tabs),
            1,
          )} %)`,
      ),
      row('sign-ins (the first, then again after a page load signed out)', d =>
        String(d.signIns),
      ),
      row('REST calls per user-hour', d => fmt(d.restCallsPerUserHour, 2)),
      row('token calls per user-hour', d => fmt(d.tokenCallsPerUserHour, 2)),
      row('page-load /refresh p50 (ms)', d => fmt(d.refresh.p50)),
      row('page-load /refresh p95 (ms)', d => fmt(d.refresh.p95)),
    ],
    ['left', ...days.map(() => 'right' as const)],
  );
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const seconds = (ms: number) => `${ms / 1000} s`;

/** Names the `--ours` settings, so that no table is read as the defaults'. */
export function oursSettingsLine(
  settings: Record<string, unknown> = {},
): string {
  const entries = Object.entries(settings);
  if (!entries.length) return '';
  return ` **Ours runs with ${entries
    .map(([key, value]) => `\`${key}: ${JSON.stringify(value)}\``)
    .join(', ')} on top of the bench's config, not the module's defaults.**`;
}

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
    `Network model: ${o.network}. Per backend and latency: ${
      o.signIns
    } warm and ${o.cold.signIns} cold sign-ins one at a time (cold: ${
      o.cold.consentMs
    } ms on the consent page); ${
      o.refreshes
    } warm refreshes per series (the sequential variant ${Math.ceil(
      o.refreshes / 2,
    )}) and ${o.cold.refreshes} cold; throughput counted over ${seconds(
      o.throughput.windowMs,
    )} in ${plural(o.throughput.rounds, 'round')}, each after a ${seconds(
      o.throughput.rampMs,
    )} ramp-up. ${o.users} distinct users; ${plural(
      o.rounds,
      'round',
    )} in which the backends take turns; ${plural(
      o.warmup.start,
      'warm-up sign-in',
    )} per backend first.${oursSettingsLine(o.oursSettings)}`,
  ];
  parts.push(
    `Setups:\n\n${result.backends
      .map(
        b =>
          `- **${HEADERS[b.kind]}**: ${b.setup ?? b.module}${
            b.code ? ` (${b.code})` : ''
          }`,
      )
      .join('\n')}`,
  );
  const per =
    o.network === 'relay'
      ? 'round trip to Bitbucket (relay: handshakes included)'
      : 'Bitbucket call (per request: handshakes free)';
  for (const latencyMs of result.options.latencies) {
    parts.push(
      `### ${latencyMs} ms per ${per}: warm`,
      latencyTable(result, latencyMs, 'warm'),
      `### ${latencyMs} ms per ${per}: cold (connections dropped before each request)`,
      latencyTable(result, latencyMs, 'cold'),
    );
  }
  parts.push(
    '¹ upstream has no profile cache: every refresh fetches /2.0/user again; its one refresh series is shown in both rows.',
    '### Memory',
    memoryTable(result),
  );
  if (result.session.length && o.session) {
    parts.push(
      `### Session model: ${o.session.hours} simulated hours, a page load every ${o.session.pageLoadEveryMinutes} minutes, every ${o.session.burstEvery}th a burst of ${o.session.burstTabs} tabs, at ${result.session[0].rttMs} ms RTT`,
      sessionTable(result),
    );
  }
  const missed = result.verdict.filter(v => !v.met).length;
  parts.push(
    `### Verdict: ${result.verdict.length - missed} of ${
      result.verdict.length
    } targets met${missed ? `, ${missed} missed` : ''}`,
    verdictTable(result.verdict),
  );
  return `${parts.join('\n\n')}\n`;
}
