#!/usr/bin/env bash
# The test command for event_store_dynamo: bash test/run-tests.sh [name-filter]
#
# On a Debian 12 machine (as root; nothing needs to be set up first) it installs what is missing,
# builds and installs the extension, starts the local AWS stand-in (test/stack/stack.js) and a
# throwaway PostgreSQL 15 cluster, then runs the steps in order, each counted as passed or failed:
#   stack-selfcheck     the stand-in's own check (test/stack/check.js)
#   test/steps/*.sh     in name order, each run with bash from the repository root
# A step passes when it exits 0. Steps see PGHOST, PGPORT, PGUSER, PGDATABASE, the stack.env
# variables (DDB_URL, S3_URL, ...), REPO_ROOT, RUN_DIR and PG_CONFIG.
# An optional argument keeps only the steps whose name contains it, or one of its "|"-separated
# parts (and 10-seed, whose stores the later steps read).
# ESD_SANITIZE=address,undefined or ESD_VALGRIND=1 run it against an instrumented build instead
# (test/sanitize/README.md); reports then fail the run.
# Everything is torn down at the end, whatever happened. The last line is "N passed, N failed";
# the exit status is non-zero when a step, the set-up or a service failed.

set -u
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FILTER="${1:-}"
STEP_TIMEOUT="${STEP_TIMEOUT:-1800}"   # seconds per step
PASSED=0
FAILED=0
RESULTS=()

finish() {
    local status=$?
    trap - EXIT INT TERM
    teardown_all
    # a sanitizer or Valgrind run (test/sanitize): reports of any process fail the run
    if ! san_report; then
        RESULTS+=("FAILED  $SAN_MODE reports (see above)")
        FAILED=$((FAILED + 1))
    fi
    if [ ${#RESULTS[@]} -gt 0 ]; then
        say ""
        say "summary:"
        printf '  %s\n' "${RESULTS[@]}"
    fi
    say "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -gt 0 ] || [ "$status" -ne 0 ]; then
        exit 1
    fi
    exit 0
}
trap finish EXIT
STEP_PID=""
on_signal() {
    warn "interrupted"
    [ -n "$STEP_PID" ] && kill -TERM "$STEP_PID" 2>/dev/null && wait "$STEP_PID" 2>/dev/null
    FAILED=$((FAILED + 1))
    RESULTS+=("FAILED  interrupted")
    exit 130
}
trap on_signal INT TERM

setup_failed() {
    warn "$1"
    RESULTS+=("FAILED  set-up: $1")
    FAILED=$((FAILED + 1))
    exit 1
}

# The steps: name, program (node or bash) and file.
STEP_NAMES=()
STEP_PROGS=()
STEP_FILES=()
# the filter: one or more names separated by "|" ("regress|faults")
matches() {
    local part
    [ -z "$FILTER" ] && return 0
    IFS='|' read -r -a parts <<<"$FILTER"
    for part in "${parts[@]}"; do
        [ -n "$part" ] && [[ "$1" == *"$part"* ]] && return 0
    done
    return 1
}
add_step() {
    # 10-seed writes the stores later steps read, so a filter keeps it whenever it keeps a later step
    if matches "$1" || [ "$1" = 10-seed ]; then
        STEP_NAMES+=("$1")
        STEP_PROGS+=("$2")
        STEP_FILES+=("$3")
    fi
}
add_step stack-selfcheck node "$TEST_DIR/stack/check.js"
if [ -d "$TEST_DIR/steps" ]; then
    while IFS= read -r f; do
        add_step "$(basename "$f" .sh)" bash "$f"
    done < <(find "$TEST_DIR/steps" -maxdepth 1 -name '*.sh' -type f | LC_ALL=C sort)
fi
# ... and drops it again when no later step is kept
if [ -n "$FILTER" ] && ! matches 10-seed && [ ${#STEP_NAMES[@]} -gt 0 ] && [ "${STEP_NAMES[-1]}" = 10-seed ]; then
    unset 'STEP_NAMES[-1]' 'STEP_PROGS[-1]' 'STEP_FILES[-1]'
fi
if [ ${#STEP_NAMES[@]} -eq 0 ]; then
    warn "no step matches '$FILTER'"
    exit 2
fi

start_time=$SECONDS
setup_all || setup_failed "installing or building failed"
start_stack || setup_failed "the local AWS stack did not start"
start_pg || setup_failed "the PostgreSQL cluster did not start"
export_common_env
say "set-up done in $((SECONDS - start_time)) s; ${#STEP_NAMES[@]} step(s)"

cd "$REPO_ROOT" || exit 1
for i in "${!STEP_NAMES[@]}"; do
    name="${STEP_NAMES[$i]}"
    say ""
    say "=== step $name"
    t0=$SECONDS
    # In the background so that an interrupt reaches us (and the trap stops the step) at once.
    timeout --kill-after=30 "$STEP_TIMEOUT" "${STEP_PROGS[$i]}" "${STEP_FILES[$i]}" </dev/null &
    STEP_PID=$!
    wait "$STEP_PID"
    rc=$?
    STEP_PID=""
    took=$((SECONDS - t0))
    if [ $rc -eq 0 ]; then
        PASSED=$((PASSED + 1))
        RESULTS+=("passed  $name (${took} s)")
        say "--- step $name: passed (${took} s)"
    else
        FAILED=$((FAILED + 1))
        why="exit $rc"
        [ $rc -eq 124 ] && why="timed out after ${STEP_TIMEOUT} s"
        RESULTS+=("FAILED  $name ($why, ${took} s)")
        say "--- step $name: FAILED ($why, ${took} s)"
    fi
done

# A service that died during the run is a failure too.
if ! stack_alive; then
    warn "the local AWS stack died during the run (see $RUN_DIR/stack.log)"
    RESULTS+=("FAILED  service: the local AWS stack died")
    FAILED=$((FAILED + 1))
fi
if ! pg_alive; then
    warn "the PostgreSQL cluster died during the run (see $RUN_DIR/pg/server.log)"
    RESULTS+=("FAILED  service: PostgreSQL died")
    FAILED=$((FAILED + 1))
fi
say ""
say "steps done in $((SECONDS - start_time)) s"
exit 0
