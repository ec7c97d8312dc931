/* Edge cases of every allocator family: size 0, NULL, overflow, alignment,
 * calloc zeroing, free(NULL). Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stdint.h>
#include <string.h>

#include "harness.h"

typedef struct {
    const char *name;
    void *(*malloc_)(size_t);
    void *(*calloc_)(size_t, size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
} family;

static void check_family(const family *f) {
    /* Size 0: distinct non-NULL pointers. */
    void *a = f->malloc_(0), *b = f->malloc_(0);
    CHECKF(a != NULL && b != NULL && a != b, "%s(0)", f->name);
    f->free_(a);
    f->free_(b);

    /* Above PY_SSIZE_T_MAX: NULL without calling the allocator. */
    CHECKF(f->malloc_((size_t)PY_SSIZE_T_MAX + 1) == NULL, "%s(huge)", f->name);
    CHECKF(f->malloc_(SIZE_MAX) == NULL, "%s(SIZE_MAX)", f->name);
    CHECKF(f->calloc_((size_t)1 << 62, 4) == NULL, "%s calloc overflow", f->name);
    CHECKF(f->calloc_(SIZE_MAX, SIZE_MAX) == NULL, "%s calloc overflow 2", f->name);
    void *z = f->calloc_(0, 0);
    CHECKF(z != NULL, "%s calloc(0,0)", f->name);
    f->free_(z);

    /* free(NULL) does nothing. */
    f->free_(NULL);

    /* realloc(NULL, n) is malloc(n); realloc(p, 0) keeps a non-NULL block. */
    char *r = (char *)f->realloc_(NULL, 40);
    CHECKF(r != NULL, "%s realloc(NULL)", f->name);
    memset(r, 'x', 40);
    char *r0 = (char *)f->realloc_(r, 0);
    CHECKF(r0 != NULL, "%s realloc(p, 0)", f->name);
    char *huge = (char *)f->realloc_(r0, (size_t)PY_SSIZE_T_MAX + 1);
    CHECKF(huge == NULL, "%s realloc(huge)", f->name);
    f->free_(r0); /* still valid after the failed realloc */

    /* Alignment and calloc zeroing for sizes 1..2000. */
    int misaligned = 0, dirty = 0;
    for (size_t n = 1; n <= 2000; n++) {
        void *p = f->malloc_(n);
        unsigned char *c = (unsigned char *)f->calloc_(n, 1);
        if (((uintptr_t)p & 15) != 0 || ((uintptr_t)c & 15) != 0) misaligned++;
        memset(p, 0xAB, n);
        for (size_t i = 0; i < n; i++) dirty |= c[i];
        memset(c, 0xCD, n); /* dirty it so a recycled block must be zeroed */
        f->free_(p);
        f->free_(c);
    }
    CHECKF(misaligned == 0, "%s: %d misaligned blocks", f->name, misaligned);
    CHECKF(dirty == 0, "%s: calloc returned non-zero bytes", f->name);
}

int main(void) {
    family fams[] = {
        {"PyMem_Raw", PyMem_RawMalloc, PyMem_RawCalloc, PyMem_RawRealloc, PyMem_RawFree},
        {"PyMem", PyMem_Malloc, PyMem_Calloc, PyMem_Realloc, PyMem_Free},
        {"PyObject", PyObject_Malloc, PyObject_Calloc, PyObject_Realloc, PyObject_Free},
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) check_family(&fams[i]);

    /* Macros. */
    int *v = PyMem_New(int, 10);
    CHECK(v != NULL);
    for (int i = 0; i < 10; i++) v[i] = i;
    int *saved = v;
    PyMem_Resize(v, int, 1000);
    CHECK(v != NULL);
    for (int i = 0; i < 10; i++) CHECK(v[i] == i);
    int *keep = v;
    PyMem_Resize(v, int, PY_SSIZE_T_MAX); /* overflow: v becomes NULL */
    CHECK(v == NULL);
    (void)saved;
    PyMem_Del(keep);
    CHECK(PyMem_New(double, (size_t)PY_SSIZE_T_MAX / 4) == NULL);
    void (*as_fn)(void *) = PyMem_Del; /* object-like macro: a function */
    as_fn(PyMem_Malloc(8));
    PyObject_Del(PyObject_Malloc(8));

    return harness_summary();
}
