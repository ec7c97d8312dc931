/* Allocator hooks: for each domain, a PyMemAllocatorEx that counts calls
 * and forwards to the table it replaced (PyMem_GetAllocator, then
 * PyMem_SetAllocator); blocks made before the hook pass through it; the
 * size guards stop oversized requests before the hook; MEM/OBJ requests
 * the pools do not serve reach the RAW hook; hooks nest; restoring the old
 * table takes the hook out. Then an arena allocator that counts arenas,
 * and one that fails (small requests fall back to the RAW domain). Runs
 * against CPython 3.11 too. */
// pyheap-test: pool-only
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stdint.h>
#include <string.h>

#include "harness.h"

/* ------------------------------------------------------------------ */
/* A counting hook for one domain. */

typedef struct {
    PyMemAllocatorEx prev;
    long mallocs, callocs, reallocs, frees, null_frees;
} hook;

static void *h_malloc(void *ctx, size_t n) {
    hook *h = ctx;
    h->mallocs++;
    return h->prev.malloc(h->prev.ctx, n);
}

static void *h_calloc(void *ctx, size_t nelem, size_t elsize) {
    hook *h = ctx;
    h->callocs++;
    return h->prev.calloc(h->prev.ctx, nelem, elsize);
}

static void *h_realloc(void *ctx, void *p, size_t n) {
    hook *h = ctx;
    h->reallocs++;
    return h->prev.realloc(h->prev.ctx, p, n);
}

static void h_free(void *ctx, void *p) {
    hook *h = ctx;
    h->frees++;
    if (p == NULL) h->null_frees++;
    h->prev.free(h->prev.ctx, p);
}

static void install(hook *h, PyMemAllocatorDomain d) {
    memset(h, 0, sizeof *h);
    PyMem_GetAllocator(d, &h->prev);
    PyMemAllocatorEx a = {h, h_malloc, h_calloc, h_realloc, h_free};
    PyMem_SetAllocator(d, &a);
}

static void uninstall(hook *h, PyMemAllocatorDomain d) {
    PyMem_SetAllocator(d, &h->prev);
}

static int same_table(const PyMemAllocatorEx *a, const PyMemAllocatorEx *b) {
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

typedef struct {
    const char *name;
    PyMemAllocatorDomain domain;
    void *(*malloc_)(size_t);
    void *(*calloc_)(size_t, size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
} family;

static const family fams[] = {
    {"RAW", PYMEM_DOMAIN_RAW, PyMem_RawMalloc, PyMem_RawCalloc, PyMem_RawRealloc,
     PyMem_RawFree},
    {"MEM", PYMEM_DOMAIN_MEM, PyMem_Malloc, PyMem_Calloc, PyMem_Realloc, PyMem_Free},
    {"OBJ", PYMEM_DOMAIN_OBJ, PyObject_Malloc, PyObject_Calloc, PyObject_Realloc,
     PyObject_Free},
};

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

/* The counts of `h` are exactly (m, c, r, f). */
#define COUNTS(h, m, c, r, f)                                                  \
    CHECKF((h).mallocs == (m) && (h).callocs == (c) && (h).reallocs == (r) &&  \
               (h).frees == (f),                                               \
           "%s: counts malloc %ld calloc %ld realloc %ld free %ld, want %d %d " \
           "%d %d",                                                            \
           f_->name, (h).mallocs, (h).callocs, (h).reallocs, (h).frees, m, c,  \
           r, f)

static void check_domain(const family *f_) {
    /* Made before the hook, freed through it. */
    unsigned char *before = f_->malloc_(48);
    memset(before, 0x5A, 48);

    hook h;
    install(&h, f_->domain);
    PyMemAllocatorEx now;
    PyMem_GetAllocator(f_->domain, &now);
    CHECKF(now.ctx == &h && now.malloc == h_malloc && now.calloc == h_calloc &&
               now.realloc == h_realloc && now.free == h_free,
           "%s: PyMem_GetAllocator does not give the hook back", f_->name);

    unsigned char *p = f_->malloc_(40);
    CHECK(p != NULL);
    memset(p, 0x11, 40);
    unsigned char *c = f_->calloc_(4, 10);
    CHECK(c != NULL && all_bytes(c, 40, 0));
    p = f_->realloc_(p, 80);
    CHECK(p != NULL && all_bytes(p, 40, 0x11));
    COUNTS(h, 1, 1, 1, 0);
    f_->free_(p);
    f_->free_(c);
    COUNTS(h, 1, 1, 1, 2);
    /* free(NULL) reaches the hook (CPython calls the table for it). */
    f_->free_(NULL);
    COUNTS(h, 1, 1, 1, 3);
    CHECK(h.null_frees == 1);

    /* Size guards run before the table: the hook never sees these. */
    CHECK(f_->malloc_((size_t)PY_SSIZE_T_MAX + 1) == NULL);
    CHECK(f_->calloc_((size_t)1 << 62, 4) == NULL);
    CHECK(f_->realloc_(before, (size_t)PY_SSIZE_T_MAX + 1) == NULL);
    COUNTS(h, 1, 1, 1, 3);

    /* The block made before the hook: resized and freed through it. */
    CHECK(all_bytes(before, 48, 0x5A));
    before = f_->realloc_(before, 600);
    CHECK(before != NULL && all_bytes(before, 48, 0x5A));
    f_->free_(before);
    COUNTS(h, 1, 1, 2, 4);

    /* Made through the hook, freed after it is gone. */
    unsigned char *during = f_->malloc_(64);
    memset(during, 0x77, 64);
    uninstall(&h, f_->domain);
    PyMem_GetAllocator(f_->domain, &now);
    CHECKF(same_table(&now, &h.prev), "%s: old table not restored", f_->name);
    CHECK(all_bytes(during, 64, 0x77));
    f_->free_(during);
    f_->free_(f_->malloc_(10));
    COUNTS(h, 2, 1, 2, 4);
}

/* Hooks on MEM and OBJ see only their own domain. */
static void check_isolation(void) {
    void *warm = PyMem_Malloc(32); /* a pool of this class exists */
    hook mem, obj;
    install(&mem, PYMEM_DOMAIN_MEM);
    install(&obj, PYMEM_DOMAIN_OBJ);
    PyObject_Free(PyObject_Malloc(32));
    PyObject_Free(PyObject_Malloc(32));
    PyMem_Free(PyMem_Malloc(32));
    CHECK(mem.mallocs == 1 && mem.frees == 1);
    CHECK(obj.mallocs == 2 && obj.frees == 2);
    uninstall(&obj, PYMEM_DOMAIN_OBJ);
    uninstall(&mem, PYMEM_DOMAIN_MEM);
    PyMem_Free(warm);
}

/* MEM/OBJ requests of size 0 or above 512 bytes go to the RAW domain,
 * through whatever table it has (SPEC.md §2.2, §2.8). */
static void check_raw_fallback(void) {
    const family *f_ = &fams[0];
    void *keep = PyObject_Malloc(100); /* a pool of this class exists */
    hook raw;
    install(&raw, PYMEM_DOMAIN_RAW);

    void *small = PyObject_Malloc(100);
    PyObject_Free(small);
    COUNTS(raw, 0, 0, 0, 0);

    unsigned char *big = PyObject_Malloc(1000);
    COUNTS(raw, 1, 0, 0, 0);
    memset(big, 0x42, 1000);
    big = PyObject_Realloc(big, 2000);
    CHECK(big != NULL && all_bytes(big, 1000, 0x42));
    COUNTS(raw, 1, 0, 1, 0);
    PyObject_Free(big);
    COUNTS(raw, 1, 0, 1, 1);

    PyMem_Free(PyMem_Malloc(0));
    COUNTS(raw, 2, 0, 1, 2);
    void *cl = PyMem_Calloc(100, 10);
    CHECK(cl != NULL && all_bytes(cl, 1000, 0));
    PyMem_Free(cl);
    COUNTS(raw, 2, 1, 1, 3);

    /* Pooled -> large moves to a RAW malloc; large -> small stays RAW. */
    unsigned char *m = PyObject_Malloc(100);
    memset(m, 0x24, 100);
    m = PyObject_Realloc(m, 1000);
    COUNTS(raw, 3, 1, 1, 3);
    m = PyObject_Realloc(m, 50);
    CHECK(m != NULL && all_bytes(m, 50, 0x24));
    COUNTS(raw, 3, 1, 2, 3);
    PyObject_Free(m);
    COUNTS(raw, 3, 1, 2, 4);

    uninstall(&raw, PYMEM_DOMAIN_RAW);
    PyObject_Free(keep);
}

/* A hook wrapping a hook: both see each call; unwinding restores both. */
static void check_nesting(void) {
    const family *f_ = &fams[2];
    hook a, b;
    install(&a, PYMEM_DOMAIN_OBJ);
    install(&b, PYMEM_DOMAIN_OBJ);
    void *p = PyObject_Malloc(24);
    COUNTS(a, 1, 0, 0, 0);
    COUNTS(b, 1, 0, 0, 0);
    uninstall(&b, PYMEM_DOMAIN_OBJ);
    PyObject_Free(p);
    COUNTS(a, 1, 0, 0, 1);
    COUNTS(b, 1, 0, 0, 0);
    uninstall(&a, PYMEM_DOMAIN_OBJ);
    PyObject_Free(PyObject_Malloc(24));
    COUNTS(a, 1, 0, 0, 1);
}

/* Unknown domains: Get gives all NULL, Set is ignored. */
static void check_unknown_domain(void) {
    PyMemAllocatorEx t;
    memset(&t, 0xFF, sizeof t);
    PyMem_GetAllocator((PyMemAllocatorDomain)7, &t);
    CHECK(t.ctx == NULL && t.malloc == NULL && t.calloc == NULL &&
          t.realloc == NULL && t.free == NULL);
    PyMemAllocatorEx old[3], junk = {NULL, NULL, NULL, NULL, NULL}, after;
    for (int d = 0; d < 3; d++) PyMem_GetAllocator((PyMemAllocatorDomain)d, &old[d]);
    PyMem_SetAllocator((PyMemAllocatorDomain)3, &junk);
    for (int d = 0; d < 3; d++) {
        PyMem_GetAllocator((PyMemAllocatorDomain)d, &after);
        CHECKF(same_table(&after, &old[d]), "domain %d changed", d);
    }
}

/* ------------------------------------------------------------------ */
/* Arena allocators. */

#define ARENA_BYTES ((size_t)1 << 20)

typedef struct {
    PyObjectArenaAllocator prev;
    int fail;
    long allocs, frees, failed, wrong_size;
} arena_hook;

static void *a_alloc(void *ctx, size_t n) {
    arena_hook *h = ctx;
    if (n != ARENA_BYTES) h->wrong_size++;
    if (h->fail) {
        h->failed++;
        return NULL;
    }
    h->allocs++;
    return h->prev.alloc(h->prev.ctx, n);
}

static void a_free(void *ctx, void *p, size_t n) {
    arena_hook *h = ctx;
    if (n != ARENA_BYTES) h->wrong_size++;
    h->frees++;
    h->prev.free(h->prev.ctx, p, n);
}

static void arena_install(arena_hook *h, int fail) {
    memset(h, 0, sizeof *h);
    h->fail = fail;
    PyObject_GetArenaAllocator(&h->prev);
    PyObjectArenaAllocator a = {h, a_alloc, a_free};
    PyObject_SetArenaAllocator(&a);
}

/* Four arenas' worth of 512-byte blocks (31 a pool, at most 64 pools). */
#define NBIG (4 * 31 * 64)
static void *blocks[NBIG];

static void alloc_all(void) {
    for (int i = 0; i < NBIG; i++) {
        blocks[i] = PyObject_Malloc(512);
        if (blocks[i] != NULL) memset(blocks[i], i & 0xFF, 512);
    }
}

static int free_all(void) {
    int bad = 0;
    for (int i = 0; i < NBIG; i++) {
        unsigned char *b = blocks[i];
        if (b == NULL || b[0] != (i & 0xFF) || b[511] != (i & 0xFF)) bad++;
        PyObject_Free(b);
    }
    return bad;
}

/* Static: arenas outlive the functions that install their allocators. */
static arena_hook counting, switched, failing;

static void check_arena_hook(void) {
    arena_install(&counting, 0);
    PyObjectArenaAllocator now;
    PyObject_GetArenaAllocator(&now);
    CHECK(now.ctx == &counting && now.alloc == a_alloc && now.free == a_free);

#ifndef USE_CPYTHON
    PyHeap_HeapStats s0, s1;
    PyHeap_GetHeapStats(&s0);
#endif
    alloc_all();
    CHECKF(counting.allocs >= 3, "%ld arenas allocated", counting.allocs);
#ifndef USE_CPYTHON
    PyHeap_GetHeapStats(&s1);
    CHECK(s1.arenas_allocated_total - s0.arenas_allocated_total ==
          (size_t)counting.allocs);
#endif
    CHECK(free_all() == 0);
    /* Wholly free arenas go back; at most one is kept. */
    CHECKF(counting.frees >= counting.allocs - 1 &&
               counting.frees <= counting.allocs,
           "%ld allocs, %ld frees", counting.allocs, counting.frees);
    printf("%s: counting arena allocator: %ld arenas made, %ld freed\n",
           IMPL_NAME, counting.allocs, counting.frees);
    CHECK(counting.wrong_size == 0);
    PyObject_SetArenaAllocator(&counting.prev);
    PyObject_GetArenaAllocator(&now);
    CHECK(now.ctx == counting.prev.ctx && now.alloc == counting.prev.alloc &&
          now.free == counting.prev.free);

    /* pyheap frees each arena through the allocator that made it, even
     * after another is installed (CPython would use the new one). */
    arena_install(&switched, 0);
    alloc_all();
    PyObject_SetArenaAllocator(&switched.prev);
    CHECK(free_all() == 0);
    CHECK(switched.allocs >= 3);
    PYHEAP_ONLY(CHECKF(switched.frees >= switched.allocs - 1 &&
                           switched.frees <= switched.allocs,
                       "%ld allocs, %ld frees after the switch",
                       switched.allocs, switched.frees));
}

/* An arena allocator that fails: small requests still succeed, served by
 * the RAW domain, and nothing is lost. */
static void check_failing_arenas(void) {
    arena_install(&failing, 1);
    int n = 0, null = 0;
    while (n < NBIG && failing.failed == 0) {
        blocks[n] = PyObject_Malloc(512);
        if (blocks[n] == NULL) null++;
        n++;
    }
    CHECKF(failing.failed > 0, "no arena requested in %d allocations", n);
    void *more = PyObject_Malloc(512), *tiny = PyObject_Malloc(16);
    CHECK(null == 0 && more != NULL && tiny != NULL);
    if (more) memset(more, 1, 512);
#ifndef USE_CPYTHON
    PyHeap_HeapStats s;
    PyHeap_GetHeapStats(&s);
    CHECK(s.raw_blocks >= 1);
#endif
    PyObject_Free(more);
    PyObject_Free(tiny);
    for (int i = 0; i < n; i++) PyObject_Free(blocks[i]);
    CHECK(failing.allocs == 0 && failing.frees == 0);
    PyObject_SetArenaAllocator(&failing.prev);
    void *ok = PyObject_Malloc(512);
    CHECK(ok != NULL);
    PyObject_Free(ok);
}

int main(void) {
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) check_domain(&fams[i]);
    check_isolation();
    check_raw_fallback();
    check_nesting();
    check_unknown_domain();
    check_arena_hook();
    check_failing_arenas();
    return harness_summary();
}
