/* Debug allocator: a block freed twice. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyObject_Free: double free
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *p = PyObject_Malloc(64);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    PyObject_Free(p);
    PyObject_Free(p);
    return 0;
}
