#!/usr/bin/env python3
"""Journal benchmarks (make bench): a release tradewired with --ephemeral beside one with a
journal (the default), measured in one run, each figure the median of ROUNDS.

- delivered events/s to 1 subscriber (tw-bench, 100-byte payloads, 64 in flight);
- publish acknowledgement latency, one publisher, unpipelined (p50/p99, Python raw socket);
- run_pipeline latency with 5 and with 1000 symbols (p50/p99);
- bytes per event on disk (the journal's size over its events after the delivery run, and
  after everything, iterations included);
- recovery: a journal of RECOVER_EVENTS events (and some iterations) restarted, time from
  spawn to `listening on`, and the fold's own time (`recovery.seconds`).

Usage: scripts/bench-journal.py RELEASE_DIR [--rounds 3] [--recover-events 1000000]
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TW_BENCH = os.path.join(ROOT, "clients", "c", "tw-bench")


class Daemon:
    def __init__(self, release, work, name, journal, extra=()):
        self.sock = os.path.join(work, name + ".sock")
        self.data = os.path.join(work, name + "-data")
        storage = ["--data-dir", self.data] if journal else ["--ephemeral"]
        self.log_path = os.path.join(work, name + ".log")
        self.log = open(self.log_path, "w")
        self.args = [os.path.join(release, "tradewired"), "--socket", self.sock, "--log-level", "info",
                     "--history-capacity", "1000", "--seed", "42"] + storage + list(extra)
        self.start()

    def start(self):
        started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stderr=self.log, stdout=subprocess.DEVNULL)
        while True:
            with open(self.log_path) as f:
                if f"listening on {self.sock}" in f.read():
                    break
            if self.proc.poll() is not None:
                raise SystemExit(f"tradewired exited: {open(self.log_path).read()[-2000:]}")
            time.sleep(0.005)
        self.start_seconds = time.monotonic() - started

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

    def call(self, method, params=None, timeout=600):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.sock)
        s.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        s.close()
        answer = json.loads(buf)
        if "error" in answer:
            raise SystemExit(f"{method}: {answer['error']}")
        return answer["result"]


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def delivered(daemon, count):
    out = subprocess.run([TW_BENCH, "--socket", daemon.sock, "publish", "--count", str(count), "--subscribers", "1",
                          "--inflight", "64", "--size", "100"], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"delivered_per_s=([0-9.]+)", out).group(1))


def ack_latency(daemon, count):
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.sock)
    f = s.makefile("rb")
    samples = []
    for i in range(count):
        line = json.dumps({"jsonrpc": "2.0", "id": i, "method": "publish",
                           "params": {"event_type": "bench.ack", "data": {"pad": "x" * 100}}}) + "\n"
        t = time.perf_counter()
        s.sendall(line.encode())
        f.readline()
        samples.append((time.perf_counter() - t) * 1e6)
    s.close()
    return percentile(samples, 50), percentile(samples, 99)


def iteration_latency(daemon, symbols, runs):
    names = [f"B{i:03d}" for i in range(symbols)] if symbols > 5 else ["AAPL", "MSFT", "GOOGL", "SPY", "QQQ"]
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        daemon.call("run_pipeline", {"symbols": names, "dry_run": True})
        samples.append((time.perf_counter() - t) * 1e3)
    return percentile(samples, 50), percentile(samples, 99)


def median(values):
    return statistics.median(values)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("release")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--recover-events", type=int, default=1_000_000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="twjbench.")
    rows = {}
    try:
        for journal in (False, True):
            name = "journal" if journal else "ephemeral"
            results = {"delivered": [], "ack50": [], "ack99": [], "it5_50": [], "it5_99": [], "it1k_50": [],
                       "it1k_99": [], "bytes": [], "bytes_all": []}
            for r in range(args.rounds):
                d = Daemon(args.release, work, f"{name}{r}", journal)
                try:
                    results["delivered"].append(delivered(d, 200_000))
                    if journal:
                        j = d.call("get_status")["journal"]
                        results["bytes"].append(j["bytes"] / max(1, j["events"]))
                    a50, a99 = ack_latency(d, 3000)
                    results["ack50"].append(a50)
                    results["ack99"].append(a99)
                    i50, i99 = iteration_latency(d, 5, 30)
                    results["it5_50"].append(i50)
                    results["it5_99"].append(i99)
                    i50, i99 = iteration_latency(d, 1000, 5)
                    results["it1k_50"].append(i50)
                    results["it1k_99"].append(i99)
                    if journal:
                        j = d.call("get_status")["journal"]
                        results["bytes_all"].append(j["bytes"] / max(1, j["events"]))
                finally:
                    d.stop()
                    shutil.rmtree(d.data, ignore_errors=True)
            rows[name] = {k: (median(v) if v else None) for k, v in results.items()}

        # Recovery of a large journal: events from tw-bench plus 200 traded iterations.
        d = Daemon(args.release, work, "recover", True)
        subprocess.run([TW_BENCH, "--socket", d.sock, "publish", "--count", str(args.recover_events),
                        "--subscribers", "1", "--inflight", "256", "--size", "100", "--timeout", "600"],
                       capture_output=True, text=True, check=True)
        for _ in range(200):
            d.call("run_pipeline", {"symbols": ["AAPL", "MSFT", "GOOGL", "SPY", "QQQ"]})
        events = d.call("get_status")["journal"]["events"]
        book = d.call("get_portfolio")
        d.stop()
        starts, folds = [], []
        for _ in range(args.rounds):
            open(d.log_path, "w").close()
            d.start()
            log = open(d.log_path).read()
            folds.append(float(re.search(r"recovery\.seconds=([0-9.e-]+)", log).group(1)))
            starts.append(d.start_seconds)
            again = d.call("get_portfolio")
            if {k: v for k, v in again.items() if k != "as_of_seq"} != {k: v for k, v in book.items() if k != "as_of_seq"}:
                raise SystemExit("recovered book differs")
            d.stop()
        shutil.rmtree(d.data, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    e, j = rows["ephemeral"], rows["journal"]
    print()
    print(f"Journal (release, median of {args.rounds} runs each, same run)")
    print(f"{'measure':<46} {'--ephemeral':>14} {'journal':>14} {'ratio':>8}")

    def line(label, a, b, fmt, higher_better):
        ratio = (b / a) if a else float("nan")
        print(f"{label:<46} {fmt.format(a):>14} {fmt.format(b):>14} {ratio:>7.2f}×")

    line("delivered/s to 1 subscriber (64 in flight)", e["delivered"], j["delivered"], "{:,.0f}", True)
    line("publish ack p50, unpipelined (µs)", e["ack50"], j["ack50"], "{:,.0f}", False)
    line("publish ack p99, unpipelined (µs)", e["ack99"], j["ack99"], "{:,.0f}", False)
    line("run_pipeline 5 symbols p50 (ms)", e["it5_50"], j["it5_50"], "{:,.1f}", False)
    line("run_pipeline 5 symbols p99 (ms)", e["it5_99"], j["it5_99"], "{:,.1f}", False)
    line("run_pipeline 1000 symbols p50 (ms)", e["it1k_50"], j["it1k_50"], "{:,.0f}", False)
    line("run_pipeline 1000 symbols p99 (ms)", e["it1k_99"], j["it1k_99"], "{:,.0f}", False)
    print(f"{'journal bytes per event (100-byte payloads)':<46} {'':>14} {j['bytes']:>14,.0f}")
    print(f"{'journal bytes per event (all of the above)':<46} {'':>14} {j['bytes_all']:>14,.0f}")
    print(f"recovery of {events:,} events + 200 iterations: start to listening {median(starts):.2f} s "
          f"(fold {median(folds):.2f} s; target < 5 s); the book matched every time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
