/* When the first use of the runtime is a PyGILState_Ensure on some thread,
 * the runtime is initialised but bound to no thread: that thread takes the
 * lock and lets it go, and the main thread must take it like any other,
 * until it calls Py_Initialize, which binds it. */
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>

#include "harness.h"

static int worker_check = -1;

static void *worker(void *arg) {
    (void)arg;
    PyGILState_STATE s = PyGILState_Ensure();
    worker_check = PyGILState_Check() && s == PyGILState_UNLOCKED;
    PyObject_Free(PyObject_Malloc(8));
    PyGILState_Release(s);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    CHECK(worker_check == 1);
    CHECK(Py_IsInitialized() == 1);
    CHECK(PyGILState_Check() == 0); /* the main thread does not hold it */
    CHECK(PyHeap_ThreadStateCount() == 0);
    PyGILState_STATE s = PyGILState_Ensure();
    CHECK(s == PyGILState_UNLOCKED);
    CHECK(PyGILState_Check() == 1);
    void *p = PyMem_Malloc(10);
    CHECK(p != NULL);
    PyMem_Free(p);
    PyGILState_Release(s);
    CHECK(PyGILState_Check() == 0);
    /* Py_Initialize now binds this thread (it was bound to none). */
    Py_Initialize();
    CHECK(PyGILState_Check() == 1);
    CHECK(PyThreadState_Get() != NULL);
    CHECK(PyHeap_ThreadStateCount() == 1);
    CHECK(Py_FinalizeEx() == 0);
    CHECK(Py_IsInitialized() == 0);
    return harness_summary();
}
