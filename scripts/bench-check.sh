#!/usr/bin/env bash
# make bench-check: runs the in-process publish suite (Benchmarks/BusPublish, ordo-one/benchmark,
# release build), prints its table, then compares each benchmark's p90 with its file in
# Benchmarks/Thresholds/, within the tolerances of Benchmarks/README.md.
# Exits 0 when nothing is worse than its threshold: faster, or fewer allocations, than stored
# passes too, with a reminder to store the new figures (make bench-thresholds). Exits 1 when
# something regressed, or a benchmark failed to build or run. When only wall clock regressed
# (allocation counts do not vary), the suite runs once more and that second run decides: on a
# shared machine one run's p90 can be twice another's, a real slowdown shows in both.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
swift=${SWIFT:-swift}
out=$(mktemp /tmp/twbenchcheck.XXXXXX)
trap 'rm -f "$out"' EXIT
cd "$root/Benchmarks" || exit 1

# One run, kept as the baseline `bench-check` (in .benchmarkBaselines/, ignored by git), then
# shown and checked without running again. Sets rc (0: within, 1: worse, 2: better only).
check() {
  if ! "$swift" package --allow-writing-to-package-directory benchmark baseline update bench-check --no-progress; then
    echo "bench-check: FAILED, the suite did not build or run"
    exit 1
  fi
  "$swift" package benchmark baseline read bench-check --no-progress || exit 1
  "$swift" package benchmark thresholds check bench-check --no-progress 2>&1 | tee "$out"
  if [ "${PIPESTATUS[0]}" -eq 0 ]; then
    rc=0
  elif grep -q "is WORSE than the defined thresholds" "$out"; then
    rc=1
  elif grep -q "is BETTER than the defined thresholds" "$out"; then
    rc=2  # the plugin fails alike for better and worse: tell them apart by its words
  else
    echo "bench-check: FAILED, the check did not run"
    exit 1
  fi
}

check
if [ "$rc" -eq 1 ] && ! sed -n '/Deviations worse than threshold/,/Deviations better than threshold/p' "$out" \
  | grep -q "Malloc"; then
  echo "bench-check: only wall clock is worse; measuring again to tell a slowdown from a noisy machine"
  check
fi
case $rc in
  0) echo "bench-check: passed, every benchmark within its thresholds" ;;
  2) echo "bench-check: passed, better than the thresholds (above); 'make bench-thresholds' stores the new figures" ;;
  *) echo "bench-check: FAILED, a regression beyond the thresholds (above)"; exit 1 ;;
esac
