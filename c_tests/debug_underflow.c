/* Debug allocator: writing one byte before the start of a block is
 * reported when the block is freed. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyObject_Free: buffer underflow (bad leading pad byte)
// pyheap-test: stderr at p-1: 0x42 *** OUCH
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *p = PyObject_Malloc(40);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    p[-1] = 'B';
    PyObject_Free(p);
    return 0;
}
