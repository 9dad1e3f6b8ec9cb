#!/bin/sh
# Step 85: background workers keeping projections current, in a throwaway cluster with the library
# in shared_preload_libraries: restarts, killed workers, stop and drop while running, failing
# handlers, two databases, a partitioned projection (a worker per partition), DROP DATABASE and
# DROP EXTENSION, ALTER EXTENSION UPDATE from 0.2 and on to 0.4; every read model compared with a
# full recompute. See test/workers/run.js. Needs DDB_URL and S3_URL.
set -eu
cd "$(dirname "$0")/../.."
exec node test/workers/run.js
