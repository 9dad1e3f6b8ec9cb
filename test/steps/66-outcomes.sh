#!/bin/sh
# Step 66: commits whose TransactWriteItems is answered otherwise than with success, through a
# scripted front: TransactionInProgressException retried with the same ClientRequestToken; an
# applied transaction whose answers were lost, resolved by looking its first event up; 08007 when
# nothing resolves it; each cancellation reason's SQLSTATE and message; cancellations for
# TransactionConflict and ThrottlingError sent again under a new token. Works on a fresh store of
# its own (oc-). See test/interop/outcomes.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/outcomes.js
