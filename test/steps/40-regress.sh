#!/bin/sh
# Step 40: the pg_regress suite (sql/*.sql against expected/*.out) through `make installcheck`,
# against the runner's cluster and local stack; the REGRESS list in the Makefile names the files.
# On a failure, regression.diffs is printed.
set -eu
cd "$(dirname "$0")/../.."
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
rm -f regression.diffs
if make -s installcheck PG_CONFIG="$PG_CONFIG"; then
  exit 0
fi
[ -f regression.diffs ] && cat regression.diffs
exit 1
