#!/bin/sh
# Step 67: a cancel during a 20,000-event commit: the error (57014) says how many events were
# written and through which sequence of each stream, and DynamoDB holds what it says. Works on a
# fresh store of its own (cc-). See test/interop/commit-cancel.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/commit-cancel.js
