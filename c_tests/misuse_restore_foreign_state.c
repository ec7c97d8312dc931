/* PyEval_RestoreThread with another thread's state is reported (CPython
 * would hand this thread the other one's state). */
// pyheap-test: abort
// pyheap-test: stderr pyheap: fatal error in PyEval_RestoreThread: the thread state belongs to another thread
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>

static PyThreadState *main_state;

static void *worker(void *arg) {
    (void)arg;
    PyEval_RestoreThread(main_state); /* not this thread's */
    return NULL;
}

int main(void) {
    Py_Initialize();
    main_state = PyEval_SaveThread();
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    printf("not reached\n");
    return 0;
}
