/* The outermost PyGILState_Release of a thread must get the
 * PyGILState_UNLOCKED its PyGILState_Ensure returned; PyGILState_LOCKED
 * there is a mismatched pair, reported. */
// pyheap-test: abort
// pyheap-test: stderr pyheap: fatal error in PyGILState_Release: PyGILState_LOCKED given for the outermost PyGILState_Ensure
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>

static void *worker(void *arg) {
    (void)arg;
    PyGILState_Ensure();
    PyGILState_Release(PyGILState_LOCKED); /* should be UNLOCKED */
    return NULL;
}

int main(void) {
    Py_Initialize();
    pthread_t t;
    Py_BEGIN_ALLOW_THREADS
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    printf("not reached\n");
    return 0;
}
