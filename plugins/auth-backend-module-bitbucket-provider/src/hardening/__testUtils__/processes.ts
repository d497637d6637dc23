import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import { createWriteStream, WriteStream } from 'node:fs';
import { resolve } from 'node:path';

/** The repository root (this file is plugins/<module>/src/hardening/__testUtils__/). */
export const REPO_ROOT = resolve(__dirname, '../../../../..');

/** The emulator's command (TypeScript sources, run through its bin script). */
export const EMULATOR_BIN = resolve(
  REPO_ROOT,
  'packages/bitbucket-cloud-emulator/bin/bitbucket-cloud-emulator',
);

/** A child process in its own process group, its output in a log file. */
export interface Child {
  name: string;
  process: ChildProcess;
  logFile: string;
  /** Everything it wrote so far. */
  output(): string;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Child>();

/** Starts `command` detached (own process group), logging to `logFile`. */
export function startChild(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  options: SpawnOptions = {},
): Child {
  const log: WriteStream = createWriteStream(logFile);
  const chunks: string[] = [];
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    ...options,
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (data: Buffer) => {
      chunks.push(data.toString());
      log.write(data);
    });
  }
  const exited = new Promise<void>(done => child.once('exit', () => done()));
  const handle: Child = {
    name,
    process: child,
    logFile,
    output: () => chunks.join(''),
    async stop(graceMs = 10_000) {
      running.delete(handle);
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        const kill = (signal: NodeJS.Signals) => {
          try {
            process.kill(-child.pid!, signal);
          } catch {
            // already gone
          }
        };
        kill('SIGTERM');
        const timer = setTimeout(() => kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>(done => log.end(() => done()));
    },
  };
  running.add(handle);
  return handle;
}

/** Stops every child still running (for exit paths). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map(child => child.stop(5_000)));
}

/** Polls `url` until it answers 2xx; fails early when `child` exits. */
export async function waitForHttp(
  url: string,
  child: Child,
  seconds: number,
): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) {
      throw new Error(
        `${child.name} exited with code ${child.process.exitCode} before it was ready; see ${child.logFile}`,
      );
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 250));
  }
  throw new Error(
    `${child.name} was not ready at ${url} within ${seconds} s; see ${child.logFile}`,
  );
}
