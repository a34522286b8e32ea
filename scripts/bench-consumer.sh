#!/usr/bin/env bash
# Durable consumers against plain subscriptions (PROTOCOL §11), measured in one run with
# tw-bench: 64 publishes in flight, 100-byte payloads, one subscriber that is either a plain
# subscription or a consumer acknowledging with `ack up_to_seq` every 64 events. For each
# storage (a daemon with --ephemeral, then one with a journal) the two kinds alternate,
# ROUNDS times each; the table shows the medians and consumer / plain.
# Usage: scripts/bench-consumer.sh RELEASE_DIR [ROUNDS (default 5)] [COUNT (default 100000)]
set -euo pipefail
release=${1:?usage: bench-consumer.sh RELEASE_DIR [ROUNDS] [COUNT]}
rounds=${2:-5}
count=${3:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
bench="$root/clients/c/tw-bench"
work=$(mktemp -d /tmp/twcons.XXXXXX)
daemon_pid=""
stop_daemon() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=""
  fi
}
cleanup() {
  stop_daemon
  rm -rf "$work"
}
trap cleanup EXIT

# start_daemon NAME STORAGE...: a release tradewired on its own socket, ready to serve.
start_daemon() {
  local name=$1
  shift
  sock="$work/$name.sock"
  "$release/tradewired" --socket "$sock" --log-level error --history-capacity 1000 "$@" 2>"$work/$name.log" &
  daemon_pid=$!
  for _ in $(seq 1 300); do
    grep -q "listening on" "$work/$name.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-consumer: tradewired did not start: $(cat "$work/$name.log")" >&2
  exit 1
}

# median FILE: the median of the numbers in FILE, one per line.
median() {
  sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure NAME: ROUNDS alternating runs of both kinds against the daemon at $sock.
measure() {
  local name=$1 line
  : >"$work/$name.plain"
  : >"$work/$name.consumer"
  for round in $(seq 1 "$rounds"); do
    line=$("$bench" --socket "$sock" publish --count "$count" --subscribers 1 --inflight 64 --size 100)
    echo "  [$name plain $round] $line"
    sed -n 's/.*delivered_per_s=\([0-9.]*\).*/\1/p' <<<"$line" >>"$work/$name.plain"
    line=$("$bench" --socket "$sock" publish --count "$count" --subscribers 1 --inflight 64 --size 100 \
      --consumer --ack-every 64)
    echo "  [$name consumer $round] $line"
    sed -n 's/.*delivered_per_s=\([0-9.]*\).*/\1/p' <<<"$line" >>"$work/$name.consumer"
  done
}

echo
echo "Durable consumers vs plain subscriptions (tw-bench, $count events, 64 in flight, 100 B, 1 subscriber;"
echo "consumer acks up_to_seq every 64; median of $rounds alternating runs per kind)"
start_daemon ephemeral --ephemeral
measure ephemeral
stop_daemon
start_daemon journal --data-dir "$work/data"
measure journal
stop_daemon

echo
printf '%-10s %14s %14s %8s\n' storage "plain/s" "consumer/s" ratio
for name in ephemeral journal; do
  plain=$(median "$work/$name.plain")
  consumer=$(median "$work/$name.consumer")
  awk -v n="$name" -v p="$plain" -v c="$consumer" \
    'BEGIN { printf "%-10s %14.0f %14.0f %7.2f× (target ≥ 0.50×)\n", n, p, c, (p > 0 ? c / p : 0) }'
done
