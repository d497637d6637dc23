// Entry point of `yarn bench:session-memory [sessions]`: what one live
// session costs in memory (src/sessionMemory.ts). Prints a table and writes
// results/session-memory.json.
import { createRequire } from 'node:module';
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @backstage/no-undeclared-imports
require('@backstage/cli/config/nodeTransform.cjs');

const sessions = Number(process.argv[2] ?? 20000);
if (!Number.isInteger(sessions) || sessions < 1000) {
  process.stderr.write('usage: yarn bench:session-memory [sessions >= 1000]\n');
  process.exit(2);
}
const {
  measureSessionMemory,
  sessionMemoryTable,
} = require('./sessionMemory.ts');
const { stringifyJson } = require('./format.ts');

const result = await measureSessionMemory(sessions);
const dir = fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}session-memory.json`, stringifyJson(result));
process.stdout.write(
  `${sessionMemoryTable(result)}\nwrote ${dir}session-memory.json\n`,
);
