#!/usr/bin/env bash
#
# clients/shell/test.sh — tests for clients/shell/tradewire.sh against a LIVE tradewired.
#
#   clients/shell/test.sh                       # daemon: <repo>/.build/debug/tradewired
#   TRADEWIRED=/abs/path/tradewired clients/shell/test.sh
#
# Starts $TRADEWIRED --socket <unique path under /tmp> --seed 42 --log-level warning STORAGE,
# waits (up to 30 s) for its stderr line "listening on PATH", runs every client check with
# each installed transport (socat, nc), and stops the daemon with SIGTERM on exit.
# STORAGE comes from TW_TEST_STORAGE: journal (the default when unset or empty) =
# --data-dir <a fresh directory under the test's temporary directory, removed at the end>,
# ephemeral = --ephemeral. The tw_journal_id checks start daemons of their own, each with
# its storage given explicitly (a data dir twice, another one, --ephemeral).
# A few checks need no daemon: tw_socket, argument checking, the contrib jq program on a
# sample event (fixtures/), and a fake server (socat) that sends notifications, foreign
# ids and junk before the reply, never answers, or disconnects.
# Prints "ok - NAME" / "not ok - NAME" per check and ends with "N passed, N failed";
# exits 1 if anything failed.
#
# Needs bash >= 4.3, jq, and socat and/or netcat-openbsd.
# shellcheck source-path=SCRIPTDIR disable=SC2016

set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
TRADEWIRED=${TRADEWIRED:-$root/.build/debug/tradewired}
storage=${TW_TEST_STORAGE:-journal}
case $storage in
    journal | ephemeral) ;;
    *)
        echo "test.sh: TW_TEST_STORAGE must be journal or ephemeral, not '$storage'" >&2
        exit 2
        ;;
esac
# Keep the caller's environment out of the tests.
unset TRADEWIRE_SOCKET TW_TRANSPORT TW_COUNT TW_TIMEOUT
export TW_TIMEOUT=60

# shellcheck source=tradewire.sh
source "$here/tradewire.sh"

passed=0 failed=0
ok() {
    printf 'ok - %s\n' "$1"
    passed=$((passed + 1))
}
not_ok() {
    printf 'not ok - %s\n' "$1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
    failed=$((failed + 1))
}
skip() { printf 'ok - %s # SKIP %s\n' "$1" "$2"; }

# check NAME COND DIAG... — record COND (a status: 0 = pass).
check() {
    local name=$1 cond=$2
    shift 2
    if [[ $cond -eq 0 ]]; then ok "$name"; else not_ok "$name" "$@"; fi
}

# run OUTVAR ERRVAR RCVAR CMD... — run CMD, capture stdout, stderr and status.
run() {
    local -n _out=$1 _err=$2 _rc=$3
    shift 3
    local ef
    ef=$(mktemp "$tmp/err.XXXXXX")
    _out=$("$@" 2>"$ef")
    _rc=$?
    _err=$(<"$ef")
    rm -f "$ef"
}

# wait_pid PID SECONDS — wait for a background job, at most SECONDS; kill it after that.
wait_pid() {
    local pid=$1 n=$(($2 * 10))
    while kill -0 "$pid" 2>/dev/null && ((n-- > 0)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 124
    fi
    wait "$pid"
}

# ------------------------------------------------------------------ setup / teardown

tmp=$(mktemp -d /tmp/twsh.XXXXXX) || exit 1
sock=$tmp/d.sock
daemon_pid=
fake_pid=
own_pid=
if [[ $storage == ephemeral ]]; then
    storage_args=(--ephemeral)
else
    storage_args=(--data-dir "$tmp/data")
fi

# stop_pid PID: SIGTERM, wait up to 20 s (then SIGKILL, status 124); returns its exit status.
stop_pid() {
    local pid=$1 n=200
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null && ((n-- > 0)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 124
    fi
    wait "$pid"
}

stop_daemon() {
    [[ -n $daemon_pid ]] || return 0
    local pid=$daemon_pid
    daemon_pid=
    stop_pid "$pid"
}

# A daemon of the tw_journal_id checks' own, on $tmp/own.sock: start_own ARGS... (its
# storage, given explicitly), stop_own (SIGTERM; returns its exit status).
start_own() {
    # a fresh log: the last daemon's "listening on" line (same socket) must not count
    rm -f "$tmp/own.err"
    "$TRADEWIRED" --socket "$tmp/own.sock" --seed 42 --log-level warning "$@" \
        </dev/null >/dev/null 2>"$tmp/own.err" &
    own_pid=$!
    local n=300
    while ((n-- > 0)); do
        grep -qF "listening on $tmp/own.sock" "$tmp/own.err" 2>/dev/null && return 0
        if ! kill -0 "$own_pid" 2>/dev/null; then
            wait "$own_pid" 2>/dev/null
            own_pid=
            return 1
        fi
        sleep 0.1
    done
    return 1
}
stop_own() {
    [[ -n $own_pid ]] || return 0
    local pid=$own_pid
    own_pid=
    stop_pid "$pid"
}

cleanup() {
    # Background jobs still running (a subscriber after a failed check): stop them first;
    # each takes its transport down within a second.
    local p
    for p in $(jobs -p); do
        [[ $p == "$daemon_pid" || $p == "$own_pid" ]] || kill -TERM "$p" 2>/dev/null
    done
    stop_daemon
    stop_own
    if [[ -n $fake_pid ]]; then
        kill -TERM "$fake_pid" 2>/dev/null
        wait "$fake_pid" 2>/dev/null
    fi
    if [[ -n ${impostor_pid:-} ]]; then
        kill -TERM "$impostor_pid" 2>/dev/null
        wait "$impostor_pid" 2>/dev/null
    fi
    [[ -n ${fakedir:-} ]] && rm -rf "$fakedir"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v jq >/dev/null 2>&1 || {
    echo "test.sh: jq is required (apt-get install jq)" >&2
    exit 2
}
transports=()
command -v socat >/dev/null 2>&1 && transports+=(socat)
command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-U' && transports+=(nc)

# ------------------------------------------------------------------ checks without a daemon

# tw_socket: docs/PROTOCOL.md §1 order.
out=$(TRADEWIRE_SOCKET=/x/explicit.sock XDG_RUNTIME_DIR=/run/user/7 tw_socket)
check "tw_socket prefers TRADEWIRE_SOCKET" "$([[ $out == /x/explicit.sock ]]; echo $?)" "got: $out"
out=$(unset TRADEWIRE_SOCKET; XDG_RUNTIME_DIR=/run/user/7 tw_socket)
check "tw_socket falls back to \$XDG_RUNTIME_DIR/tradewire.sock" \
    "$([[ $out == /run/user/7/tradewire.sock ]]; echo $?)" "got: $out"
out=$(unset TRADEWIRE_SOCKET XDG_RUNTIME_DIR; tw_socket)
check "tw_socket falls back to /tmp/tradewire-\$UID/tradewire.sock" \
    "$([[ $out == "/tmp/tradewire-$UID/tradewire.sock" ]]; echo $?)" "got: $out"

# Argument checking happens before any connection.
export TRADEWIRE_SOCKET=$tmp/nothing-here.sock
run out err rc tw_call
check "tw_call without a method returns 2" "$([[ $rc -eq 2 && $err == *usage* ]]; echo $?)" "rc=$rc" "$err"
run out err rc tw_call ping '[1,'
check "tw_call with invalid JSON params returns 2 before connecting" \
    "$([[ $rc -eq 2 && $err == *"invalid JSON params"* ]]; echo $?)" "rc=$rc" "$err"
run out err rc tw_call ping '"a string"'
check "tw_call with non-object params returns 2" "$([[ $rc -eq 2 ]]; echo $?)" "rc=$rc" "$err"
run out err rc tw_publish some.type '{"unterminated'
check "tw_publish with invalid JSON data returns 2" \
    "$([[ $rc -eq 2 && $err == *"invalid JSON data"* ]]; echo $?)" "rc=$rc" "$err"
run out err rc tw_subscribe 'x.*' -5
check "tw_subscribe with a bad SINCE_SEQ returns 2" "$([[ $rc -eq 2 ]]; echo $?)" "rc=$rc" "$err"
run out err rc env TW_TRANSPORT=carrier-pigeon bash -c 'source "$1"; tw_call ping' _ "$here/tradewire.sh"
check "an unknown TW_TRANSPORT returns 2" "$([[ $rc -eq 2 && $err == *TW_TRANSPORT* ]]; echo $?)" "rc=$rc" "$err"
unset TRADEWIRE_SOCKET

# The jq part of contrib/shell/signals-to-jq.sh on sample signals_ready events.
out=$("$root/contrib/shell/signals-to-jq.sh" --stdin <"$here/fixtures/signals_ready.jsonl" 2>&1)
rc=$?
expected=$(<"$here/fixtures/signals_ready.expected.tsv")
check "contrib/shell/signals-to-jq.sh formats sample signals_ready events" \
    "$([[ $rc -eq 0 && $out == "$expected" ]]; echo $?)" "rc=$rc" "got:" "$out" "expected:" "$expected"

# A fake server (socat, one connection) for what a healthy daemon rarely does on demand.
cat >"$tmp/fake.sh" <<'EOF'
#!/usr/bin/env bash
# fake.sh MODE — speaks just enough of the protocol on stdin/stdout.
IFS= read -r line || exit 0
id=$(jq -c '.id' <<<"$line")
case $1 in
    noise)
        printf '%s\n' \
            '{"jsonrpc":"2.0","method":"event","params":{"subscription":"s-9","event":{"seq":1,"event_type":"x","timestamp":"2025-01-01T00:00:00.000Z","data":null,"metadata":{}}}}' \
            '{"jsonrpc":"2.0","id":"someone-else","result":{"wrong":true}}' \
            'not JSON at all' \
            '' \
            '{"jsonrpc":"2.0","method":"events_dropped","params":{"subscription":"s-9","count":2,"first_seq":3,"last_seq":4}}'
        sleep 0.2
        printf '{"jsonrpc":"2.0","id":%s,"result":{"right":true,"echo":%s}}\r\n' "$id" "$line"
        cat >/dev/null
        ;;
    silent) cat >/dev/null ;;
    forbidden) echo '{"jsonrpc":"2.0","id":null,"error":{"code":-32020,"message":"forbidden","data":{"type":"forbidden"}}}' ;;
    hangup) ;;
esac
EOF
chmod +x "$tmp/fake.sh"

# fake MODE — start the fake server for one connection on $tmp/fake.sock.
fake() {
    rm -f "$tmp/fake.sock"
    socat "UNIX-LISTEN:$tmp/fake.sock" "EXEC:$tmp/fake.sh $1" 2>/dev/null &
    fake_pid=$!
    local n=50
    while [[ ! -S $tmp/fake.sock ]] && ((n-- > 0)); do sleep 0.1; done
}
fake_done() {
    wait_pid "$fake_pid" 5 >/dev/null 2>&1
    fake_pid=
}

if [[ " ${transports[*]} " == *" socat "* ]]; then
    for t in "${transports[@]}"; do
        export TW_TRANSPORT=$t TRADEWIRE_SOCKET=$tmp/fake.sock
        fake noise
        run out err rc tw_call 'odd "method" name' '{"s":"a \"quoted\" ünï ✓"}'
        fake_done
        check "[$t] tw_call skips notifications, other ids and junk, matches its id" \
            "$([[ $rc -eq 0 && $(jq -c '[.right, .echo.method, .echo.params.s]' <<<"$out") == '[true,"odd \"method\" name","a \"quoted\" ünï ✓"]' ]]; echo $?)" \
            "rc=$rc" "out: $out" "err: $err"
        fake silent
        start=$SECONDS
        run out err rc env TW_TIMEOUT=1 bash -c 'source "$1"; tw_call ping' _ "$here/tradewire.sh"
        fake_done
        check "[$t] TW_TIMEOUT expires with status 4" \
            "$([[ $rc -eq 4 && $err == *TW_TIMEOUT* && $((SECONDS - start)) -lt 10 ]]; echo $?)" "rc=$rc" "$err"
        fake forbidden
        run out err rc tw_call ping
        fake_done
        check "[$t] an id-null error (-32020) returns 1" \
            "$([[ $rc -eq 1 && $err == 'tradewire: forbidden (-32020 forbidden)' ]]; echo $?)" "rc=$rc" "$err"
        fake hangup
        run out err rc tw_call ping
        fake_done
        check "[$t] a connection closed before the reply returns 4" \
            "$([[ $rc -eq 4 && $err == *"closed before"* ]]; echo $?)" "rc=$rc" "$err"
        unset TW_TRANSPORT TRADEWIRE_SOCKET
    done
else
    skip "fake-server checks" "socat not installed"
fi

# ------------------------------------------------------------------ never talk to an impostor

# The default socket directory is pointed at $tmp through this override of the library's
# hook while tw_test_default_dir is set, so the real /tmp/tradewire-$UID is never touched.
_tw_default_dir() {
    if [[ -n ${tw_test_default_dir:-} ]]; then
        printf '%s' "$tw_test_default_dir"
    else
        printf '/tmp/tradewire-%s' "${UID:-$(id -u)}"
    fi
}

# A fake server: prints "ready UID" once listening on $1, then "conn N" for each
# connection it accepted (N = bytes received).
impostor_py=$(cat "$(dirname "${BASH_SOURCE[0]}")/../testing/impostor.py")
impostor_pid=

# impostor_start USER PATH — run the fake server on PATH as USER ("self": as us), output in
# $tmp/impostor.out. Fails if it does not listen within 10 s.
impostor_start() {
    local user=$1 path=$2 n=100
    : >"$tmp/impostor.out"
    if [[ $user == self ]]; then
        python3 -c "$impostor_py" "$path" </dev/null >"$tmp/impostor.out" 2>/dev/null &
    else
        runuser -u "$user" -- python3 -c "$impostor_py" "$path" </dev/null >"$tmp/impostor.out" 2>/dev/null &
    fi
    impostor_pid=$!
    while ! grep -q '^ready' "$tmp/impostor.out" 2>/dev/null && ((n-- > 0)); do sleep 0.1; done
    grep -q '^ready' "$tmp/impostor.out"
}
# impostor_stop — stop it; prints what it received: one "conn N" line per connection.
impostor_stop() {
    sleep 0.3 # a connection the client closed is reported at once; give it a moment
    if [[ -n $impostor_pid ]]; then
        kill -TERM "$impostor_pid" 2>/dev/null
        wait "$impostor_pid" 2>/dev/null
        impostor_pid=
    fi
    grep '^conn' "$tmp/impostor.out"
}

if ! command -v python3 >/dev/null 2>&1; then
    skip "impostor checks" "python3 (for the fake server) not installed"
else
    save_xdg=${XDG_RUNTIME_DIR-}
    unset XDG_RUNTIME_DIR TRADEWIRE_SOCKET
    defdir=$tmp/def/tradewire-$UID
    mkdir -p "$tmp/def"
    export tw_test_default_dir=$defdir
    out=$(tw_socket)
    check "the tests' default directory stands in for /tmp/tradewire-\$UID" \
        "$([[ $out == "$defdir/tradewire.sock" ]]; echo $?)" "got: $out"

    run out err rc tw_call ping
    check "a missing default socket directory returns 3: no daemon" \
        "$([[ $rc -eq 3 && $err == "tradewire: no daemon: socket directory $defdir does not exist (is tradewired running?)"* ]]; echo $?)" \
        "rc=$rc" "err: $err"

    # (a) mode 0755, a server of ours inside: the client must not even connect
    mkdir "$defdir" && chmod 0755 "$defdir"
    if impostor_start self "$defdir/tradewire.sock"; then
        run out err rc tw_call ping
        check "a default socket directory with mode 0755 is refused (5)" \
            "$([[ $rc -eq 5 && $err == "tradewire: refusing $defdir: mode 0755, expected 0700"* ]]; echo $?)" \
            "rc=$rc" "err: $err"
        if [[ $UID -eq 0 ]]; then
            chmod 0700 "$defdir" && chown 65534 "$defdir"
            run out err rc tw_call ping
            check "a default socket directory owned by another uid is refused (5)" \
                "$([[ $rc -eq 5 && $err == "tradewire: refusing $defdir: owned by uid 65534, not 0"* ]]; echo $?)" \
                "rc=$rc" "err: $err"
        fi
        got=$(impostor_stop)
        check "... and nothing connected to the server in that directory" "$([[ -z $got ]]; echo $?)" \
            "fake server: $(cat "$tmp/impostor.out")"
    else
        not_ok "the fake server starts (python3)" "$(cat "$tmp/impostor.out")"
    fi
    rm -rf "$defdir"

    # (b) a symlink to a directory that looks right
    mkdir -m 0700 "$tmp/def/real" && ln -s "$tmp/def/real" "$defdir"
    if impostor_start self "$tmp/def/real/tradewire.sock"; then
        run out err rc tw_call ping
        got=$(impostor_stop)
        check "a symlinked default socket directory is refused (5) before connecting" \
            "$([[ $rc -eq 5 && $err == "tradewire: refusing $defdir: is a symlink"* && -z $got ]]; echo $?)" \
            "rc=$rc" "err: $err" "fake server: $got"
    else
        not_ok "the fake server starts (python3)" "$(cat "$tmp/impostor.out")"
    fi
    rm -rf "$defdir" "$tmp/def/real"
    unset tw_test_default_dir

    # (c) a server run by nobody on an explicit path, in a directory nobody can write to
    if [[ $UID -ne 0 ]] || ! command -v runuser >/dev/null 2>&1; then
        skip "a fake server run by nobody" "needs root and runuser"
    else
        fakedir=$(mktemp -d /tmp/twsh-fake.XXXXXX) && chmod 0777 "$fakedir"
        if impostor_start nobody "$fakedir/fake.sock"; then
            for t in "${transports[@]}"; do
                export TW_TRANSPORT=$t TRADEWIRE_SOCKET=$fakedir/fake.sock
                run out err rc tw_call ping
                check "[$t] a socket of another user (nobody) is refused (5)" \
                    "$([[ $rc -eq 5 && $err == "tradewire: refusing $fakedir/fake.sock: the socket file belongs to uid 65534"* && -z $out ]]; echo $?)" \
                    "rc=$rc" "err: $err"
                run out err rc tw_publish some.secret '{"password":"hunter2"}'
                check "[$t] tw_publish to it is refused (5) too" "$([[ $rc -eq 5 ]]; echo $?)" "rc=$rc" "err: $err"
                unset TW_TRANSPORT TRADEWIRE_SOCKET
            done
            got=$(impostor_stop)
            check "the fake server run by nobody received zero bytes" \
                "$([[ $(grep -c '^ready 65534$' "$tmp/impostor.out") -eq 1 && -z $(grep -v '^conn 0$' <<<"$got") ]]; echo $?)" \
                "fake server: $(cat "$tmp/impostor.out")"
        else
            not_ok "the fake server starts as nobody (runuser -u nobody -- python3)" "$(cat "$tmp/impostor.out")"
        fi
        impostor_stop >/dev/null
        rm -rf "$fakedir"
    fi
    [[ -n $save_xdg ]] && export XDG_RUNTIME_DIR=$save_xdg
fi

# ------------------------------------------------------------------ the live daemon

start_daemon() {
    if [[ ! -x $TRADEWIRED ]]; then
        not_ok "daemon binary is executable" "TRADEWIRED=$TRADEWIRED not found (swift build, or set TRADEWIRED)"
        return 1
    fi
    "$TRADEWIRED" --socket "$sock" --seed 42 --log-level warning "${storage_args[@]}" \
        </dev/null >"$tmp/daemon.out" 2>"$tmp/daemon.err" &
    daemon_pid=$!
    local n=300
    while ((n-- > 0)); do
        if grep -qF "listening on $sock" "$tmp/daemon.err" 2>/dev/null; then
            ok "daemon started (listening on $sock)"
            return 0
        fi
        if ! kill -0 "$daemon_pid" 2>/dev/null; then
            wait "$daemon_pid"
            local rc=$?
            daemon_pid=
            not_ok "daemon started" "it exited with status $rc; stderr:" "$(tail -n 20 "$tmp/daemon.err")"
            return 1
        fi
        sleep 0.1
    done
    not_ok "daemon started" "no 'listening on $sock' within 30 s; stderr:" "$(tail -n 20 "$tmp/daemon.err")"
    return 1
}

# make_stale — leave a socket file that nobody listens on at $tmp/stale.sock.
make_stale() {
    [[ -S $tmp/stale.sock ]] && return 0
    if command -v socat >/dev/null 2>&1; then
        socat "UNIX-LISTEN:$tmp/stale.sock" /dev/null 2>/dev/null &
    else
        nc -lU "$tmp/stale.sock" >/dev/null 2>&1 </dev/null &
    fi
    local p=$! n=50
    while [[ ! -S $tmp/stale.sock ]] && ((n-- > 0)); do sleep 0.1; done
    # SIGKILL: no chance to unlink the file.
    { kill -KILL "$p" && wait "$p"; } 2>/dev/null
    [[ -S $tmp/stale.sock ]]
}

# The string that has to survive every layer unchanged.
tricky='He said "hi" — then: ünïcødé ✓ 漢字 😀, tab	and \backslash\ and '\''single'\'' $HOME `cmd`'

live_checks() {
    local t=$1 out err rc seq0 sub_pid expected got
    export TW_TRANSPORT=$t TRADEWIRE_SOCKET=$sock
    local base="shtest.$t"

    run out err rc tw_call ping
    check "[$t] tw_call ping prints {\"pong\":true}" \
        "$([[ $rc -eq 0 && $out == '{"pong":true}' ]]; echo $?)" "rc=$rc" "out: $out" "err: $err"

    run out err rc tw_publish "$base.first" '{"k":1}'
    seq0=$(jq -er 'select(.event_type == $t) | .seq | numbers' --arg t "$base.first" <<<"$out" 2>/dev/null)
    check "[$t] tw_publish returns a seq" "$([[ $rc -eq 0 && -n $seq0 ]]; echo $?)" "rc=$rc" "out: $out" "err: $err"
    [[ -n $seq0 ]] || seq0=0

    # Subscribe from seq0 on: events published before the subscription is in place are
    # replayed from history, so no sleep is needed and nothing is missed.
    TW_COUNT=3 tw_subscribe "$base.live.*" "$seq0" >"$tmp/sub.$t.out" 2>"$tmp/sub.$t.err" &
    sub_pid=$!
    local d1 d2='{"list":[1,2.5,-3,1e3],"nested":{"k":"v w","empty":{}},"flag":true,"nothing":null}' d3=42
    d1=$(jq -nc --arg s "$tricky" '$s')
    local p1 p2 p3 p4
    p1=$(tw_publish "$base.live.str" "$d1")
    p2=$(tw_publish "$base.other" '"not for the subscriber"')
    p3=$(tw_publish "$base.live.obj" "$d2" '{"source":"test.sh","note":"x y"}')
    p4=$(tw_publish "$base.live.num:9" "$d3")
    wait_pid "$sub_pid" 20
    rc=$?
    expected=$(jq -nc --arg s "$tricky" --arg b "$base" --argjson d2 "$d2" \
        '[[$b + ".live.str", $s], [$b + ".live.obj", $d2], [$b + ".live.num:9", 42]]')
    got=$(jq -sc 'map([.event_type, .data])' "$tmp/sub.$t.out" 2>&1)
    check "[$t] tw_subscribe (TW_COUNT=3) receives the three events with exact data" \
        "$([[ $rc -eq 0 && $got == "$expected" && -n $p1 && -n $p2 && -n $p3 && -n $p4 ]]; echo $?)" \
        "rc=$rc" "got:      $got" "expected: $expected" "stderr: $(<"$tmp/sub.$t.err")"
    got=$(jq -r 'select(.event_type | endswith(".live.str")) | .data' "$tmp/sub.$t.out" 2>&1)
    check "[$t] quotes, spaces, tabs, backslashes and unicode round-trip byte for byte" \
        "$([[ $got == "$tricky" ]]; echo $?)" "got:      $got" "expected: $tricky"
    got=$(jq -sc '[.[] | .seq] | . == sort and length == 3 and all(. > $s)' --argjson s "$seq0" "$tmp/sub.$t.out" 2>&1)
    check "[$t] tw_subscribe prints whole Event objects in seq order" "$([[ $got == true ]]; echo $?)" \
        "$(<"$tmp/sub.$t.out")"

    run out err rc tw_call 'no_such "method" here'
    check "[$t] tw_call with an unknown method returns 1 and prints the -32601 error" \
        "$([[ $rc -eq 1 && -z $out && $err == 'tradewire: '*'(-32601 method_not_found)'* ]]; echo $?)" \
        "rc=$rc" "out: $out" "err: $err"

    run out err rc tw_call get_event_history '{"event_type": oops}'
    check "[$t] tw_call with invalid JSON params returns 2" \
        "$([[ $rc -eq 2 && $err == *"invalid JSON params"* ]]; echo $?)" "rc=$rc" "err: $err"

    run out err rc env TRADEWIRE_SOCKET="$tmp/missing.sock" bash -c 'source "$1"; tw_call ping' _ "$here/tradewire.sh"
    check "[$t] a missing socket returns 3 and names it" \
        "$([[ $rc -eq 3 && $err == *"$tmp/missing.sock"* && $err == *tradewired* ]]; echo $?)" "rc=$rc" "err: $err"

    if make_stale; then
        run out err rc env TRADEWIRE_SOCKET="$tmp/stale.sock" bash -c 'source "$1"; tw_call ping' _ "$here/tradewire.sh"
        check "[$t] a stale socket (nobody listening) returns 3 and names it" \
            "$([[ $rc -eq 3 && $err == *"$tmp/stale.sock"*refused* ]]; echo $?)" "rc=$rc" "err: $err"
    else
        not_ok "[$t] a stale socket for the connection-refused check" "could not make $tmp/stale.sock"
    fi

    run out err rc tw_call get_event_history "$(jq -nc --arg p "$base.live.*" '{event_type: $p}')"
    got=$(jq -c '[.events[] | [.event_type, .data]]' <<<"$out" 2>&1)
    check "[$t] tw_call get_event_history shows the published events" \
        "$([[ $rc -eq 0 && $got == "$expected" ]]; echo $?)" "rc=$rc" "got:      $got" "expected: $expected" "err: $err"
    got=$(jq -c '[.events[] | select(.event_type | endswith(".live.obj")) | .metadata.source, .data_type]' <<<"$out" 2>&1)
    check "[$t] history keeps client metadata and data_type" \
        "$([[ $got == '["test.sh","object"]' ]]; echo $?)" "got: $got"

    # the default directory when it is right: a real directory of ours with mode 0700 (its
    # socket here is a symlink to the daemon's, which is owned by us)
    local save_xdg=${XDG_RUNTIME_DIR-}
    unset TRADEWIRE_SOCKET XDG_RUNTIME_DIR
    export tw_test_default_dir=$tmp/okdef.$t/tradewire-$UID
    mkdir -p "$tw_test_default_dir" && chmod 0700 "$tw_test_default_dir"
    ln -sf "$sock" "$tw_test_default_dir/tradewire.sock"
    run out err rc tw_call ping
    check "[$t] the default path works when its directory is ours with mode 0700" \
        "$([[ $rc -eq 0 && $out == '{"pong":true}' ]]; echo $?)" "rc=$rc" "out: $out" "err: $err"
    rm -rf "$tmp/okdef.$t"
    unset tw_test_default_dir
    [[ -n $save_xdg ]] && export XDG_RUNTIME_DIR=$save_xdg
    export TRADEWIRE_SOCKET=$sock

    got=$(pgrep -f "UNIX-CONNECT:$sock|nc -U $sock" 2>/dev/null)
    check "[$t] no transport process left behind" "$([[ -z $got ]]; echo $?)" "$(ps -o pid,args -p "${got//$'\n'/,}" 2>/dev/null)"
    unset TW_TRANSPORT TRADEWIRE_SOCKET
}

# A real pipeline iteration's signals_ready event through the contrib jq program.
live_signals() {
    export TRADEWIRE_SOCKET=$sock
    local out err rc since sub_pid n lines
    since=$(tw_call get_event_history '{"limit":1,"include_data":false}' | jq -r '.newest_seq // 0')
    TW_COUNT=1 tw_subscribe signals_ready "${since:-0}" >"$tmp/signals.out" 2>"$tmp/signals.err" &
    sub_pid=$!
    run out err rc env TW_TIMEOUT=90 bash -c 'source "$1"; tw_call run_pipeline "{\"dry_run\":true,\"timeout_ms\":60000}"' _ "$here/tradewire.sh"
    wait_pid "$sub_pid" 20
    n=$(jq '.data | length' "$tmp/signals.out" 2>/dev/null)
    lines=$("$root/contrib/shell/signals-to-jq.sh" --stdin <"$tmp/signals.out" 2>&1)
    local bad
    bad=$(printf '%s\n' "$lines" | awk -F'\t' 'NF && (NF != 4 || $2 !~ /^(BUY|SELL|HOLD)$/ || $4 !~ /^[01]\.[0-9][0-9]$/)')
    check "signals-to-jq.sh prints one line per signal of a live signals_ready event" \
        "$([[ $rc -eq 0 && -n $n && $(printf '%s' "$lines" | grep -c .) -eq $n && -z $bad ]]; echo $?)" \
        "run_pipeline rc=$rc err: $err" "event: $(head -c 600 "$tmp/signals.out")" "lines:" "$lines"
    unset TRADEWIRE_SOCKET
}

# tw_journal_id on the daemon above, whichever storage TW_TEST_STORAGE gave it.
live_journal_id() {
    export TRADEWIRE_SOCKET=$sock
    local out err rc want
    want=$(tw_call get_status | jq -r '.journal.journal_id // ""')
    run out err rc tw_journal_id
    if [[ $storage == journal ]]; then
        check "tw_journal_id prints the journal_id of a daemon with --data-dir" \
            "$([[ $rc -eq 0 && -n $out && $out == "$want" && -z $err ]]; echo $?)" "rc=$rc" "out: $out" \
            "get_status: $want" "err: $err"
    else
        check "tw_journal_id prints nothing and returns 6 for an --ephemeral daemon" \
            "$([[ $rc -eq 6 && -z $out && -z $want && -z $err ]]; echo $?)" "rc=$rc" "out: $out" "err: $err"
    fi
    run out err rc tw_journal_id extra
    check "tw_journal_id with an argument returns 2" "$([[ $rc -eq 2 && $err == *usage* ]]; echo $?)" \
        "rc=$rc" "err: $err"
    unset TRADEWIRE_SOCKET
}

# tw_journal_id across daemons of its own, each with its storage given explicitly: the
# same journal_id after a restart on the same data dir, another one for another data dir,
# none for --ephemeral; and the README's resume example, end to end.
journal_restart_checks() {
    local out err rc j1 j2 j3 i1 i2 last state since n got
    export TRADEWIRE_SOCKET=$tmp/own.sock
    if ! start_own --data-dir "$tmp/own-data1"; then
        not_ok "a daemon of its own starts on $tmp/own-data1" "$(tail -n 20 "$tmp/own.err")"
        unset TRADEWIRE_SOCKET
        return
    fi
    j1=$(tw_journal_id)
    i1=$(tw_call get_status | jq -r .instance_id)
    # a consumer: handles events, remembering "JOURNAL_ID LAST_SEQ" (README example)
    state=$tmp/consumer.state
    for n in 0 1 2; do
        last=$(tw_publish shtest.resume "{\"n\":$n}" | jq -r .seq)
    done
    printf '%s %s\n' "${j1:--}" "$last" >"$state"
    stop_own
    rc=$?
    check "tw_journal_id on a daemon with --data-dir prints an id; the daemon exits 0" \
        "$([[ -n $j1 && -n $i1 && $rc -eq 0 ]]; echo $?)" "journal_id: $j1" "instance_id: $i1" "rc=$rc"

    if ! start_own --data-dir "$tmp/own-data1"; then
        not_ok "a daemon of its own restarts on $tmp/own-data1" "$(tail -n 20 "$tmp/own.err")"
        unset TRADEWIRE_SOCKET
        return
    fi
    for n in 3 4; do # published while the consumer is away
        tw_publish shtest.resume "{\"n\":$n}" >/dev/null
    done
    j2=$(tw_journal_id)
    i2=$(tw_call get_status | jq -r .instance_id)
    check "a restart on the same data dir keeps the journal_id, with a new instance_id" \
        "$([[ -n $j2 && $j2 == "$j1" && -n $i2 && $i2 != "$i1" ]]; echo $?)" "before: $j1 $i1" "after:  $j2 $i2"
    # the resume rule, as in the README
    local old_jid old_last jid
    read -r old_jid old_last <"$state"
    jid=$(tw_journal_id)
    rc=$?
    if [[ $rc -eq 0 && $jid == "$old_jid" ]]; then
        since=$old_last
    else
        since=0
    fi
    got=$(TW_COUNT=2 tw_subscribe shtest.resume "$since" | jq -sc 'map(.data.n)')
    check "the same journal_id: resubscribing with since_seq = the last seq gets just what came meanwhile" \
        "$([[ $rc -eq 0 && $since == "$last" && $got == '[3,4]' ]]; echo $?)" "rc=$rc since=$since (last $last)" \
        "got: $got"
    stop_own

    if ! start_own --data-dir "$tmp/own-data2"; then
        not_ok "a daemon of its own starts on $tmp/own-data2" "$(tail -n 20 "$tmp/own.err")"
        unset TRADEWIRE_SOCKET
        return
    fi
    j3=$(tw_journal_id)
    check "another data dir has another journal_id" "$([[ -n $j3 && $j3 != "$j1" ]]; echo $?)" \
        "data1: $j1" "data2: $j3"
    stop_own

    if ! start_own --ephemeral; then
        not_ok "a daemon of its own starts with --ephemeral" "$(tail -n 20 "$tmp/own.err")"
        unset TRADEWIRE_SOCKET
        return
    fi
    run out err rc tw_journal_id
    check "tw_journal_id on an --ephemeral daemon: nothing printed, status 6" \
        "$([[ $rc -eq 6 && -z $out && -z $err ]]; echo $?)" "rc=$rc" "out: $out" "err: $err"
    stop_own
    run out err rc tw_journal_id
    check "tw_journal_id without a daemon returns 3" "$([[ $rc -eq 3 && -z $out ]]; echo $?)" "rc=$rc" "err: $err"
    unset TRADEWIRE_SOCKET
}

if ((${#transports[@]} == 0)); then
    not_ok "a transport is installed" "install socat and/or netcat-openbsd"
elif start_daemon; then
    for t in "${transports[@]}"; do
        live_checks "$t"
    done
    live_signals
    live_journal_id
    journal_restart_checks
    stop_daemon
    rc=$?
    check "daemon exits 0 on SIGTERM and removes its socket" "$([[ $rc -eq 0 && ! -e $sock ]]; echo $?)" \
        "rc=$rc" "$(tail -n 20 "$tmp/daemon.err")"
fi
if ((${#transports[@]} < 2)); then
    skip "checks with both transports" "only ${transports[*]:-none} installed"
fi

echo "$passed passed, $failed failed"
((failed == 0))
