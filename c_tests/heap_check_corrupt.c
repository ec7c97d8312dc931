/* PyHeap_CheckHeap finds a corrupted free list: a freed pooled block's
 * link (its first word) overwritten to point at a live block, as a write
 * after free would. It fails naming the invariant, and passes again once
 * the link is restored. Writes freed memory on purpose, in the pool
 * allocator's own layout. pyheap only. */
// pyheap-test: pool-only
// pyheap-test: no-tools
#include "compat.h"

#include <string.h>

#include "harness.h"

int main(void) {
    CHECK(PyHeap_CheckHeap(stderr) == 0);
    void **a = PyObject_Malloc(48);
    void **b = PyObject_Malloc(48);
    void **c = PyObject_Malloc(48);
    CHECK(a && b && c);
    PyObject_Free(a); /* a heads its pool's free list */
    CHECK(PyHeap_CheckHeap(stderr) == 0);

    void *saved = a[0];
    a[0] = c; /* the free list now runs into a live block */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK(PyHeap_CheckHeap(f) == -1);
    char msg[512] = {0};
    rewind(f);
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = '\0';
    fclose(f);
    CHECKF(strstr(msg, "pyheap: heap check failed: pool.rs (2) free block") != NULL,
           "message: %s", msg);
    CHECK(PyHeap_CheckHeap(NULL) == -1);
    a[0] = saved;
    CHECK(PyHeap_CheckHeap(stderr) == 0);

    PyObject_Free(b);
    PyObject_Free(c);
    CHECK(PyHeap_CheckHeap(stderr) == 0);
    return harness_summary();
}
