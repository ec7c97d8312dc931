/* Debug allocator: an OBJ block resized with PyMem_Realloc. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyMem_Realloc: block released with another domain's function
// pyheap-test: stderr allocated by the OBJ domain (PyObject_Malloc, API 'o')
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *p = PyObject_Malloc(16);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    p = PyMem_Realloc(p, 100);
    PyObject_Free(p);
    return 0;
}
