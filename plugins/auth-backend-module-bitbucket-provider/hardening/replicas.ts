/*
 * Replicas: the demo backend (packages/backend) twice, as Backstage scales
 * out: stateless processes on one PostgreSQL and one Redis cache, behind one
 * origin. One browser signs in across them:
 *
 *   /start on A → consent → /handler/frame on B → /refresh on B
 *   → /refresh on A (the profile comes from the shared cache)
 *   → two tabs refresh at once, one on A and one on B
 *   → a refresh on A whose answer is lost, the reload on B → /logout on A
 *   → copies of the cookie the logout carried, and of the one before, on B
 *
 * and every step answers the same identity; a Backstage token issued by one
 * replica is accepted by the other (signing keys and user info are in the
 * shared database). After the logout on A, no copy of any cookie of the
 * session gets an identity on B, and Bitbucket (the emulator) no longer
 * accepts the refresh token the logout carried (issue 20). The emulator's
 * access tokens live 4 minutes, within the
 * module's 5-minute margin, so that every refresh rotates the refresh token
 * (Bitbucket's CHANGE-3052). Neither replica's log holds a code, token or
 * secret, the callback's request log line is there, redacted, and Redis
 * holds none of the tokens the emulator issued and none of the users'
 * email addresses.
 *
 * Installs nothing: Debian's postgresql and redis-server must be there
 * (scripts/test-hardening.sh installs them). Starts and stops everything
 * itself, on free loopback ports, also when a step fails.
 *
 *   node --require @backstage/cli/config/nodeTransform.cjs hardening/replicas.ts
 *
 * Exits 0 when every check passed, 1 otherwise.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  Browser,
  browserLogout,
  browserRefresh,
  browserSignIn,
} from '../src/hardening/__testUtils__/browser';
import {
  Child,
  EMULATOR_BIN,
  REPO_ROOT,
  startChild,
  stopAllChildren,
  waitForHttp,
} from '../src/hardening/__testUtils__/processes';
import { SecretLedger } from '../src/hardening/__testUtils__/secrets';
import { freePort, tokenClaims } from '../src/hardening/__testUtils__/world';

const { values: args } = parseArgs({
  options: {
    'time-limit': { type: 'string', default: '600' },
    keep: { type: 'boolean', default: false },
  },
});

/**
 * Jane Doe of the emulator's demo seed, and the User the catalog's Bitbucket
 * Cloud org provider imports for her (app-config.emulator.yaml).
 */
const JANE = '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}';
const JANE_NAME = '3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15';
const JANE_REF = `user:default/${JANE_NAME}`;
const DEMO_SECRET = 'backstage-demo-secret';

// ---------------------------------------------------------------------------
// Preflight

/** A PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/<v>/bin. */
function findPostgresBin(name: string): string | undefined {
  const which = spawnSync('sh', ['-c', `command -v ${name}`], {
    encoding: 'utf8',
  });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter(v => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin', name);
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

function findOnPath(name: string): string | undefined {
  const which = spawnSync('sh', ['-c', `command -v ${name}`], {
    encoding: 'utf8',
  });
  return which.status === 0 ? which.stdout.trim() || undefined : undefined;
}

// ---------------------------------------------------------------------------

const checks: Array<[string, boolean]> = [];
function check(what: string, ok: boolean) {
  checks.push([what, ok]);
  console.log(`${ok ? 'ok' : 'FAILED'}: ${what}`);
}

async function main(): Promise<boolean> {
  const initdb = findPostgresBin('initdb');
  const postgres = findPostgresBin('postgres');
  const redisServer = findOnPath('redis-server');
  if (!initdb || !postgres || !redisServer) {
    console.error(
      `replicas: ${[
        !initdb && 'initdb',
        !postgres && 'postgres',
        !redisServer && 'redis-server',
      ]
        .filter(Boolean)
        .join(
          ', ',
        )} not found (looked on PATH and in /usr/lib/postgresql/*/bin). Install Debian's postgresql and redis-server: apt-get install postgresql redis-server (scripts/test-hardening.sh does it).`,
    );
    return false;
  }

  const dir = mkdtempSync(join(tmpdir(), 'bitbucket-replicas-'));
  console.log(`replicas: working in ${dir}`);
  const children: Child[] = [];
  try {
    // PostgreSQL refuses to run as root: as root, run it as the postgres user
    const asRoot = userInfo().uid === 0;
    const pgData = join(dir, 'pgdata');
    mkdirSync(pgData);
    const runAs = (command: string, commandArgs: string[]) =>
      asRoot
        ? ['runuser', ['-u', 'postgres', '--', command, ...commandArgs]]
        : [command, commandArgs];
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chmodSync(dir, 0o755);
      chownSync(pgData, uid, gid);
    }
    const [initCmd, initArgs] = runAs(initdb, [
      '-D',
      pgData,
      '-U',
      'backstage',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
    execFileSync(initCmd as string, initArgs as string[], { stdio: 'pipe' });

    const [pgPort, redisPort, emulatorPort, portA, portB, lbPort] =
      await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const [pgCmd, pgArgs] = runAs(postgres, [
      '-D',
      pgData,
      '-h',
      '127.0.0.1',
      '-p',
      String(pgPort),
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
    ]);
    const pg = startChild(
      'PostgreSQL',
      pgCmd as string,
      pgArgs as string[],
      join(dir, 'postgres.log'),
    );
    children.push(pg);
    const redis = startChild(
      'Redis',
      redisServer,
      [
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      join(dir, 'redis.log'),
    );
    children.push(redis);

    // the emulator with the demo users; the consumer's callback is the
    // origin both replicas serve (their load balancer)
    const origin = `http://127.0.0.1:${lbPort}`;
    const seed = readFileSync(
      join(REPO_ROOT, 'packages/bitbucket-cloud-emulator/seeds/demo.yaml'),
      'utf8',
    ).replace(
      'callbackUrl: http://localhost:7007/api/auth/bitbucket',
      `callbackUrl: ${origin}/api/auth/bitbucket`,
    );
    writeFileSync(join(dir, 'seed.yaml'), seed);
    const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
    const emulator = startChild(
      'the emulator',
      process.execPath,
      [
        EMULATOR_BIN,
        '--port',
        String(emulatorPort),
        '--seed',
        join(dir, 'seed.yaml'),
        // within the module's 5-minute margin: every refresh rotates
        '--access-token-ttl',
        '240',
      ],
      join(dir, 'emulator.log'),
    );
    children.push(emulator);

    await waitForPostgres(pgPort, pg);
    await waitForHttp(`${emulatorUrl}/_emulator/health`, emulator, 30);

    // the quick start's config files, then what makes a replica
    const replica = (name: string, port: number): Child => {
      const config = join(dir, `app-config.${name}.yaml`);
      writeFileSync(
        config,
        // JSON is YAML
        JSON.stringify({
          app: { baseUrl: origin },
          backend: {
            baseUrl: origin,
            listen: { host: '127.0.0.1', port },
            cors: { origin },
            database: {
              client: 'pg',
              connection: {
                host: '127.0.0.1',
                port: pgPort,
                user: 'backstage',
                password: 'unused-trust-auth',
              },
            },
            cache: {
              store: 'redis',
              connection: `redis://127.0.0.1:${redisPort}`,
            },
          },
        }),
      );
      return startChild(
        `replica ${name}`,
        process.execPath,
        [
          join(REPO_ROOT, '.yarn/releases/yarn-4.13.0.cjs'),
          'start',
          '--config',
          join(REPO_ROOT, 'app-config.yaml'),
          '--config',
          join(REPO_ROOT, 'app-config.emulator.yaml'),
          '--config',
          config,
        ],
        join(dir, `replica-${name}.log`),
        {
          cwd: join(REPO_ROOT, 'packages/backend'),
          env: {
            ...process.env,
            NODE_ENV: 'development',
            BITBUCKET_EMULATOR_URL: emulatorUrl,
          },
        },
      );
    };
    // one after the other: on an empty database, the plugins' migrations
    // run at start-up, and the catalog of a replica that finds them locked
    // by the other fails to start (as in any Backstage deployment)
    const A = `http://127.0.0.1:${portA}`;
    const B = `http://127.0.0.1:${portB}`;
    const started = Date.now();
    const a = replica('A', portA);
    children.push(a);
    await waitForHttp(`${A}/.backstage/health/v1/readiness`, a, 240);
    const b = replica('B', portB);
    children.push(b);
    await waitForHttp(`${B}/.backstage/health/v1/readiness`, b, 240);
    console.log(
      `replicas: A and B ready in ${((Date.now() - started) / 1000).toFixed(
        0,
      )} s (PostgreSQL :${pgPort}, Redis :${redisPort})`,
    );

    await runFlow({ A, B, origin, emulatorUrl, a, b, redisPort });
  } finally {
    // the replicas first: PostgreSQL waits for its clients to go
    for (const child of children.reverse()) await child.stop();
    if (args.keep) console.log(`replicas: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return checks.length > 0 && checks.every(([, ok]) => ok);
}

/** The Redis key whose value holds `text`, in a dump of {@link dumpRedis}. */
function redisKeyOf(dump: string, text: string): string {
  const lines = dump.slice(0, dump.indexOf(text)).split('\n');
  return lines.reverse().find(l => /^[\w:.-]+$/.test(l)) ?? '?';
}

/** How `redis-cli` reads a value of each Redis type. */
const READ_BY_TYPE: Record<string, (key: string) => string[]> = {
  string: key => ['GET', key],
  hash: key => ['HGETALL', key],
  list: key => ['LRANGE', key, '0', '-1'],
  set: key => ['SMEMBERS', key],
  zset: key => ['ZRANGE', key, '0', '-1'],
};

/** Every key and value in Redis, as text (keys with their values). */
function dumpRedis(port: number): string {
  const cli = (...command: string[]) =>
    execFileSync(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(port), ...command],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
  return cli('--scan')
    .split('\n')
    .filter(Boolean)
    .map(key => {
      const read = READ_BY_TYPE[cli('TYPE', key).trim()];
      return `${key}\n${read ? cli(...read(key)) : ''}`;
    })
    .join('\n');
}

async function waitForPostgres(port: number, pg: Child): Promise<void> {
  const isReady = findPostgresBin('pg_isready');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (pg.process.exitCode !== null) {
      throw new Error(`PostgreSQL exited: ${pg.output().slice(-2000)}`);
    }
    const ready = isReady
      ? spawnSync(isReady, ['-h', '127.0.0.1', '-p', String(port)]).status === 0
      : /ready to accept connections/.test(pg.output());
    if (ready) return;
    await new Promise(r => setTimeout(r, 250));
  }
  throw new Error(`PostgreSQL was not ready within 60 s; see ${pg.logFile}`);
}

async function runFlow(options: {
  A: string;
  B: string;
  origin: string;
  emulatorUrl: string;
  a: Child;
  b: Child;
  redisPort: number;
}) {
  const { A, B, origin, emulatorUrl } = options;
  const ledger = new SecretLedger();
  ledger.add('client secret', DEMO_SECRET);
  const browser = new Browser();
  const refOf = (body: any) => body?.backstageIdentity?.identity?.userEntityRef;

  // the catalogs import the emulator's workspace after start-up: until Jane's
  // entity is there, her sign-in is refused with "no matching User"
  let signIn: Awaited<ReturnType<typeof browserSignIn>> | undefined;
  const deadline = Date.now() + 120_000;
  for (let attempt = 1; Date.now() < deadline; attempt++) {
    signIn = await browserSignIn(browser, {
      startUrl: A,
      frameUrl: B,
      uuid: JANE,
      appOrigin: origin,
    });
    ledger.add('authorization code', signIn.code);
    if (
      signIn.message.response ||
      signIn.message.error?.name !== 'NotFoundError'
    ) {
      break;
    }
    await new Promise(r => setTimeout(r, 2000));
  }
  const response = signIn?.message.response;
  ledger.add('access token', response?.providerInfo?.accessToken);
  ledger.add('backstage token', response?.backstageIdentity?.token);
  ledger.add('refresh token', signIn?.refreshToken);
  check(
    `/start on A, /handler/frame on B: signed in as ${refOf(response)} (${
      signIn?.message.error?.message ?? 'no error'
    })`,
    refOf(response) === JANE_REF,
  );
  if (!response) return;

  // a token issued by B is accepted by A: the signing keys and the user
  // info live in the shared database
  const userinfo = await fetch(`${A}/api/auth/v1/userinfo`, {
    headers: { authorization: `Bearer ${response.backstageIdentity.token}` },
  });
  const claims = await userinfo.json().catch(() => undefined);
  check(
    `A accepts the Backstage token B issued (GET /api/auth/v1/userinfo: HTTP ${userinfo.status}, sub ${claims?.claims?.sub})`,
    userinfo.status === 200 && claims?.claims?.sub === JANE_REF,
  );
  const catalogOnA = await fetch(
    `${A}/api/catalog/entities/by-name/user/default/${JANE_NAME}`,
    {
      headers: { authorization: `Bearer ${response.backstageIdentity.token}` },
    },
  );
  await catalogOnA.arrayBuffer();
  check(
    `A's catalog accepts the token B issued (HTTP ${catalogOnA.status})`,
    catalogOnA.status === 200,
  );

  const firstRefreshToken = browser.cookie('bitbucket-refresh-token');
  const refreshB = await browserRefresh(browser, B);
  ledger.add('access token', refreshB.body?.providerInfo?.accessToken);
  ledger.add('backstage token', refreshB.body?.backstageIdentity?.token);
  ledger.add('refresh token', browser.cookie('bitbucket-refresh-token'));
  check(
    `/refresh on B: HTTP ${refreshB.status}, ${refOf(refreshB.body)}`,
    refreshB.status === 200 && refOf(refreshB.body) === JANE_REF,
  );
  check(
    'the refresh rotated the refresh token',
    Boolean(browser.cookie('bitbucket-refresh-token')) &&
      browser.cookie('bitbucket-refresh-token') !== firstRefreshToken,
  );

  // the profile B cached (in Redis, under the rotated token) serves A
  await fetch(`${emulatorUrl}/_emulator/calls`, { method: 'DELETE' });
  const refreshA = await browserRefresh(browser, A);
  ledger.add('access token', refreshA.body?.providerInfo?.accessToken);
  ledger.add('backstage token', refreshA.body?.backstageIdentity?.token);
  ledger.add('refresh token', browser.cookie('bitbucket-refresh-token'));
  const calls = (await (
    await fetch(`${emulatorUrl}/_emulator/calls`)
  ).json()) as Array<{ method: string; path: string }>;
  check(
    `/refresh on A: HTTP ${refreshA.status}, ${refOf(refreshA.body)}`,
    refreshA.status === 200 && refOf(refreshA.body) === JANE_REF,
  );
  check(
    `A took the profile from the cache B filled (calls to Bitbucket: ${calls
      .map(c => `${c.method} ${c.path}`)
      .join(', ')})`,
    calls.length === 1 && calls[0].path === '/site/oauth2/access_token',
  );
  const tokenFromA = refreshA.body?.backstageIdentity?.token;
  const userinfoB = await fetch(`${B}/api/auth/v1/userinfo`, {
    headers: { authorization: `Bearer ${tokenFromA}` },
  });
  await userinfoB.arrayBuffer();
  check(
    `B accepts the Backstage token A issued (HTTP ${userinfoB.status})`,
    userinfoB.status === 200 &&
      tokenClaims(tokenFromA ?? 'x.e30.x').sub === JANE_REF,
  );

  // two tabs of the browser restore the session at the same moment, one
  // through A and one through B: both get the same rotated session
  const tokenCalls = async () =>
    (
      (await (await fetch(`${emulatorUrl}/_emulator/calls`)).json()) as Array<{
        path: string;
        status: number;
      }>
    ).filter(c => c.path === '/site/oauth2/access_token');
  await fetch(`${emulatorUrl}/_emulator/calls`, { method: 'DELETE' });
  const beforeTabs = browser.cookie('bitbucket-refresh-token');
  const [tabA, tabB] = await Promise.all([
    browserRefresh(browser, A),
    browserRefresh(browser, B),
  ]);
  for (const tab of [tabA, tabB]) {
    ledger.add('access token', tab.body?.providerInfo?.accessToken);
    ledger.add('backstage token', tab.body?.backstageIdentity?.token);
  }
  ledger.add('refresh token', browser.cookie('bitbucket-refresh-token'));
  const tabCalls = await tokenCalls();
  check(
    `two tabs at once on A and B: HTTP ${tabA.status} and ${
      tabB.status
    }, one session (token calls: ${tabCalls.map(c => c.status).join(', ')})`,
    tabA.status === 200 &&
      tabB.status === 200 &&
      refOf(tabA.body) === JANE_REF &&
      refOf(tabB.body) === JANE_REF &&
      tabA.body.providerInfo.accessToken ===
        tabB.body.providerInfo.accessToken &&
      browser.cookie('bitbucket-refresh-token') !== beforeTabs &&
      tabCalls.filter(c => c.status === 200).length === 1,
  );

  // a refresh on A whose answer never reaches the browser, then the reload
  // on B with the old cookie gets the session A rotated to
  const oldCookie = browser.cookie('bitbucket-refresh-token');
  const lostAnswer = await fetch(
    `${A}/api/auth/bitbucket/refresh?optional&env=development&scope=account`,
    {
      headers: {
        'x-requested-with': 'XMLHttpRequest',
        cookie: `bitbucket-refresh-token=${oldCookie}`,
      },
    },
  );
  const lost = (await lostAnswer.json()) as any;
  ledger.add('access token', lost?.providerInfo?.accessToken);
  ledger.add('backstage token', lost?.backstageIdentity?.token);
  const reload = await browserRefresh(browser, B);
  ledger.add('refresh token', browser.cookie('bitbucket-refresh-token'));
  check(
    `a lost answer on A, the reload on B with the old cookie: HTTP ${lostAnswer.status}, then HTTP ${reload.status} with the same session`,
    lostAnswer.status === 200 &&
      reload.status === 200 &&
      reload.body.providerInfo.accessToken === lost.providerInfo.accessToken &&
      browser.cookie('bitbucket-refresh-token') !== oldCookie,
  );

  // Redis, as whoever reads it without a browser's cookie sees it
  const issued = (await (
    await fetch(`${emulatorUrl}/_emulator/issued-tokens`)
  ).json()) as string[];
  const redis = dumpRedis(options.redisPort);
  const emails = [
    ...readFileSync(
      join(REPO_ROOT, 'packages/bitbucket-cloud-emulator/seeds/demo.yaml'),
      'utf8',
    ).matchAll(/\{ email: ([^\s,}]+@[^\s,}]+)/g),
  ].map(m => m[1]);
  const found = [...issued, ...emails].filter(secret => redis.includes(secret));
  check(
    `Redis (${redis.length} bytes, ${
      redis.split('\n').length
    } lines) holds none of the ${
      issued.length
    } tokens the emulator issued nor the ${emails.length} demo emails (found: ${
      found
        .map(
          f =>
            `${issued.includes(f) ? 'a token' : f} in ${redisKeyOf(redis, f)}`,
        )
        .join('; ') || 'none'
    })`,
    issued.length >= 6 && emails.length >= 5 && found.length === 0,
  );

  // a copy of the cookie as it is when the user logs out (a HAR file, a
  // shared machine)
  const carried = browser.cookie('bitbucket-refresh-token');
  await fetch(`${emulatorUrl}/_emulator/calls`, { method: 'DELETE' });
  const logout = await browserLogout(browser, A);
  const logoutCalls = await tokenCalls();
  check(
    `/logout on A: HTTP ${logout}, session cookie removed`,
    logout === 200 && !browser.cookie('bitbucket-refresh-token'),
  );
  const after = await browserRefresh(browser, B);
  check(
    `after the logout, /refresh on B has no session (HTTP ${after.status})`,
    after.status === 401,
  );
  // a copy of the cookie from before the last rotation (the lost answer's),
  // replayed on B within the grace period: the logout ended it too
  const replay = await fetch(
    `${B}/api/auth/bitbucket/refresh?optional&env=development&scope=account`,
    {
      headers: {
        'x-requested-with': 'XMLHttpRequest',
        cookie: `bitbucket-refresh-token=${oldCookie}`,
      },
    },
  );
  check(
    `after the logout on A, the cookie from before the last rotation, replayed on B within the grace period, has no session (HTTP ${replay.status})`,
    replay.status === 401,
  );
  const copy = await fetch(
    `${B}/api/auth/bitbucket/refresh?optional&env=development&scope=account`,
    {
      headers: {
        'x-requested-with': 'XMLHttpRequest',
        cookie: `bitbucket-refresh-token=${carried}`,
      },
    },
  );
  const copyBody = (await copy.json().catch(() => undefined)) as any;
  check(
    `the logout on A rotated the refresh token it carried once at Bitbucket, its answer thrown away (token calls of the logout: ${
      logoutCalls.map(c => c.status).join(', ') || 'none'
    })`,
    logoutCalls.length === 1 && logoutCalls[0].status === 200,
  );
  ledger.add('backstage token', copyBody?.backstageIdentity?.token);
  ledger.add('access token', copyBody?.providerInfo?.accessToken);
  check(
    `after the logout on A, a copy of the cookie the logout carried, replayed on B, gets no identity (HTTP ${
      copy.status
    }: ${copyBody?.error?.message ?? refOf(copyBody)})`,
    copy.status === 401 && !copyBody?.backstageIdentity,
  );
  // Bitbucket itself no longer takes the refresh token the logout carried
  const atBitbucket = await fetch(`${emulatorUrl}/site/oauth2/access_token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(
        `backstage-demo:${DEMO_SECRET}`,
      ).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: carried ?? '',
    }).toString(),
  });
  const atBitbucketBody = (await atBitbucket.json().catch(() => ({}))) as any;
  ledger.add('access token', atBitbucketBody?.access_token);
  ledger.add('refresh token', atBitbucketBody?.refresh_token);
  check(
    `after the logout on A, Bitbucket refuses the refresh token the logout carried (HTTP ${
      atBitbucket.status
    }, ${atBitbucketBody?.error ?? 'no error'})`,
    atBitbucket.status === 400 && atBitbucketBody?.error === 'invalid_grant',
  );

  // give the request logs a moment to flush, then scan both replicas' logs
  await new Promise(r => setTimeout(r, 500));
  for (const child of [options.a, options.b]) {
    const text = child.output();
    const leaks = ledger.scan(text, child.name);
    check(
      `${
        child.name
      }'s log holds no code, token or secret (${ledger.count()} known; found: ${
        leaks.map(l => l.kind).join(', ') || 'none'
      })`,
      leaks.length === 0,
    );
    check(
      `${child.name}'s log has no unhandled rejection or uncaught exception`,
      !/Unhandled rejection|Uncaught exception/.test(text),
    );
  }
  check(
    "B's request log has the callback line, with its code and state redacted",
    /"GET \/api\/auth\/bitbucket\/handler\/frame\?code=REDACTED&state=REDACTED HTTP\/1\.1" 200/.test(
      options.b.output(),
    ),
  );
}

const limit = setTimeout(() => {
  console.error(`replicas: over the time limit of ${args['time-limit']} s`);
  stopAllChildren().finally(() => process.exit(1));
}, Number(args['time-limit']) * 1000);
limit.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAllChildren().finally(() => process.exit(130));
  });
}

main().then(
  async ok => {
    await stopAllChildren();
    console.log(
      `replicas: ${checks.filter(([, c]) => c).length} checks passed, ${
        checks.filter(([, c]) => !c).length
      } failed`,
    );
    process.exit(ok ? 0 : 1);
  },
  async error => {
    console.error(`replicas: ${error?.stack ?? error}`);
    await stopAllChildren();
    process.exit(1);
  },
);
