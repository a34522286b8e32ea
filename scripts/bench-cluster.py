#!/usr/bin/env python3
"""The cluster on PostgreSQL beside one daemon on its SQLite journal (make bench).

    python3 scripts/bench-cluster.py RELEASE_DIR [--rounds 3] [--count 30000] [--quick]

Starts a private PostgreSQL (scripts/pg-server.sh) and release `tradewired` nodes, and
measures, each the median of --rounds runs:
- appended events/s: `clients/c/tw-bench publish` (64 in flight, 100-byte payloads, one
  subscriber on the publisher's node) against each publishing node at once, the publish
  rates summed; 1, 2 and 3 nodes publishing, and one daemon on its SQLite journal; then
  512 in flight (a commit is the database's fsync: throughput is events per commit, so
  deeper pipelines make bigger batches);
- publish -> subscriber latency, p50 and p99: one publish at a time (Python client, 1 ms
  apart), the subscriber on the same node and on another node;
- a `run_pipeline` (5 symbols, not a dry run) answered by the leader itself and handed
  over from a follower, p50 and p99 of --runs calls;
- a remote risk stage call (a pass-through member), its `duration_ms` as the leader saw
  it, with the member connected to the leader and to a follower, p50 and p99 of --runs;
- failover: a follower reports itself leader after the leader's clean stop (SIGTERM) and
  after its crash (SIGKILL).
Prints one table; every node and the database are stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from tradewire import Client, StageWorker  # noqa: E402

TW_BENCH = os.path.join(ROOT, "clients", "c", "tw-bench")
PG_SERVER = os.path.join(ROOT, "scripts", "pg-server.sh")


class Postgres:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "pg")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conninfo = f"host={self.dir} port={self.port} user=postgres dbname=postgres"
        subprocess.run([PG_SERVER, "start", self.dir, str(self.port), str(os.getpid())], check=True)

    def sql(self, query: str) -> str:
        return subprocess.run(["psql", "-X", "-q", "-At", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                               "-c", query], check=True, capture_output=True, text=True).stdout.strip()

    def stop(self) -> None:
        subprocess.run([PG_SERVER, "stop", self.dir], check=False)


class Node:
    def __init__(self, binary: str, root: str, name: str, args: List[str]) -> None:
        self.name = name
        self.sock = os.path.join(root, f"{name}.sock")
        self.proc = subprocess.Popen([binary, "--socket", self.sock, "--log-level", "error", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start ({' '.join(args)})")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def tw_bench(sock: str, count: int, inflight: int) -> Dict[str, float]:
    out = subprocess.run([TW_BENCH, "--socket", sock, "publish", "--count", str(count), "--inflight", str(inflight),
                          "--size", "100", "--timeout", "60"], capture_output=True, text=True, timeout=300)
    fields = dict(re.findall(r"(\w+)=([\d.]+)", out.stdout))
    if out.returncode != 0 or "publish_per_s" not in fields:
        raise SystemExit(f"tw-bench failed: {out.stdout} {out.stderr}")
    return {k: float(v) for k, v in fields.items()}


def appended_per_s(socks: List[str], count: int, inflight: int = 64) -> float:
    results: List[Dict[str, float]] = []
    threads = [threading.Thread(target=lambda s=s: results.append(tw_bench(s, count, inflight))) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(r["publish_per_s"] for r in results)


def latency(pub_sock: str, sub_sock: str, samples: int) -> List[float]:
    """Milliseconds from sending a publish to the event reaching a subscriber."""
    kind = f"lat.{os.getpid()}.{time.monotonic_ns()}"
    got: Dict[int, float] = {}
    ready = threading.Event()

    def listen() -> None:
        with Client(sub_sock, timeout=30) as c:
            sub = c.subscribe(kind)
            ready.set()
            for event in sub:
                got[event["data"]["i"]] = time.monotonic()
                if len(got) == samples:
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    ready.wait(30)
    time.sleep(0.2)
    sent: Dict[int, float] = {}
    with Client(pub_sock, timeout=30) as c:
        for i in range(samples):
            sent[i] = time.monotonic()
            c.publish(kind, {"i": i})
            deadline = time.monotonic() + 10
            while i not in got and time.monotonic() < deadline:
                time.sleep(0.0002)
            time.sleep(0.001)
    t.join(30)
    return [(got[i] - sent[i]) * 1000 for i in range(samples) if i in got]


SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA"]


def run_ms(sock: str, runs: int) -> List[float]:
    """Milliseconds per non-dry run_pipeline sent to `sock`, one at a time."""
    out = []
    with Client(sock, timeout=60) as c:
        for _ in range(runs):
            started = time.monotonic()
            c.call("run_pipeline", {"symbols": SYMBOLS})
            out.append((time.monotonic() - started) * 1000)
    return out


def stage_call_ms(leader_sock: str, member_sock: str, runs: int) -> List[float]:
    """The leader's duration_ms of a pass-through risk group whose member is on `member_sock`."""
    worker = StageWorker(member_sock)
    worker.stage("risk", name="bench-pass", timeout_ms=5000)(lambda call: call.output)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    out: List[float] = []
    try:
        with Client(leader_sock, timeout=60) as c:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                    g["name"] == "bench-pass" for g in c.call("get_status")["stages"]["risk"]):
                time.sleep(0.05)
            while len(out) < runs and time.monotonic() < deadline + 120:
                result = c.call("run_pipeline", {"symbols": ["GOOGL"], "strategy": "TrendFollowing",
                                                 "dry_run": True})
                out += [h["duration_ms"] for h in result["handlers"] if h["name"] == "bench-pass"]
    finally:
        worker.stop()
        thread.join(10)
    return out


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def leader_of(sock: str) -> Optional[str]:
    try:
        with Client(sock, timeout=5) as c:
            return c.call("get_status")["cluster"]["leader"]
    except Exception:
        return None


def failover(binary: str, root: str, pg: Postgres, crash: bool, tag: str) -> float:
    nodes = {n: Node(binary, root, f"{tag}{n}", ["--cluster", pg.conninfo, "--node-id", f"{tag}{n}"]) for n in "ab"}
    try:
        deadline = time.monotonic() + 20
        while leader_of(nodes["a"].sock) not in (f"{tag}a", f"{tag}b"):
            if time.monotonic() > deadline:
                raise SystemExit("no leader elected")
            time.sleep(0.05)
        leader = leader_of(nodes["a"].sock)
        survivor = nodes["b"] if leader == f"{tag}a" else nodes["a"]
        want = f"{tag}b" if leader == f"{tag}a" else f"{tag}a"
        victim = nodes["a"] if leader == f"{tag}a" else nodes["b"]
        started = time.monotonic()
        if crash:
            victim.proc.send_signal(signal.SIGKILL)
        else:
            victim.proc.send_signal(signal.SIGTERM)
        while leader_of(survivor.sock) != want:
            if time.monotonic() - started > 30:
                raise SystemExit("no failover within 30 s")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        for n in nodes.values():
            n.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("release_dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=30000, help="publishes per node per run")
    parser.add_argument("--samples", type=int, default=1000, help="latency samples per run")
    parser.add_argument("--runs", type=int, default=50, help="run_pipeline and stage calls per run")
    parser.add_argument("--quick", action="store_true", help="1 round, small counts (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.count, args.samples, args.runs = 1, 3000, 100, 10
    binary = os.path.join(os.path.abspath(args.release_dir), "tradewired")
    for tool in (binary, TW_BENCH):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} is missing (swift build -c release; make -C clients/c)")
    root = tempfile.mkdtemp(prefix="twbc-", dir="/tmp")
    os.chmod(root, 0o755)  # PostgreSQL runs as its own user and must reach root/pg
    try:
        pg = Postgres(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    rows: Dict[str, List[float]] = {}
    try:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
            data_dir = os.path.join(root, f"sqlite{r}")
            single = Node(binary, root, f"single{r}", ["--data-dir", data_dir])
            try:
                rows.setdefault("single node, SQLite journal: appended/s", []).append(
                    appended_per_s([single.sock], args.count))
                rows.setdefault("single node, SQLite, 512 in flight: appended/s", []).append(
                    appended_per_s([single.sock], args.count, 512))
                lat = latency(single.sock, single.sock, args.samples)
                rows.setdefault("single node: latency p50 ms", []).append(percentile(lat, 50))
                rows.setdefault("single node: latency p99 ms", []).append(percentile(lat, 99))
            finally:
                single.stop()
            nodes = [Node(binary, root, f"r{r}n{i}", ["--cluster", pg.conninfo, "--node-id", f"r{r}n{i}"])
                     for i in range(3)]
            try:
                for k in (1, 2, 3):
                    rows.setdefault(f"cluster, {k} node(s) publishing: appended/s", []).append(
                        appended_per_s([n.sock for n in nodes[:k]], args.count))
                for k in (1, 3):
                    rows.setdefault(f"cluster, {k} node(s), 512 in flight: appended/s", []).append(
                        appended_per_s([n.sock for n in nodes[:k]], args.count, 512))
                same = latency(nodes[0].sock, nodes[0].sock, args.samples)
                cross = latency(nodes[0].sock, nodes[1].sock, args.samples)
                rows.setdefault("cluster, same node: latency p50 ms", []).append(percentile(same, 50))
                rows.setdefault("cluster, same node: latency p99 ms", []).append(percentile(same, 99))
                rows.setdefault("cluster, across nodes: latency p50 ms", []).append(percentile(cross, 50))
                rows.setdefault("cluster, across nodes: latency p99 ms", []).append(percentile(cross, 99))
                socks = {n.name: n.sock for n in nodes}
                leader = leader_of(nodes[0].sock)
                lead_sock = socks[leader]
                follower_sock = next(sock for name, sock in socks.items() if name != leader)
                for label, sock in (("leader", lead_sock), ("handed over by a follower", follower_sock)):
                    ms = run_ms(sock, args.runs)
                    rows.setdefault(f"run_pipeline, {label}: p50 ms", []).append(percentile(ms, 50))
                    rows.setdefault(f"run_pipeline, {label}: p99 ms", []).append(percentile(ms, 99))
                for label, sock in (("member on the leader", lead_sock), ("member on a follower", follower_sock)):
                    ms = stage_call_ms(lead_sock, sock, args.runs)
                    rows.setdefault(f"risk stage call, {label}: p50 ms", []).append(percentile(ms, 50))
                    rows.setdefault(f"risk stage call, {label}: p99 ms", []).append(percentile(ms, 99))
            finally:
                for n in nodes:
                    n.stop()
            rows.setdefault("failover after a clean stop, s", []).append(failover(binary, root, pg, False, f"c{r}"))
            rows.setdefault("failover after a crash (kill -9), s", []).append(failover(binary, root, pg, True, f"k{r}"))
        gaps = pg.sql("SELECT count(*) - max(seq) FROM tw_events")
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ncluster benchmark (median of {args.rounds}; PostgreSQL {PG_VERSION()}; {os.cpu_count()} cores)")
    print(f"{'measure':<52} {'median':>10}   runs")
    for name, values in rows.items():
        fmt = (lambda v: f"{v:,.0f}") if "/s" in name else (lambda v: f"{v:.2f}")
        print(f"{name:<52} {fmt(statistics.median(values)):>10}   {', '.join(fmt(v) for v in values)}")
    print(f"holes in the shared journal's seq (count - max): {gaps}")


def PG_VERSION() -> str:
    out = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.split()
    return out[-1] if out else "?"


if __name__ == "__main__":
    main()
