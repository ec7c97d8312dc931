#!/usr/bin/env bash
# The C suite under memory-checking tools, in the `malloc` allocator mode
# (every MEM and OBJ block from libc, so the tools see each one), and the
# pool heap's own announcements to Valgrind.
#
#   bash scripts/check-tools.sh valgrind   every test program under memcheck
#   bash scripts/check-tools.sh asan       built with -fsanitize=address,undefined
#   bash scripts/check-tools.sh pools      --features valgrind: memcheck reports
#                                          a leak and a use after free inside
#                                          the pools, at the right block
#   bash scripts/check-tools.sh threads    the programs that use threads, under
#                                          helgrind (every access, pyheap's
#                                          included) and built with
#                                          -fsanitize=thread (the C side)
#   bash scripts/check-tools.sh            all four
#
# Needs valgrind (apt-get install -y valgrind) and gcc's sanitizer runtimes
# (part of gcc on Debian). Not run by CI: under valgrind the suite takes
# about 15 minutes on 2 cores, under the sanitizers about 1.
set -euo pipefail
cd "$(dirname "$0")/.."

run_valgrind() {
    PYHEAP_TEST_MODE=malloc \
    PYHEAP_TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=no" \
        cargo test --test c_tests -- --test-threads=2
}

run_asan() {
    PYHEAP_TEST_MODE=malloc \
    PYHEAP_TEST_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    ASAN_OPTIONS=detect_leaks=0 \
        cargo test --test c_tests
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

case "${1:-all}" in
valgrind) run_valgrind ;;
asan) run_asan ;;
pools) run_pools ;;
threads) run_threads ;;
all) run_pools; run_asan; run_threads; run_valgrind ;;
*) echo "usage: bash scripts/check-tools.sh [valgrind|asan|pools|threads]" >&2; exit 2 ;;
esac
