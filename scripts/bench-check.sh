#!/usr/bin/env bash
# make bench-check: runs the in-process publish suite (Benchmarks/BusPublish, ordo-one/benchmark,
# release build) once, prints its table, then compares each benchmark's p90 with its file in
# Benchmarks/Thresholds/, within the tolerances of Benchmarks/README.md.
# Exits 0 when nothing is worse than its threshold: faster, or fewer allocations, than stored
# passes too, with a reminder to store the new figures (make bench-thresholds). Exits 1 when
# something regressed, or a benchmark failed to build or run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
swift=${SWIFT:-swift}
out=$(mktemp /tmp/twbenchcheck.XXXXXX)
trap 'rm -f "$out"' EXIT
cd "$root/Benchmarks" || exit 1
# One run, kept as the baseline `bench-check` (in .benchmarkBaselines/, ignored by git), then
# shown and checked without running again.
if ! "$swift" package --allow-writing-to-package-directory benchmark baseline update bench-check --no-progress; then
  echo "bench-check: FAILED, the suite did not build or run"
  exit 1
fi
"$swift" package benchmark baseline read bench-check --no-progress || exit 1
"$swift" package benchmark thresholds check bench-check --no-progress 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
# The plugin fails alike for "worse" and "better" than the thresholds: tell them apart by its words.
if [ "$rc" -eq 0 ]; then
  echo "bench-check: passed, every benchmark within its thresholds"
  exit 0
fi
if grep -q "is BETTER than the defined thresholds" "$out" && ! grep -q "is WORSE than the defined thresholds" "$out"; then
  echo "bench-check: passed, better than the thresholds (above); 'make bench-thresholds' stores the new figures"
  exit 0
fi
echo "bench-check: FAILED (exit $rc), a regression beyond the thresholds (above)"
exit 1
