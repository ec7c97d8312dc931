/* A million random malloc/calloc/realloc/free operations over the MEM and
 * OBJ domains around a live set of about 40,000 blocks (sizes 0 to 4096,
 * mostly pooled). Every block holds a pattern derived from its id, checked
 * before each free and after each realloc (the kept prefix); at checkpoints
 * every live block is checked, the live intervals are sorted and must not
 * overlap, and the allocated-block count must match. Fixed-seed xorshift, so
 * a failure repeats. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stdint.h>
#include <string.h>

#include "harness.h"

#ifdef USE_CPYTHON
/* Exported by libpython (sys.getallocatedblocks), declared in an internal
 * header only. */
PyAPI_FUNC(Py_ssize_t) _Py_GetAllocatedBlocks(void);
#define allocated_blocks() _Py_GetAllocatedBlocks()
#else
#define allocated_blocks() PyHeap_GetAllocatedBlocks()
#endif

#define SLOTS 65536
#define OPS 1000000
#define CHECKPOINT 100000

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t id;
    int obj; /* 1: OBJ domain, 0: MEM domain */
} slot;

static slot slots[SLOTS];
static uint64_t next_id = 1;
static long live, errors;

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rng(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Mostly small: 70% 1..128, 23% 129..512, 6% 513..4096, 1% zero. */
static size_t random_size(void) {
    uint64_t r = rng() % 100;
    if (r < 70) return 1 + rng() % 128;
    if (r < 93) return 129 + rng() % 384;
    if (r < 99) return 513 + rng() % 3584;
    return 0;
}

/* Word k of block `id`'s pattern; bytes are the words' bytes in order. */
static uint64_t word(uint64_t id, size_t k) {
    return (id * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)k * 0xBF58476D1CE4E5B9ULL) ^ k;
}

static void fill(unsigned char *p, size_t n, uint64_t id) {
    size_t k = 0;
    for (; 8 * k + 8 <= n; k++) {
        uint64_t w = word(id, k);
        memcpy(p + 8 * k, &w, 8);
    }
    if (8 * k < n) {
        uint64_t w = word(id, k);
        memcpy(p + 8 * k, &w, n - 8 * k);
    }
}

/* 1 if the first n bytes of p hold block `id`'s pattern. */
static int intact(const unsigned char *p, size_t n, uint64_t id) {
    size_t k = 0;
    for (; 8 * k + 8 <= n; k++) {
        uint64_t w = word(id, k);
        if (memcmp(p + 8 * k, &w, 8) != 0) return 0;
    }
    if (8 * k < n) {
        uint64_t w = word(id, k);
        if (memcmp(p + 8 * k, &w, n - 8 * k) != 0) return 0;
    }
    return 1;
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

static void error(const char *what, const slot *s, long op) {
    if (errors++ < 10)
        fprintf(stderr, "op %ld: %s: block %p, %zu bytes, id %llu, %s\n", op,
                what, (void *)s->p, s->size, (unsigned long long)s->id,
                s->obj ? "OBJ" : "MEM");
}

static void do_alloc(slot *s, long op) {
    size_t n = random_size();
    int obj = (int)(rng() & 1), zeroed = rng() % 10 == 0;
    unsigned char *p;
    if (zeroed)
        p = obj ? PyObject_Calloc(n, 1) : PyMem_Calloc(n, 1);
    else
        p = obj ? PyObject_Malloc(n) : PyMem_Malloc(n);
    *s = (slot){p, n, next_id++, obj};
    if (p == NULL) {
        error("allocation failed", s, op);
        return;
    }
    if ((uintptr_t)p & 15) error("misaligned block", s, op);
    if (zeroed && !all_zero(p, n)) error("calloc block not zeroed", s, op);
    fill(p, n, s->id);
    live++;
}

static void do_free(slot *s, long op) {
    if (!intact(s->p, s->size, s->id)) error("contents changed before free", s, op);
    if (s->obj)
        PyObject_Free(s->p);
    else
        PyMem_Free(s->p);
    s->p = NULL;
    live--;
}

static void do_realloc(slot *s, long op) {
    if (!intact(s->p, s->size, s->id)) error("contents changed before realloc", s, op);
    size_t n = random_size(), keep = n < s->size ? n : s->size;
    unsigned char *q = s->obj ? PyObject_Realloc(s->p, n) : PyMem_Realloc(s->p, n);
    if (q == NULL) {
        error("realloc failed", s, op);
        return;
    }
    s->p = q;
    if ((uintptr_t)q & 15) error("misaligned block after realloc", s, op);
    if (!intact(q, keep, s->id)) error("realloc lost the kept prefix", s, op);
    s->size = n;
    s->id = next_id++;
    fill(q, n, s->id);
}

typedef struct {
    uintptr_t start, end;
} interval;

static interval spans[SLOTS];

static int by_start(const void *a, const void *b) {
    uintptr_t x = ((const interval *)a)->start, y = ((const interval *)b)->start;
    return x < y ? -1 : x > y;
}

/* Every live block intact; no two overlap (a size-0 block counts as one
 * byte: its pointer must still be unique); the block count matches. */
static void checkpoint(long op, Py_ssize_t base) {
    size_t n = 0;
    for (size_t i = 0; i < SLOTS; i++) {
        slot *s = &slots[i];
        if (s->p == NULL) continue;
        if (!intact(s->p, s->size, s->id)) error("contents changed", s, op);
        spans[n].start = (uintptr_t)s->p;
        spans[n].end = (uintptr_t)s->p + (s->size ? s->size : 1);
        n++;
    }
    qsort(spans, n, sizeof spans[0], by_start);
    long overlaps = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (spans[i].end > spans[i + 1].start && overlaps++ < 10)
            fprintf(stderr, "op %ld: [%#lx, %#lx) overlaps [%#lx, %#lx)\n", op,
                    (unsigned long)spans[i].start, (unsigned long)spans[i].end,
                    (unsigned long)spans[i + 1].start,
                    (unsigned long)spans[i + 1].end);
    }
    CHECKF(overlaps == 0, "op %ld: %ld overlapping blocks", op, overlaps);
    CHECKF((long)n == live, "op %ld: %zu blocks found, %ld counted", op, n, live);
    Py_ssize_t blocks = allocated_blocks() - base;
    CHECKF(malloc_mode() || blocks == live, "op %ld: %zd blocks allocated, %ld live", op, blocks,
           live);
}

int main(void) {
    Py_ssize_t base = allocated_blocks();
    long counts[3] = {0, 0, 0};
    for (long op = 1; op <= OPS; op++) {
        slot *s = &slots[rng() % SLOTS];
        if (s->p == NULL) {
            do_alloc(s, op);
            counts[0]++;
        } else if (rng() & 1) {
            do_free(s, op);
            counts[1]++;
        } else {
            do_realloc(s, op);
            counts[2]++;
        }
        if (op % CHECKPOINT == 0) checkpoint(op, base);
    }
    printf("%ld allocs, %ld frees, %ld reallocs; %ld blocks live at the end\n",
           counts[0], counts[1], counts[2], live);
    CHECKF(live > 30000 && live < 60000, "live set of %ld blocks", live);

    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].p != NULL) do_free(&slots[i], OPS + 1);
    CHECK(live == 0);
    CHECKF(allocated_blocks() == base, "%zd blocks left", allocated_blocks() - base);
#ifndef USE_CPYTHON
    /* Everything freed: the arenas go back but one. */
    PyHeap_HeapStats st;
    PyHeap_GetHeapStats(&st);
    CHECKF(st.pooled_blocks == 0 && st.arenas_current <= 1,
           "%zu pooled blocks and %zu arenas left", st.pooled_blocks,
           st.arenas_current);
#endif
    CHECKF(errors == 0, "%ld errors", errors);
    return harness_summary();
}
