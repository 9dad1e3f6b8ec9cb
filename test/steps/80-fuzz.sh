#!/bin/bash
# Step 80: coverage-guided fuzzing of the codec and the response parsers (test/fuzz, README there).
# Builds the libFuzzer module (clang, AddressSanitizer + UndefinedBehaviorSanitizer) out of tree in
# test/.stack/fuzz-build, makes a throwaway data directory, and for each target starts a
# stand-alone backend (postgres --single) that runs libFuzzer: first every input of the committed
# seed corpus test/fuzz/corpus/<target> (the regression cases), then new inputs for a bounded time
# with a fixed seed. A target passes when libFuzzer finishes without a crash, a sanitizer report or
# a failed property. Needs no cluster or stack of the runner; uses RUN_DIR for its files when set.
#
#   ESD_FUZZ_SECONDS   fuzzing time per target after the corpus (default 30)
#   ESD_FUZZ_SEED      libFuzzer's -seed (default 1)
#   ESD_FUZZ_TARGETS   targets to run (default "item payload response")
#
# Prints "fuzz: N passed, N failed"; on a failure, the report, the input and where it was saved.
set -u
cd "$(dirname "$0")/../.."
REPO_ROOT=$(pwd)
SYS_PGBIN=/usr/lib/postgresql/15/bin      # the real server: the sanitizer builds' wrappers must not be used here
SECS=${ESD_FUZZ_SECONDS:-30}
SEED=${ESD_FUZZ_SEED:-1}
TARGETS=${ESD_FUZZ_TARGETS:-"item payload response"}
RUN_BASE=${RUN_DIR:-$REPO_ROOT/test/.stack/run}
WORK=$RUN_BASE/fuzz
BUILD=$REPO_ROOT/test/.stack/fuzz-build
PASSED=0
FAILED=0

finish() {
    echo "fuzz: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# clang and libFuzzer's runtime
fuzzer_lib() {
    command -v clang-14 >/dev/null 2>&1 || return 1
    local lib
    lib="$(clang-14 -print-resource-dir)/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a"
    [ -f "$lib" ]
}
if ! fuzzer_lib; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing clang-14 and libclang-rt-14-dev"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null; }
    fi
    if ! fuzzer_lib; then
        echo "fuzz: clang-14 with libFuzzer (libclang-rt-14-dev) is needed"
        FAILED=1
        finish
    fi
fi
ASAN_RT=$(clang-14 -print-file-name=libclang_rt.asan-x86_64.so)

# the module, built out of tree (make keeps it up to date with src/ and test/fuzz/)
mkdir -p "$BUILD"
build_log="$BUILD/build.log"
if ! env -u COPT make -C "$BUILD" -f "$REPO_ROOT/test/fuzz/Makefile" -s -j2 \
        PG_CONFIG="$SYS_PGBIN/pg_config" >"$build_log" 2>&1; then
    cat "$build_log"
    echo "fuzz: the fuzz module did not build"
    FAILED=1
    finish
fi
# the sanitizer runtime must be initialised before the server's libraries' constructors run
gcc -shared -fPIC -O2 -o "$BUILD/early_init.so" "$REPO_ROOT/test/sanitize/early_init.c" -ldl ||
    { echo "fuzz: test/sanitize/early_init.c did not build"; FAILED=1; finish; }

# a throwaway data directory, and the files the server reads, where the postgres account reaches them
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$BUILD/esd_fuzz.so" "$BUILD/early_init.so" "$REPO_ROOT/test/fuzz/json.dict" \
    "$REPO_ROOT/test/fuzz/lsan.supp" "$WORK/"
for t in $TARGETS; do
    mkdir -p "$WORK/seed-$t" "$WORK/new-$t" "$WORK/found-$t"
    cp "$REPO_ROOT/test/fuzz/corpus/$t/"* "$WORK/seed-$t/" 2>/dev/null
done
if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$WORK"
    d="$WORK"
    while [ "$d" != "/" ]; do
        as_pg test -x "$d" 2>/dev/null || chmod o+x "$d"
        d=$(dirname "$d")
    done
fi
if ! as_pg "$SYS_PGBIN/initdb" -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$WORK/initdb.log" 2>&1; then
    cat "$WORK/initdb.log"
    echo "fuzz: initdb failed"
    FAILED=1
    finish
fi

for t in $TARGETS; do
    log="$WORK/$t.log"
    ninputs=$(find "$WORK/seed-$t" -type f | wc -l)
    echo "--- fuzz target $t: $ninputs seed inputs, then ${SECS} s (seed $SEED)"
    sql="CREATE FUNCTION esd_fuzz_run(text, text[]) RETURNS void AS '$WORK/esd_fuzz.so' LANGUAGE C STRICT;
SELECT esd_fuzz_run('$t', ARRAY['-seed=$SEED', '-max_total_time=$SECS', '-timeout=10', '-rss_limit_mb=3072', '-max_len=8192', '-print_final_stats=1', '-dict=$WORK/json.dict', '-artifact_prefix=$WORK/found-$t/', '$WORK/new-$t', '$WORK/seed-$t']);"
    start=$SECONDS
    if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); else run=(); fi
    printf '%s\n' "$sql" | timeout --kill-after=10 $((SECS + 120)) "${run[@]}" env \
        LD_PRELOAD="$ASAN_RT $WORK/early_init.so" \
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:handle_abort=1:symbolize=1:detect_stack_use_after_return=0" \
        LSAN_OPTIONS="suppressions=$WORK/lsan.supp:print_suppressions=0" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        "$SYS_PGBIN/postgres" --single -D "$WORK/data" -c fsync=off -c jit=off -c max_stack_depth=2MB postgres \
        >"$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    if [ $rc -eq 0 ] && grep -q '^Done [0-9]* runs' "$log"; then
        PASSED=$((PASSED + 1))
        echo "passed: $t ($(grep -o '^Done [0-9]* runs' "$log" | head -1), $(grep -o 'cov: [0-9]*' "$log" | tail -1), ${took} s)"
    else
        FAILED=$((FAILED + 1))
        echo "FAILED: $t (exit $rc, ${took} s); the end of $log:"
        grep -v '^\s*[0-9]*: \|^\s*----\|^backend> *$' "$log" | tail -n 80
        found=$(find "$WORK/found-$t" -type f | head -1)
        if [ -n "$found" ]; then
            echo "the input is saved as $found; once fixed, keep it as a regression case:"
            echo "  cp $found test/fuzz/corpus/$t/regress-<what-it-was>"
        fi
    fi
done
finish
