/* A program that never calls Py_Initialize: its first MEM or OBJ
 * allocation initialises the runtime, and the thread that made it holds
 * the runtime lock from then on (as after Py_Initialize), so a second
 * thread gets the lock once this one lets it go. Linked against the shared
 * library (thread-local state through the dynamic TLS model). */
// pyheap-test: shared
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>

#include "harness.h"

static int worker_state = -1, worker_check = -1;

static void *worker(void *arg) {
    (void)arg;
    PyGILState_STATE s = PyGILState_Ensure();
    worker_state = (int)s;
    worker_check = PyGILState_Check();
    void *p = PyMem_Malloc(100);
    PyMem_Free(p);
    PyGILState_Release(s);
    return NULL;
}

int main(void) {
    CHECK(Py_IsInitialized() == 0);
    CHECK(PyGILState_Check() == 1); /* no rules yet */
    CHECK(PyGILState_GetThisThreadState() == NULL);
    void *raw = PyMem_RawMalloc(10); /* RAW initialises nothing */
    CHECK(Py_IsInitialized() == 0);
    PyMem_RawFree(raw);

    void *p = PyMem_Malloc(10);
    CHECK(Py_IsInitialized() == 1);
    CHECK(PyGILState_Check() == 1);
    CHECK(PyThreadState_Get() != NULL);
    CHECK(PyHeap_ThreadStateCount() == 1);

    pthread_t t;
    Py_BEGIN_ALLOW_THREADS
    CHECK(PyGILState_Check() == 0);
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    CHECK(worker_state == PyGILState_UNLOCKED);
    CHECK(worker_check == 1);
    CHECK(PyHeap_ThreadStateCount() == 1);
    PyMem_Free(p);
    return harness_summary();
}
