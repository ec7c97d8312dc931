#!/usr/bin/env bash
# Runs pyheap's fuzz targets (fuzz/, cargo-fuzz over libFuzzer) for a fixed
# time each, and fails if any finds a crash, a panic or a difference from
# the model.
#
#   bash scripts/fuzz.sh                 every target, 60 seconds each
#   bash scripts/fuzz.sh 600             every target, 10 minutes each
#   bash scripts/fuzz.sh 60 ops config   the named targets only
#
# Targets (see docs/robustness.md, "Fuzzing"):
#   ops          the model tests' operation language, checked step by step
#   debug_alloc  legal memory traffic under CPython's debug hooks: any
#                report is a false positive
#   config       the settings parser (PYHEAP_CONF and each setting's value)
#
# Needs the nightly toolchain (libFuzzer's instrumentation) and cargo-fuzz;
# cargo-fuzz is installed if missing. Without nightly the script says so and
# exits 0, so CI may call it where nightly is not there. A finding is kept
# in fuzz/artifacts/TARGET/; replay it with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# The corpus grows in fuzz/corpus/TARGET/ (not committed) and is reused by
# the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ops debug_alloc config)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

cd fuzz
mkdir -p target
status=0
for t in "${targets[@]}"; do
    echo "fuzz.sh: $t for ${seconds}s"
    mkdir -p "corpus/$t"
    # Leak detection is off: pyheap's arenas are mmap'd memory, which
    # LeakSanitizer does not scan, so a malloc'd block that only a pooled
    # object points to (a heap type's name) would read as leaked. Leaks
    # are the model's to find (PyHeap_GetAllocatedBlocks after each case).
    if ! ASAN_OPTIONS=detect_leaks=0 cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=20 -detect_leaks=0 \
        -print_final_stats=1 2>"target/fuzz-$t.log"; then
        status=1
        echo "fuzz.sh: $t FAILED; the end of its log:"
        tail -n 60 "target/fuzz-$t.log"
        continue
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "target/fuzz-$t.log" |
        sed "s/^/fuzz.sh: $t: /"
    grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "target/fuzz-$t.log" | tail -n 1 |
        sed "s/^/fuzz.sh: $t: /"
done
exit $status
