#!/bin/sh
# Step 60: the extension under faults. A replay through the fault-injecting front returns every
# INTEROP event exactly once (BatchGetItems answered in part with UnprocessedKeys among the faults); a query against the front that never answers stops promptly on
# pg_cancel_backend and on statement_timeout. See test/interop/faults.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/faults.js
