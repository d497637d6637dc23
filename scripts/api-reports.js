#!/usr/bin/env node
/* eslint-disable no-console */
// Writes (or with --check, verifies) report.api.md of every publishable
// package under plugins/, from the declarations `yarn tsc` emits into
// dist-types/. An API change then shows up in review as a diff.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Extractor, ExtractorConfig } = require('@microsoft/api-extractor');

const root = path.resolve(__dirname, '..');
const check = process.argv.includes('--check');
let failed = false;

for (const dir of fs.readdirSync(path.join(root, 'plugins'))) {
  const pkgDir = path.join(root, 'plugins', dir);
  const pkgJson = path.join(pkgDir, 'package.json');
  if (!fs.existsSync(pkgJson) || require(pkgJson).private) continue;
  const entry = path.join(
    root,
    'dist-types',
    'plugins',
    dir,
    'src',
    'index.d.ts',
  );
  if (!fs.existsSync(entry)) {
    console.error(`${entry} is missing: run \`yarn tsc\` first.`);
    process.exit(1);
  }
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: pkgDir,
      mainEntryPointFilePath: entry,
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            lib: ['DOM', 'ES2023'],
            jsx: 'react-jsx',
            esModuleInterop: true,
            skipLibCheck: true,
            types: ['node'],
            moduleResolution: 'bundler',
            module: 'ES2020',
          },
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: 'report.api.md',
        reportFolder: pkgDir,
        reportTempFolder: fs.mkdtempSync(path.join(os.tmpdir(), 'api-report-')),
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        extractorMessageReporting: {
          'ae-missing-release-tag': { logLevel: 'error' },
          'ae-forgotten-export': { logLevel: 'none' },
        },
        tsdocMessageReporting: { default: { logLevel: 'none' } },
      },
    },
    configObjectFullPath: path.join(pkgDir, 'api-extractor.json'),
    packageJsonFullPath: pkgJson,
  });
  const result = Extractor.invoke(config, {
    localBuild: !check,
    showVerboseMessages: false,
  });
  if (!result.succeeded || (check && result.apiReportChanged)) {
    console.error(
      `${path.relative(
        root,
        pkgDir,
      )}/report.api.md is out of date or the API has errors (${
        result.errorCount
      } errors). Run \`yarn tsc && yarn api-reports\` and commit the report.`,
    );
    failed = true;
  } else {
    console.log(
      `${path.relative(root, pkgDir)}/report.api.md ${
        check ? 'is current' : 'written'
      }`,
    );
  }
}
process.exit(failed ? 1 : 0);
