/* PyHeap_GetAllocatorName names the allocator mode in effect, as CPython's
 * _PyMem_GetCurrentAllocatorName does: the mode PYHEAP_MALLOC chose
 * ("debug" is "pymalloc_debug"), NULL while a custom table is installed on
 * OBJ or on MEM alone, the mode again once the table is restored and while
 * tracing (which only records), and the debug mode once the debug hooks
 * are installed over pymalloc or malloc, tracing or not. */
// pyheap-test: modes pymalloc pymalloc_debug malloc malloc_debug debug
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pyheap.h"

static PyMemAllocatorEx saved;

static void *wrap_malloc(void *ctx, size_t n) {
    (void)ctx;
    return saved.malloc(saved.ctx, n);
}
static void *wrap_calloc(void *ctx, size_t n, size_t size) {
    (void)ctx;
    return saved.calloc(saved.ctx, n, size);
}
static void *wrap_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    return saved.realloc(saved.ctx, p, n);
}
static void wrap_free(void *ctx, void *p) {
    (void)ctx;
    saved.free(saved.ctx, p);
}

static int is(const char *got, const char *want) {
    return got != NULL && strcmp(got, want) == 0;
}

int main(void) {
    const char *env = getenv("PYHEAP_MALLOC");
    const char *want = env == NULL || strcmp(env, "debug") == 0 ? "pymalloc_debug" : env;
    if (env == NULL)
        want = "pymalloc";
    const char *name = PyHeap_GetAllocatorName();
    CHECKF(is(name, want), "mode %s: got %s", want, name ? name : "NULL");

    /* A wrapper that forwards is still a custom table. */
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &saved);
    PyMemAllocatorEx wrap = {NULL, wrap_malloc, wrap_calloc, wrap_realloc, wrap_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &wrap);
    CHECK(PyHeap_GetAllocatorName() == NULL);
    void *p = PyObject_Malloc(40);
    CHECK(p != NULL);
    PyObject_Free(p);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &saved);
    CHECK(is(PyHeap_GetAllocatorName(), want));

    /* The domains must agree: a custom MEM table alone is custom too. */
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &saved);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &wrap);
    CHECK(PyHeap_GetAllocatorName() == NULL);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &saved);
    CHECK(is(PyHeap_GetAllocatorName(), want));

    /* Tracing is looked through, and so is a tracer the debug hooks wrap
     * (tracing started first; a second call of the hooks changes nothing). */
    CHECK(PyHeap_TraceMalloc_Start(1) == 0);
    CHECK(is(PyHeap_GetAllocatorName(), want));
    PyMem_SetupDebugHooks();
    const char *debug = strncmp(want, "malloc", 6) == 0 ? "malloc_debug" : "pymalloc_debug";
    name = PyHeap_GetAllocatorName();
    CHECKF(is(name, debug), "after the hooks: got %s", name ? name : "NULL");
    /* Stopping tracing puts back the tables it found, as CPython's
     * tracemalloc.stop() does: the hooks installed over the tracer go with
     * it (in the debug modes, the hooks installed at start stay). */
    PyHeap_TraceMalloc_Stop();
    name = PyHeap_GetAllocatorName();
    CHECKF(is(name, want), "after tracing: got %s", name ? name : "NULL");
    return harness_summary();
}
