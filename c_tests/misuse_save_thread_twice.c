/* A second PyEval_SaveThread without PyEval_RestoreThread between: the
 * thread no longer holds the runtime lock, and the report says so instead
 * of corrupting the lock's state. */
// pyheap-test: abort
// pyheap-test: stderr pyheap: fatal error in PyEval_SaveThread: this thread does not hold the runtime lock
#include "compat.h"

int main(void) {
    Py_Initialize();
    PyThreadState *ts = PyEval_SaveThread();
    (void)ts;
    PyEval_SaveThread(); /* already released */
    printf("not reached\n");
    return 0;
}
