/* Tracing while threads allocate: four threads allocate and free through
 * the runtime lock (objects and blocks), four more through RAW without it.
 * The traced total must come back exactly to what it was, and a snapshot
 * taken meanwhile must not crash or deadlock. */
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

#define ROUNDS 300

static atomic_int failures;

static void *locked_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        PyGILState_STATE s = PyGILState_Ensure();
        void *a = PyObject_Malloc(40 + i % 200);
        void *b = PyMem_Malloc(600 + i);          /* large: through RAW, traced once */
        PyObject *t = PyTuple_New(2);
        if (a == NULL || b == NULL || t == NULL) atomic_fetch_add(&failures, 1);
        if (i % 50 == 0) {
            PyHeap_Snapshot *snap = PyHeap_TraceMalloc_TakeSnapshot();
            if (snap == NULL) atomic_fetch_add(&failures, 1);
            PyHeap_Snapshot_Free(snap);
        }
        Py_DECREF(t);
        PyMem_Free(b);
        PyObject_Free(a);
        PyGILState_Release(s);
    }
    return NULL;
}

static void *raw_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS * 4; i++) {
        void *p = PyMem_RawMalloc(16 + i % 100);
        p = PyMem_RawRealloc(p, 200 + i % 300);
        if (p == NULL) atomic_fetch_add(&failures, 1);
        PyMem_RawFree(p);
    }
    return NULL;
}

int main(void) {
    Py_Initialize();
    CHECK(PyHeap_TraceMalloc_Start(4) == 0);
    size_t before = 0, after = 0;
    PyHeap_TraceMalloc_GetTracedMemory(&before, NULL);
    pthread_t t[8];
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, locked_worker, NULL);
    for (int i = 4; i < 8; i++) pthread_create(&t[i], NULL, raw_worker, NULL);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    Py_END_ALLOW_THREADS
    PyHeap_TraceMalloc_GetTracedMemory(&after, NULL);
    CHECKF(after == before, "traced %zu before, %zu after", before, after);
    CHECK(atomic_load(&failures) == 0);
    PyHeap_TraceMalloc_Stop();
    CHECK(Py_FinalizeEx() == 0);
    return harness_summary();
}
