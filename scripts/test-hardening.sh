#!/usr/bin/env bash
# The heavy stage of the hardening suite (docs/security.md): the soak
# (10,000 sequential sign-ins, resident memory) and the replicas test (the
# demo backend twice, on one PostgreSQL and one Redis). The rest of the suite
# (faults, hostile input, identity, secrets, 500 concurrent sign-ins) runs
# with the unit tests, under plugins/*/src/hardening.
#
# Installs Debian's postgresql and redis-server with apt-get when they are
# missing, like env.sh does for Chromium. Runs every stage even when one
# fails, ends with one line `hardening: N passed, M failed` that counts the
# checks of every stage (the type check is one), and exits non-zero when
# anything failed.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_deps
cd "$REPO_ROOT"

MODULE=plugins/auth-backend-module-bitbucket-provider
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

have_postgres() {
  command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

# Debian's PostgreSQL and Redis for the replicas test (never a download of our own).
ensure_services() {
  local missing=()
  have_postgres || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ ${#missing[@]} = 0 ] && return 0
  log "installing Debian's ${missing[*]} for the replicas test (apt-get)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "${missing[*]} missing and apt-get is not available: install them (see docs/security.md)"
  $sudo apt-get update -qq >&2 &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
    die "could not install ${missing[*]} with apt-get"
}

passed=0
failed=0
# Each check counts: a stage prints one `ok: …` or `FAILED: …` line per check
# (the soak and replicas scripts do); a stage that prints none counts as one
# check, passed or failed by its exit code only if it says it has no checks
# (`one_check`), else as failed: its output could not be read.
run_stage() {
  local name="$1" kind="$2"
  shift 2
  step "$name"
  local started=$SECONDS out rc ok bad
  out="$(mktemp)"
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  ok="$(grep -c '^ok: ' "$out" || true)"
  bad="$(grep -c '^FAILED: ' "$out" || true)"
  rm -f "$out"
  if [ "$kind" = one_check ]; then
    if [ "$rc" = 0 ]; then ok=1 bad=0; else ok=0 bad=1; fi
  elif [ "$ok" = 0 ] && [ "$bad" = 0 ]; then
    log "$name: no check lines in its output: counted as failed"
    bad=1
  elif [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
    log "$name: exited with $rc but named no failed check: counted as failed"
    bad=1
  fi
  passed=$((passed + ok))
  failed=$((failed + bad))
  log "$name: $ok checks passed, $bad failed, in $((SECONDS - started)) s"
}

run_node() {
  node --require @backstage/cli/config/nodeTransform.cjs "$@"
}

set +e
run_stage "type check of the hardening scripts" one_check \
  tsc --project "$MODULE/hardening/tsconfig.json"

# two malloc arenas: the RSS then measures what the process keeps (see soak.ts)
run_stage "soak: 10,000 sequential sign-ins after a warm-up of 5,000, RSS growth < 5 % and trend < 0.25 % per 1,000" checks \
  env MALLOC_ARENA_MAX=2 node --require @backstage/cli/config/nodeTransform.cjs \
  --expose-gc "$MODULE/hardening/soak.ts" --sign-ins 10000 --warmup 5000

ensure_services
run_stage "replicas: two demo backends on one PostgreSQL and one Redis" checks \
  run_node "$MODULE/hardening/replicas.ts"
set -e

echo
echo "hardening: $passed passed, $failed failed"
[ "$failed" = 0 ]
