/* The debug allocator's visible bytes, as CPython 3.11's: fresh memory
 * reads 0xCD, freed memory 0xDD (past the first words the allocator
 * underneath reuses), guards 0xFD around the data with the domain's API id
 * before them; calloc gives zeros and realloc growth 0xCD. Runs against
 * CPython 3.11 with PYTHONMALLOC=debug too. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: no-tools
// pyheap-test: cpython
// pyheap-test: env PYTHONMALLOC=debug
#include "compat.h" /* first: Python.h must precede system headers */

#include <stdint.h>
#include <string.h>

#include "harness.h"

static int all(const unsigned char *p, size_t n, unsigned char b) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != b) return 0;
    return 1;
}

static void check_domain(const char *name, void *(*m)(size_t), void *(*c)(size_t, size_t),
                         void *(*r)(void *, size_t), void (*f)(void *), char id) {
    unsigned char *p = m(40);
    CHECKF(p != NULL && all(p, 40, 0xCD), "%s fresh", name);
    CHECKF(p != NULL && p[-8] == (unsigned char)id && all(p - 7, 7, 0xFD), "%s header", name);
    CHECKF(p != NULL && all(p + 40, 8, 0xFD), "%s trailer", name);
    CHECKF(((uintptr_t)p & 15) == 0, "%s alignment", name);
    p = r(p, 100);
    CHECKF(p != NULL && all(p, 40, 0xCD) && all(p + 40, 60, 0xCD), "%s realloc growth", name);
    CHECKF(p != NULL && all(p + 100, 8, 0xFD), "%s trailer after realloc", name);
    memset(p, 'x', 100);
    p = r(p, 10);
    CHECKF(p != NULL && all(p, 10, 'x') && all(p + 10, 8, 0xFD), "%s realloc shrink", name);
    f(p);
    /* Freed memory: the data past the first 16 bytes reads 0xDD (reading
     * it is what a use-after-free bug does; the allocators keep it mapped). */
    unsigned char *z = c(10, 4);
    CHECKF(z != NULL && all(z, 40, 0) && all(z + 40, 8, 0xFD), "%s calloc", name);
    f(z);
    unsigned char *big = m(200);
    memset(big, 1, 200);
    f(big);
    CHECKF(all(big + 16, 184, 0xDD), "%s freed bytes", name);
}

int main(void) {
    TEST_INIT();
    check_domain("RAW", PyMem_RawMalloc, PyMem_RawCalloc, PyMem_RawRealloc, PyMem_RawFree, 'r');
    check_domain("MEM", PyMem_Malloc, PyMem_Calloc, PyMem_Realloc, PyMem_Free, 'm');
    check_domain("OBJ", PyObject_Malloc, PyObject_Calloc, PyObject_Realloc, PyObject_Free, 'o');
#ifndef USE_CPYTHON
    /* Installing the hooks again changes nothing. */
    PyMemAllocatorEx before, after;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &before);
    PyMem_SetupDebugHooks();
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    unsigned char *p = PyObject_Malloc(8);
    CHECK(p[-8] == 'o' && all(p + 8, 8, 0xFD));
    PyObject_Free(p);
#endif
    return harness_summary();
}
