#!/usr/bin/env bash
# The change feed's figures: bash bench/feed.sh [--no-build] [--quick]
#
# Runs bench/feed.js (its own throwaway cluster with the library in shared_preload_libraries; see
# its header for what it measures) with the set-up and teardown of bench/workers.sh.
# Output: the printed figures and bench/out/feed.json.
ESD_BENCH_SCRIPT=feed exec bash "$(dirname "${BASH_SOURCE[0]}")/workers.sh" "$@"
