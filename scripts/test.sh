#!/usr/bin/env bash
# Sets up everything (Node 22, yarn, dependencies) and runs every check and
# test of the repo. Exits non-zero on the first failure.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_deps
cd "$REPO_ROOT"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "type check (yarn tsc)"
yarn tsc

step "API reports are current (yarn api-reports:check)"
yarn api-reports:check

step "lint (yarn lint:all)"
yarn lint:all

step "format (yarn prettier:check)"
yarn prettier:check

step "unit, integration and emulator tests (yarn test:all)"
results="$REPO_ROOT/node_modules/.cache/jest-results.json"
mkdir -p "$(dirname "$results")"
rm -f "$results"
CI=true yarn backstage-cli repo test --json --outputFile="$results"

# One closing line that CI can read: "<n> passed, <n> failed".
node -e '
  const r = require(process.argv[1]);
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  process.exit(r.success ? 0 : 1);
' "$results"
