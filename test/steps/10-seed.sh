#!/bin/sh
# Step 10: seeds the REGRESS, COST and INTEROP event stores through the published Node adapter (plus the
# raw items it cannot write) and verifies them item by item; later steps read them through SQL.
# See test/interop/seed.js. Needs DDB_LOCAL_URL or DDB_URL, S3_URL and AWS_TEST_* from the runner.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/seed.js
