#!/usr/bin/env bash
# Heap allocations per remote publish: runs a release tradewired twice under an LD_PRELOAD
# allocation counter (scripts/malloc-count.c), publishing N1 and then N2 100-byte events
# with tw-bench (64 in flight, SUBSCRIBERS subscribers, 1 by default), and divides the
# difference of the daemon's totals by N2 - N1: start-up and shutdown cancel out.
# Everything a publish costs the daemon is counted: request, event, delivery, receipt.
#
# Usage: scripts/count-allocations.sh RELEASE_DIR [--journal] [--subscribers K]
set -euo pipefail
release=${1:?usage: count-allocations.sh RELEASE_DIR [--journal] [--subscribers K]}
shift
journal=0; subscribers=1
while [ $# -gt 0 ]; do
  case $1 in
    --journal) journal=1; shift ;;
    --subscribers) subscribers=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/twalloc.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -shared -fPIC -o "$work/malloc-count.so" "$root/scripts/malloc-count.c"

run() {  # run COUNT → prints the daemon's allocation total
  local n=$1 storage=(--ephemeral)
  [ "$journal" = 1 ] && storage=(--data-dir "$work/data-$n")
  rm -f "$work/tw.sock" "$work/count-$n"
  MALLOC_COUNT_FILE="$work/count-$n" LD_PRELOAD="$work/malloc-count.so" \
    "$release/tradewired" --socket "$work/tw.sock" --log-level error "${storage[@]}" 2>"$work/daemon.log" &
  pid=$!
  for _ in $(seq 1 100); do [ -S "$work/tw.sock" ] && break; sleep 0.1; done
  "$root/clients/c/tw-bench" --socket "$work/tw.sock" publish --count "$n" --subscribers "$subscribers" \
    --inflight 64 --size 100 >/dev/null
  kill -TERM "$pid"; wait "$pid" || true
  pid=""
  sed -n 's/^allocations=\([0-9]*\) bytes=\([0-9]*\)$/\1 \2/p' "$work/count-$n"
}
n1=20000; n2=120000
read -r a1 b1 < <(run $n1)
read -r a2 b2 < <(run $n2)
awk -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" -v n="$((n2 - n1))" -v k="$subscribers" -v j="$journal" \
  'BEGIN { printf "allocations per remote publish (%s, %d subscriber%s, 100 B): %.2f (%.0f bytes)\n",
           j ? "journal" : "--ephemeral", k, k == 1 ? "" : "s", (a2 - a1) / n, (b2 - b1) / n }'
