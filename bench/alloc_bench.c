/* Small-block allocator benchmark: the same workloads over a table of
 * allocators, one (workload, sizes, allocator) per process.
 *
 *   alloc_bench WORKLOAD SIZES ALLOCATOR [callgrind]
 *
 * ALLOCATOR  pyheap        PyObject_Malloc/Realloc/Free, linked from libpyheap.a
 *            cpython-3.11  PyObject_Malloc/Realloc/Free of libpython3.11.so
 *                          (pymalloc; works without Py_Initialize)
 *            glibc         malloc/realloc/free
 *            mimalloc      mi_malloc/mi_realloc/mi_free of libmimalloc.so.2
 *            jemalloc      malloc/realloc/free of libjemalloc.so.2
 * The shared libraries are opened with dlopen(RTLD_LOCAL) and their entry
 * points taken with dlsym: libpython exports the same names as pyheap, and
 * libmimalloc and libjemalloc export malloc/free, which would replace glibc's
 * for the whole process if they were linked. libjemalloc's initial-exec TLS
 * needs GLIBC_TUNABLES=glibc.rtld.optional_static_tls=8192 for dlopen to
 * succeed (bench/run.sh sets it). Every allocator is called through the same
 * function pointers, so each pays the same call overhead.
 *
 * WORKLOAD   lifo      allocate 100,000 blocks, free them in reverse order
 *            fifo      allocate 100,000 blocks, free them in allocation order
 *            random    a live set of 100,000 blocks; each step frees a random
 *                      one and allocates a replacement
 *            prodcons  a ring of 32 batches of 1,000 blocks; each step
 *                      frees the oldest batch, in order, and allocates a
 *                      new one in its place
 *            realloc   1,000 blocks, grown together from 8 to 512 bytes in
 *                      8-byte steps, then freed (SIZES is ignored)
 * SIZES      rand      uniform in 8..512 from a fixed-seed generator
 *            N         every block N bytes (16, 64, 256, 512 ...)
 *
 * Each workload runs one untimed warm-up round (the allocator maps its
 * memory), then the measured rounds. Every new or grown block gets one byte
 * written. With "callgrind" the measured part is shorter and bracketed by
 * CALLGRIND_START/STOP_INSTRUMENTATION (run valgrind with
 * --instr-atstart=no); the wrappers bench_malloc/realloc/free mark the
 * allocator's own instructions.
 *
 * Output: one line of key=value pairs; ns_per_call is the measured time
 * (CLOCK_MONOTONIC) over the number of allocator calls (malloc, realloc and
 * free each count one). */
#include "pyheap.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

typedef struct {
    const char *name;
    const char *lib; /* NULL: linked into this program */
    const char *sym_malloc, *sym_realloc, *sym_free;
    void *(*malloc)(size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
} Allocator;

static Allocator allocators[] = {
    {"pyheap", NULL, "PyObject_Malloc", "PyObject_Realloc", "PyObject_Free",
     PyObject_Malloc, PyObject_Realloc, PyObject_Free},
    {"cpython-3.11", "libpython3.11.so.1.0", "PyObject_Malloc", "PyObject_Realloc",
     "PyObject_Free", NULL, NULL, NULL},
    {"glibc", NULL, "malloc", "realloc", "free", malloc, realloc, free},
    {"mimalloc", "libmimalloc.so.2", "mi_malloc", "mi_realloc", "mi_free", NULL, NULL, NULL},
    {"jemalloc", "libjemalloc.so.2", "malloc", "realloc", "free", NULL, NULL, NULL},
};

/* Fills in the entry points of a shared-library allocator. */
static int load(Allocator *a) {
    if (a->lib == NULL) return 0;
    void *h = dlopen(a->lib, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "alloc_bench: %s: %s\n", a->name, dlerror());
        return -1;
    }
    /* dlsym on the handle searches that library before its dependencies,
     * so "malloc" here is jemalloc's, not glibc's. */
    *(void **)&a->malloc = dlsym(h, a->sym_malloc);
    *(void **)&a->realloc = dlsym(h, a->sym_realloc);
    *(void **)&a->free = dlsym(h, a->sym_free);
    if (!a->malloc || !a->realloc || !a->free) {
        fprintf(stderr, "alloc_bench: %s: missing entry point\n", a->name);
        return -1;
    }
    return 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: a fixed seed gives every allocator the same sizes and order. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static size_t fixed_size; /* 0: random sizes */
static size_t next_size(void) { return fixed_size ? fixed_size : 8 + (size_t)(rng() % 505); }

static const Allocator *A;
static uint64_t calls;   /* allocator calls in the measured part */
static uint64_t elapsed; /* its time in ns */
static long faults;      /* its minor page faults */

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void measure_begin(void) {
    faults = minor_faults();
    CALLGRIND_START_INSTRUMENTATION;
    elapsed = now_ns();
}

static void measure_end(void) {
    elapsed = now_ns() - elapsed;
    CALLGRIND_STOP_INSTRUMENTATION;
    faults = minor_faults() - faults;
}

/* Every call goes through one of these three wrappers, never inlined and
 * never a tail call (the empty asm follows the call), so that callgrind can
 * count the allocator's own instructions: a wrapper's inclusive cost minus
 * its self cost (bench/run.sh callgrind). */
__attribute__((noinline)) static void *bench_malloc(size_t n) {
    void *p = A->malloc(n);
    __asm__ volatile("" : "+r"(p));
    return p;
}

__attribute__((noinline)) static void *bench_realloc(void *p, size_t n) {
    p = A->realloc(p, n);
    __asm__ volatile("" : "+r"(p));
    return p;
}

__attribute__((noinline)) static void bench_free(void *p) {
    A->free(p);
    __asm__ volatile("");
}

static void *alloc(size_t n) {
    char *p = bench_malloc(n);
    if (p == NULL) {
        fprintf(stderr, "alloc_bench: %s: out of memory\n", A->name);
        exit(1);
    }
    p[0] = (char)n; /* touch */
    return p;
}

/* ---- workloads: a warm-up round, then `rounds` measured rounds ----------- */

typedef struct {
    const char *name;
    long rounds, rounds_callgrind; /* measured rounds after the warm-up */
    void (*run)(long rounds);
} Workload;

enum { LIVE = 100000, BATCH = 1000, RING = 32, GROW = 1000 };
static void *blocks[LIVE];

/* One round of lifo (free in reverse) or fifo (free in allocation order). */
static void alloc_all_then_free(int lifo) {
    for (long i = 0; i < LIVE; i++) blocks[i] = alloc(next_size());
    if (lifo)
        for (long i = LIVE - 1; i >= 0; i--) bench_free(blocks[i]);
    else
        for (long i = 0; i < LIVE; i++) bench_free(blocks[i]);
}

static void run_order(long rounds, int lifo) {
    alloc_all_then_free(lifo);
    measure_begin();
    for (long r = 0; r < rounds; r++) alloc_all_then_free(lifo);
    measure_end();
    calls = (uint64_t)rounds * 2 * LIVE;
}
static void run_lifo(long rounds) { run_order(rounds, 1); }
static void run_fifo(long rounds) { run_order(rounds, 0); }

/* A round is LIVE replacements; the warm-up fills the live set and does one
 * round, so the measured part starts from a mixed heap. */
static void run_random(long rounds) {
    for (long i = 0; i < LIVE; i++) blocks[i] = alloc(next_size());
    for (long i = 0; i < LIVE; i++) {
        size_t k = (size_t)(rng() % LIVE);
        bench_free(blocks[k]);
        blocks[k] = alloc(next_size());
    }
    measure_begin();
    for (long i = 0; i < rounds * LIVE; i++) {
        size_t k = (size_t)(rng() % LIVE);
        bench_free(blocks[k]);
        blocks[k] = alloc(next_size());
    }
    measure_end();
    for (long i = 0; i < LIVE; i++) bench_free(blocks[i]);
    calls = (uint64_t)rounds * 2 * LIVE;
}

/* Slot s of the ring holds batch s; a step replaces the oldest batch. A
 * round is RING steps; the warm-up fills the ring and does one round. */
static void prodcons_step(long step) {
    void **batch = &blocks[(step % RING) * BATCH];
    for (long i = 0; i < BATCH; i++) bench_free(batch[i]);
    for (long i = 0; i < BATCH; i++) batch[i] = alloc(next_size());
}

static void run_prodcons(long rounds) {
    for (long i = 0; i < RING * BATCH; i++) blocks[i] = alloc(next_size());
    for (long s = 0; s < RING; s++) prodcons_step(s);
    measure_begin();
    for (long s = 0; s < rounds * RING; s++) prodcons_step(s);
    measure_end();
    for (long i = 0; i < RING * BATCH; i++) bench_free(blocks[i]);
    calls = (uint64_t)rounds * RING * 2 * BATCH;
}

/* GROW blocks grow together, as lists or strings being appended to do. */
static void grow_round(void) {
    for (long i = 0; i < GROW; i++) blocks[i] = alloc(8);
    for (size_t n = 16; n <= 512; n += 8) {
        for (long i = 0; i < GROW; i++) {
            char *p = bench_realloc(blocks[i], n);
            if (p == NULL) exit(1);
            p[n - 1] = (char)n; /* touch the new end */
            blocks[i] = p;
        }
    }
    for (long i = 0; i < GROW; i++) bench_free(blocks[i]);
}

static void run_realloc(long rounds) {
    grow_round();
    measure_begin();
    for (long r = 0; r < rounds; r++) grow_round();
    measure_end();
    calls = (uint64_t)rounds * GROW * (1 + ((512 - 16) / 8 + 1) + 1); /* malloc, reallocs, free */
}

/* Timed rounds give about 2 million calls each. */
static const Workload workloads[] = {
    {"lifo", 10, 1, run_lifo},
    {"fifo", 10, 1, run_fifo},
    {"random", 10, 1, run_random},
    {"prodcons", 32, 2, run_prodcons},
    {"realloc", 30, 2, run_realloc},
};

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s lifo|fifo|random|prodcons|realloc rand|SIZE "
                        "pyheap|cpython-3.11|glibc|mimalloc|jemalloc [callgrind]\n", argv[0]);
        return 2;
    }
    const Workload *w = NULL;
    for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++)
        if (strcmp(argv[1], workloads[i].name) == 0) w = &workloads[i];
    Allocator *a = NULL;
    for (size_t i = 0; i < sizeof allocators / sizeof *allocators; i++)
        if (strcmp(argv[3], allocators[i].name) == 0) a = &allocators[i];
    if (w == NULL || a == NULL) {
        fprintf(stderr, "alloc_bench: unknown workload or allocator\n");
        return 2;
    }
    if (strcmp(argv[2], "rand") != 0) {
        fixed_size = (size_t)strtoul(argv[2], NULL, 10);
        if (fixed_size < 1 || fixed_size > 512) {
            fprintf(stderr, "alloc_bench: sizes are rand or 1..512\n");
            return 2;
        }
    }
    if (load(a) != 0) return 3;
    A = a;
    int callgrind = argc > 4 && strcmp(argv[4], "callgrind") == 0;
    w->run(callgrind ? w->rounds_callgrind : w->rounds);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("alloc=%s workload=%s sizes=%s calls=%llu ns=%llu ns_per_call=%.2f minor_faults=%ld "
           "peak_rss_kib=%ld\n",
           a->name, w->name, w->run == run_realloc ? "grow" : argv[2], (unsigned long long)calls,
           (unsigned long long)elapsed, (double)elapsed / (double)calls, faults, ru.ru_maxrss);
    return 0;
}
