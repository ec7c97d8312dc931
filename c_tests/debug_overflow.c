/* Debug allocator: writing one byte past the end of a block is reported
 * when the block is freed, with CPython's dump of the trailing guard. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyMem_Free: buffer overflow (bad trailing pad byte)
// pyheap-test: stderr at tail+0: 0x41 *** OUCH
// pyheap-test: stderr 24 bytes originally requested
// pyheap-test: stderr debug allocator of the MEM domain
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *p = PyMem_Malloc(24);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    p[24] = 'A';
    PyMem_Free(p);
    return 0;
}
