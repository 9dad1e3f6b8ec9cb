#!/bin/sh
# Step 75: projections under concurrent writers (the Node adapter and SQL; skewed, backdated and
# held-back commits), a lagging index (the fault front's indexLagMs), repeated catch_up calls,
# pg_terminate_backend, SIGKILL of a backend mid-batch and statement_timeout; then every read
# model against a full recompute from the events, pg_dump / pg_restore of the state, and the
# cost in requests. Works on a store (pj-) and databases (pj_test, pj_restore) of its own.
# See test/interop/projection.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/projection.js
