#!/usr/bin/env bash
# The append memory benchmark: bash bench/append-memory.sh [ROWS] [--no-build]
#
# One COPY of ROWS events (1,000,000 by default) of about 1 KB each (a 1,000-character payload,
# 1,000 streams, ids generated) into a fresh store, in one transaction, through psql, and the peak
# resident memory of the backend that ran it (VmHWM of /proc/<pid>/status), read before the COPY
# (after a one-row warm-up COPY, so the extension, libcurl and a connection are loaded) and after
# its COMMIT, which sends every event. Every 2 minutes it prints the peak so far and the table's
# item count. Then the store is counted through DynamoDB's API (bench/item-count.js): every event
# must be there. DynamoDB Local keeps its database in files (-dbPath, in a directory of its own
# under /dev/shm or /tmp, removed at the end), not in its heap. Sets up as test/run-tests.sh does
# (test/lib.sh) in a directory of its own under /tmp, and tears everything down whatever happened.
# Prints `rows N: peak backend RSS before X MB, after Y MB, in Z s` with the counts, and exits
# non-zero when a count is wrong.

set -u
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../test/lib.sh"

ROWS=1000000
BUILD=1
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        *) ROWS="$arg" ;;
    esac
done
RUN_DIR="$(mktemp -d /tmp/esd-appendmem.XXXXXX)" || exit 1
# DynamoDB Local keeps its database in files here: in its heap (the tests' -inMemory), a million
# events of 1 KB fill the 1 GB heap and it stops answering (test/stack/stack.js reads these). The
# files go to /dev/shm when there is one (memory, but outside the Java heap), for speed: on disk,
# DynamoDB Local takes a few hundred events a second
DB_PARENT=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && DB_PARENT=/dev/shm
ESD_DDB_LOCAL_DB_DIR="$(mktemp -d "$DB_PARENT/esd-appendmem-ddb.XXXXXX")" || exit 1
export ESD_DDB_LOCAL_DB_DIR

finish() {
    local status=$?
    trap - EXIT INT TERM
    teardown_all
    rm -rf "$RUN_DIR" "$ESD_DDB_LOCAL_DB_DIR"
    exit "$status"
}
trap finish EXIT
trap 'warn "interrupted"; exit 130' INT TERM

if [ "$BUILD" = 1 ]; then
    setup_all || { warn "set-up failed"; exit 1; }
else
    ensure_packages && ensure_node_modules || { warn "set-up failed"; exit 1; }
fi
start_stack || exit 1
start_pg || exit 1
export_common_env

psql -X -q -v ON_ERROR_STOP=1 <<SQL || exit 1
CREATE EXTENSION IF NOT EXISTS event_store_dynamo;
CREATE SERVER am_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint '$DDB_URL');
CREATE USER MAPPING FOR CURRENT_USER SERVER am_srv
  OPTIONS (access_key_id '$AWS_TEST_ACCESS_KEY_ID', secret_access_key '$AWS_TEST_SECRET_ACCESS_KEY');
CREATE FOREIGN TABLE am (domain text, type text, identifier text, payload jsonb)
  SERVER am_srv OPTIONS (table_name_prefix 'am-');
SELECT event_store_dynamo.reset_store('am');
SQL

hwm_of() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# the session: its pid, a warm-up row, the peak so far, the COPY (autocommit: its COMMIT sends
# everything), the peak after it
start=$SECONDS
{
    echo "SELECT pg_backend_pid() AS pid \\gset"
    echo "\\echo pid :pid"
    echo "COPY am (domain, type, identifier, payload) FROM STDIN;"
    printf 'warmup\te\t0\t{"n":0}\n\\.\n'
    echo "\\echo before"
    echo "SELECT pg_sleep(1);"
    echo "COPY am (domain, type, identifier, payload) FROM STDIN;"
    awk -v rows="$ROWS" 'BEGIN {
        pad = sprintf("%1000s", ""); gsub(/ /, "x", pad);
        for (i = 1; i <= rows; i++)
            printf "bench\te\t%d\t{\"n\":%d,\"pad\":\"%s\"}\n", i % 1000, i, pad;
        print "\\." }'
    echo "\\echo after"
    echo "SELECT pg_sleep(1);"
} | psql -X -q -At -v ON_ERROR_STOP=1 > "$RUN_DIR/session.out" 2>&1 &
session=$!

# the backend's pid, then its peak before and after the COPY
pid=""
before=""
after=""
last_sample=$SECONDS
while kill -0 "$session" 2>/dev/null; do
    # every 2 minutes: the backend's peak so far and the items in the table (the commit's progress)
    if [ -n "$before" ] && [ $((SECONDS - last_sample)) -ge 120 ]; then
        last_sample=$SECONDS
        say "  $((SECONDS - start)) s: peak backend RSS $(( $(hwm_of "$pid") / 1024 )) MB, $(node "$REPO_ROOT/bench/item-count.js" am-schemeless-event-store 2>/dev/null || echo '?') items in the table"
    fi
    [ -z "$pid" ] && pid=$(sed -n 's/^pid //p' "$RUN_DIR/session.out")
    if [ -n "$pid" ] && [ -z "$before" ] && grep -q '^before$' "$RUN_DIR/session.out"; then
        before=$(hwm_of "$pid")
    fi
    if [ -n "$pid" ] && grep -q '^after$' "$RUN_DIR/session.out"; then
        after=$(hwm_of "$pid")
        break
    fi
    sleep 0.2
done
wait "$session" || { cat "$RUN_DIR/session.out"; warn "the COPY failed"; exit 1; }
took=$((SECONDS - start))

# The store, counted through DynamoDB's own API (not the extension): DescribeTable's item count
# (exact on DynamoDB Local), which must be every event plus one head per stream, and the versions
# of the benchmark's 1,000 stream heads, which must add up to ROWS. A count(*) through the index
# would be the extension counting its own work, and DynamoDB Local answers a Query on one month of
# a million events too slowly for it.
streams=$(( ROWS < 1000 ? ROWS : 1000 ))
read -r items versions < <(node "$REPO_ROOT/bench/item-count.js" am-schemeless-event-store --heads bench "$streams")
say "rows $ROWS: peak backend RSS before $((before / 1024)) MB, after $((after / 1024)) MB, in $took s; the table holds ${items:-?} items, the heads count ${versions:-?} events"
[ "$items" = "$(( ROWS + 1 + streams + 1 ))" ] || { warn "expected $(( ROWS + 1 + streams + 1 )) items: the events, the warm-up event, one head per stream"; exit 1; }
[ "$versions" = "$ROWS" ] || { warn "expected the heads to count $ROWS events"; exit 1; }
exit 0
