#!/usr/bin/env bash
# The benchmark command: bash bench/run.sh [--no-build] [--rounds N] [--no-million] [--quick]
#
# Sets up exactly as test/run-tests.sh does (test/lib.sh: Debian packages, npm ci in test/, make and
# make install of the extension, the local AWS stand-in test/stack/stack.js and a throwaway
# PostgreSQL 15 cluster on free ports), installs gnuplot if it is missing, runs bench/bench.js (see
# bench/README.md for what it measures), and tears everything down whatever happened.
# --no-build skips make and make install and measures the extension already installed.
# Output: the printed table, and bench/out/ (results.json, replay.png, replay.dat, bench.log).
# The services run from a directory of their own under /tmp, never the tests' test/.stack/run, so a
# test run and a benchmark can share the machine.

set -u
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../test/lib.sh"

BENCH_DIR="$REPO_ROOT/bench"
OUT_DIR="$BENCH_DIR/out"
RUN_DIR="$(mktemp -d /tmp/esd-bench.XXXXXX)" || exit 1

finish() {
    local status=$?
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ] && [ -f "$RUN_DIR/stack.out" ]; then
        mkdir -p "$OUT_DIR/logs"
        cp "$RUN_DIR/stack.log" "$RUN_DIR/stack.out" "$OUT_DIR/logs/" 2>/dev/null
        cp "$RUN_DIR/pg/server.log" "$OUT_DIR/logs/postgres.log" 2>/dev/null
        warn "logs of the services: $OUT_DIR/logs/"
    fi
    teardown_all
    rm -rf "$RUN_DIR"
    exit "$status"
}
trap finish EXIT
trap 'warn "interrupted"; exit 130' INT TERM

# gnuplot draws replay.png; without it the figures are still measured and written.
ensure_gnuplot() {
    command -v gnuplot >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        warn "gnuplot is missing and we are not root: no plot (apt-get install gnuplot-nox)"
        return 0
    fi
    say "installing: gnuplot-nox"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q --no-install-recommends gnuplot-nox ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends gnuplot-nox; }; } >/dev/null ||
        warn "could not install gnuplot-nox: no plot"
}

BUILD=1
BENCH_ARGS=()
for arg in "$@"; do
    if [ "$arg" = "--no-build" ]; then BUILD=0; else BENCH_ARGS+=("$arg"); fi
done

start_time=$SECONDS
if [ "$BUILD" = 1 ]; then
    setup_all || { warn "set-up failed"; exit 1; }
else
    ensure_packages && ensure_node_modules || { warn "set-up failed"; exit 1; }
    if [ ! -f "$("$PG_CONFIG" --pkglibdir)/event_store_dynamo.so" ]; then
        warn "--no-build: the extension is not installed (run without --no-build)"
        exit 1
    fi
    say "--no-build: measuring the installed extension ($("$PG_CONFIG" --pkglibdir)/event_store_dynamo.so)"
fi
ensure_gnuplot
start_stack || exit 1
start_pg || exit 1
export_common_env
say "set-up done in $((SECONDS - start_time)) s"
say ""

mkdir -p "$OUT_DIR"
cd "$REPO_ROOT" || exit 1
node "$BENCH_DIR/bench.js" --out "$OUT_DIR" ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} </dev/null 2>&1 | tee "$OUT_DIR/bench.log"
status=${PIPESTATUS[0]}

if ! stack_alive; then
    warn "the local AWS stack died during the run"
    status=1
fi
if ! pg_alive; then
    warn "the PostgreSQL cluster died during the run"
    status=1
fi
say "benchmark done in $((SECONDS - start_time)) s (exit status $status)"
exit "$status"
