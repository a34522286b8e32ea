#!/usr/bin/env bash
# Where a publish's CPU goes: profiles a release tradewired with `perf` (Debian's linux-perf)
# while tw-bench publishes 100-byte events with 64 in flight to one subscriber, then prints
# the daemon's CPU per publish and each stage's share of it (inclusive samples).
#
# Usage: scripts/profile-publish.sh RELEASE_DIR [--journal] [--count N]
#   The raw profile stays in /tmp/tradewire-publish.perf.data:
#   perf report -i /tmp/tradewire-publish.perf.data --children --sort symbol
set -euo pipefail
release=${1:?usage: profile-publish.sh RELEASE_DIR [--journal] [--count N]}
shift
storage=(--ephemeral); count=300000
while [ $# -gt 0 ]; do
  case $1 in
    --journal) storage=(--data-dir "$(mktemp -d /tmp/twprof-data.XXXXXX)"); shift ;;
    --count) count=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/twprof.XXXXXX)
data=/tmp/tradewire-publish.perf.data
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  [ "${storage[0]}" = --data-dir ] && rm -rf "${storage[1]}"
  return 0
}
trap cleanup EXIT
sock="$work/tw.sock"
"$release/tradewired" --socket "$sock" --log-level error "${storage[@]}" 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
# Warm-up, then the profiled run; the daemon's CPU time is read around it from /proc.
"$root/clients/c/tw-bench" --socket "$sock" publish --count 20000 --inflight 64 --size 100 >/dev/null
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
before=$(ticks)
perf record -e cpu-clock -F 4000 -g -p "$pid" -o "$data" >/dev/null 2>&1 &
perf_pid=$!
sleep 0.3
"$root/clients/c/tw-bench" --socket "$sock" publish --count "$count" --inflight 64 --size 100 | tee "$work/bench.txt"
kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
after=$(ticks)
cpu_us=$(awk -v a="$before" -v b="$after" -v t="$(getconf CLK_TCK)" -v n="$count" \
  'BEGIN { printf "%.2f", (b - a) / t * 1e6 / n }')
echo
echo "daemon CPU per publish: $cpu_us µs (user + system, /proc/$pid/stat)"
echo
perf report -i "$data" --children --sort symbol --stdio -g none 2>/dev/null | grep '%' > "$work/report.txt"
share() { { grep -m1 -- "$1" "$work/report.txt" || true; } | awk '{ print $1 + 0 }'; }
printf '%-58s %8s %10s\n' "stage (inclusive samples of the daemon)" "share" "µs/publish"
row() { printf '%-58s %7.1f%% %10.2f\n' "$1" "$2" "$(awk -v s="$2" -v c="$cpu_us" 'BEGIN { print s * c / 100 }')"; }
# The stages are differences of inclusive shares of named functions. A publish line takes
# the fast path (PublishEnvelope.scan, DaemonMethods.publishAnswer, then the receipt queued
# as Outbox.enqueue(receipt:), written at drain time inside Outbox.write); any other line,
# the parser and the method table (RPCMessageParser.parse, then ConnectionHandler.start
# around RPCDispatcher.dispatch and DaemonMethods.publish).
read_syscalls=$(share 'ksys_read'); write_syscalls=$(share 'ksys_write')
framer=$(share 'LineFramerV4feed'); handle=$(share 'ConnectionHandlerC6handle.*4lineySW_tF ')
scan=$(share 'PublishEnvelopeV4scan'); parse=$(share 'RPCMessageParserO5parse')
start=$(share 'ConnectionHandlerC5start'); answer=$(share 'DaemonMethodsO13publishAnswer')
receipt=$(share 'OutboxC7enqueue7receipt')
# The method and its answer: `start` on the table's path (it holds publishAnswer), else the
# fast path's publishAnswer plus its receipt's queueing.
method=$(awk -v s="${start:-0}" -v a="${answer:-0}" -v r="${receipt:-0}" 'BEGIN { print (s > a ? s : a + r) }')
recording=$(share 'publishRecording'); deliver=$(share 'EventB0C7deliver')
enqueue=$(share 'OutboxC7enqueue5event'); encode=$(share 'EventC7encoded'); write=$(share 'OutboxC5write')
drain=$(share 'ConnectionHandlerC5drain')
diff() { awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" -v d="${4:-0}" 'BEGIN { x = a - b - c - d; print x < 0 ? 0 : x }'; }
row "read(2) from the publisher's socket" "${read_syscalls:-0}"
row "parse: the publish envelope scanned (data kept as bytes)" "$(awk -v a="${scan:-0}" -v b="${parse:-0}" 'BEGIN { print a + b }')"
row "params and checks: event_type, draining, in-flight" "$(diff "$handle" "$scan" "$parse" "$method")"
row "seq/lock/match: publishRecording outside delivery" "$(diff "$recording" "$deliver")"
row "deliver: history, counters, handlers (under the lock)" "$(diff "$deliver" "$enqueue")"
row "enqueue: into the subscriber's outbox" "${enqueue:-0}"
row "receipt: the publish result and its queueing" "$(diff "$method" "$recording")"
row "encode: the event object, once (shared by subscribers)" "${encode:-0}"
row "write: response and event lines into socket buffers" "$(diff "$write" "$encode")"
row "write(2) to the sockets" "${write_syscalls:-0}"
row "framing, batching, NIO (the rest of the read and drain paths)" "$(awk -v f="${framer:-0}" -v h="${handle:-0}" -v dr="${drain:-0}" -v w="${write:-0}" -v ws="${write_syscalls:-0}" 'BEGIN { x = (f - h) + (dr - w - ws); print x < 0 ? 0 : x }')"
echo
echo "top functions by own samples:"
perf report -i "$data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep '%' | head -15 | cut -c1-150
echo
echo "profile kept in $data"
