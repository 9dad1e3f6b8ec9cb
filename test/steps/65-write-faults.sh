#!/bin/sh
# Step 65: writes under contention and faults. Two sessions racing to one stream (one wins, the
# other gets 40001 and writes nothing); 60 transactions through the fault-injecting front (every
# committed event exactly once, sequences contiguous, nothing of a rollback); TransactWriteItems
# applied by DynamoDB whose answer is dropped (the retry with the same ClientRequestToken succeeds,
# no spurious conflict). Works on a fresh store of its own (wf-). See test/interop/write-faults.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/write-faults.js
