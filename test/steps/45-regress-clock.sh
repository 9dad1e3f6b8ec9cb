#!/bin/sh
# Step 45: the date-relative regression files (read, pushdown, write, admin) again, twice, with the
# extension's clock fixed at a month boundary through event_store_dynamo.test_now (src/clock.c):
# the last millisecond of the previous month, then the first of the current one. The files compute
# their expectations from the same clock (pg_temp.clock()), so their expected output is the same
# as in step 40; a file that depended on the day of the month, or an extension that ignored the
# clock for the walk's last month or a default created, fails here. The current month is used so
# that the REGRESS store's future event (seeded a month ahead of the real clock) stays within every
# walk's look-ahead. On a failure, regression.diffs is printed.
set -eu
cd "$(dirname "$0")/../.."
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
FILES="read pushdown write admin"
month_start=$(date -u +%Y-%m-01)
last_of_previous="$(date -u -d "$month_start - 1 day" +%Y-%m-%d)T23:59:59.999Z"
first_of_current="${month_start}T00:00:00.000Z"
for clock in "$last_of_previous" "$first_of_current"; do
  echo "regress with event_store_dynamo.test_now = $clock: $FILES"
  rm -f regression.diffs
  if ! PGOPTIONS="${PGOPTIONS:-} -c event_store_dynamo.test_now=$clock" \
       make -s installcheck PG_CONFIG="$PG_CONFIG" REGRESS="$FILES"; then
    [ -f regression.diffs ] && cat regression.diffs
    exit 1
  fi
done
