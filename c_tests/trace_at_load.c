/* Tracing started at load (PYHEAP_CONF=tracemalloc:2, with the debug
 * allocator mode from PYHEAP_MALLOC): the mode is applied first, tracing
 * wraps it, and starting it initialises nothing, so a thread's first
 * PyGILState_Ensure still works; Py_Initialize then measures pyheap's own
 * frames, and tracebacks name the program's functions. */
// pyheap-test: modes debug
// pyheap-test: env PYHEAP_CONF=tracemalloc:2
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>
#include <string.h>

#include "harness.h"

static int worker_ok;

static void *worker(void *arg) {
    (void)arg;
    PyGILState_STATE s = PyGILState_Ensure();
    void *p = PyObject_Malloc(10);
    worker_ok = p != NULL && PyGILState_Check();
    PyObject_Free(p);
    PyGILState_Release(s);
    return NULL;
}

__attribute__((noinline)) static PyObject *make_tuple(void) {
    return PyTuple_New(3);
}

int main(void) {
    CHECK(PyHeap_TraceMalloc_IsTracing() == 1);
    CHECK(PyHeap_TraceMalloc_GetTracebackLimit() == 2);
    CHECK(Py_IsInitialized() == 0); /* tracing initialised nothing */
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    CHECK(worker_ok);

    Py_Initialize();
    PyObject *tup = make_tuple();
    PyHeap_FrameInfo frames[4];
    Py_ssize_t n = PyHeap_TraceMalloc_GetObjectTraceback(tup, frames, 4);
    CHECKF(n == 2, "%zd frames", n);
    if (n == 2) {
        CHECKF(strcmp(frames[0].function, "make_tuple") == 0, "%s", frames[0].function);
        CHECKF(strcmp(frames[1].function, "main") == 0, "%s", frames[1].function);
    }
    Py_DECREF(tup);

    /* Stop with a hook installed over the tracer's, then start again: the
     * tables tracing wrapped come back (as CPython's tracemalloc does), so
     * the new start does not wrap a hook that calls the old one. */
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &cur);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &cur); /* a "hook" over the tracer's */
    PyHeap_TraceMalloc_Stop();
    CHECK(PyHeap_TraceMalloc_Start(1) == 0);
    void *p = PyMem_Malloc(77);
    size_t current = 0;
    PyHeap_TraceMalloc_GetTracedMemory(&current, NULL);
    CHECKF(current == 77, "%zu", current);
    PyMem_Free(p);
    PyHeap_TraceMalloc_Stop();
    CHECK(Py_FinalizeEx() == 0);
    return harness_summary();
}
