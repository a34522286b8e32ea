#!/usr/bin/env python3
"""What --http costs the publish path (make bench): two release tradewired side by side in
one run, one plain and one with `--http 127.0.0.1:0` (metrics recorded, /metrics scraped
every second meanwhile, as a busy Prometheus would), each publish benchmark interleaved
(off, on, on, off, ...) so that drift falls on both. The target: metrics cost at most 5 %
of publish throughput.

Each storage mode (--ephemeral, where the bus is cheapest and the metrics' share largest,
and the journal) reports tw-bench's publish_per_s and delivered_per_s (100-byte payloads,
256 in flight, 1 subscriber), the median of ROUNDS runs per daemon, and the ratio on/off;
and the daemon's CPU time per published event (user + system, from /proc), which other
load on the machine disturbs less than throughput.

Usage: scripts/bench-http.py RELEASE_DIR [--rounds 5] [--count 200000]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TW_BENCH = os.path.join(ROOT, "clients", "c", "tw-bench")


class Daemon:
    def __init__(self, release, work, name, storage, http):
        self.sock = os.path.join(work, name + ".sock")
        self.log_path = os.path.join(work, name + ".log")
        args = [os.path.join(release, "tradewired"), "--socket", self.sock, "--log-level", "error",
                "--history-capacity", "1000"]
        args += ["--ephemeral"] if storage == "ephemeral" else ["--data-dir", os.path.join(work, name + "-data")]
        if http:
            args += ["--http", "127.0.0.1:0"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stderr=self.log, stdout=subprocess.DEVNULL)
        self.url = None
        deadline = time.monotonic() + 60
        while True:
            text = open(self.log_path).read()
            match = re.search(r"^http listening on (\S+)$", text, re.M)
            if f"listening on {self.sock}" in text and (not http or match):
                self.url = match and f"http://{match.group(1)}"
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tradewired did not start: {text[-2000:]}")
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish(daemon, count):
    """(published/s, delivered/s, daemon CPU µs per event) of one tw-bench run."""
    before = cpu_seconds(daemon.proc.pid)
    out = subprocess.run([TW_BENCH, "--socket", daemon.sock, "publish", "--count", str(count), "--subscribers", "1",
                          "--inflight", "256", "--size", "100"], check=True, capture_output=True, text=True).stdout
    cpu = (cpu_seconds(daemon.proc.pid) - before) / count * 1e6
    return (float(re.search(r"publish_per_s=([0-9.]+)", out).group(1)),
            float(re.search(r"delivered_per_s=([0-9.]+)", out).group(1)), cpu)


def scrape(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        return answer.read().decode()


class Scraper(threading.Thread):
    """GET /metrics every second until stopped."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stopping, self.scrapes = url, threading.Event(), 0

    def run(self):
        while not self.stopping.wait(1.0):
            scrape(self.url)
            self.scrapes += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("release")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    print()
    print(f"--http: metrics on vs off, median of {args.rounds} interleaved runs per daemon, "
          f"tw-bench publish {args.count} × 100 B, 256 in flight, 1 subscriber; /metrics scraped every 1 s")
    print(f"{'storage':<11} {'measure':<18} {'off':>12} {'on':>12} {'on/off':>8}")
    with tempfile.TemporaryDirectory(prefix="twhttp.", dir="/tmp") as work:
        for storage in ("ephemeral", "journal"):
            off = Daemon(args.release, work, storage + "-off", storage, http=False)
            on = Daemon(args.release, work, storage + "-on", storage, http=True)
            scraper = Scraper(on.url)
            scraper.start()
            results = {"off": [], "on": []}
            try:
                publish(off, 20_000)  # warm-up, not counted
                publish(on, 20_000)
                for r in range(args.rounds):
                    order = (("off", off), ("on", on)) if r % 2 == 0 else (("on", on), ("off", off))
                    for name, daemon in order:
                        results[name].append(publish(daemon, args.count))
                scraper.stopping.set()
                scraper.join()
                recorded = re.search(r"^tradewire_publish_seconds_count (\d+)", scrape(on.url), re.M)
            finally:
                off.stop()
                on.stop()
            for index, measure, form in ((0, "published/s", "{:>12,.0f}"), (1, "delivered/s", "{:>12,.0f}"),
                                         (2, "CPU µs/event", "{:>12.2f}")):
                a = statistics.median(x[index] for x in results["off"])
                b = statistics.median(x[index] for x in results["on"])
                print(f"{storage:<11} {measure:<18} {form.format(a)} {form.format(b)} {b / a:>7.3f}×")
            print(f"{'':<11} (the --http daemon recorded {recorded.group(1) if recorded else '?'} publishes "
                  f"in tradewire_publish_seconds; {scraper.scrapes} scrapes; runs off: "
                  f"{', '.join(f'{x[1]:,.0f}' for x in results['off'])}; on: "
                  f"{', '.join(f'{x[1]:,.0f}' for x in results['on'])} delivered/s)")


if __name__ == "__main__":
    main()
