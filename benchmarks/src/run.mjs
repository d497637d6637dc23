// Entry point of `yarn bench`: registers the TypeScript transform that
// @backstage/cli ships (the harness and our module are TypeScript sources),
// then runs src/cli.ts.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// A dev dependency is enough: this private package only runs in the repo.
// eslint-disable-next-line @backstage/no-undeclared-imports
require('@backstage/cli/config/nodeTransform.cjs');

require('./cli.ts')
  .main(process.argv.slice(2), fileURLToPath(new URL('..', import.meta.url)))
  .catch(error => {
    process.stderr.write(`[bench] ${error?.stack ?? error}\n`);
    process.exit(1);
  });
