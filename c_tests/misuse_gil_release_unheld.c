/* PyGILState_Release on a thread whose state exists but that let the lock
 * go (PyEval_SaveThread without its PyEval_RestoreThread) stops the
 * program with a report, instead of releasing a lock it does not hold. */
// pyheap-test: abort
// pyheap-test: stderr pyheap: fatal error in PyGILState_Release: this thread does not hold the runtime lock
#include "compat.h"

int main(void) {
    Py_Initialize();
    PyGILState_STATE s = PyGILState_Ensure();
    PyEval_SaveThread();
    PyGILState_Release(s);
    printf("not reached\n");
    return 0;
}
