#!/usr/bin/env bash
# Socket benchmarks, measured side by side in one run: tradewired (release) with the Swift load
# generator and with tw-bench (C), then Redis on a Unix socket with redis-benchmark.
# Usage: scripts/bench-socket.sh RELEASE_DIR [BENCHMARKS_RELEASE_DIR]
# (the second: where TradewireBenchmarks is, the nested package's; Benchmarks/.build/release by default)
set -euo pipefail
release=${1:?usage: bench-socket.sh RELEASE_DIR [BENCHMARKS_RELEASE_DIR]}
root=$(cd "$(dirname "$0")/.." && pwd)
bench_release=${2:-$root/Benchmarks/.build/release}
work=$(mktemp -d /tmp/twbench.XXXXXX)
daemon_pid=""; redis_pid=""; sub_pid=""
cleanup() {
  for pid in $sub_pid $redis_pid $daemon_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $sub_pid $redis_pid $daemon_pid; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

sock="$work/tw.sock"
# --ephemeral: these rows compare the bus with Redis; scripts/bench-journal.py sets the
# journal beside it.
"$release/tradewired" --socket "$sock" --log-level error --history-capacity 1000 --ephemeral 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 1 300); do grep -q "listening on" "$work/daemon.log" 2>/dev/null && break; sleep 0.1; done

echo
"$bench_release/TradewireBenchmarks" socket --socket "$sock"

echo
echo "tradewired over its socket (tw-bench, C + jansson)"
"$root/clients/c/tw-bench" --socket "$sock" ping --count 20000 | tee "$work/twping.txt"
"$root/clients/c/tw-bench" --socket "$sock" publish --count 200000 --subscribers 1 --inflight 256 --size 100 | tee "$work/twpub1.txt"
"$root/clients/c/tw-bench" --socket "$sock" publish --count 50000 --subscribers 10 --inflight 256 --size 100

echo
echo "Redis $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') on a Unix socket (same machine, same run)"
rsock="$work/redis.sock"
redis-server --port 0 --unixsocket "$rsock" --save '' --appendonly no >/dev/null &
redis_pid=$!
for _ in $(seq 1 100); do [ -S "$rsock" ] && break; sleep 0.05; done
redis-benchmark -s "$rsock" -c 1 -n 5000 -q PING >/dev/null 2>&1 || true  # warm-up
# Round trip: redis-benchmark reports requests/s for one client, i.e. 1e6/rps µs per round trip.
ping_rps=$(redis-benchmark -s "$rsock" -c 1 -n 20000 -q PING 2>/dev/null | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | head -1)
redis-cli -s "$rsock" subscribe benchch >/dev/null &
sub_pid=$!
sleep 0.3
pub_p=$(redis-benchmark -s "$rsock" -c 1 -n 1000000 -P 64 -q PUBLISH benchch "$(head -c 100 /dev/zero | tr '\0' x)" 2>/dev/null | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | head -1)
pub_u=$(redis-benchmark -s "$rsock" -n 200000 -q PUBLISH benchch "$(head -c 100 /dev/zero | tr '\0' x)" 2>/dev/null | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | head -1)
redis_rtt=$(awk -v r="$ping_rps" 'BEGIN { if (r > 0) printf "%.1f", 1e6 / r; else print "n/a" }')
echo "redis PING round trip (1 client, sequential): ${redis_rtt} µs  (${ping_rps} req/s)"
echo "redis PUBLISH -P 64 → 1 subscriber: ${pub_p} msgs/s"
echo "redis PUBLISH unpipelined (50 clients, redis-benchmark default) → 1 subscriber: ${pub_u} msgs/s"

tw_p50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' "$work/twping.txt")
tw_del=$(sed -n 's/.*delivered_per_s=\([0-9.]*\).*/\1/p' "$work/twpub1.txt")
echo
echo "Ratios (tradewired via tw-bench / Redis, same run)"
awk -v a="$tw_p50" -v b="$redis_rtt" 'BEGIN { if (b > 0) printf "ping p50: %.1f µs vs %.1f µs → %.2f× Redis (target ≤ 2×)\n", a, b, a / b }'
awk -v a="$tw_del" -v b="$pub_p" 'BEGIN { if (b > 0) printf "delivered to 1 subscriber: %.0f/s vs %.0f/s pipelined → %.2f× Redis (target ≥ 300k/s)\n", a, b, a / b }'
awk -v a="$tw_del" -v b="$pub_u" 'BEGIN { if (b > 0) printf "delivered to 1 subscriber vs Redis unpipelined %.0f/s → %.2f×\n", b, a / b }'
