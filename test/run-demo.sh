#!/usr/bin/env bash
# The demo: bash test/run-demo.sh [--keep]
#
# Does the same set-up as test/run-tests.sh (packages, build, install), starts the local AWS
# stand-in and a throwaway PostgreSQL 15 cluster, loads a handful of sample events with the
# published Node adapter (test/demo/load.js), then shows a short psql session reading them through
# the event_store_dynamo foreign table, and a projection: created and caught up, three events
# appended by the Node adapter (test/demo/append.js), caught up again, the read model queried.
# Then it tears everything down; with --keep (or ESD_DEMO_KEEP=1) it leaves the stack and the
# cluster running, prints the psql line to connect, and tears down on Ctrl-C.

set -u
KEEP="${ESD_DEMO_KEEP:-0}"
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        *) echo "usage: bash test/run-demo.sh [--keep]" >&2; exit 2 ;;
    esac
done
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

finish() {
    local status=$?
    trap - EXIT INT TERM
    teardown_all
    exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

setup_all || exit 1
start_stack || exit 1
start_pg || exit 1
export_common_env

say ""
say "== loading sample events with @schemeless/event-store-adapter-dynamodb"
node "$TEST_DIR/demo/load.js" || { warn "loading the sample events failed"; exit 1; }

say ""
say "== psql"
psql -X -q -v ON_ERROR_STOP=1 -a -P pager=off <<EOF
CREATE EXTENSION event_store_dynamo;
CREATE SERVER demo FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (region 'us-east-1', endpoint '$DDB_URL', s3_endpoint '$S3_URL', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER demo
  OPTIONS (access_key_id '$AWS_TEST_ACCESS_KEY_ID', secret_access_key '$AWS_TEST_SECRET_ACCESS_KEY');
CREATE FOREIGN TABLE events (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER demo OPTIONS (table_name_prefix 'demo-', s3_bucket 'demo-events');

-- The whole store, replayed in created order (the offloaded payload is read back from S3).
SELECT created, domain, identifier, sequence, type,
       CASE WHEN s3_reference IS NULL THEN payload::text
            ELSE '(from S3: ' || length(payload->>'text') || ' characters)' END AS payload
  FROM events;

-- Balances per account.
SELECT identifier AS account,
       sum(CASE type WHEN 'deposited' THEN (payload->>'amount')::numeric
                     WHEN 'withdrawn' THEN -(payload->>'amount')::numeric
                     ELSE 0 END) AS balance,
       count(*) AS events
  FROM events
 WHERE domain = 'account'
 GROUP BY identifier
 ORDER BY identifier;
EOF
rc=$?
if [ $rc -ne 0 ]; then
    warn "the psql session failed (status $rc)"
    exit 1
fi

say ""
say "== a projection: balances per account, kept by a handler, applied exactly once"
psql -X -q -v ON_ERROR_STOP=1 -a -P pager=off <<'EOF' || { warn "the projection session failed"; exit 1; }
CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL, events int NOT NULL);
CREATE FUNCTION apply_balance(e events) RETURNS void LANGUAGE sql AS $$
  INSERT INTO balances AS b
    VALUES (e.identifier,
            CASE e.type WHEN 'deposited' THEN (e.payload->>'amount')::numeric
                        WHEN 'withdrawn' THEN -(e.payload->>'amount')::numeric ELSE 0 END, 1)
  ON CONFLICT (account) DO UPDATE SET balance = b.balance + excluded.balance, events = b.events + 1;
$$;
SELECT event_store_dynamo.create_projection(name => 'balances', source => 'events'::regclass,
  handler => 'apply_balance(events)'::regprocedure, tables => ARRAY['balances'::regclass],
  domains => ARRAY['account'], settle => interval '1 second');
CALL event_store_dynamo.catch_up('balances');
SELECT * FROM balances ORDER BY account;
SELECT name, state, events_applied, events_filtered, lag < interval '1 minute' AS lag_under_a_minute
  FROM event_store_dynamo.projections;
EOF

say ""
say "== three more events, appended by the Node adapter"
node "$TEST_DIR/demo/append.js" || { warn "appending with the Node adapter failed"; exit 1; }

say ""
say "== caught up again (once the 1 second settle has passed), and the read model queried"
sleep 1.5
psql -X -q -v ON_ERROR_STOP=1 -a -P pager=off <<'EOF' || { warn "the projection session failed"; exit 1; }
CALL event_store_dynamo.catch_up('balances');
SELECT * FROM balances ORDER BY account;
SELECT name, state, events_applied, late_applied, events_held, last_error
  FROM event_store_dynamo.projections;
EOF
say ""
say "demo done"

if [ "$KEEP" = 1 ]; then
    say ""
    say "The stack and the cluster keep running. Connect with:"
    say "  psql \"host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER\""
    say "(DynamoDB: $DDB_URL, S3: $S3_URL; the foreign table is events, the projection balances.)"
    say "Press Ctrl-C (or send the script SIGTERM) to tear everything down."
    while true; do sleep 1; done
fi
