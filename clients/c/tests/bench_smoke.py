#!/usr/bin/env python3
"""Smoke test of the benchmark harness (make bench): tw-bench and redis-bench against a live
tradewired (from tests/run.sh: TW_TEST_SOCKET) and a live redis-server this test starts,
with tiny counts, then scripts/bench-redis.py --quick on this storage and Redis.

Behaviour only: each tool exits 0, prints its one line, every key parses, nothing is
dropped or disconnected at these sizes, the shapes asked for are the shapes reported. No
figure is judged: these are tools, and their numbers belong in the benchmark's table.

Run by `make -C clients/c test` (tests/run.sh python3 tests/bench_smoke.py); ends with
`N passed, N failed`.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
C_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(C_DIR))
TW_BENCH = os.path.join(C_DIR, "tw-bench")
REDIS_BENCH = os.path.join(C_DIR, "redis-bench")
PUBLISH_KEYS = ("count", "subscribers", "inflight", "publish_per_s", "delivered_per_s", "elapsed_s", "dropped",
                "publishers", "disconnected")
LATENCY_KEYS = ("latency_us_p50", "latency_us_p99")


def run(tool, sock, *args, timeout=120):
    done = subprocess.run([tool, "--socket", sock] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def parse(line, prefix):
    """The key=value pairs of the one line (numbers), after checking its first word."""
    lines = line.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {line!r}"
    words = lines[0].split()
    assert words[0] == prefix, f"expected a {prefix} line, got {lines[0]!r}"
    values = {}
    for word in words[1:]:
        m = re.fullmatch(r"(\w+)=(-?[0-9]+(?:\.[0-9]+)?)", word)
        assert m, f"{word!r} in {lines[0]!r} is not key=number"
        values[m.group(1)] = float(m.group(2))
    return values


def check_ping(tool, sock):
    rc, out, err = run(tool, sock, "ping", "--count", 50)
    assert rc == 0, f"exit {rc}: {err}"
    v = parse(out, "ping")
    assert set(v) == {"count", "p50_us", "p99_us", "mean_us"}, v
    assert v["count"] == 50
    assert 0 < v["p50_us"] <= v["p99_us"], v


def check_publish(tool, sock, count, subscribers, publishers, inflight, size, *extra):
    rc, out, err = run(tool, sock, "publish", "--count", count, "--subscribers", subscribers, "--publishers",
                       publishers, "--inflight", inflight, "--size", size, "--timeout", 30, *extra)
    assert rc == 0, f"exit {rc}: {err}"
    v = parse(out, "publish")
    for key in PUBLISH_KEYS:
        assert key in v, f"{key} missing from {out!r}"
    assert (v["count"], v["subscribers"], v["publishers"], v["inflight"]) == (count, subscribers, publishers,
                                                                              inflight), v
    assert v["dropped"] == 0 and v["disconnected"] == 0, v
    assert v["publish_per_s"] > 0 and v["elapsed_s"] >= 0, v  # elapsed_s has 3 decimals: 0.000 happens
    if subscribers:
        assert v["delivered_per_s"] > 0, v
    return v


class Redis:
    def __init__(self, work):
        self.sock = os.path.join(work, "r.sock")
        self.proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", self.sock, "--save", "",
                                      "--appendonly", "no", "--dir", work],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                    s.sendall(b"PING\r\n")
                    if s.recv(64) == b"+PONG\r\n":
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def main():
    tw_sock = os.environ["TW_TEST_SOCKET"]
    storage = os.environ.get("TW_TEST_STORAGE", "journal")
    daemon = os.environ["TW_TEST_TRADEWIRED"]
    work = tempfile.mkdtemp(prefix="twbs.", dir="/tmp")
    redis = None
    passed = failed = 0

    def test(name, body):
        nonlocal passed, failed
        try:
            body()
            print(f"ok   {name}")
            passed += 1
        except Exception:
            print(f"FAIL {name}\n{traceback.format_exc()}")
            failed += 1

    try:
        redis = Redis(work)
        r_sock = redis.sock

        def latency_present():
            v = check_publish(REDIS_BENCH, r_sock, 300, 3, 1, 8, 100)
            assert all(key in v for key in LATENCY_KEYS), v
            assert 0 < v["latency_us_p50"] <= v["latency_us_p99"], v

        def latency_absent_without_room():
            v = check_publish(REDIS_BENCH, r_sock, 100, 1, 1, 8, 10)
            assert not any(key in v for key in LATENCY_KEYS), v

        def bad_arguments():
            assert subprocess.run([REDIS_BENCH, "ping"], capture_output=True).returncode == 2
            assert subprocess.run([REDIS_BENCH, "--socket", r_sock, "publish", "--bogus"],
                                  capture_output=True).returncode == 2
            assert subprocess.run([TW_BENCH, "--socket", tw_sock, "publish", "--publishers", "0"],
                                  capture_output=True).returncode == 2

        def tw_latency():
            v = check_publish(TW_BENCH, tw_sock, 300, 3, 1, 8, 100)
            assert all(key in v for key in LATENCY_KEYS), v

        def tw_consumer_keys():
            v = check_publish(TW_BENCH, tw_sock, 200, 2, 2, 8, 100, "--consumer", "--ack-every", 16)
            assert v["consumer"] == 1 and v["ack_errors"] == 0 and v["acks"] > 0, v

        test("redis-bench ping", lambda: check_ping(REDIS_BENCH, r_sock))
        test("redis-bench publish, 3 subscribers, 8 in flight: keys and latency", latency_present)
        test("redis-bench publish, 5 publishers unpipelined", lambda: check_publish(REDIS_BENCH, r_sock, 100, 1, 5,
                                                                                     1, 100))
        test("redis-bench publish, 16 KiB payloads", lambda: check_publish(REDIS_BENCH, r_sock, 100, 2, 1, 8, 16384))
        test("redis-bench publish, no room for the stamp: no latency keys", latency_absent_without_room)
        test("bad arguments exit 2", bad_arguments)
        test("tw-bench ping", lambda: check_ping(TW_BENCH, tw_sock))
        test("tw-bench publish, 3 subscribers, 8 in flight: keys and latency", tw_latency)
        test("tw-bench publish, 5 publishers unpipelined", lambda: check_publish(TW_BENCH, tw_sock, 100, 1, 5, 1,
                                                                                  100))
        test("tw-bench publish, 16 KiB payloads", lambda: check_publish(TW_BENCH, tw_sock, 100, 2, 1, 8, 16384))
        test("tw-bench publish --consumer with 2 publishers", tw_consumer_keys)

        def script_quick():
            out = os.path.join(work, "out")
            done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench-redis.py"),
                                   os.path.dirname(daemon), "--quick", "--scale", "0.01", "--no-plot", "--systems",
                                   f"{storage},redis", "--out", out], capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "eph/Redis" in done.stdout and "Delivered events/s" in done.stdout, done.stdout
            result = json.load(open(os.path.join(out, "delivered-by-subscribers.json")))
            assert len(result["targets"]) == 4 and len(result["grid"]) == 9, result.keys()
            for shape in result["targets"] + result["grid"]:
                for system in (storage, "redis"):
                    assert shape["median"][system] is not None, (shape["key"], system, shape["runs"][system])
                    assert [r["rc"] for r in shape["runs"][system]] == [0], (shape["key"], shape["runs"][system])
            rows = open(os.path.join(out, "delivered-by-subscribers.csv")).read().strip().splitlines()
            assert len(rows) == 1 + 13 * 2, len(rows)

        test(f"bench-redis.py --quick ({storage} and Redis): table, JSON and CSV", script_quick)
    finally:
        if redis:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
