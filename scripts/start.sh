#!/usr/bin/env bash
# Sets up everything (Node 22, yarn, dependencies) and runs the portal:
# frontend on http://localhost:3000, backend on http://localhost:7007.
#
# Without Bitbucket credentials it also starts the Bitbucket Cloud emulator
# (http://localhost:7100) with the demo users, and points the provider at it.
# With AUTH_BITBUCKET_CLIENT_ID and AUTH_BITBUCKET_CLIENT_SECRET set, or an
# app-config.local.yaml present, it uses real Bitbucket Cloud instead.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_deps
cd "$REPO_ROOT"

EMULATOR_PORT="${BITBUCKET_EMULATOR_PORT:-7100}"
configs=(--config "$REPO_ROOT/app-config.yaml")

if [ -n "${AUTH_BITBUCKET_CLIENT_ID:-}" ] || [ -f app-config.local.yaml ]; then
  log "using real Bitbucket Cloud (AUTH_BITBUCKET_CLIENT_ID or app-config.local.yaml is set)"
  [ -f app-config.local.yaml ] && configs+=(--config "$REPO_ROOT/app-config.local.yaml")
else
  log "no Bitbucket credentials: starting the Bitbucket Cloud emulator on http://localhost:$EMULATOR_PORT"
  node packages/bitbucket-cloud-emulator/bin/bitbucket-cloud-emulator --port "$EMULATOR_PORT" &
  emulator_pid=$!
  trap 'kill $emulator_pid 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$EMULATOR_PORT/_emulator/health" >/dev/null 2>&1 && break
    kill -0 "$emulator_pid" 2>/dev/null || die "the emulator did not start (is port $EMULATOR_PORT free? set BITBUCKET_EMULATOR_PORT)"
    sleep 0.1
  done
  export BITBUCKET_EMULATOR_URL="http://localhost:$EMULATOR_PORT"
  configs+=(--config "$REPO_ROOT/app-config.emulator.yaml")
fi

yarn start "${configs[@]}"
