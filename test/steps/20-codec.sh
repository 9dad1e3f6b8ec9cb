#!/bin/bash
# Step 20: the AttributeValue/JSON codec (src/codec.c) on its own.  Builds
# the throwaway module in test/codec (warnings count as a failure), installs
# it into the server's library directory, and runs test/codec/run.js against
# the cluster in PGHOST/PGPORT/PGUSER/PGDATABASE.  run.js works in databases
# of its own and drops them; the module's .so stays installed, unused.
set -u
cd "$(dirname "$0")/../.."

build_log=$(mktemp)
trap 'rm -f "$build_log"; make -C test/codec clean >/dev/null 2>&1' EXIT

if ! { make -C test/codec clean all && make -C test/codec install; } >"$build_log" 2>&1; then
	cat "$build_log"
	echo "codec: the test module did not build"
	echo "codec: 0 passed, 1 failed"
	exit 1
fi
if grep -q "warning:" "$build_log"; then
	grep -B2 -A4 "warning:" "$build_log"
	echo "codec: src/codec.c or the test module compiles with warnings"
	echo "codec: 0 passed, 1 failed"
	exit 1
fi

node test/codec/run.js
