#!/usr/bin/env bash
# Sets up everything (Node 22, yarn, dependencies) and runs every check and
# test of the repo. The static checks (types, API reports, lint, format)
# stop at the first failure; then every test stage runs (jest, hardening,
# e2e, install test), then the Node 24 leg: a separate install for Node 24
# (scripts/node24.sh: a copy of the working tree in .node24/, its native
# addons built for Node 24) runs the two modules' jest suites and the install
# test again. The closing line `tests: N passed, M failed` counts tests of
# both Node versions: each jest test, each check of the hardening stage and
# of the install test, each e2e test (a cancelled one as failed), and a
# stage whose output cannot be read as failed. Exits non-zero when anything
# failed.
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
set +e
CI=true yarn backstage-cli repo test --json --outputFile="$results"
jest_rc=$?
set -e

# Every stage's count of tests, from its own output; a stage whose output
# cannot be read fails the run (its count would be a guess).
unreadable=()
jest_summary="$(node -e '
  const r = require(process.argv[1]);
  // a suite that failed to run has no tests to count: each counts as one failed
  console.log(r.numPassedTests + " " + (r.numFailedTests + r.numRuntimeErrorTestSuites));
' "$results" 2>/dev/null)" || { jest_summary="0 0"; unreadable+=(jest); }

step "hardening: soak (10,000 sign-ins) and replicas (PostgreSQL + Redis)"
hardening_log="$REPO_ROOT/node_modules/.cache/hardening.log"
set +e
./scripts/test-hardening.sh 2>&1 | tee "$hardening_log"
hardening_rc=${PIPESTATUS[0]}
set -e
read -r hardening_pass hardening_fail < <(
  sed -n 's/^hardening: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$hardening_log" | tail -1
) || true
[ -n "${hardening_pass:-}" ] || { hardening_pass=0 hardening_fail=0; unreadable+=(hardening); }

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
e2e_cancelled="$(sed -n 's/^# cancelled //p' "$e2e_tap" | tail -1)"
if [ -z "$e2e_pass" ] || [ -z "$e2e_fail" ]; then
  e2e_pass=0 e2e_fail=0
  unreadable+=(e2e)
fi
# a cancelled test (a timeout, a crashed file) did not pass
e2e_fail=$((e2e_fail + ${e2e_cancelled:-0}))

step "install test: pack the three packages, install them into a new Backstage app as the READMEs say, sign in"
install_log="$REPO_ROOT/node_modules/.cache/install-test.log"
set +e
node scripts/install-test.mjs | tee "$install_log"
install_rc=${PIPESTATUS[0]}
set -e
read -r install_pass install_fail < <(
  sed -n 's/^install-test: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$install_log" | tail -1
) || true
[ -n "${install_pass:-}" ] || { install_pass=0 install_fail=0; unreadable+=("install test"); }

step "Node 24: a separate install in .node24/ (scripts/node24.sh), then the two modules' jest suites and the install test"
node24_started=$SECONDS
node24_cache="$REPO_ROOT/node_modules/.cache/node24"
mkdir -p "$node24_cache"
rm -f "$node24_cache/jest-results.json" "$node24_cache/install-test.log"
set +e
# the install, and the declaration files the install test's `yarn build` packs
./scripts/node24.sh yarn tsc
node24_setup_rc=$?
jest24_rc=1 install24_rc=1
if [ "$node24_setup_rc" = 0 ]; then
  CI=true ./scripts/node24.sh yarn backstage-cli repo test \
    plugins/auth-backend-module-bitbucket-provider \
    plugins/catalog-backend-module-bitbucket-cloud-org \
    --json --outputFile="$node24_cache/jest-results.json"
  jest24_rc=$?
  ./scripts/node24.sh node scripts/install-test.mjs | tee "$node24_cache/install-test.log"
  install24_rc=${PIPESTATUS[0]}
fi
set -e
node24_seconds=$((SECONDS - node24_started))
jest24_summary="$(node -e '
  const r = require(process.argv[1]);
  console.log(r.numPassedTests + " " + (r.numFailedTests + r.numRuntimeErrorTestSuites));
' "$node24_cache/jest-results.json" 2>/dev/null)" || { jest24_summary="0 0"; unreadable+=("Node 24 jest"); }
read -r install24_pass install24_fail < <(
  sed -n 's/^install-test: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$node24_cache/install-test.log" 2>/dev/null | tail -1
) || true
[ -n "${install24_pass:-}" ] || { install24_pass=0 install24_fail=0; unreadable+=("Node 24 install test"); }

read -r jest_pass jest_fail <<<"$jest_summary"
read -r jest24_pass jest24_fail <<<"$jest24_summary"
echo
echo "jest: $jest_pass passed, $jest_fail failed"
echo "e2e: $e2e_pass passed, $e2e_fail failed (cancelled: ${e2e_cancelled:-0})"
echo "install test: $install_pass passed, $install_fail failed"
echo "hardening stage: $hardening_pass passed, $hardening_fail failed"
echo "node 24 jest (the two modules): $jest24_pass passed, $jest24_fail failed"
echo "node 24 install test: $install24_pass passed, $install24_fail failed"
echo "node 24 leg (install, jest, install test): ${node24_seconds} s"
for stage in "${unreadable[@]}"; do
  echo "the output of the $stage stage could not be read: it counts as failed"
done
total_fail=$((jest_fail + e2e_fail + install_fail + hardening_fail + jest24_fail + install24_fail + ${#unreadable[@]}))
# One closing line that CI can read: tests, not stages, of both Node versions.
echo "tests: $((jest_pass + e2e_pass + install_pass + hardening_pass + jest24_pass + install24_pass)) passed, $total_fail failed"
[ "${#unreadable[@]}" = 0 ] || die "could not read the results of: ${unreadable[*]}"
[ "$jest_rc" = 0 ] || die "unit/integration tests failed"
[ "$e2e_rc" = 0 ] || die "end-to-end tests failed (screenshots in packages/app/e2e-test-results/)"
[ "$install_rc" = 0 ] || die "the install test failed (see its output above)"
[ "$hardening_rc" = 0 ] || die "the hardening stage failed (see its output above)"
[ "$node24_setup_rc" = 0 ] || die "the Node 24 install (scripts/node24.sh) failed (see its output above)"
[ "$jest24_rc" = 0 ] || die "the jest suites failed on Node 24"
[ "$install24_rc" = 0 ] || die "the install test failed on Node 24 (see its output above)"
[ "$total_fail" = 0 ] || die "$total_fail tests failed"
