/* Realloc keeps the contents between every pair of sizes: the smallest and
 * largest request of each of the 32 size classes and large blocks (513,
 * 4096, 1 MiB), growing and shrinking (a shrink keeps the prefix), in the
 * RAW, MEM and OBJ domains. Then a block is grown one byte at a time from 1
 * to 600 bytes and shrunk back, every byte checked at every step. Runs
 * against CPython 3.11 too. */
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

typedef struct {
    const char *name;
    void *(*malloc_)(size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
} family;

#define NSIZES (2 * 32 + 3)
static size_t sizes[NSIZES];

static unsigned char pattern(size_t i, unsigned seed) {
    return (unsigned char)(i * 131u + (i >> 8) * 7u + seed * 29u + 1u);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = pattern(i, seed);
}

/* Index of the first byte that differs from the pattern, or n. */
static size_t first_bad(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(i, seed)) return i;
    return n;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static int reported;

static void fail_pair(const family *f, const char *what, size_t from, size_t to,
                      size_t at) {
    if (reported++ < 20)
        fprintf(stderr, "%s: %s %zu -> %zu: byte %zu differs\n", f->name, what,
                from, to, at);
}

/* Every (from, to) pair: realloc keeps min(from, to) bytes; the new block
 * is writable in full; realloc back keeps the prefix again. */
static void check_pairs(const family *f) {
    int bad = 0, misaligned = 0, null = 0;
    for (int i = 0; i < NSIZES; i++) {
        for (int j = 0; j < NSIZES; j++) {
            size_t from = sizes[i], to = sizes[j];
            unsigned seed = (unsigned)(i * NSIZES + j);
            unsigned char *p = f->malloc_(from);
            if (p == NULL) {
                null++;
                continue;
            }
            fill(p, from, seed);
            unsigned char *q = f->realloc_(p, to);
            if (q == NULL) {
                null++;
                f->free_(p);
                continue;
            }
            if (((uintptr_t)q & 15) != 0) misaligned++;
            size_t keep = min_size(from, to), at = first_bad(q, keep, seed);
            if (at != keep) {
                bad++;
                fail_pair(f, "there", from, to, at);
            }
            fill(q, to, seed + 1);
            unsigned char *r = f->realloc_(q, from);
            if (r == NULL) {
                null++;
                f->free_(q);
                continue;
            }
            at = first_bad(r, keep, seed + 1);
            if (at != keep) {
                bad++;
                fail_pair(f, "back", to, from, at);
            }
            f->free_(r);
        }
    }
    CHECKF(null == 0, "%s: %d NULL results", f->name, null);
    CHECKF(bad == 0, "%s: %d pairs lost contents", f->name, bad);
    CHECKF(misaligned == 0, "%s: %d misaligned results", f->name, misaligned);
}

/* One block grown a byte at a time through every size class into a large
 * block, then shrunk back to one byte: at each step every byte it should
 * still hold is checked. */
static void check_byte_steps(const family *f) {
    enum { TOP = 600 };
    unsigned char *p = f->malloc_(1);
    CHECK(p != NULL);
    if (p == NULL) return;
    p[0] = pattern(0, 7);
    int bad = 0;
    for (size_t n = 2; n <= TOP; n++) {
        unsigned char *q = f->realloc_(p, n);
        if (q == NULL) {
            bad++;
            break;
        }
        p = q;
        if (first_bad(p, n - 1, 7) != n - 1) {
            bad++;
            fail_pair(f, "grow", n - 1, n, first_bad(p, n - 1, 7));
        }
        p[n - 1] = pattern(n - 1, 7);
    }
    for (size_t n = TOP - 1; n >= 1 && bad == 0; n--) {
        unsigned char *q = f->realloc_(p, n);
        if (q == NULL) {
            bad++;
            break;
        }
        p = q;
        if (first_bad(p, n, 7) != n) {
            bad++;
            fail_pair(f, "shrink", n + 1, n, first_bad(p, n, 7));
        }
    }
    CHECKF(bad == 0, "%s: byte-by-byte growth lost contents", f->name);
    f->free_(p);
}

int main(void) {
    for (int c = 0; c < 32; c++) {
        sizes[2 * c] = (size_t)c * 16 + 1;      /* smallest of class c */
        sizes[2 * c + 1] = (size_t)c * 16 + 16; /* largest of class c */
    }
    sizes[64] = 513;
    sizes[65] = 4096;
    sizes[66] = (size_t)1 << 20;

    family fams[] = {
        {"PyMem_Raw", PyMem_RawMalloc, PyMem_RawRealloc, PyMem_RawFree},
        {"PyMem", PyMem_Malloc, PyMem_Realloc, PyMem_Free},
        {"PyObject", PyObject_Malloc, PyObject_Realloc, PyObject_Free},
    };
    Py_ssize_t blocks_before = allocated_blocks();
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        check_pairs(&fams[i]);
        check_byte_steps(&fams[i]);
    }
    /* Every old block was freed by the reallocs that moved it. */
    CHECKF(allocated_blocks() == blocks_before, "%zd blocks before, %zd after",
           blocks_before, allocated_blocks());

    /* CPython keeps a pooled block in place when it shrinks by less than a
     * quarter within its class (100 -> 112 stays, SPEC.md §2.8). */
    for (int d = 0; d < 2; d++) {
        void *(*m)(size_t) = d ? PyObject_Malloc : PyMem_Malloc;
        void *(*r)(void *, size_t) = d ? PyObject_Realloc : PyMem_Realloc;
        void (*fr)(void *) = d ? PyObject_Free : PyMem_Free;
        char *p = m(100);
        char *q = r(p, 112);
        CHECK(q != NULL && (malloc_mode() || q == p));
        char *q2 = r(q, 90);
        CHECK(q2 != NULL && (malloc_mode() || q2 == q));
        fr(q2);
    }
    return harness_summary();
}
