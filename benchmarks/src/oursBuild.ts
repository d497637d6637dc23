import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { BackendKind } from './protocol';

const OURS =
  '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider';

/** The backends that run ours' package as it is published (not ours-sequential: it needs an internal factory). */
export function runsBuilt(kind: BackendKind): boolean {
  return kind === 'ours' || kind === 'ours-bitbucket';
}

/**
 * The entry point the backends of {@link runsBuilt} load: ours built (see
 * {@link ensureOursBuilt}), or undefined when none of `backends` runs it or
 * `BENCH_OURS_FROM=source` asks for its TypeScript sources.
 */
export function oursEntryFor(
  backends: BackendKind[],
  log: (line: string) => void,
): string | undefined {
  if (process.env.BENCH_OURS_FROM === 'source') {
    log('ours runs from its TypeScript sources (BENCH_OURS_FROM=source)');
    return undefined;
  }
  return backends.some(runsBuilt) ? ensureOursBuilt(log) : undefined;
}

/** Where ours' package lives in the workspace. */
function oursPackageDir(): string {
  return dirname(require.resolve(`${OURS}/package.json`));
}

/** The newest modification time of the files under `dir`, tests left out. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (!/\.test\.tsx?$/.test(entry.name)) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * Ours' built JavaScript (`dist/index.cjs.js`, what `npm install` gives a
 * user), built first when it is missing or older than the sources or the
 * package.json: the bench runs ours as users run it, as it runs upstream
 * (from compiled JavaScript, not through its TypeScript transform). The
 * build needs the declaration files of `yarn tsc`, made first when missing.
 * Returns the entry point; `log` hears what was built.
 */
export function ensureOursBuilt(log: (line: string) => void): string {
  const dir = oursPackageDir();
  const entry = join(dir, 'dist', 'index.cjs.js');
  const built = existsSync(entry) ? statSync(entry).mtimeMs : 0;
  const sources = Math.max(
    newestSource(join(dir, 'src')),
    statSync(join(dir, 'package.json')).mtimeMs,
  );
  if (built > sources) return entry;
  const root = join(dir, '..', '..');
  const yarn = (args: string[], cwd: string) =>
    execFileSync('yarn', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const started = Date.now();
  const types = join(
    root,
    'dist-types',
    relative(root, dir),
    'src',
    'index.d.ts',
  );
  if (!existsSync(types) || statSync(types).mtimeMs < sources) {
    yarn(['tsc'], root);
  }
  yarn(['build'], dir);
  log(
    `built ours (${entry.slice(root.length + 1)}) in ${Math.round(
      (Date.now() - started) / 1000,
    )} s: the bench runs it as users do, from JavaScript`,
  );
  return entry;
}
