#!/bin/bash
# A private PostgreSQL server for tests, benchmarks and contrib/cluster (never the system's).
#
#   scripts/pg-server.sh start DIR PORT [WATCH_PID]
#       initdb into DIR/data on first use (trust auth, user postgres), then starts postgres
#       listening on 127.0.0.1:PORT and on the socket directory DIR (socket DIR/.s.PGSQL.PORT),
#       and waits until it accepts connections. With WATCH_PID, a watchdog stops the server
#       when that process ends (a test run that crashed leaves nothing behind).
#       PG_TEMPLATE=DATA_DIR copies an initdb'd data directory instead of running initdb
#       (tests start many servers: initdb once, copy it for each).
#   scripts/pg-server.sh initdb DIR
#       only initdb into DIR/data (a template for PG_TEMPLATE).
#   scripts/pg-server.sh stop DIR
#       fast shutdown (SIGINT to the postmaster), waits until it is gone.
#
# PostgreSQL refuses to run as root: as root, DIR is given to the postgres user and every
# server program runs through `runuser -u postgres`. Debian keeps initdb and postgres off
# PATH, in /usr/lib/postgresql/VERSION/bin; PG_BIN overrides where they are.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT [WATCH_PID] | initdb DIR | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2

if [ -z "${PG_BIN:-}" ]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
[ -x "${PG_BIN:-}/postgres" ] || { echo "pg-server: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 3; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postmaster_pid() { head -1 "$dir/data/postmaster.pid" 2>/dev/null || true; }

prepare() {
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -x "$dir"; then
            echo "pg-server: the postgres user cannot reach $dir (a parent directory is private: chmod o+x it)" >&2
            exit 1
        fi
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        if [ -n "${PG_TEMPLATE:-}" ] && [ -f "$PG_TEMPLATE/PG_VERSION" ]; then
            cp -a "$PG_TEMPLATE" "$dir/data"
        else
            as_owner "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
                { cat "$dir/initdb.log" >&2; exit 1; }
        fi
    fi
}

case "$cmd" in
initdb)
    prepare
    ;;
start)
    [ $# -ge 3 ] || usage
    port=$3 watch=${4:-}
    case "$port" in '' | *[!0-9]*) echo "pg-server: port must be a number" >&2; exit 2 ;; esac
    prepare
    # fsync stays on: the tests kill nodes, not the database, and measure with a real commit.
    as_owner "$PG_BIN/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
        -c max_connections=200 -c shared_buffers=64MB -c log_min_messages=warning \
        -c idle_in_transaction_session_timeout=60s >"$dir/postgres.log" 2>&1 &
    for _ in $(seq 1 200); do
        if pg_isready -q -h "$dir" -p "$port" 2>/dev/null; then break; fi
        if ! kill -0 $! 2>/dev/null; then cat "$dir/postgres.log" >&2; exit 1; fi
        sleep 0.05
    done
    pg_isready -q -h "$dir" -p "$port" || { echo "pg-server: not ready after 10 s" >&2; cat "$dir/postgres.log" >&2; exit 1; }
    if [ -n "$watch" ]; then
        pid=$(postmaster_pid)
        # The watchdog: when WATCH_PID ends, stop this server (by its own PID, never a reused one).
        (
            exec </dev/null >/dev/null 2>&1
            while kill -0 "$watch" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
            if [ "$(postmaster_pid)" = "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
        ) &
        disown
    fi
    ;;
stop)
    pid=$(postmaster_pid)
    [ -n "$pid" ] || exit 0
    kill -INT "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
*) usage ;;
esac
