#!/usr/bin/env bash
# The demo: bash test/run-demo.sh
#
# Does the same set-up as test/run-tests.sh (packages, build, install), starts the local AWS
# stand-in and a throwaway PostgreSQL 15 cluster, loads a handful of sample events with the
# published Node adapter (test/demo/load.js), then shows a short psql session reading them through
# the event_store_dynamo foreign table, and tears everything down.

set -u
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
say "demo done"
