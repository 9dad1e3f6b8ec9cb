#!/bin/sh
# Step 55: interop, write side. What INSERT, COPY, a trigger and a 10,000-row INSERT ... SELECT
# append must be stored in the SPEC's layout (raw items and S3 body checked with the AWS SDK) and
# replay equal through the published Node adapter; the adapter and SQL then take turns on the same
# streams without a conflict. Works on a fresh store of its own (iw-). See test/interop/write.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/write.js
