#!/usr/bin/env bash
# Socket benchmarks: tradewired (release) with the Swift load generator and with tw-bench (C).
# Redis is set beside it, shape for shape, by scripts/bench-redis.py (also part of make bench).
# Usage: scripts/bench-socket.sh RELEASE_DIR [BENCHMARKS_RELEASE_DIR]
# (the second: where TradewireBenchmarks is, the nested package's; Benchmarks/.build/release by default)
set -euo pipefail
release=${1:?usage: bench-socket.sh RELEASE_DIR [BENCHMARKS_RELEASE_DIR]}
root=$(cd "$(dirname "$0")/.." && pwd)
bench_release=${2:-$root/Benchmarks/.build/release}
work=$(mktemp -d /tmp/twbench.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

sock="$work/tw.sock"
# --ephemeral: the bus alone; scripts/bench-journal.py sets the journal beside it.
"$release/tradewired" --socket "$sock" --log-level error --history-capacity 1000 --ephemeral 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 1 300); do grep -q "listening on" "$work/daemon.log" 2>/dev/null && break; sleep 0.1; done

echo
"$bench_release/TradewireBenchmarks" socket --socket "$sock"

echo
echo "tradewired over its socket (tw-bench, C + jansson)"
"$root/clients/c/tw-bench" --socket "$sock" ping --count 20000
"$root/clients/c/tw-bench" --socket "$sock" publish --count 200000 --subscribers 1 --inflight 256 --size 100
"$root/clients/c/tw-bench" --socket "$sock" publish --count 50000 --subscribers 10 --inflight 256 --size 100

