#!/bin/sh
# Runs a command (default: the C client test binary) against a live tradewired.
#
#   tests/run.sh [COMMAND [ARGS...]]
#
# Starts $TRADEWIRED (default <repo root>/.build/debug/tradewired) with
#   --socket <unique path under /tmp> --seed 42 --log-level warning STORAGE
# waits (30 s max) for its "listening on <PATH>" stderr line, runs COMMAND
# with TW_TEST_SOCKET=<PATH> in its environment, then stops the daemon with
# SIGTERM and waits for it. The daemon never outlives this script.
# STORAGE comes from TW_TEST_STORAGE: "journal" (the default when unset or
# empty) = --data-dir <a fresh directory next to the socket>, removed at the
# end; "ephemeral" = --ephemeral.
# COMMAND also gets TW_TEST_STORAGE (journal or ephemeral) and
# TW_TEST_TRADEWIRED (the daemon binary, for tests that start daemons of their
# own; those give their storage explicitly).
# Exit status: COMMAND's, or 2 if the daemon could not be started.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
daemon=${TRADEWIRED:-$root/.build/debug/tradewired}
case $daemon in
    /*) ;;
    *) daemon=$(pwd)/$daemon ;;
esac

if [ $# -eq 0 ]; then
    set -- "$here/test_client"
fi

storage=${TW_TEST_STORAGE:-journal}
case $storage in
    journal | ephemeral) ;;
    *)
        echo "run.sh: TW_TEST_STORAGE must be journal or ephemeral, not '$storage'" >&2
        exit 2
        ;;
esac

if [ ! -x "$daemon" ]; then
    echo "run.sh: daemon not found or not executable: $daemon" >&2
    echo "run.sh: build it (swift build, from the repo root) or set TRADEWIRED=/abs/path/to/tradewired" >&2
    exit 2
fi

dir=$(mktemp -d /tmp/twc.XXXXXX) || exit 2
sock=$dir/d.sock
log=$dir/daemon.log
pid=

stop_daemon() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        # the daemon has a 10 s drain grace; give it 15 s, then SIGKILL
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: daemon did not stop after SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    fi
    pid=
}

cleanup() {
    stop_daemon
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

if [ "$storage" = ephemeral ]; then
    "$daemon" --socket "$sock" --seed 42 --log-level warning --ephemeral 2>"$log" &
else
    "$daemon" --socket "$sock" --seed 42 --log-level warning --data-dir "$dir/data" 2>"$log" &
fi
pid=$!

# wait for the "listening on PATH" line
i=0
while :; do
    if grep -qF "listening on $sock" "$log" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        echo "run.sh: daemon exited before listening (exit $?); its stderr:" >&2
        cat "$log" >&2
        pid=
        exit 2
    fi
    if [ $i -ge 300 ]; then
        echo "run.sh: daemon did not print 'listening on $sock' within 30 s; its stderr:" >&2
        cat "$log" >&2
        exit 2
    fi
    sleep 0.1
    i=$((i + 1))
done

TW_TEST_SOCKET=$sock
TW_TEST_STORAGE=$storage
TW_TEST_TRADEWIRED=$daemon
export TW_TEST_SOCKET TW_TEST_STORAGE TW_TEST_TRADEWIRED
"$@"
status=$?

stop_daemon
if [ -s "$log" ] && [ $status -ne 0 ]; then
    echo "run.sh: daemon stderr:" >&2
    grep -vxF "listening on $sock" "$log" >&2
fi
exit $status
