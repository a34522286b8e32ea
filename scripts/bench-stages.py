#!/usr/bin/env python3
"""Remote stage benchmarks (make bench), measured in one run against a release tradewired.

1. The cost of one stage call: a no-op risk `after` member in C (clients/c/tw-stage-noop),
   in Python (tradewire.StageWorker) and a raw one that echoes bytes without parsing them
   (the protocol's own cost), with 5 and 100 symbols, as the daemon measures it
   (p50/p99 of the group, send to reply decoded), next to the ping round trip of the same
   run (tw-bench) and the size of the call's payload.
2. Iteration latency (run_pipeline, client side, median and p99) with a no-op `after` group
   on each of the five stages, against none.

Usage: scripts/bench-stages.py RELEASE_DIR [BENCHMARKS_RELEASE_DIR] [--iterations N]
(BENCHMARKS_RELEASE_DIR holds TradewireBenchmarks, built by the nested package in Benchmarks/;
Benchmarks/.build/release by default)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "clients" / "python"))
import tradewire  # noqa: E402

NOOP = ROOT / "clients" / "c" / "tw-stage-noop"
TW_BENCH = ROOT / "clients" / "c" / "tw-bench"
STAGES = ["data", "strategy", "quant", "risk", "execution"]


class Conn:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next_id = 1

    def call(self, method: str, params: dict | None = None) -> dict:
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}).encode() + b"\n")
        while True:
            msg = json.loads(self.file.readline())
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def group(conn: Conn, stage: str, name: str) -> dict | None:
    for g in conn.call("get_status")["stages"][stage]:
        if g["name"] == name:
            return g
    return None


def wait_group(conn: Conn, stage: str, name: str) -> None:
    for _ in range(300):
        if group(conn, stage, name):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{stage}/{name} never registered")


def python_member(path: str, stage: str, name: str) -> tradewire.StageWorker:
    worker = tradewire.StageWorker(path)
    worker.add_stage(stage, lambda call: call.output, name=name)
    threading.Thread(target=worker.run, daemon=True).start()
    return worker


def raw_member(path: str, stage: str, name: str) -> socket.socket:
    """A member that does no JSON work: it echoes the call's `output` bytes as its result
    (the protocol's own cost, without a client library's parsing and encoding)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    f = sock.makefile("rb")
    sock.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "register_stage",
                             "params": {"stage": stage, "name": name}}).encode() + b"\n")
    f.readline()

    def serve() -> None:
        for line in f:
            if b'"stage.handle"' not in line:
                continue
            start = line.index(b'"id":"') + 6
            call_id = line[start:line.index(b'"', start)]
            out = line[line.index(b'"output":') + 9:line.index(b',"account":')]
            sock.sendall(b'{"jsonrpc":"2.0","id":"' + call_id + b'","result":' + out + b"}\n")

    threading.Thread(target=serve, daemon=True).start()
    return sock


def run_iterations(conn: Conn, n: int, count: int, dry_run: bool = True) -> list[float]:
    times = []
    params = {"symbols": symbols(n), "strategy": "TrendFollowing", "dry_run": dry_run}
    for _ in range(count):
        t = time.perf_counter()
        conn.call("run_pipeline", params)
        times.append((time.perf_counter() - t) * 1000)
    return times


def p99(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("release")
    ap.add_argument("benchmarks", nargs="?", default=str(ROOT / "Benchmarks" / ".build" / "release"))
    ap.add_argument("--iterations", type=int, default=300)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="twstage.")
    path = os.path.join(work, "tw.sock")
    daemon = subprocess.Popen([os.path.join(args.release, "tradewired"), "--socket", path, "--log-level", "error",
                               "--seed", "42", "--ephemeral"], stderr=subprocess.PIPE, text=True)
    procs: list[subprocess.Popen] = []
    workers: list[tradewire.StageWorker] = []
    try:
        assert daemon.stderr is not None
        daemon.stderr.readline()
        conn = Conn(path)
        ping = subprocess.run([str(TW_BENCH), "--socket", path, "ping", "--count", "20000"],
                              capture_output=True, text=True, check=True).stdout
        ping_p50 = float(ping.split("p50_us=")[1].split()[0])
        print(f"ping round trip p50 (tw-bench, same run): {ping_p50:.1f} µs")
        codec_out = subprocess.run([os.path.join(args.benchmarks, "TradewireBenchmarks"), "stage-codec", "5", "100"],
                                   capture_output=True, text=True, check=True).stdout
        codec = {}
        for line in codec_out.splitlines():
            if line.startswith("stage-codec "):
                f = dict(kv.split("=") for kv in line.split()[1:])
                codec[int(f["symbols"])] = float(f["encode_us"]) + float(f["decode_us"])
        print()
        print("One stage call (no-op risk `after` member), as the daemon times it, "
              f"{args.iterations} iterations each:")
        print(f"{'member':8} {'symbols':>7} {'payload':>9} {'p50 µs':>8} {'p99 µs':>8} {'p50/ping':>8} "
              f"{'target µs':>10} {'p50/target':>10}")
        raws: list[socket.socket] = []
        for kind in ["raw", "C", "Python"]:
            for n in [5, 100]:
                name = f"noop-{kind.lower()}-{n}"
                if kind == "raw":
                    raws.append(raw_member(path, "risk", name))
                elif kind == "C":
                    procs.append(subprocess.Popen([str(NOOP), "--socket", path, "risk", name]))
                else:
                    workers.append(python_member(path, "risk", name))
                wait_group(conn, "risk", name)
                run_iterations(conn, n, 20)  # warm-up
                # The payload: one call's params as the member receives them (measured once).
                probe = subprocess.run(
                    [sys.executable, "-c", PROBE, path, str(n)], capture_output=True, text=True, check=True)
                payload = int(probe.stdout.strip() or 0)
                run_iterations(conn, n, args.iterations)
                g = group(conn, "risk", name) or {}
                p50, p99v = g.get("p50_ms", 0) * 1000, g.get("p99_ms", 0) * 1000
                # Target: 2 × ping + the daemon's JSON work on the call (encode request, decode
                # reply), scaled from the synthetic signals to this payload's size.
                target = 2 * ping_p50 + codec.get(n, 0)
                print(f"{kind:8} {n:7d} {payload:8d}B {p50:8.1f} {p99v:8.1f} {p50 / ping_p50:7.2f}× "
                      f"{target:10.1f} {p50 / target:9.2f}×")
                conn.call("unregister_stage", {"stage": "risk", "name": name})
                if kind == "raw":
                    raws[-1].close()
                elif kind == "C":
                    procs[-1].send_signal(signal.SIGTERM)
                    procs[-1].wait(10)
                else:
                    workers[-1].stop()
        print()
        print(f"Iteration latency, run_pipeline with 5 symbols, {args.iterations} iterations (client side, ms):")
        base = run_iterations(conn, 5, args.iterations, dry_run=False)
        for stage in STAGES:
            procs.append(subprocess.Popen([str(NOOP), "--socket", path, stage, f"noop-{stage}"]))
            wait_group(conn, stage, f"noop-{stage}")
        run_iterations(conn, 5, 20, dry_run=False)
        withg = run_iterations(conn, 5, args.iterations, dry_run=False)
        calls = {s: (group(conn, s, f"noop-{s}") or {}).get("calls", 0) for s in STAGES}
        print(f"  no groups:                 p50 {statistics.median(base):6.2f}  p99 {p99(base):6.2f}")
        print(f"  a no-op group per stage:   p50 {statistics.median(withg):6.2f}  p99 {p99(withg):6.2f}"
              f"  (+{statistics.median(withg) - statistics.median(base):.2f} ms; calls per stage {calls})")
        return 0
    finally:
        for w in workers:
            w.stop()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)


# Registers a one-shot member that records the size of the first call's line.
PROBE = r'''
import json, socket, sys, threading
path, n = sys.argv[1], int(sys.argv[2])
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(path); return s, s.makefile("rb")
m, mf = conn()
m.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "register_stage",
                      "params": {"stage": "risk", "name": "probe"}}).encode() + b"\n")
mf.readline()
size = []
def serve():
    line = mf.readline(); size.append(len(line))
    msg = json.loads(line)
    m.sendall(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": msg["params"]["output"]}).encode() + b"\n")
threading.Thread(target=serve, daemon=True).start()
c, cf = conn()
c.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "run_pipeline", "params": {
    "symbols": [f"S{i:03d}" for i in range(n)], "strategy": "TrendFollowing", "dry_run": True}}).encode() + b"\n")
cf.readline()
c.sendall(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "unregister_stage", "params": {"stage": "risk", "name": "probe"}}).encode() + b"\n")
cf.readline()
print(size[0] if size else 0)
'''

if __name__ == "__main__":
    sys.exit(main())
