/**
 * Starts what a new user gets from `scripts/start.sh`, on free ports: the
 * Bitbucket Cloud emulator with the demo seed, and the backend serving the
 * built app (`yarn workspace app build`) with the sign-in and org providers
 * pointed at the emulator. Ready once the catalog serves the people the org
 * provider imported. Stops both, process groups included.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** The demo seed's people the org provider imports, by their entity refs. */
export const IMPORTED = {
  jane: 'user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
  bob: 'user:default/8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48',
};

export interface Portal {
  url: string;
  emulatorUrl: string;
  logFile: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
    server.on('error', fail);
  });
}

async function waitFor(
  url: string,
  child: ChildProcess,
  what: string,
  seconds: number,
  headers: Record<string, string> = {},
) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(
        `${what} exited with code ${child.exitCode} before it was ready`,
      );
    }
    try {
      const res = await fetch(url, { headers });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready at ${url} within ${seconds} s`);
}

function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || !child.pid) return Promise.resolve();
  return new Promise(done => {
    child.once('exit', () => done());
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      done();
    }
    setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5000).unref();
  });
}

export async function startPortal(
  options: {
    emulatorLatencyMs?: number;
    /** The emulator's access token lifetime (default 7200 s). */
    accessTokenTtlSeconds?: number;
  } = {},
): Promise<Portal> {
  if (!existsSync(join(REPO_ROOT, 'packages/app/dist/index.html'))) {
    throw new Error(
      'packages/app/dist is missing: run `yarn workspace app build` first',
    );
  }
  const [backendPort, emulatorPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'bitbucket-e2e-'));
  const url = `http://localhost:${backendPort}`;
  const emulatorUrl = `http://localhost:${emulatorPort}`;
  // lets this script read the catalog (backend.auth.externalAccess)
  const catalogToken = randomBytes(24).toString('base64url');

  const seed = readFileSync(
    join(REPO_ROOT, 'packages/bitbucket-cloud-emulator/seeds/demo.yaml'),
    'utf8',
  ).replace(
    'callbackUrl: http://localhost:7007/api/auth/bitbucket',
    `callbackUrl: ${url}/api/auth/bitbucket`,
  );
  writeFileSync(join(dir, 'seed.yaml'), seed);
  writeFileSync(
    join(dir, 'app-config.e2e.yaml'),
    [
      'app:',
      `  baseUrl: ${url}`,
      'backend:',
      `  baseUrl: ${url}`,
      '  listen:',
      `    port: ${backendPort}`,
      '  cors:',
      `    origin: ${url}`,
      '  auth:',
      '    externalAccess:',
      '      - type: static',
      `        options: { token: ${catalogToken}, subject: e2e-tests }`,
      '',
    ].join('\n'),
  );

  const logFile = join(dir, 'portal.log');
  const log = createWriteStream(logFile);
  const run = (args: string[], cwd: string) => {
    const child = spawn(process.execPath, args, {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_ENV: 'development',
        BITBUCKET_EMULATOR_URL: emulatorUrl,
      },
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    return child;
  };

  const emulator = run(
    [
      join(
        REPO_ROOT,
        'packages/bitbucket-cloud-emulator/bin/bitbucket-cloud-emulator',
      ),
      '--port',
      String(emulatorPort),
      '--seed',
      join(dir, 'seed.yaml'),
      '--latency',
      String(options.emulatorLatencyMs ?? 0),
      ...(options.accessTokenTtlSeconds
        ? ['--access-token-ttl', String(options.accessTokenTtlSeconds)]
        : []),
    ],
    REPO_ROOT,
  );
  const backend = run(
    [
      join(REPO_ROOT, '.yarn/releases/yarn-4.13.0.cjs'),
      'start',
      // the quick start's own config files, then only the ports
      '--config',
      join(REPO_ROOT, 'app-config.yaml'),
      '--config',
      join(REPO_ROOT, 'app-config.emulator.yaml'),
      '--config',
      join(dir, 'app-config.e2e.yaml'),
    ],
    join(REPO_ROOT, 'packages/backend'),
  );
  const stop = async () => {
    await Promise.all([stopGroup(backend), stopGroup(emulator)]);
    log.end();
  };
  try {
    await waitFor(
      `${emulatorUrl}/_emulator/health`,
      emulator,
      'the emulator',
      20,
    );
    await waitFor(
      `${url}/.backstage/health/v1/readiness`,
      backend,
      'the backend',
      120,
    );
    // the org provider runs at start-up; processing and stitching follow
    for (const ref of Object.values(IMPORTED)) {
      const [kind, namespace, name] = ref.split(/[:/]/);
      await waitFor(
        `${url}/api/catalog/entities/by-name/${kind}/${namespace}/${name}`,
        backend,
        `the imported ${ref}`,
        60,
        { authorization: `Bearer ${catalogToken}` },
      );
    }
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}; see ${logFile}`);
  }
  return { url, emulatorUrl, logFile, stop };
}
