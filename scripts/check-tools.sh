#!/usr/bin/env bash
# The C suite under memory-checking tools. Every pass fails on any report.
#
#   bash scripts/check-tools.sh valgrind [filter...]
#        every test program under memcheck, twice: in the `malloc`
#        allocator mode (every MEM and OBJ block from libc, so memcheck
#        sees each one), then in the default and debug modes built with
#        --features valgrind (the pool heap announces its blocks, so
#        memcheck sees pooled blocks as it sees malloc's)
#   bash scripts/check-tools.sh ci
#        what CI runs: the same two memcheck passes over a fixed subset of
#        the tests (CI_TESTS below), shortened: 4 to 5 1/2 minutes
#        instead of the full pass's 21
#   bash scripts/check-tools.sh asan [filter...]
#        built with -fsanitize=address,undefined, `malloc` mode
#   bash scripts/check-tools.sh pools
#        --features valgrind: memcheck reports a leak and a use after free
#        inside the pools, at the right block (a check of the annotations)
#   bash scripts/check-tools.sh threads
#        the programs that use threads, under helgrind (every access,
#        pyheap's included) and built with -fsanitize=thread (the C side)
#   bash scripts/check-tools.sh
#        pools, asan, threads and valgrind
#
# A filter (cargo test's) limits a pass to the tests whose names contain
# it. Programs that misuse memory on purpose (`abort` and `no-tools` tests)
# and the builds against CPython are left out of tool runs (tests/c_tests.rs).
# Leaks are not memcheck's or LeakSanitizer's to find here: the tests keep
# objects alive to exit on purpose; pyheap's own accounting
# (PyHeap_GetAllocatedBlocks, the leak tests, oom_every_n) checks leaks.
#
# The passes build into the usual target directory (the `valgrind` feature
# rebuilds the library there); set CARGO_TARGET_DIR to keep them apart
# from a `cargo test` running at the same time.
#
# Needs valgrind (apt-get install -y valgrind) and gcc's sanitizer runtimes
# (part of gcc on Debian). On the 2-core machine, shared with other work
# (docs/robustness.md): the valgrind pass about 21 minutes, `ci` 4 to 5 1/2,
# the sanitizers 3 to 5.
set -euo pipefail
cd "$(dirname "$0")/.."

# Memcheck, or a wrapper around it (PYHEAP_VALGRIND) such as one that times
# each program; one test program per core.
VALGRIND=${PYHEAP_VALGRIND:-valgrind}
JOBS=${PYHEAP_TOOL_JOBS:-$(nproc)}
# --fair-sched=yes: valgrind runs one thread at a time, and with its default
# lock a thread waiting for the runtime lock can keep the CPU while the
# holder waits to run; threads_stress_debug took 23 s to 385 s from run to
# run that way, and takes 6 to 7 s with fair scheduling.
MEMCHECK="$VALGRIND -q --fair-sched=yes --error-exitcode=99 --leak-check=no"

# Tests left out of the memcheck passes, and why:
VALGRIND_SKIP=(
    # A timing test (the lock changes hands within a switch interval):
    # memcheck runs one thread at a time, on its own schedule, and the
    # waiter can miss its turn (it did in the debug mode, once in the
    # full pass and once in three runs after). Its thread states are those of lifecycle and threads_stress,
    # which memcheck runs; helgrind runs it (`threads`).
    gil_fairness
)

# The tests CI runs under memcheck (`ci`), in both passes: every area of
# the library (blocks, the debug allocator, objects, types, the collector,
# weak references, tracing, out of memory), none of the slowest.
CI_TESTS=(
    alloc_edges realloc_classes strdup allocator_hooks arena_release
    pool_purge
    refcount var_objects heap_types tuple_call type_ready immortal
    gc_counts gc_cycles gc_errors gc_reentrant gc_visit_frees finalizer
    resurrect_tracking live_objects
    weakref_basic weakref_callbacks weakref_c_callback weakref_heap_types
    trace_basic trace_snapshot leak_scope heap_check oom_every_n
    lifecycle threads_stress
)

# The test function for c_tests/<name>.c in a given mode suffix (build.rs).
ident() { printf 'c_%s%s' "${1//[^A-Za-z0-9]/_}" "${2:-}"; }

directive() { grep -Eq "^// pyheap-test: ($2)" "c_tests/$1.c"; }

skipped() {
    local t
    for t in "${VALGRIND_SKIP[@]}"; do [ "$1" = "$t" ] && return 0; done
    return 1
}

# Whether a forced allocator mode changes c_tests/<name>.c: its plain test
# runs in the default mode (it names no modes of its own, is not pool-only)
# and it is no misuse test nor skipped.
forced_mode_applies() {
    ! directive "$1" 'modes|pool-only|abort|no-tools' && ! skipped "$1"
}

# The plain tests a forced mode changes, those matching a filter if any.
forced_mode_tests() {
    local f name t keep
    for f in c_tests/*.c; do
        name=$(basename "$f" .c)
        forced_mode_applies "$name" || continue
        keep=$(( $# == 0 ))
        for t in "$@"; do [[ "$(ident "$name")" == *"$t"* ]] && keep=1; done
        [ "$keep" = 1 ] && printf '%s ' "$(ident "$name")"
    done
}

# Every test of c_tests/<name>.c in the default run: one per mode.
default_run_tests() {
    local modes m
    modes=$(sed -n 's|^// pyheap-test: modes ||p' "c_tests/$1.c")
    if [ -z "$modes" ]; then
        if directive "$1" pool-only; then modes=pymalloc; else modes="pymalloc debug"; fi
    fi
    for m in $modes; do
        if [ "$m" = pymalloc ]; then ident "$1"; else ident "$1" "_$m"; fi
        printf ' '
    done
}

# Memcheck over `malloc` mode: these tests (exact names) with
# PYHEAP_MALLOC=malloc.
memcheck_malloc() {
    [ $# -gt 0 ] || return 0
    local t0=$SECONDS
    PYHEAP_TEST_MODE=malloc \
    PYHEAP_TEST_WRAPPER="$MEMCHECK" \
        cargo test --test c_tests -- --test-threads="$JOBS" --exact "$@"
    echo "check-tools: memcheck, malloc mode: $((SECONDS - t0)) s" >&2
}

# Memcheck over the pools announced to it (the `valgrind` feature), each
# test in its own modes (the default and debug ones, or those it names);
# the arguments are cargo test's.
memcheck_pools() {
    local t0=$SECONDS
    PYHEAP_TEST_WRAPPER="$MEMCHECK" \
        cargo test --features valgrind --test c_tests -- --test-threads="$JOBS" "$@"
    echo "check-tools: memcheck, pools announced: $((SECONDS - t0)) s" >&2
}

run_valgrind() {
    # The plain tests in the `malloc` mode, then every test in its own
    # modes. Not the `_debug` twins nor the tests with modes of their own
    # in the `malloc` mode: they would run as in the second pass, where
    # memcheck sees more.
    # shellcheck disable=SC2046
    memcheck_malloc $(forced_mode_tests "$@")
    local skip=() t
    for t in "${VALGRIND_SKIP[@]}"; do skip+=(--skip "$t"); done
    memcheck_pools "${skip[@]}" "$@"
}

run_ci() {
    local malloc=() pools=() t
    for t in "${CI_TESTS[@]}"; do
        [ -f "c_tests/$t.c" ] || { echo "check-tools: no c_tests/$t.c" >&2; exit 2; }
        if forced_mode_applies "$t"; then malloc+=("$(ident "$t")"); fi
        # shellcheck disable=SC2207
        pools+=($(default_run_tests "$t"))
    done
    # Shorter: oom_every_n fails every 4th allocation instead of each,
    # threads_stress runs 200 iterations per thread.
    export PYHEAP_OOM_STRIDE=${PYHEAP_OOM_STRIDE:-4}
    export PYHEAP_STRESS_ITERATIONS=${PYHEAP_STRESS_ITERATIONS:-200}
    memcheck_malloc "${malloc[@]}"
    memcheck_pools --exact "${pools[@]}"
}

run_asan() {
    PYHEAP_TEST_MODE=malloc \
    PYHEAP_TEST_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    ASAN_OPTIONS=detect_leaks=0 \
        cargo test --test c_tests -- "$@"
}
run_pools() {
    cargo build --release --features valgrind --quiet
    local out=target/check-tools
    mkdir -p "$out"
    cat > "$out/pools.c" <<'C'
#include "pyheap.h"
int main(void) {
    for (int i = 0; i < 10; i++) PyObject_Malloc(24); /* leaked */
    char *p = PyObject_Malloc(64);
    PyObject_Free(p);
    volatile char c = p[20];                          /* use after free */
    (void)c;
    return 0;
}
C
    cc -g -Iinclude "$out/pools.c" target/release/libpyheap.a -lpthread -ldl -lm -o "$out/pools"
    local log="$out/pools.log"
    valgrind --leak-check=full "$out/pools" > "$log" 2>&1 || true
    grep -q "Invalid read of size 1" "$log"
    grep -q "20 bytes inside a block of size 64 free'd" "$log"
    grep -q "definitely lost: 320 bytes in 10 blocks" "$log"
    echo "pools: memcheck saw the use after free and the 10 leaked pooled blocks"
}

# The C tests that start threads (or fork with threads about); deep_chain
# also starts one, but its million objects take helgrind minutes.
THREAD_TESTS=(threads_stress gil_fairness lifecycle lazy_init fork_child trace_threads)

run_threads() {
    # In the default pool mode: the lock guards the pool heap, which is
    # what the race detectors should look at. Fewer stress iterations:
    # helgrind runs the threads one at a time.
    PYHEAP_STRESS_ITERATIONS=100 \
    PYHEAP_TEST_WRAPPER="valgrind -q --tool=helgrind --error-exitcode=99 --suppressions=scripts/helgrind.supp" \
        cargo test --test c_tests -- --test-threads=2 "${THREAD_TESTS[@]}"
    # ThreadSanitizer sees the C side (pyheap's Rust is not instrumented,
    # but its pthread calls are intercepted, so the lock's ordering counts).
    # It cannot start threads in the child of a multi-threaded fork, which
    # fork_child does: that one is left to helgrind.
    PYHEAP_TEST_CFLAGS="-fsanitize=thread" \
    TSAN_OPTIONS="halt_on_error=1" \
        cargo test --test c_tests -- "${THREAD_TESTS[@]}" --skip fork_child
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case "$cmd" in
valgrind) run_valgrind "$@" ;;
ci) run_ci ;;
asan) run_asan "$@" ;;
pools) run_pools ;;
threads) run_threads ;;
all) run_pools; run_asan; run_threads; run_valgrind ;;
*) echo "usage: bash scripts/check-tools.sh [valgrind|ci|asan|pools|threads] [filter...]" >&2; exit 2 ;;
esac
