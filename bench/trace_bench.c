/* Cost of allocation tracing: a random live set of small blocks (each step
 * frees one at random and allocates a replacement, 16..512 bytes), the
 * allocations made DEPTH calls deep so that tracebacks have frames to
 * record.
 *
 *   trace_bench NFRAME [DEPTH]
 *
 * NFRAME 0 runs without tracing; otherwise PyHeap_TraceMalloc_Start(NFRAME).
 * Prints ns per call (malloc and free each count one). bench/trace_run.sh
 * runs it beside CPython 3.11's tracemalloc on the same workload in Python. */
#include "pyheap.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LIVE 10000
#define STEPS 200000

static void *live[LIVE];
static unsigned seed = 12345;

static unsigned next(void) {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
}

__attribute__((noinline)) static void work(int depth, long steps) {
    if (depth > 0) {
        work(depth - 1, steps);
        __asm__ volatile("" ::: "memory"); /* no tail call */
        return;
    }
    for (long i = 0; i < steps; i++) {
        unsigned k = next() % LIVE;
        PyObject_Free(live[k]);
        live[k] = PyObject_Malloc(16 + next() % 497);
        ((char *)live[k])[0] = 1;
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int nframe = argc > 1 ? atoi(argv[1]) : 0;
    int depth = argc > 2 ? atoi(argv[2]) : 20;
    Py_Initialize(); /* so that starting the tracer measures its own frames */
    if (nframe > 0 && PyHeap_TraceMalloc_Start(nframe) != 0) return 1;
    for (int i = 0; i < LIVE; i++) live[i] = PyObject_Malloc(16 + next() % 497);
    work(depth, STEPS / 10); /* warm-up */
    double t0 = now();
    work(depth, STEPS);
    double t = now() - t0;
    printf("nframe=%d depth=%d ns_per_call=%.1f\n", nframe, depth, t * 1e9 / (2.0 * STEPS));
    return 0;
}
