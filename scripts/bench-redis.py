#!/usr/bin/env python3
"""tradewired beside Redis (make bench): the same shapes, the same kind of client, one run.

Starts three servers, each on its own Unix socket in a temporary directory:
- Redis (`redis-server --port 0 --unixsocket … --save '' --appendonly no`);
- a release `tradewired --ephemeral`;
- a release `tradewired` with the journal (the default; its own --data-dir).
Every figure comes from a minimal raw C client: `clients/c/tw-bench` (JSON lines) and
`clients/c/redis-bench` (RESP by hand), which share their load generator
(`clients/c/examples/bench.h`), so both systems are measured the same way.

1. The issue's targets, each the median of ROUNDS rounds; within a round the three systems
   run one after another, in an order rotated every round:
   - delivered events/s to 1 subscriber, 64 publishes in flight, 100-byte payloads
     (≥ 0.5× Redis with --ephemeral, ≥ 0.4× with the journal);
   - deliveries/s to 10 subscribers, same shape (≥ 1× Redis);
   - ping p50, sequential round trips (≤ 1.1× Redis PING);
   - unpipelined publish from 50 clients (50 connections, one publish in flight each) to
     1 subscriber, publishes answered/s (≥ 1× Redis).
   Next to each throughput: the publish → receipt latency p50/p99 (the publisher stamps
   each payload with its clock; the subscriber subtracts it on receipt; see bench.h).
   Targets that name no storage apply to both tradewired columns.
2. A grid: delivered events/s (all subscribers) against 1, 10 and 100 subscribers and
   100 B, 1 KiB and 16 KiB payloads, 64 in flight, median of GRID_ROUNDS (3 by default, to
   keep the run near 10 minutes), drawn into OUT/delivered-by-subscribers.png; every run's
   numbers go to OUT/delivered-by-subscribers.json and .csv.

Nothing is hidden: tradewired's events_dropped (a subscriber past its 8 MiB outbound budget
skips events) and Redis's disconnection of a subscriber past its client-output-buffer-limit
are counted in every run, shown in the tables and the plot, and written to the JSON/CSV.
Redis keeps its shipped limit for pubsub clients (`32mb 8mb 60`: disconnected at 32 MiB
queued, or 8 MiB for 60 s): raising it to unlimited would let Redis buffer without bound,
a guarantee tradewired does not give up (its budget is 8 MiB), so the limit stays and its
effects are reported.

Usage: scripts/bench-redis.py RELEASE_DIR [--rounds 5] [--grid-rounds 3] [--out docs/perf]
                              [--scale 1.0] [--systems ephemeral,journal,redis] [--no-plot]
       scripts/bench-redis.py RELEASE_DIR --quick      # smoke run: counts / 20, 1 round,
                                                      # output in a temporary directory
       scripts/bench-redis.py RELEASE_DIR --replot     # the PNG again from the JSON in --out
       scripts/bench-redis.py RELEASE_DIR --targets-only --rounds 3 --systems ephemeral,redis
                                                      # tuning: the targets table only, no files
The full run takes about 7 minutes on the 2-core machine.
"""
import argparse
import csv
import datetime
import json
import os
import platform
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
REDIS_BENCH = os.path.join(ROOT, "clients", "c", "redis-bench")
SYSTEMS = ("ephemeral", "journal", "redis")
LABELS = {"ephemeral": "tradewired --ephemeral", "journal": "tradewired (journal)", "redis": "Redis"}
PLOT_NAME = "delivered-by-subscribers"


class Tradewired:
    def __init__(self, release, work, name, journal):
        self.sock = os.path.join(work, name + ".sock")
        self.log_path = os.path.join(work, name + ".log")
        storage = ["--data-dir", os.path.join(work, name + "-data")] if journal else ["--ephemeral"]
        self.proc = subprocess.Popen([os.path.join(release, "tradewired"), "--socket", self.sock, "--log-level",
                                      "warning", "--seed", "42"] + storage,
                                     stderr=open(self.log_path, "w"), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while f"listening on {self.sock}" not in open(self.log_path).read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"tradewired did not start: {open(self.log_path).read()[-2000:]}")
            time.sleep(0.01)
        self.client = TW_BENCH

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Redis:
    def __init__(self, work):
        self.sock = os.path.join(work, "redis.sock")
        self.proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm",
                                      "700", "--save", "", "--appendonly", "no", "--dir", work],
                                     stdout=open(os.path.join(work, "redis.log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"redis-server did not start: {open(os.path.join(work, 'redis.log')).read()}")
            time.sleep(0.02)
        self.client = REDIS_BENCH
        self.version = re.search(r"v=(\S+)", subprocess.run(["redis-server", "--version"], capture_output=True,
                                                             text=True).stdout).group(1)
        self.pubsub_limit = self.command("CONFIG", "GET", "client-output-buffer-limit")[1]

    def ready(self):
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def command(self, *words):
        """One command over RESP; its reply (a str, or a list for an array)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(f"*{len(words)}\r\n".encode() + b"".join(
                f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words))
            return read_reply(s.makefile("rb"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def read_reply(f):
    """One RESP reply from the binary file f."""
    line = f.readline().rstrip(b"\r\n").decode()
    kind, rest = line[:1], line[1:]
    if kind in ("+", ":"):
        return rest
    if kind == "-":
        raise OSError(rest)
    if kind == "$":
        return None if int(rest) < 0 else f.read(int(rest) + 2)[:-2].decode()
    if kind == "*":
        return [read_reply(f) for _ in range(int(rest))]
    raise OSError(f"unexpected reply: {line!r}")


def run_client(server, args, timeout):
    """One client run: the key=value pairs of its line (floats), plus rc and stderr."""
    cmd = [server.client, "--socket", server.sock] + args
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = -1, (e.stdout or b"").decode(), f"killed after {timeout} s"
    values = {}
    for key, value in re.findall(r"(\w+)=([-0-9.]+)", out.strip().splitlines()[-1] if out.strip() else ""):
        values[key] = float(value) if "." in value else int(value)
    values["rc"] = rc
    if rc != 0 or err.strip():
        values["stderr"] = err.strip()[-500:]
    return values


class Shape:
    """A fixed shape: the client arguments, the figure read, and the target on it."""

    def __init__(self, key, title, args, figure, count, higher_better=True, target=None, p99=None, p50=None,
                 subscribers=1, size=100):
        self.key, self.title, self.args, self.figure, self.count = key, title, args, figure, count
        self.higher_better, self.target = higher_better, target
        self.p50, self.p99 = p50, p99
        self.subscribers, self.size = subscribers, size
        self.runs = {s: [] for s in SYSTEMS}

    def client_args(self):
        return self.args + ["--count", str(self.count)]

    def ok_runs(self, system):
        return [r for r in self.runs[system] if self.figure in r]

    def median(self, system, key=None):
        values = [r[key or self.figure] for r in self.ok_runs(system) if (key or self.figure) in r]
        return statistics.median(values) if values else None

    def drops(self, system):
        """(dropped, disconnected, failed runs) summed over the runs."""
        runs = self.runs[system]
        return (int(sum(r.get("dropped", 0) for r in runs)), int(sum(r.get("disconnected", 0) for r in runs)),
                sum(1 for r in runs if r["rc"] != 0))


def publish_shape(key, title, subscribers, size, count, publishers=1, inflight=64, **kw):
    args = ["publish", "--subscribers", str(subscribers), "--publishers", str(publishers), "--inflight",
            str(inflight), "--size", str(size), "--timeout", "30"]
    kw.setdefault("p50", "latency_us_p50")
    kw.setdefault("p99", "latency_us_p99")
    return Shape(key, title, args, kw.pop("figure", "delivered_per_s"), count, subscribers=subscribers, size=size,
                 **kw)


def target_shapes(scale):
    return [
        publish_shape("deliver-1", "1 subscriber, 64 in flight, 100 B: delivered/s", 1, 100, int(200_000 * scale),
                      target={"ephemeral": 0.5, "journal": 0.4}),
        publish_shape("deliver-10", "10 subscribers, 64 in flight, 100 B: deliveries/s", 10, 100,
                      int(60_000 * scale), target={"ephemeral": 1.0, "journal": 1.0}),
        Shape("ping", "ping p50, sequential round trips (µs)", ["ping"], "p50_us", int(20_000 * scale),
              higher_better=False, target={"ephemeral": 1.1, "journal": 1.1}, p99="p99_us"),
        publish_shape("unpipelined-50", "unpipelined publish, 50 clients → 1 subscriber, 100 B: publishes/s", 1, 100,
                      int(100_000 * scale), publishers=50, inflight=1, figure="publish_per_s",
                      target={"ephemeral": 1.0, "journal": 1.0}),
    ]


# Grid counts: half a second or more for the fastest system (Redis) on the 2-core machine, so
# that the whole script stays near 10 minutes while tradewired with the journal is slower.
GRID_SUBSCRIBERS = (1, 10, 100)
GRID_SIZES = (100, 1024, 16384)
GRID_COUNT = {(1, 100): 200_000, (10, 100): 60_000, (100, 100): 6_000,
              (1, 1024): 120_000, (10, 1024): 40_000, (100, 1024): 4_000,
              (1, 16384): 20_000, (10, 16384): 8_000, (100, 16384): 1_000}


def grid_shapes(scale):
    return [publish_shape(f"grid-{subs}-{size}", f"{subs} subscribers, {size} B", subs, size,
                          max(64, int(GRID_COUNT[(subs, size)] * scale)))
            for size in GRID_SIZES for subs in GRID_SUBSCRIBERS]


def measure(shapes, servers, rounds, label):
    timeout = 300
    for r in range(rounds):
        order = [s for s in SYSTEMS[r % 3:] + SYSTEMS[:r % 3] if s in servers]
        for shape in shapes:
            for system in order:
                values = run_client(servers[system], shape.client_args(), timeout)
                values["round"] = r + 1
                shape.runs[system].append(values)
                if values["rc"] != 0:
                    print(f"  [{label} {shape.key} {system} round {r + 1}] exit {values['rc']}: "
                          f"{values.get('stderr', '')[-300:]}", file=sys.stderr)
        print(f"  {label}: round {r + 1} of {rounds} done", file=sys.stderr)


def si(value, unit="/s"):
    if value is None:
        return "—"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {suffix}{unit}"
    return f"{value:.3g} {unit}"


def micros(value):
    if value is None:
        return "—"
    return f"{value / 1000:.3g} ms" if value >= 1000 else f"{value:.3g} µs"


def cell(shape, system):
    if not shape.runs[system]:
        return "(not run)"
    v = shape.median(system)
    main = micros(v) if shape.figure.endswith("_us") else si(v)
    p99 = shape.median(system, shape.p99) if shape.p99 else None
    text = f"{main} p99 {micros(p99)}"
    dropped, disconnected, failed = shape.drops(system)
    notes = []
    if dropped:
        notes.append(f"{dropped} dropped")
    if disconnected:
        notes.append(f"{disconnected} disc.")
    if failed:
        notes.append(f"{failed} failed")
    return text + (" [" + ", ".join(notes) + "]" if notes else "")


def ratio(shape, system):
    a, b = shape.median(system), shape.median("redis")
    return a / b if a is not None and b else None


def met(shape, system):
    r, t = ratio(shape, system), (shape.target or {}).get(system)
    if r is None or t is None:
        return None
    return r >= t if shape.higher_better else r <= t


def print_table(header, rows):
    """Left-aligned columns as wide as their widest cell (the last one unpadded)."""
    widths = [max(len(str(row[k])) for row in [header] + rows) for k in range(len(header))]
    for row in [header] + rows:
        print("  ".join(f"{str(c):<{w}}" for c, w in zip(row[:-1], widths)) + "  " + str(row[-1]))


def ratios(shape):
    return [f"{r:.2f}×" if r is not None else "—" for r in (ratio(shape, "ephemeral"), ratio(shape, "journal"))]


def print_targets(shapes, rounds):
    print()
    print(f"tradewired vs Redis: the targets (median of {rounds} rounds; the systems interleaved within each round; "
          "p99: publish → receipt for publishes, the round trip for ping)")
    rows = []
    for shape in shapes:
        targets = []
        for system, short in (("ephemeral", "eph"), ("journal", "jnl")):
            ok = met(shape, system)
            sign = "≥" if shape.higher_better else "≤"
            targets.append(f"{short} {sign} {shape.target[system]:g}× {'yes' if ok else '?' if ok is None else 'NO'}")
        rows.append([shape.title, cell(shape, "ephemeral"), cell(shape, "journal"), cell(shape, "redis")]
                    + ratios(shape) + ["; ".join(targets)])
    print_table(["shape", LABELS["ephemeral"], LABELS["journal"], LABELS["redis"], "eph/Redis", "jnl/Redis",
                 "target: met"], rows)


def print_grid(shapes, rounds):
    print()
    print(f"Delivered events/s (all subscribers), 64 in flight, median of {rounds}; p99: publish → receipt")
    rows = [[shape.subscribers, f"{shape.size} B", cell(shape, "ephemeral"), cell(shape, "journal"),
             cell(shape, "redis")] + ratios(shape) for shape in shapes]
    print_table(["subscribers", "payload", LABELS["ephemeral"], LABELS["journal"], LABELS["redis"], "eph/Redis",
                 "jnl/Redis"], rows)
    print("[N dropped]: deliveries skipped (tradewired's events_dropped) or lost to a disconnection (Redis closes a "
          "subscriber past its client-output-buffer-limit), summed over the runs; [N disc.]: subscribers "
          "disconnected; [N failed]: runs that did not finish (the median leaves them out)")


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "host": platform.node()}


def commit():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shape_json(shape):
    return {"key": shape.key, "title": shape.title, "client_args": shape.client_args(), "figure": shape.figure,
            "subscribers": shape.subscribers, "size": shape.size, "higher_better": shape.higher_better,
            "target": shape.target,
            "median": {s: shape.median(s) for s in SYSTEMS},
            "median_p50": {s: shape.median(s, shape.p50) if shape.p50 else None for s in SYSTEMS},
            "median_p99": {s: shape.median(s, shape.p99) if shape.p99 else None for s in SYSTEMS},
            "ratio_to_redis": {s: ratio(shape, s) for s in ("ephemeral", "journal")},
            "met": {s: met(shape, s) for s in ("ephemeral", "journal")} if shape.target else None,
            "runs": shape.runs}


CSV_KEYS = ("publish_per_s", "delivered_per_s", "latency_us_p50", "latency_us_p99", "p50_us", "p99_us", "mean_us",
            "dropped", "disconnected", "elapsed_s")


def write_results(out, meta, targets, grid):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, PLOT_NAME + ".json"), "w") as f:
        json.dump({"meta": meta, "targets": [shape_json(s) for s in targets], "grid": [shape_json(s) for s in grid]},
                  f, indent=1)
        f.write("\n")
    with open(os.path.join(out, PLOT_NAME + ".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("section", "shape", "system", "round", "subscribers", "size", "count", "rc") + CSV_KEYS)
        for section, shapes in (("targets", targets), ("grid", grid)):
            for shape in shapes:
                for system in SYSTEMS:
                    for r in shape.runs[system]:
                        w.writerow((section, shape.key, system, r["round"], shape.subscribers, shape.size,
                                    shape.count, r["rc"]) + tuple(r.get(k, "") for k in CSV_KEYS))


def plot(out, meta, grid, rounds):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"ephemeral": ("tab:blue", "o", "-"), "journal": ("tab:green", "s", "-"), "redis": ("tab:red", "^", "--")}
    fig, axes = plt.subplots(1, len(GRID_SIZES), figsize=(14, 5), sharey=True)
    for ax, size in zip(axes, GRID_SIZES):
        shapes = sorted((s for s in grid if s.size == size), key=lambda s: s.subscribers)
        for system in SYSTEMS:
            if not any(s.runs[system] for s in shapes):
                continue
            color, marker, line = styles[system]
            xs = [s.subscribers for s in shapes if s.median(system)]
            ys = [s.median(system) for s in shapes if s.median(system)]
            ax.plot(xs, ys, color=color, marker=marker, linestyle=line, label=LABELS[system])
            for s in shapes:
                dropped, disconnected, failed = s.drops(system)
                if (dropped or disconnected or failed) and s.median(system):
                    total = s.count * s.subscribers * max(1, len(s.runs[system]))
                    note = f"{100 * dropped / total:.2g}% dropped" if dropped else ""
                    if disconnected:
                        note += f"{', ' if note else ''}{disconnected} disc."
                    if failed:
                        note += f"{', ' if note else ''}{failed} failed"
                    right = s.subscribers == GRID_SUBSCRIBERS[-1]  # keep the note inside the panel
                    ax.annotate(note, (s.subscribers, s.median(system)), textcoords="offset points",
                                xytext=(-6 if right else 6, -13), ha="right" if right else "left", fontsize=8,
                                color=color)
                    ax.plot([s.subscribers], [s.median(system)], marker="x", color="black", markersize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(GRID_SUBSCRIBERS)
        ax.set_xticklabels([str(n) for n in GRID_SUBSCRIBERS])
        ax.set_xlim(0.7, 150)
        ax.set_title(f"payload {size} B" if size < 1024 else f"payload {size // 1024} KiB")
        ax.set_xlabel("subscribers")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"delivered events/s, all subscribers (median of {rounds})")
    axes[0].legend(loc="lower left", fontsize=9)
    fig.suptitle(f"tradewired vs Redis {meta['redis_version']} on Unix sockets, 64 publishes in flight, raw C "
                 f"clients — {meta['date']}, {meta['machine']['cpu']}, {meta['machine']['cores']} cores "
                 f"\n×: events dropped or subscribers disconnected (the note: the share of all deliveries of the {rounds} "
                 f"runs)", fontsize=10)
    fig.tight_layout()
    path = os.path.join(out, PLOT_NAME + ".png")
    fig.savefig(path, dpi=110)
    return path


def replot(out):
    """Draws the PNG from the JSON a run wrote in out; its path."""
    with open(os.path.join(out, PLOT_NAME + ".json")) as f:
        saved = json.load(f)
    grid = []
    for entry in saved["grid"]:
        shape = Shape(entry["key"], entry["title"], [], entry["figure"], 0, subscribers=entry["subscribers"],
                      size=entry["size"])
        shape.count = int(entry["client_args"][entry["client_args"].index("--count") + 1])
        shape.runs = {system: entry["runs"].get(system, []) for system in SYSTEMS}
        grid.append(shape)
    return plot(out, saved["meta"], grid, saved["meta"]["grid_rounds"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("release", help="directory holding a (release) tradewired")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--grid-rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every count")
    ap.add_argument("--quick", action="store_true", help="smoke run: counts / 20, one round of each")
    ap.add_argument("--out", help="where the PNG, JSON and CSV go (default docs/perf; with --quick, a temporary "
                                  "directory that is removed)")
    ap.add_argument("--no-plot", action="store_true", help="write the JSON and CSV only")
    ap.add_argument("--targets-only", action="store_true",
                    help="measure and print the targets only: no grid, nothing written (for tuning)")
    ap.add_argument("--replot", action="store_true",
                    help="measure nothing: draw the PNG again from the JSON in --out (default docs/perf)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="which of ephemeral, journal, redis to run (comma-separated; default all)")
    args = ap.parse_args()
    systems = args.systems.split(",")
    if not systems or any(s not in SYSTEMS for s in systems):
        ap.error(f"--systems takes names among {', '.join(SYSTEMS)}")
    if args.replot:
        print(f"wrote {replot(args.out or os.path.join(ROOT, 'docs', 'perf'))}")
        return 0
    if args.quick:
        args.rounds, args.grid_rounds, args.scale = 1, 1, args.scale / 20
    for tool in (TW_BENCH, REDIS_BENCH):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} is missing: make -C clients/c")
    work = tempfile.mkdtemp(prefix="twredis.")
    out = args.out or (os.path.join(work, "out") if args.quick else os.path.join(ROOT, "docs", "perf"))
    servers = {}
    started = time.monotonic()
    try:
        redis = servers["redis"] = Redis(work)  # its version and limits are in every report
        if "ephemeral" in systems:
            servers["ephemeral"] = Tradewired(args.release, work, "ephemeral", False)
        if "journal" in systems:
            servers["journal"] = Tradewired(args.release, work, "journal", True)
        meta = {"date": datetime.date.today().isoformat(), "machine": machine(), "commit": commit(),
                "systems": systems, "redis_version": redis.version,
                "redis_client_output_buffer_limit": redis.pubsub_limit,
                "rounds": args.rounds, "grid_rounds": args.grid_rounds, "scale": args.scale, "quick": args.quick}
        targets, grid = target_shapes(args.scale), grid_shapes(args.scale)
        print(f"\nRedis {meta['redis_version']} and tradewired ({meta['commit']}) on Unix sockets, "
              f"{meta['machine']['cpu']}, {meta['machine']['cores']} cores; clients: tw-bench and redis-bench (C). "
              f"Redis client-output-buffer-limit: {meta['redis_client_output_buffer_limit']}", flush=True)
        measured = {name: server for name, server in servers.items() if name in systems}
        measure(targets, measured, args.rounds, "targets")
        print_targets(targets, args.rounds)
        sys.stdout.flush()
        if args.targets_only:
            return 0
        measure(grid, measured, args.grid_rounds, "grid")
        print_grid(grid, args.grid_rounds)
        meta["seconds"] = round(time.monotonic() - started, 1)
        write_results(out, meta, targets, grid)
        written = [os.path.join(out, PLOT_NAME + ext) for ext in (".json", ".csv")]
        if not args.no_plot:
            written.append(plot(out, meta, grid, args.grid_rounds))
        print(f"\n{'(quick run, removed at exit) ' if args.quick and not args.out else ''}wrote "
              f"{', '.join(os.path.relpath(p, ROOT) if p.startswith(ROOT) else p for p in written)} "
              f"in {meta['seconds']:.0f} s")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
