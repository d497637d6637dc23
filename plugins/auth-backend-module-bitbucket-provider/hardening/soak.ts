/*
 * Soak: sequential sign-ins against one backend (this process), each in a
 * new browser, of users of a Bitbucket Cloud emulator that runs as a child
 * process (so that its own memory does not count). After a warm-up and a
 * forced GC, the resident set size may grow by less than 5 %, and its
 * trend (least squares over the readings after each 1,000 sign-ins) by less
 * than 0.25 % of the baseline per 1,000 sign-ins. Every reading is taken
 * while the backend runs, after a GC.
 *
 * Every sign-in must issue its user's identity; no backend log line may be
 * an error, an unhandled rejection or carry a secret of the sign-in.
 *
 *   MALLOC_ARENA_MAX=2 node --expose-gc \
 *     --require @backstage/cli/config/nodeTransform.cjs \
 *     hardening/soak.ts [--sign-ins 10000] [--warmup 5000] [--max-growth 5]
 *     [--max-trend 0.25] [--profile-cache-ttl 10s]
 *
 * --warmup 5000: the settled RSS climbs by 6-8 % over the first ~5,000
 * sign-ins (compiled code and native allocations; the JS heap stays flat),
 * then stays flat: a
 * 30,000 sign-in run settled at 235-238 MB from sign-in 6,000 to 30,000.
 * The checks compare the RSS after the warm-up with the RSS after the
 * 10,000 that follow it, and fit a line through the readings after each
 * 1,000 of them: all after a last-resort GC, with the backend running (it
 * runs in this process).
 *
 * --profile-cache-ttl 10s (default 30m in the module): every sign-in keeps
 * its session (encrypted, about 1.7 KB) while its access token or its
 * identity may serve a refresh. The run sets the identity's TTL, the
 * emulator's access tokens and the grace period to the same short time, so
 * that the session store reaches its steady state within the warm-up, and
 * the checks cover that expired records are freed (with the defaults a
 * record lives 8 hours: memory grows with the sign-ins of 8 hours).
 *
 * MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own malloc
 * arena, and the RSS grows as more of them get touched, by about 30 % over
 * the first few thousand sign-ins on 2 cores, then stays flat. That is
 * allocator slack, not memory the backend keeps; with two arenas (a common
 * setting for Node in containers) the RSS measures what the process keeps.
 *
 * Exits 0 when every check passed, 1 otherwise.
 */
import { LoggerService } from '@backstage/backend-plugin-api';
import { ConfigReader, readDurationFromConfig } from '@backstage/config';
import { durationToMilliseconds } from '@backstage/types';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';
import { captureLogger } from '../src/__testUtils__/backend';
import { Browser, browserSignIn } from '../src/hardening/__testUtils__/browser';
import {
  EMULATOR_BIN,
  startChild,
  stopAllChildren,
  waitForHttp,
} from '../src/hardening/__testUtils__/processes';
import { redactOAuthRequestLog } from '../src/requestLog';
import {
  logLineText,
  SecretLedger,
} from '../src/hardening/__testUtils__/secrets';
import {
  APP_ORIGIN,
  CLIENT_ID,
  CLIENT_SECRET,
  entitiesFor,
  freePort,
  seedUsers,
  startBackend,
} from '../src/hardening/__testUtils__/world';

const { values: args } = parseArgs({
  options: {
    'sign-ins': { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '5000' },
    users: { type: 'string', default: '50' },
    'max-growth': { type: 'string', default: '5' },
    'max-trend': { type: 'string', default: '0.25' },
    'time-limit': { type: 'string', default: '900' },
    'profile-cache-ttl': { type: 'string', default: '10s' },
  },
});
const SIGN_INS = Number(args['sign-ins']);
const WARMUP = Number(args.warmup);
const USERS = Number(args.users);
const MAX_GROWTH = Number(args['max-growth']);
const MAX_TREND = Number(args['max-trend']);

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/**
 * The RSS after V8's last-resort GC (full, compacting, and giving freed
 * pages back to the system): what the process keeps, not the heap V8 grew
 * for the garbage of the last thousand sign-ins.
 */
async function settledRss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    (global.gc as any)({
      type: 'major',
      execution: 'sync',
      flavor: 'last-resort',
    });
    await new Promise(r => setTimeout(r, 200));
  }
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  console.log(
    `  after GC: RSS ${mb(rss)}, heap ${mb(heapUsed)} of ${mb(heapTotal)}`,
  );
  if (process.env.SOAK_DEBUG) {
    console.log(
      getHeapSpaceStatistics()
        .map(sp => `${sp.space_name}=${mb(sp.space_used_size)}`)
        .join(' '),
    );
  }
  return rss;
}

/**
 * The slope of the least-squares line through `readings` taken every 1,000
 * sign-ins (the first at 0): bytes per 1,000 sign-ins.
 */
export function trendPerThousand(readings: number[]): number {
  const n = readings.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = readings.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  readings.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

/** Log lines since the last check, without keeping them for longer. */
class StreamingLog {
  window: string[] = [];
  errors: string[] = [];

  logger(): LoggerService {
    return captureLogger(line => {
      const text = logLineText(line);
      this.window.push(text);
      if (line.level === 'error' && this.errors.length < 20)
        this.errors.push(text);
    });
  }
}

async function main(): Promise<boolean> {
  if (!global.gc) {
    throw new Error('run node with --expose-gc (see the header of this file)');
  }
  if (process.env.MALLOC_ARENA_MAX === undefined) {
    console.warn(
      'soak: MALLOC_ARENA_MAX is not set; the RSS includes the growth of glibc arenas (see the header of this file)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'bitbucket-soak-'));
  const users = seedUsers(USERS, 'soak');
  writeFileSync(
    join(dir, 'seed.yaml'),
    // JSON is YAML
    JSON.stringify({
      consumers: [
        {
          key: CLIENT_ID,
          secret: CLIENT_SECRET,
          callbackUrl: 'http://127.0.0.1',
          permissions: ['account', 'email'],
        },
      ],
      users,
    }),
  );
  const ttl = /^\d+$/.test(args['profile-cache-ttl']!)
    ? Number(args['profile-cache-ttl'])
    : args['profile-cache-ttl']!;
  const ttlMs =
    typeof ttl === 'number'
      ? ttl
      : durationToMilliseconds(
          readDurationFromConfig(new ConfigReader({ ttl }), { key: 'ttl' }),
        );
  const emulatorPort = await freePort();
  const emulator = startChild(
    'the emulator',
    process.execPath,
    [
      EMULATOR_BIN,
      '--port',
      String(emulatorPort),
      '--seed',
      join(dir, 'seed.yaml'),
      // the sessions' records live as long as their access token at least
      '--access-token-ttl',
      String(Math.max(1, Math.round(ttlMs / 1000))),
    ],
    join(dir, 'emulator.log'),
  );
  const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
  await waitForHttp(`${emulatorUrl}/_emulator/health`, emulator, 30);

  const log = new StreamingLog();
  let unhandled = 0;
  process.on('unhandledRejection', reason => {
    unhandled += 1;
    console.error('unhandled rejection:', reason);
  });
  const backend = await startBackend({
    logger: log.logger(),
    entities: entitiesFor(users),
    emulatorUrl,
    provider: {
      profileCacheTtl: ttl,
      identityCacheTtl: ttl,
      refreshGracePeriod: ttl,
    },
    // the backend as packages/backend builds it, request log included
    realRouter: { configure: redactOAuthRequestLog },
  });

  let failures = 0;
  let leaks = 0;
  let baseline = 0;
  let baselineHeap = 0;
  /** The settled RSS after each thousand sign-ins. */
  const trend: number[] = [];
  let final = 0;
  let finalHeap = 0;
  const started = Date.now();
  try {
    const total = WARMUP + SIGN_INS;
    for (let i = 1; i <= total; i++) {
      const user = users[i % users.length];
      const browser = new Browser();
      const { message, code, refreshToken } = await browserSignIn(browser, {
        startUrl: backend.baseUrl,
        uuid: user.uuid,
        appOrigin: APP_ORIGIN,
      });
      const identity = message.response?.backstageIdentity?.identity;
      if (identity?.userEntityRef !== `user:default/${user.nickname}`) {
        failures += 1;
        if (failures <= 5) {
          console.error(
            `sign-in ${i} failed: ${JSON.stringify(message.error)}`,
          );
        }
      }
      const ledger = new SecretLedger();
      ledger.add('client secret', CLIENT_SECRET);
      ledger.add('authorization code', code);
      ledger.add('refresh token', refreshToken);
      ledger.add('access token', message.response?.providerInfo?.accessToken);
      ledger.add('backstage token', message.response?.backstageIdentity?.token);
      for (const line of log.window) {
        const found = ledger.scan(line, `sign-in ${i}`);
        leaks += found.length;
        if (found.length && leaks <= 5) {
          console.error(`secret in a log line: ${JSON.stringify(found)}`);
        }
      }
      log.window = [];

      if (i === WARMUP) {
        baseline = await settledRss();
        baselineHeap = process.memoryUsage().heapUsed;
        console.log(
          `warm-up: ${WARMUP} sign-ins in ${(
            (Date.now() - started) /
            1000
          ).toFixed(0)} s; RSS ${mb(baseline)}, heap ${mb(baselineHeap)}`,
        );
      } else if (i > WARMUP && (i - WARMUP) % 1000 === 0) {
        console.log(
          `${i - WARMUP} sign-ins after the warm-up, ${(
            (Date.now() - started) /
            1000
          ).toFixed(0)} s:`,
        );
        trend.push(await settledRss());
      }
    }
    // the end reading, while the backend still runs
    final =
      SIGN_INS % 1000 === 0 && trend.length
        ? trend.at(-1)!
        : await settledRss();
    finalHeap = process.memoryUsage().heapUsed;
  } finally {
    await backend.stop();
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const growth = ((final - baseline) / baseline) * 100;
  const slope = trendPerThousand([baseline, ...trend]);
  const slopePercent = (slope / baseline) * 100;
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `${SIGN_INS} sign-ins after the warm-up in ${seconds.toFixed(0)} s (${(
      (SIGN_INS + WARMUP) /
      seconds
    ).toFixed(0)}/s): RSS ${mb(baseline)} -> ${mb(final)} (${growth.toFixed(
      2,
    )} %, limit ${MAX_GROWTH} %); heap ${mb(baselineHeap)} -> ${mb(finalHeap)}`,
  );
  const checks: Array<[string, boolean]> = [
    [
      `every sign-in issued its user's identity (${failures} failed)`,
      failures === 0,
    ],
    [
      `RSS growth ${growth.toFixed(2)} % < ${MAX_GROWTH} %`,
      growth < MAX_GROWTH,
    ],
    [
      `RSS trend ${mb(slope)} (${slopePercent.toFixed(
        3,
      )} %) per 1,000 sign-ins < ${MAX_TREND} % (readings: ${[
        baseline,
        ...trend,
      ]
        .map(r => (r / 1024 / 1024).toFixed(1))
        .join(', ')} MB)`,
      slopePercent < MAX_TREND && trend.length >= 2,
    ],
    [`no secret in a log line (${leaks} found)`, leaks === 0],
    [`no error log line (${log.errors.length})`, log.errors.length === 0],
    [`no unhandled rejection (${unhandled})`, unhandled === 0],
  ];
  for (const line of log.errors)
    console.error(`error line: ${line.slice(0, 500)}`);
  for (const [what, ok] of checks)
    console.log(`${ok ? 'ok' : 'FAILED'}: ${what}`);
  return checks.every(([, ok]) => ok);
}

const limit = setTimeout(() => {
  console.error(`soak: over the time limit of ${args['time-limit']} s`);
  stopAllChildren().finally(() => process.exit(1));
}, Number(args['time-limit']) * 1000);
limit.unref();

main().then(
  async ok => {
    await stopAllChildren();
    process.exit(ok ? 0 : 1);
  },
  async error => {
    console.error(`soak: ${error?.stack ?? error}`);
    await stopAllChildren();
    process.exit(1);
  },
);
