// Entry point of `yarn bench:session-memory [sessions]`: what one live
// session costs in memory (src/sessionMemory.ts). Prints a table and writes
// results/session-memory.json.
import { createRequire } from 'node:module';
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @backstage/no-undeclared-imports
require('@backstage/cli/config/nodeTransform.cjs');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

const sessions = Number(process.argv[2] ?? 20000);
if (!Number.isInteger(sessions) || sessions < 1000) {
  process.stderr.write('usage: yarn bench:session-memory [sessions >= 1000]\n');
  process.exit(2);
}
const { measureSessionMemory } = require('./sessionMemory.ts');

const result = await measureSessionMemory(sessions, gc);
const dir = fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(
  `${dir}session-memory.json`,
  `${JSON.stringify(result, null, 2)}\n`,
);
process.stdout.write(
  [
    '| sessions | sealed record (chars) | its JSON (chars) | heap before / after (MB) | heap per session (bytes) | read back |',
    '| -------: | --------------------: | ---------------: | -----------------------: | -----------------------: | --------- |',
    `| ${result.sessions} | ${result.sealedChars} | ${result.plainJsonChars} | ${result.heapBeforeMb} / ${result.heapAfterMb} | ${result.heapBytesPerSession} | ${result.readBack} |`,
    `wrote ${dir}session-memory.json`,
    '',
  ].join('\n'),
);
