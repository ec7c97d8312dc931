/* Debug allocator: a MEM block released with PyObject_Free names both
 * domains. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyObject_Free: block released with another domain's function
// pyheap-test: stderr allocated by the MEM domain (PyMem_Malloc, API 'm') but released with PyObject_Free
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *p = PyMem_Malloc(16);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    PyObject_Free(p);
    return 0;
}
