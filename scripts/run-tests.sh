#!/usr/bin/env bash
# Runs every test suite (Swift, Python, C plain and under valgrind, shell), each to its end
# even when an earlier one failed, then prints one line summing them: `N passed, N failed`.
# Exit status: 0 only when every suite passed. Logs stay in $TEST_LOG_DIR (default
# .build/test-logs) for reading after a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
logs=${TEST_LOG_DIR:-$root/.build/test-logs}
mkdir -p "$logs"
daemon="$root/.build/debug/tradewired"
swift_bin=${SWIFT:-swift}

total_passed=0
total_failed=0
broken=()

# run NAME COMMAND...: runs a suite with its output shown and logged; remembers its status.
run() {
    local name=$1
    shift
    echo "==> $name"
    "$@" 2>&1 | tee "$logs/$name.log"
    local status=${PIPESTATUS[0]}
    local passed failed
    read -r passed failed < <(count "$name" "$logs/$name.log")
    # A suite that failed without a failing test counted (a crash, a build error) counts as one.
    if ((status != 0 && failed == 0)); then failed=1; fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    ((status == 0)) || broken+=("$name")
    echo "<== $name: $passed passed, $failed failed"
}

# count NAME LOG: prints "passed failed" for one suite's log.
count() {
    local log=$2
    case $1 in
    swift*)
        # Swift Testing: "Test run with N tests in M suites passed|failed"; failed tests are
        # the "✘ Test NAME … failed after" lines.
        local total failed
        total=$(grep -Eo 'Test run with [0-9]+ tests?' "$log" | tail -n 1 | grep -Eo '[0-9]+' || true)
        failed=$(grep -E '✘ Test .* failed after' "$log" | grep -vc '✘ Test run with' || true)
        echo "$(( ${total:-0} - failed )) $failed"
        ;;
    python*)
        local line
        line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log" | tail -n 1)
        echo "$(grep -Eo '[0-9]+ passed' <<<"$line" | grep -Eo '[0-9]+' || echo 0) \
$(( $(grep -Eo '[0-9]+ failed' <<<"$line" | grep -Eo '[0-9]+' || echo 0) + $(grep -Eo '[0-9]+ errors?' <<<"$line" | grep -Eo '[0-9]+' || echo 0) ))"
        ;;
    *)
        # C and shell suites end with "N passed, N failed" (several lines when run twice).
        awk '/^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3 } END { print p + 0, f + 0 }' "$log"
        ;;
    esac
}

# Swift Testing runs serially: live daemons, process tests and load tests share two cores.
# Every daemon a test starts gets its own journal (TW_TEST_STORAGE=journal, the default);
# then the level-1 suites run again with --ephemeral daemons (the journal's own suites and
# the chaos run are left out of that second pass: they choose their storage themselves).
journal_only='JournalCLITests|JournalReadingTests|SQLiteJournalTests|JournalRecoveryTests|JournalProcessTests'
journal_only+='|RecoveryProcessTests|ConsumerProcessTests|JournaledBusTests|JournalFoldTests|LedgerTests|DataDirectoryTests|StageChaosTests'
journal_only+='|KillSwitchProcessTests|TradewireClusterTests'
run swift env TW_TEST_STORAGE=journal "$swift_bin" test --skip-build --no-parallel
run python env TW_TEST_STORAGE=journal TRADEWIRED="$daemon" clients/python/run-tests.sh
run c env TW_TEST_STORAGE=journal TRADEWIRED="$daemon" make -s -C clients/c test valgrind
run shell env TW_TEST_STORAGE=journal TRADEWIRED="$daemon" bash clients/shell/test.sh
run swift-ephemeral env TW_TEST_STORAGE=ephemeral "$swift_bin" test --skip-build --no-parallel --skip "$journal_only"
run python-ephemeral env TW_TEST_STORAGE=ephemeral TRADEWIRED="$daemon" clients/python/run-tests.sh
run c-ephemeral env TW_TEST_STORAGE=ephemeral TRADEWIRED="$daemon" make -s -C clients/c test
run shell-ephemeral env TW_TEST_STORAGE=ephemeral TRADEWIRED="$daemon" bash clients/shell/test.sh
# The consumer suites once more, every daemon a node of one PostgreSQL (the consumers are
# the cluster's: PROTOCOL §11 across §13).
run python-cluster env TW_TEST_STORAGE=cluster TRADEWIRED="$daemon" clients/python/run-tests.sh -k consumer

echo
if ((${#broken[@]})); then echo "failing suites: ${broken[*]} (logs in $logs)"; fi
echo "$total_passed passed, $total_failed failed"
((${#broken[@]} == 0))
