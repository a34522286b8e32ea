# shellcheck shell=bash
#
# tradewire.sh — a tiny bash client for tradewired (JSON-RPC 2.0 over a Unix socket,
# newline-delimited JSON; the contract is the protocol, docs/PROTOCOL.md in the tradewire
# repository; this client speaks api_level 2).
#
# Source it, don't run it:
#
#     source clients/shell/tradewire.sh
#
#     tw_socket                                   # -> /run/user/1000/tradewire.sock
#     tw_call ping                                # -> {"pong":true}
#     tw_call get_status | jq .loop
#     tw_call run_pipeline '{"symbols":["SPY","QQQ"],"dry_run":true}' | jq .audit_report
#     tw_call get_event_history '{"event_type":"signals_*","limit":5}'
#     tw_publish my.event '{"note":"hello \"world\""}'   # -> {"seq":1,"event_type":"my.event",...}
#     tw_publish my.event                          # data defaults to null
#     tw_publish data_ready - < market_data.json   # "-" reads the JSON value from stdin
#     tw_subscribe '*' | jq -c '{seq, event_type}' # one Event object per line, until Ctrl-C
#     TW_COUNT=1 tw_subscribe audit_ready | jq .data.summary
#     tw_subscribe 'signals_*' 120                 # replay history after seq 120, then live
#     tw_journal_id                                # -> 0f0c...-... (status 6: ephemeral daemon)
#
# Functions
#   tw_socket                          print the socket path (docs/PROTOCOL.md §1): $TRADEWIRE_SOCKET,
#                                      else $XDG_RUNTIME_DIR/tradewire.sock,
#                                      else /tmp/tradewire-$UID/tradewire.sock
#   tw_call METHOD [PARAMS]            one request; prints its `result` as compact JSON.
#                                      PARAMS: a JSON object (or array), "-" = read it from
#                                      stdin; missing or "" = no params.
#   tw_publish TYPE [DATA [METADATA]]  publish an event; DATA is any JSON value (default
#                                      null; "-" = stdin), METADATA a JSON object. Prints
#                                      the publish result ({"seq",...}).
#   tw_subscribe PATTERN [SINCE_SEQ]   stream events: prints each Event object
#                                      ({seq, event_type, timestamp, data, metadata}) as one
#                                      compact JSON line, flushed per line. Runs until the
#                                      daemon closes the connection, TW_COUNT events were
#                                      printed, the reader of stdout is gone (noticed at
#                                      the next event: prefer TW_COUNT to `| head`), or it
#                                      is interrupted. `events_dropped` and `shutdown` notices go
#                                      to stderr as "tradewire: ..." lines.
#   tw_journal_id                      print the daemon's journal_id (get_status
#                                      .journal.journal_id: fixed for its data dir, kept
#                                      across restarts); prints nothing and returns 6 when
#                                      the daemon keeps no journal (--ephemeral).
#
# Resuming after a reconnect (docs/PROTOCOL.md §10): remember the journal_id and the last
# seq you handled. The same journal_id after reconnecting is the same seq space: resubscribe
# with SINCE_SEQ = that seq, and nothing is missed or repeated while the journal still holds
# the gap. A different journal_id, or none (status 6, then or now), is a new seq space: your
# last seq means nothing there; start over (SINCE_SEQ 0 = all the daemon holds). See README.
#
# Return codes (all functions)
#   0  success
#   1  the daemon answered with a JSON-RPC error; stderr gets
#        tradewire: <message> (<code> <data.type>)
#      then, indented, whatever of `data` the message does not already say: one
#      "<path>: <message>" line per data.errors entry, a "data: {...}" line for other fields
#   2  bad usage or local setup: invalid JSON argument, bad SINCE_SEQ / TW_* value,
#      jq or a transport (socat / nc) missing
#   3  cannot connect to the socket (stderr names it and says how to start the daemon),
#      including a default socket directory that does not exist
#   4  no response: TW_TIMEOUT expired, or the daemon closed the connection first
#   5  refused, nothing sent: the default socket directory /tmp/tradewire-$UID is a
#      symlink, not a directory, not yours or not mode 0700, or the socket file belongs to
#      another user (not you, not root); stderr says "tradewire: refusing PATH: WHY"
#   6  tw_journal_id only: the daemon keeps no journal (ephemeral); nothing is printed
#
# Never talking to an impostor: with the last default path (no TRADEWIRE_SOCKET, no
# XDG_RUNTIME_DIR) the directory /tmp/tradewire-$UID must be a real directory owned by you
# with mode 0700, as the daemon makes it. For every path the socket file must be owned by
# you or root. socat and nc cannot read the server's SO_PEERCRED, so that owner check of
# the file stands in for the peer-credential check the other clients make (see README).
#
# Environment
#   TRADEWIRE_SOCKET  socket path (see tw_socket)
#   TW_TRANSPORT      socat | nc   (default: socat if installed, else nc; nc must be
#                     netcat-openbsd, the flavour with -U)
#   TW_TIMEOUT        seconds to wait for a response (default 30; fractions allowed; 0 =
#                     wait forever). tw_subscribe applies it to the subscribe reply only.
#                     run_pipeline can take longer than 30 s: raise it for that.
#   TW_COUNT          tw_subscribe: exit 0 after this many events (default 0 = no limit)
#
# Requirements: bash >= 4.3 (coproc, read -N), jq, and socat or netcat-openbsd.
#
# How it works: each call opens its own connection, with the transport (socat or nc -U)
# running as a coprocess whose stdin stays open until the reply has been read, so neither
# an EOF nor a `-t`/`-q` timer can cut the reply off. A jq filter reads the daemon's lines,
# drops notifications and responses with other ids, and hands back the matching reply.
# Numbers pass through jq, so they come out as jq prints them (jq 1.6: IEEE doubles;
# integers above 2^53 lose precision).
#
# Every function body runs in a subshell: nothing (set -e/-u, traps, variables) leaks
# into or out of the caller's shell.

if [ -z "${BASH_VERSION:-}" ]; then
    echo "tradewire.sh: this file needs bash" >&2
    # shellcheck disable=SC2317
    return 2 2>/dev/null || exit 2
fi

# ---------------------------------------------------------------- public functions

tw_socket() {
    if [[ -n ${TRADEWIRE_SOCKET:-} ]]; then
        printf '%s\n' "$TRADEWIRE_SOCKET"
    elif [[ -n ${XDG_RUNTIME_DIR:-} ]]; then
        printf '%s\n' "$XDG_RUNTIME_DIR/tradewire.sock"
    else
        printf '%s/tradewire.sock\n' "$(_tw_default_dir)"
    fi
}

tw_call() (
    _tw_prologue
    local method=${1-} params=${2-} req
    if [[ $# -lt 1 || $# -gt 2 || -z $method ]]; then
        _tw_err "usage: tw_call METHOD [JSON_PARAMS]"
        exit 2
    fi
    _tw_need_jq || exit 2
    local id
    id=$(_tw_new_id)
    if [[ -z $params ]]; then
        req=$(jq -nc --arg m "$method" --arg id "$id" '{jsonrpc: "2.0", id: $id, method: $m}') || exit 2
    else
        params=$(_tw_json_value "params" "$params" "object array") || exit 2
        req=$(printf '%s' "$params" |
            jq -c --arg m "$method" --arg id "$id" '{jsonrpc: "2.0", id: $id, method: $m, params: .}') || exit 2
    fi
    _tw_session call "$id" "$req"
)

tw_publish() (
    _tw_prologue
    local type=${1-} data=${2-null} meta=${3-} params
    if [[ $# -lt 1 || $# -gt 3 || -z $type ]]; then
        _tw_err "usage: tw_publish EVENT_TYPE [JSON_DATA [JSON_METADATA]]"
        exit 2
    fi
    _tw_need_jq || exit 2
    [[ -z $data ]] && data=null
    data=$(_tw_json_value "data" "$data" "any") || exit 2
    if [[ -n $meta ]]; then
        meta=$(_tw_json_value "metadata" "$meta" "object") || exit 2
    else
        meta=null
    fi
    params=$(printf '%s' "$data" | jq -c --arg t "$type" --argjson meta "$meta" \
        '{event_type: $t, data: .} + (if $meta == null then {} else {metadata: $meta} end)') || exit 2
    tw_call publish "$params"
)

tw_subscribe() (
    _tw_prologue
    local pattern=${1-} since=${2-} id req
    if [[ $# -lt 1 || $# -gt 2 || -z $pattern ]]; then
        _tw_err "usage: tw_subscribe PATTERN [SINCE_SEQ]"
        exit 2
    fi
    if [[ -n $since && ! $since =~ ^[0-9]+$ ]]; then
        _tw_err "SINCE_SEQ must be a non-negative integer, not '$since'"
        exit 2
    fi
    _tw_need_jq || exit 2
    id=$(_tw_new_id)
    req=$(jq -nc --arg id "$id" --arg p "$pattern" --arg s "$since" \
        '{jsonrpc: "2.0", id: $id, method: "subscribe",
          params: ({event_type: $p} + (if $s == "" then {} else {since_seq: ($s | tonumber)} end))}') || exit 2
    _tw_session subscribe "$id" "$req"
)

tw_journal_id() (
    _tw_prologue
    local status id
    if [[ $# -ne 0 ]]; then
        _tw_err "usage: tw_journal_id"
        exit 2
    fi
    _tw_need_jq || exit 2
    status=$(tw_call get_status) || exit
    id=$(jq -r '.journal | if type == "object" then .journal_id | strings else empty end' <<<"$status" 2>/dev/null)
    [[ -n $id ]] || exit 6
    printf '%s\n' "$id"
)

# ---------------------------------------------------------------- internals

# Run at the top of every subshell body: neutralise the caller's shell options and traps.
_tw_prologue() {
    set +e +u +f +E +T
    set +o pipefail 2>/dev/null
    trap - ERR DEBUG RETURN
    IFS=$' \t\n'
}

_tw_err() { printf 'tradewire: %s\n' "$*" >&2; }

_tw_need_jq() {
    command -v jq >/dev/null 2>&1 && return 0
    _tw_err "jq is required (apt-get install jq)"
    return 2
}

_tw_new_id() { printf 'tw-sh-%s-%s%s' "${BASHPID:-$$}" "$RANDOM" "$RANDOM"; }

# _tw_json_value LABEL TEXT KINDS — check TEXT is exactly one JSON value whose type is one
# of KINDS ("any" or a space-separated list of jq type names); print it compact.
# TEXT "-" reads the value from stdin. Returns 2 with a message otherwise.
_tw_json_value() {
    local label=$1 text=$2 kinds=$3 out prog rc
    # shellcheck disable=SC2016
    prog='if length != 1 then error("expected one JSON value, got \(length)")
          else .[0] as $v | ($v | type) as $t
            | if $kinds == "any" or ($kinds | split(" ") | any(. == $t)) then $v
              else error("must be a JSON \($kinds | split(" ") | join(" or ")), not \($t)") end
          end'
    if [[ $text == - ]]; then
        out=$(jq -sc --arg kinds "$kinds" "$prog" 2>&1)
        rc=$?
    else
        out=$(printf '%s' "$text" | jq -sc --arg kinds "$kinds" "$prog" 2>&1)
        rc=$?
    fi
    if ((rc != 0)); then
        out=${out#jq: error (at <stdin>:*): }
        out=${out#jq: error: }
        out=${out%%$'\n'*}
        _tw_err "invalid JSON $label: $out"
        return 2
    fi
    printf '%s' "$out"
}

# Pick the transport: TW_TRANSPORT, else socat, else nc (OpenBSD flavour, for -U).
_tw_transport() {
    local t=${TW_TRANSPORT:-}
    case $t in
        socat | nc) ;;
        "")
            if command -v socat >/dev/null 2>&1; then
                t=socat
            elif command -v nc >/dev/null 2>&1; then
                t=nc
            else
                _tw_err "neither socat nor nc is installed: apt-get install socat (or netcat-openbsd)"
                return 2
            fi
            ;;
        *)
            _tw_err "TW_TRANSPORT must be 'socat' or 'nc', not '$t'"
            return 2
            ;;
    esac
    if ! command -v "$t" >/dev/null 2>&1; then
        _tw_err "TW_TRANSPORT=$t but $t is not installed"
        return 2
    fi
    if [[ $t == nc ]] && ! nc -h 2>&1 | grep -q -- '-U'; then
        _tw_err "this nc has no -U (Unix sockets): install netcat-openbsd or socat"
        return 2
    fi
    printf '%s' "$t"
}

# The directory of the last socket path rule, as the daemon makes it. (The tests redefine
# this function to point it at a temporary directory.)
_tw_default_dir() { printf '/tmp/tradewire-%s' "${UID:-$(id -u)}"; }

# _tw_stat PATH [-L] — print "OWNER_UID MODE" (mode as 4 octal digits) of PATH; -L follows
# a symlink. GNU stat, else BSD stat.
_tw_stat() {
    local out m
    local -a follow=()
    [[ ${2-} == -L ]] && follow=(-L)
    out=$(stat "${follow[@]}" -c '%u %a' -- "$1" 2>/dev/null) ||
        out=$(stat "${follow[@]}" -f '%u %Lp' -- "$1" 2>/dev/null) || return 1
    m=${out#* }
    [[ $m =~ ^[0-7]+$ ]] || return 1
    printf '%s %04o\n' "${out%% *}" "$((8#$m))"
}

_tw_refuse() {
    _tw_err "refusing $1: $2"
}

# _tw_check_dir DIR — the default socket directory must be a real directory (not a
# symlink) owned by us with mode 0700. Returns 3 when it is missing, 5 when it is unsafe.
_tw_check_dir() {
    local dir=$1 me=${UID:-$(id -u)} owner mode
    local why=" (the daemon's socket directory must be a real directory owned by you with mode 0700; another user may have created it)"
    if [[ -L $dir ]]; then
        _tw_refuse "$dir" "is a symlink$why"
        return 5
    elif [[ ! -e $dir ]]; then
        _tw_err "no daemon: socket directory $dir does not exist (is tradewired running?); start it with 'tradewired' (or 'make run' in the tradewire repo), or point TRADEWIRE_SOCKET at its socket"
        return 3
    elif [[ ! -d $dir ]]; then
        _tw_refuse "$dir" "is not a directory$why"
        return 5
    fi
    if ! read -r owner mode < <(_tw_stat "$dir"); then
        _tw_refuse "$dir" "cannot stat it"
        return 5
    fi
    if [[ $owner != "$me" ]]; then
        _tw_refuse "$dir" "owned by uid $owner, not $me$why"
        return 5
    elif [[ $mode != 0700 ]]; then
        _tw_refuse "$dir" "mode $mode, expected 0700$why"
        return 5
    fi
}

# _tw_check_owner SOCKET — stands in for the SO_PEERCRED check of the other clients, which
# socat and nc cannot make: the socket file must belong to us or to root. Returns 5 if not.
_tw_check_owner() {
    local me=${UID:-$(id -u)} owner mode
    if ! read -r owner mode < <(_tw_stat "$1" -L); then
        _tw_refuse "$1" "cannot stat the socket file"
        return 5
    fi
    if [[ $owner != "$me" && $owner != 0 ]]; then
        _tw_refuse "$1" "the socket file belongs to uid $owner; only uid $me (you) or 0 (root) is trusted: it is not your tradewire daemon, nothing was sent"
        return 5
    fi
}

_tw_no_connect() {
    _tw_err "cannot connect to $1: $2; is tradewired running? Start it with 'tradewired' (or 'make run' in the tradewire repo, or 'systemctl --user start tradewired.socket'), or point TRADEWIRE_SOCKET at its socket"
}

# This process's parent pid, from /proc, in _tw_pp (empty where there is no /proc).
# Not $PPID: in a subshell that is still the parent of the top-level shell.
_tw_ppid() {
    local stat
    _tw_pp=
    { read -r stat </proc/"$BASHPID"/stat; } 2>/dev/null || return 0
    stat=${stat##*) }
    read -r _ _tw_pp _ <<<"$stat"
}

# Microseconds since some fixed point, in _tw_now.
_tw_clock() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        _tw_now=${EPOCHREALTIME//[!0-9]/}
    else
        _tw_now=$((SECONDS * 1000000))
    fi
}

# The jq filter between the socket and the loop below: one tagged line per message that
# matters — R<result> / E<error> (the response with our id, or an id-null error such as
# -32020 forbidden), V<event>, D<events_dropped params>, X<shutdown params>.
# Input is read as raw lines so that a stray non-JSON line cannot kill the filter.
# shellcheck disable=SC2016
_tw_filter='
  (try fromjson catch null) as $m
  | if ($m | type) != "object" then empty
    elif ($m | has("id")) and (($m | has("result")) or ($m | has("error"))) then
      if $m.id == $id or $m.id == null then
        if $m | has("error") then "E" + ($m.error | tojson) else "R" + ($m.result | tojson) end
      else empty end
    elif ($m | has("id")) then empty
    elif $m.method == "event" then "V" + ($m.params.event | tojson)
    elif $m.method == "events_dropped" then "D" + ($m.params | tojson)
    elif $m.method == "shutdown" then "X" + ($m.params | tojson)
    else empty end'

# shellcheck disable=SC2016
_tw_error_text='
  def line: "tradewire: " + .;
  (if type == "object" then . else {message: tostring} end) as $e
  | ($e.message // "error" | tostring) as $msg
  | ($e.data | if type == "object" then . else {} end) as $d
  | ("\($msg) (\($e.code // "?")\(if $d.type then " " + ($d.type | tostring) else "" end))" | line),
    # details the message does not already say
    (if ($d.errors | type) == "array" then
       $d.errors[]
       | (if type == "object" then "\(.path // "")\(if (.path // "") == "" then "" else ": " end)\(.message // "")"
          else tostring end) as $x
       | select($msg | contains($x) | not)
       | "  \($x)" | line
     else empty end),
    ($d | del(.type, .errors) | with_entries(select(.value | tostring as $v | $msg | contains($v) | not))
     | select(length > 0) | "  data: \(tojson)" | line)'

# _tw_session MODE ID REQUEST — MODE is call or subscribe. Runs in the caller's subshell.
_tw_session() {
    local mode=$1 id=$2 req=$3
    local sock transport timeout_us=30000000 count=0 seen=0 subscribed=0 is_default=0
    sock=$(tw_socket)
    [[ -z ${TRADEWIRE_SOCKET:-} && -z ${XDG_RUNTIME_DIR:-} ]] && is_default=1
    transport=$(_tw_transport) || return 2

    local t=${TW_TIMEOUT:-30}
    if [[ ! $t =~ ^([0-9]+)(\.([0-9]{1,6})[0-9]*)?$ ]]; then
        _tw_err "TW_TIMEOUT must be a number of seconds, not '$t'"
        return 2
    fi
    local frac=${BASH_REMATCH[3]}000000
    timeout_us=$((10#${BASH_REMATCH[1]} * 1000000 + 10#${frac:0:6}))
    if [[ $mode == subscribe ]]; then
        count=${TW_COUNT:-0}
        if [[ ! $count =~ ^[0-9]+$ ]]; then
            _tw_err "TW_COUNT must be a non-negative integer, not '$count'"
            return 2
        fi
        count=$((10#$count))
    fi

    if ((is_default)); then
        _tw_check_dir "${sock%/*}" || return
    fi
    if [[ ! -e $sock ]]; then
        _tw_no_connect "$sock" "no such file"
        return 3
    elif [[ ! -S $sock ]]; then
        _tw_no_connect "$sock" "not a socket"
        return 3
    fi
    _tw_check_owner "$sock" || return

    local -a cmd
    if [[ $transport == socat ]]; then
        # socat's address syntax treats , : ! quotes and brackets specially: escape them.
        local addr=$sock
        if [[ $addr == *[!A-Za-z0-9/._-]* ]]; then
            addr=$(printf '%s' "$addr" | sed 's/[^A-Za-z0-9/._-]/\\&/g')
        fi
        # -t only matters after one side's EOF; stdin stays open until we're done.
        cmd=(socat -t 0.2 - "UNIX-CONNECT:$addr")
    else
        # netcat-openbsd; stdin stays open until the reply is in, so no -q/-N needed.
        cmd=(nc -U "$sock")
    fi

    # Globals on purpose (we are in the caller's subshell): the EXIT trap needs them
    # after this function has returned.
    _tw_cpid='' _tw_wfd='' _tw_jpid=''
    local rfd jfd
    # shellcheck disable=SC2317  # called from the traps below
    _tw_cleanup() {
        if [[ -n $_tw_wfd ]]; then
            { exec {_tw_wfd}>&-; } 2>/dev/null
            _tw_wfd=
        fi
        if [[ -n $_tw_cpid ]]; then
            kill "$_tw_cpid" 2>/dev/null
            wait "$_tw_cpid" 2>/dev/null
            _tw_cpid=
        fi
        # The filter ends on the transport's EOF; reap it so it is not left a zombie.
        if [[ -n $_tw_jpid ]]; then
            wait "$_tw_jpid" 2>/dev/null
            _tw_jpid=
        fi
    }
    trap '_tw_cleanup' EXIT
    trap '_tw_cleanup; trap - INT; kill -INT "$BASHPID"' INT
    trap '_tw_cleanup; trap - TERM; kill -TERM "$BASHPID"' TERM
    trap '_tw_cleanup; trap - HUP; kill -HUP "$BASHPID"' HUP
    # A vanished stdout reader or a transport that died must not kill us with SIGPIPE.
    trap ':' PIPE

    coproc _TW_CONN { exec "${cmd[@]}" 2>/dev/null; }
    _tw_cpid=$_TW_CONN_PID
    _tw_wfd=${_TW_CONN[1]}
    rfd=${_TW_CONN[0]}
    # coproc fds are close-on-exec, so jq below and the transport hold no copy of them.
    exec {jfd}< <(exec jq -R -r --unbuffered --arg id "$id" "$_tw_filter" <&"$rfd")
    _tw_jpid=$!
    exec {rfd}<&-

    { printf '%s\n' "$req" >&"$_tw_wfd"; } 2>/dev/null

    local deadline=0 tag payload rc rt rem ppid0
    _tw_ppid
    ppid0=$_tw_pp
    if ((timeout_us > 0)); then
        _tw_clock
        deadline=$((_tw_now + timeout_us))
    fi
    while :; do
        # Wake up at least once a second: if whoever started us is gone (say `kill $!` hit
        # the `&` subshell around this one), stop instead of lingering as an orphan.
        rem=1000000
        if ((deadline > 0 && !subscribed)); then
            _tw_clock
            if ((deadline - _tw_now < rem)); then
                rem=$((deadline - _tw_now))
            fi
            if ((rem <= 0)); then
                _tw_err "no response from $sock within ${t}s (TW_TIMEOUT)"
                return 4
            fi
        fi
        printf -v rt '%d.%06d' $((rem / 1000000)) $((rem % 1000000))
        IFS= read -r -N 1 -t "$rt" -u "$jfd" tag
        rc=$?
        if ((rc > 128)); then
            _tw_ppid
            if [[ -n $ppid0 && $_tw_pp != "$ppid0" ]]; then
                return 129
            fi
            continue
        elif ((rc != 0)) || [[ -z $tag ]]; then
            # End of stream: the transport is gone. Collect its status.
            exec {_tw_wfd}>&-
            _tw_wfd=
            wait "$_tw_cpid" 2>/dev/null
            rc=$?
            _tw_cpid=
            if ((subscribed)); then
                return 0
            elif ((rc != 0)); then
                if [[ ! -w $sock ]]; then
                    _tw_no_connect "$sock" "permission denied"
                else
                    _tw_no_connect "$sock" "connection refused (stale socket?)"
                fi
                return 3
            fi
            _tw_err "connection to $sock closed before a response"
            return 4
        fi
        IFS= read -r -u "$jfd" payload
        case $tag in
            R)
                if [[ $mode == call ]]; then
                    printf '%s\n' "$payload" 2>/dev/null
                    return 0
                fi
                subscribed=1
                ;;
            E)
                jq -r "$_tw_error_text" <<<"$payload" >&2
                return 1
                ;;
            V)
                [[ $mode == subscribe ]] || continue
                # If stdout's reader went away there is no one left to stream to.
                printf '%s\n' "$payload" 2>/dev/null || return 0
                if ((count > 0 && ++seen >= count)); then
                    return 0
                fi
                ;;
            D)
                jq -r '"tradewire: events dropped (subscription \(.subscription)): "
                    + if .count == null then
                        "seq \(.first_seq)..\(.last_seq) are no longer in history (some may have matched)"
                      else
                        "\(.count) between seq \(.first_seq) and \(.last_seq); fetch them with get_event_history since_seq=\(.first_seq - 1)"
                      end' \
                    <<<"$payload" >&2
                ;;
            X)
                jq -r '"tradewire: daemon shutting down" + (if .reason then ": \(.reason)" else "" end)' <<<"$payload" >&2
                ;;
        esac
    done
}
