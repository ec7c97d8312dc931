/* A second PyObject_Free of a pooled block stops the program with a report
 * naming the API, the kind of error and the address, before the free list
 * is touched. Another block keeps the pool in use. */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyObject_Free: double free at address
// pyheap-test: stderr the block (64 bytes, pool
// pyheap-test: stderr was already freed
#include "compat.h"

int main(void) {
    void *keep = PyObject_Malloc(64);
    char *p = PyObject_Malloc(64);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    PyObject_Free(p);
    PyObject_Free(p); /* double free */
    printf("not reached\n");
    PyObject_Free(keep);
    return 0;
}
