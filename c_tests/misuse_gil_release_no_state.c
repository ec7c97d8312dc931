/* PyGILState_Release on a thread that never called PyGILState_Ensure stops
 * the program with a report naming the function and the error. */
// pyheap-test: abort
// pyheap-test: stderr pyheap: fatal error in PyGILState_Release: this thread has no thread state
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>

static void *stray(void *arg) {
    (void)arg;
    PyGILState_Release(PyGILState_UNLOCKED); /* no Ensure before */
    return NULL;
}

int main(void) {
    Py_Initialize();
    pthread_t t;
    Py_BEGIN_ALLOW_THREADS
    pthread_create(&t, NULL, stray, NULL);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    printf("not reached\n");
    return 0;
}
