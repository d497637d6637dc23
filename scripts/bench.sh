#!/usr/bin/env bash
# Sets up like the test command (Node 22, yarn, dependencies), then runs the
# benchmarks: `./scripts/bench.sh [yarn bench options]` (docs/benchmarks.md).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_deps
cd "$REPO_ROOT"
exec yarn bench "$@"
