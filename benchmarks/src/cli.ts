import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  BenchOptions,
  DEFAULT_OPTIONS,
  runBenchmark,
  SMOKE_OPTIONS,
} from './bench';
import { moduleReads } from './backends';
import { BACKEND_KINDS, BackendKind } from './protocol';
// eslint-disable-next-line @backstage/no-forbidden-package-imports
import { KNOWN_KEYS } from '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider/src/config';
import { renderReport } from './report';
import { allMet } from './verdict';

const USAGE = `Usage: yarn bench [options]

Runs the Bitbucket Cloud emulator (HTTPS) and three backends (upstream, ours,
ours with sequential profile fetching) side by side, warm and cold, prints a
Markdown report with a verdict on every target, and writes results/latest.json
and results/latest.md in the benchmarks folder.

  --check                     exit non-zero when a target of the verdict is missed
  --latencies <ms,…>          round-trip time to Bitbucket (default 0,50,100)
  --network <model>           relay: on every round trip, handshakes included (default);
                              per-request: on every call, handshakes free
  --cold-sign-ins <n>         cold sign-ins per backend and latency (default 20)
  --cold-refreshes <n>        cold refreshes per series (default 20)
  --consent-ms <ms>           time on the consent page in a cold sign-in (default 500)
  --no-session                skip the session model (8 simulated hours per backend)
  --sign-ins <n>              sign-ins one at a time per backend and latency (default 200)
  --refreshes <n>             refreshes per series (default 50; the sequential variant half)
  --concurrency <n,…>         throughput levels (default 1,8,32)
  --window <ms>               measured window per backend and concurrency, in rounds of about 1 s (default 10000)
  --rounds <n>                rounds in which the backends take turns (default 4)
  --warmup <n>                unmeasured sign-ins per backend at the start (default 200)
  --backends <kind,…>         any of upstream,ours,ours-sequential (default all)
  --users <n>                 distinct seeded users (default 200)
  --out <file>                JSON output (default results/latest.json)
  --keep-logs                 keep the backends' configs and logs (a temporary folder)
  --no-pin                    do not give the harness and the backends CPUs of their own
  --ours <key>=<value>        a key of ours' provider config on top of the bench's, e.g.
                              --ours profileCacheTtl=30m (repeatable; the report names them)
  --smoke                     a few iterations of everything (for the smoke test)
  --help
`;

function numbers(value: string, flag: string): number[] {
  const list = value.split(',').map(v => Number(v.trim()));
  if (!list.length || list.some(n => !Number.isFinite(n) || n < 0)) {
    throw new Error(
      `${flag} expects numbers >= 0 separated by commas, got '${value}'`,
    );
  }
  return list;
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${flag} expects a whole number >= 1, got '${value}'`);
  }
  return n;
}

/** Keys the bench itself sets for every backend: `--ours` leaves them alone. */
const BENCH_KEYS = ['clientId', 'clientSecret', 'baseUrl', 'apiBaseUrl'];

/**
 * One `--ours key=value`: a key our module reads, and its value as JSON
 * when it parses (numbers, booleans, lists, objects), else as a string
 * (`30m`, `member`).
 */
function oursSetting(arg: string): [string, unknown] {
  const eq = arg.indexOf('=');
  const key = eq > 0 ? arg.slice(0, eq) : '';
  if (!key || eq === arg.length - 1) {
    throw new Error(
      `--ours expects <key>=<value>, e.g. profileCacheTtl=30m, got '${arg}'`,
    );
  }
  if (!moduleReads(key)) {
    throw new Error(
      `--ours: '${key}' is not a key of the module's provider config; use one of ${KNOWN_KEYS.filter(
        k => !BENCH_KEYS.includes(k),
      ).join(', ')}`,
    );
  }
  if (BENCH_KEYS.includes(key)) {
    throw new Error(
      `--ours: '${key}' is set by the bench (the emulator's consumer and relays) and cannot be changed`,
    );
  }
  const raw = arg.slice(eq + 1);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

/** Parses the command line; throws with the flag at fault. */
export function parseArgs(
  argv: string[],
  packageDir: string,
): (Omit<BenchOptions, 'log'> & { check: boolean }) | 'help' {
  const args = [...argv];
  const smoke = args.includes('--smoke');
  const defaults = smoke ? SMOKE_OPTIONS : DEFAULT_OPTIONS;
  const options: Omit<BenchOptions, 'log'> & { check: boolean } = {
    ...defaults,
    cold: { ...defaults.cold },
    outFile: join(packageDir, 'results', smoke ? 'smoke.json' : 'latest.json'),
    check: false,
  };
  while (args.length) {
    const arg = args.shift()!;
    const [flag, inline] = arg.split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? args.shift();
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--smoke':
        break;
      case '--check':
        options.check = true;
        break;
      case '--network': {
        const model = value();
        if (model !== 'relay' && model !== 'per-request') {
          throw new Error(
            `--network: unknown model '${model}'; use relay or per-request`,
          );
        }
        options.network = model;
        break;
      }
      case '--cold-sign-ins':
        options.cold.signIns = positive(value(), flag);
        break;
      case '--cold-refreshes':
        options.cold.refreshes = positive(value(), flag);
        break;
      case '--consent-ms':
        options.cold.consentMs = numbers(value(), flag)[0];
        break;
      case '--no-session':
        options.session = null;
        break;
      case '--keep-logs':
        options.keepLogs = true;
        break;
      case '--no-pin':
        options.pin = false;
        break;
      case '--latencies':
        options.latencies = numbers(value(), flag);
        break;
      case '--sign-ins':
        options.signIns = positive(value(), flag);
        break;
      case '--refreshes':
        options.refreshes = positive(value(), flag);
        break;
      case '--concurrency':
        options.concurrency = numbers(value(), flag).map(n =>
          positive(String(n), flag),
        );
        break;
      case '--window': {
        const windowMs = positive(value(), flag);
        options.throughput = {
          ...options.throughput,
          windowMs,
          // backends take turns every second or so: slow spells of the
          // machine hit them alike
          rounds: Math.max(1, Math.round(windowMs / 1000)),
        };
        break;
      }
      case '--rounds':
        options.rounds = positive(value(), flag);
        break;
      case '--warmup':
        options.warmup = {
          ...options.warmup,
          start: positive(value(), flag),
        };
        break;
      case '--users':
        options.users = positive(value(), flag);
        break;
      case '--backends': {
        const kinds = value().split(',') as BackendKind[];
        const bad = kinds.find(k => !BACKEND_KINDS.includes(k));
        if (bad) {
          throw new Error(
            `--backends: unknown backend '${bad}'; use ${BACKEND_KINDS.join(
              ', ',
            )}`,
          );
        }
        options.backends = BACKEND_KINDS.filter(k => kinds.includes(k));
        break;
      }
      case '--out':
        options.outFile = resolve(value());
        break;
      case '--ours': {
        const [key, setting] = oursSetting(value());
        options.oursSettings = { ...options.oursSettings, [key]: setting };
        break;
      }
      default:
        throw new Error(`unknown option '${arg}'\n\n${USAGE}`);
    }
  }
  return options;
}

/**
 * `yarn bench`: runs the benchmark, prints the report, writes JSON and
 * Markdown. `packageDir` is the benchmarks folder (results/ goes there).
 */
export async function main(argv: string[], packageDir: string): Promise<void> {
  const parsed = parseArgs(argv, packageDir);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const { check, ...options } = parsed;
  const result = await runBenchmark({
    ...options,
    log: line => process.stderr.write(`[bench] ${line}\n`),
  });
  const report = renderReport(result);
  const markdownFile = `${parsed.outFile.replace(/\.json$/, '')}.md`;
  writeFileSync(markdownFile, report);
  process.stdout.write(`\n${report}\n`);
  process.stderr.write(
    `[bench] wrote ${parsed.outFile} and ${markdownFile} in ${result.durationSeconds} s\n`,
  );
  if (check && !allMet(result.verdict)) {
    const missed = result.verdict.filter(v => !v.met);
    process.stderr.write(
      `[bench] --check: ${missed.length} of ${
        result.verdict.length
      } targets missed:\n${missed
        .map(v => `  - ${v.latencyMs ?? 'all'} ms: ${v.target}: ${v.value}`)
        .join('\n')}\n`,
    );
    process.exitCode = 1;
  }
}
