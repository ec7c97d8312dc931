/* Under the debug hooks, a MEM or OBJ call from a thread that does not hold
 * the runtime lock stops the program with a report (CPython's hooks check
 * for the GIL the same way). RAW calls need no lock. */
// pyheap-test: modes debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr pyheap: fatal error in PyObject_Malloc: memory allocator called without holding the runtime lock
#include "compat.h"

int main(void) {
    Py_Initialize();
    void *fine = PyObject_Malloc(16);
    PyObject_Free(fine);
    PyThreadState *ts = PyEval_SaveThread();
    void *raw = PyMem_RawMalloc(16); /* no lock needed */
    PyMem_RawFree(raw);
    printf("RAW without the lock: fine\n");
    fflush(stdout);
    void *p = PyObject_Malloc(16); /* without the lock */
    printf("not reached\n");
    PyEval_RestoreThread(ts);
    PyObject_Free(p);
    return 0;
}
