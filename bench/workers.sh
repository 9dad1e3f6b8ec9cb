#!/usr/bin/env bash
# The background workers' figures: bash bench/workers.sh [--no-build] [--quick]
#
# Sets up as test/run-tests.sh does (test/lib.sh: packages, npm ci in test/, make and make install,
# the local AWS stand-in), runs bench/workers.js (its own throwaway cluster with the library in
# shared_preload_libraries; see its header for what it measures) and tears everything down.
# Output: the printed figures and bench/out/workers.json.
# bench/feed.sh runs bench/feed.js through this same set-up (ESD_BENCH_SCRIPT=feed).

set -u
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../test/lib.sh"

OUT_DIR="$REPO_ROOT/bench/out"
SCRIPT="${ESD_BENCH_SCRIPT:-workers}"
RUN_DIR="$(mktemp -d "/tmp/esd-bench-$SCRIPT.XXXXXX")" || exit 1
trap 'teardown_all; rm -rf "$RUN_DIR"' EXIT
trap 'warn "interrupted"; exit 130' INT TERM

BUILD=1
ARGS=()
for arg in "$@"; do
    if [ "$arg" = "--no-build" ]; then BUILD=0; else ARGS+=("$arg"); fi
done
if [ "$BUILD" = 1 ]; then
    setup_all || { warn "set-up failed"; exit 1; }
else
    ensure_packages && ensure_node_modules || { warn "set-up failed"; exit 1; }
fi
start_stack || exit 1
export_common_env
mkdir -p "$OUT_DIR"
cd "$REPO_ROOT" || exit 1
node "bench/$SCRIPT.js" --out "$OUT_DIR" ${ARGS[@]+"${ARGS[@]}"} </dev/null 2>&1 | tee "$OUT_DIR/$SCRIPT.log"
exit "${PIPESTATUS[0]}"
