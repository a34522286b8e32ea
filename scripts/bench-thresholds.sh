#!/usr/bin/env bash
# make bench-thresholds: stores new thresholds for make bench-check after a deliberate change.
# Runs the in-process publish suite (Benchmarks/BusPublish, release build) RUNS times (3 by
# default), each writing its p90s through ordo-one/benchmark's `thresholds update`, then writes
# Benchmarks/Thresholds/BusPublish.NAME.p90.json with, per benchmark, the median p90 wall clock
# of the runs and the largest p90 allocation count (the same in every run unless something is
# wrong). Run it on a machine as quiet as you can get, then commit Benchmarks/Thresholds.
# Usage: scripts/bench-thresholds.sh [RUNS]
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
swift=${SWIFT:-swift}
work=$(mktemp -d /tmp/twthresholds.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root/Benchmarks"
for i in $(seq 1 "$runs"); do
  echo "bench-thresholds: run $i of $runs"
  "$swift" package --allow-writing-to-directory "$work" benchmark thresholds update \
    --metric wallClock --metric mallocCountTotal --path "$work/run-$i" --no-progress
done
python3 - "$work" "$runs" "$root/Benchmarks/Thresholds" <<'PY'
import json, os, statistics, sys
work, runs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = sorted(set.intersection(*(set(os.listdir(f"{work}/run-{i}")) for i in range(1, runs + 1))))
if not names:
    sys.exit("bench-thresholds: the runs wrote no thresholds")
os.makedirs(out, exist_ok=True)
for old in os.listdir(out):
    if old.endswith(".p90.json"):
        os.remove(os.path.join(out, old))
for name in names:
    values = [json.load(open(f"{work}/run-{i}/{name}")) for i in range(1, runs + 1)]
    merged = {"mallocCountTotal": max(v["mallocCountTotal"] for v in values),
              "wallClock": int(statistics.median(v["wallClock"] for v in values))}
    with open(os.path.join(out, name), "w") as f:  # the layout `thresholds update` writes
        f.write("{\n" + ",\n".join(f'  "{k}" : {merged[k]}' for k in sorted(merged)) + "\n}")
    print(f"{name}: wallClock p90s {[v['wallClock'] for v in values]} -> {merged['wallClock']}, "
          f"mallocCountTotal {merged['mallocCountTotal']}")
PY
echo "bench-thresholds: wrote Benchmarks/Thresholds; commit it"
