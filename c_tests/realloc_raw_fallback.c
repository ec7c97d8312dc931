/* A pooled block moved by PyObject_Realloc into a RAW block: when no pool
 * has room and no arena can be had, the pool allocator serves a request
 * of at most 512 bytes from the RAW domain, with exactly the bytes asked
 * for. The copy into it must stop at the new size, not at the next
 * 16-byte granule. A RAW hook puts a canary after every block it hands
 * out; an arena allocator that fails makes the pools run out. pymalloc
 * falls back the same way: runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stdint.h>
#include <string.h>

#include "harness.h"

static PyMemAllocatorEx raw_prev;
static int raw_calls;        /* blocks the hook handed out */
static int canary_damaged;   /* canaries found overwritten */
static const unsigned char CANARY = 0xA5;

/* [size_t n][pad][n user bytes][16 canary bytes]: user bytes 16-aligned. */
enum { HEAD = 16, TAIL = 16 };

static void *wrap(unsigned char *base, size_t n) {
    if (base == NULL) return NULL;
    memcpy(base, &n, sizeof n);
    memset(base + HEAD + n, CANARY, TAIL);
    raw_calls++;
    return base + HEAD;
}

static void check_canary(void *p) {
    unsigned char *base = (unsigned char *)p - HEAD;
    size_t n;
    memcpy(&n, base, sizeof n);
    for (size_t i = 0; i < TAIL; i++)
        if (base[HEAD + n + i] != CANARY) {
            canary_damaged++;
            fprintf(stderr, "canary byte %zu after a %zu-byte RAW block overwritten\n", i, n);
            return;
        }
}

static void *h_malloc(void *ctx, size_t n) {
    (void)ctx;
    return wrap(raw_prev.malloc(raw_prev.ctx, HEAD + n + TAIL), n);
}

static void *h_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    size_t n = nelem * elsize; /* pyheap checked the product */
    void *p = h_malloc(NULL, n);
    if (p) memset(p, 0, n);
    return p;
}

static void h_free(void *ctx, void *p) {
    (void)ctx;
    if (p == NULL) return;
    check_canary(p);
    raw_prev.free(raw_prev.ctx, (unsigned char *)p - HEAD);
}

static void *h_realloc(void *ctx, void *p, size_t n) {
    if (p == NULL) return h_malloc(ctx, n);
    size_t old;
    memcpy(&old, (unsigned char *)p - HEAD, sizeof old);
    void *q = h_malloc(ctx, n);
    if (q) {
        memcpy(q, p, old < n ? old : n);
        h_free(ctx, p);
    }
    return q;
}

static void *no_arena(void *ctx, size_t size) {
    (void)ctx;
    (void)size;
    return NULL;
}

static void no_arena_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    (void)p;
    (void)size;
}

enum { MAX_FILL = 1 << 20 };
static void *fill[MAX_FILL];

int main(void) {
    if (malloc_mode()) {
        /* No pools: every block is libc's, not the RAW domain's. */
        printf("skipped: no pools in the malloc allocator mode\n");
        return 0;
    }
    /* The block to move, in a pool: 256 bytes of a known pattern. */
    unsigned char *p = PyObject_Malloc(256);
    CHECK(p != NULL);
    for (int i = 0; i < 256; i++) p[i] = (unsigned char)(i * 7 + 1);

    PyObjectArenaAllocator arena_prev, failing = {NULL, no_arena, no_arena_free};
    PyObject_GetArenaAllocator(&arena_prev);
    PyObject_SetArenaAllocator(&failing);
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_prev);
    PyMemAllocatorEx hook = {NULL, h_malloc, h_calloc, h_realloc, h_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &hook);

    /* Take every block of the 40-byte requests' class until the pools
     * have none left and the next one comes from the RAW domain. */
    int n = 0;
    int before = raw_calls;
    while (n < MAX_FILL && raw_calls == before) {
        fill[n] = PyObject_Malloc(40);
        CHECK(fill[n] != NULL);
        n++;
    }
    CHECKF(raw_calls > before, "the pools never ran out (%d blocks)", n);

    /* Shrinking 256 to 40 bytes moves the block (past a quarter), and the
     * only room left is a RAW block of exactly 40 bytes (more in debug
     * mode, which adds its own bytes and the same rule applies). */
    before = raw_calls;
    unsigned char *q = PyObject_Realloc(p, 40);
    CHECK(q != NULL);
    CHECKF(raw_calls == before + 1, "the moved block did not come from the RAW domain");
    int same = 1;
    for (int i = 0; i < 40; i++) same &= q[i] == (unsigned char)(i * 7 + 1);
    CHECK(same);

    PyObject_Free(q); /* the hook checks the canary (debug mode: its pads) */
    CHECK(canary_damaged == 0);
    for (int i = 0; i < n; i++) PyObject_Free(fill[i]);
    CHECK(canary_damaged == 0);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw_prev);
    PyObject_SetArenaAllocator(&arena_prev);
    return harness_summary();
}
