/* A single-threaded program whose first call is PyGILState_Ensure: on the
 * main thread that initialises the runtime as Py_Initialize does, so the
 * program keeps the lock and may allocate after the Release, under the
 * debug hooks' lock check too. */
#include "compat.h"

#include "harness.h"

int main(void) {
    CHECK(Py_IsInitialized() == 0);
    PyGILState_STATE s = PyGILState_Ensure();
    CHECK(Py_IsInitialized() == 1);
    CHECK(s == PyGILState_LOCKED); /* bound by the initialisation */
    PyGILState_Release(s);
    CHECK(PyGILState_Check() == 1);
    void *p = PyObject_Malloc(10); /* the debug hooks check the lock */
    CHECK(p != NULL);
    PyObject_Free(p);
    CHECK(PyHeap_ThreadStateCount() == 1);
    CHECK(Py_FinalizeEx() == 0);
    /* After finalisation an Ensure/Release pair changes nothing. */
    s = PyGILState_Ensure();
    PyGILState_Release(s);
    CHECK(Py_IsInitialized() == 0);
    CHECK(PyHeap_ThreadStateCount() == 0);
    return harness_summary();
}
