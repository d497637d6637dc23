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
CI=true yarn backstage-cli repo test --json --outputFile="$results" ||
  die "unit/integration tests failed"

jest_summary="$(node -e '
  const r = require(process.argv[1]);
  console.log(r.numPassedTests + " " + r.numFailedTests);
' "$results")"

step "hardening: soak (10,000 sign-ins) and replicas (PostgreSQL + Redis)"
set +e
./scripts/test-hardening.sh
hardening_rc=$?
set -e
hardening_pass=$((hardening_rc == 0 ? 1 : 0))
hardening_fail=$((hardening_rc == 0 ? 0 : 1))

step "end-to-end: real Chromium against the portal and the emulator (yarn test:e2e)"
ensure_chromium
yarn workspace app build
e2e_tap="$REPO_ROOT/node_modules/.cache/e2e.tap"
set +e
node --test --test-concurrency=1 --test-reporter=tap packages/app/e2e-tests/*.test.mts | tee "$e2e_tap"
e2e_rc=${PIPESTATUS[0]}
set -e
e2e_pass="$(sed -n 's/^# pass //p' "$e2e_tap" | tail -1)"
e2e_fail="$(sed -n 's/^# fail //p' "$e2e_tap" | tail -1)"

step "install test: pack the three packages, install them into a new Backstage app as the READMEs say, sign in"
set +e
node scripts/install-test.mjs | tee "$REPO_ROOT/node_modules/.cache/install-test.log"
install_rc=${PIPESTATUS[0]}
set -e
install_pass=$((install_rc == 0 ? 1 : 0))
install_fail=$((install_rc == 0 ? 0 : 1))

read -r jest_pass jest_fail <<<"$jest_summary"
echo
echo "jest: $jest_pass passed, $jest_fail failed"
echo "e2e: ${e2e_pass:-0} passed, ${e2e_fail:-0} failed"
echo "install: $install_pass passed, $install_fail failed"
echo "hardening stage: $hardening_pass passed, $hardening_fail failed"
# One closing line that CI can read.
echo "tests: $((jest_pass + ${e2e_pass:-0} + install_pass + hardening_pass)) passed, $((jest_fail + ${e2e_fail:-0} + install_fail + hardening_fail)) failed"
[ "$e2e_rc" = 0 ] || die "end-to-end tests failed (screenshots in packages/app/e2e-test-results/)"
[ "$install_rc" = 0 ] || die "the install test failed (see its output above)"
[ "$hardening_rc" = 0 ] || die "the hardening stage failed (see its output above)"
