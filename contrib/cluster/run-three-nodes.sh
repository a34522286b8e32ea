#!/bin/bash
# Three tradewired nodes sharing one local PostgreSQL: a cluster on one machine, to try
# failover and cross-node delivery (README, "Several daemons: a cluster").
#
#   contrib/cluster/run-three-nodes.sh [DIR]
#
# DIR (default: a new directory under /tmp) holds PostgreSQL's data and the three sockets,
# DIR/node1.sock … DIR/node3.sock. Every node starts with --loop: the one that leads runs
# the trading loop, the others wait to take over. Ctrl-C (or SIGTERM) stops the nodes,
# then PostgreSQL. Needs Debian's postgresql package (make deps installs it); TRADEWIRED
# picks the daemon binary.
#
#   tradewire --socket DIR/node2.sock cluster       # nodes, leader, epoch, lag
#   tradewire --socket DIR/node3.sock subscribe '*' # every node's events, one order
#   kill -9 <the leader's pid>                     # another node leads within 10 s
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
daemon=${TRADEWIRED:-$root/.build/debug/tradewired}
[ -x "$daemon" ] || { echo "no daemon at $daemon: run 'swift build' (or set TRADEWIRED)" >&2; exit 2; }
dir=${1:-$(mktemp -d /tmp/twcluster-XXXXXX)}
mkdir -p "$dir"
chmod 755 "$dir"  # PostgreSQL runs as its own user and must reach DIR/pg
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

pids=()
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    "$root/scripts/pg-server.sh" stop "$dir/pg"
    echo "stopped (data kept in $dir)"
    exit 0
}
trap stop INT TERM EXIT

"$root/scripts/pg-server.sh" start "$dir/pg" "$port" $$
conninfo="host=$dir/pg port=$port user=postgres dbname=postgres"
echo "PostgreSQL: $conninfo"
for n in 1 2 3; do
    "$daemon" --cluster "$conninfo" --node-id "node$n" --socket "$dir/node$n.sock" --log-level "${LOG_LEVEL:-notice}" \
        --loop &
    pids+=($!)
done
for n in 1 2 3; do
    for _ in $(seq 1 300); do [ -S "$dir/node$n.sock" ] && break; sleep 0.1; done
done
echo "three nodes up: $dir/node1.sock $dir/node2.sock $dir/node3.sock (pids ${pids[*]}); Ctrl-C stops them"
wait -n "${pids[@]}" || true
echo "a node exited; stopping the others" >&2
stop
