/* Debug allocator: PyMem_Free of a pointer that no allocator gave out. */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyMem_Free: invalid free
// pyheap-test: stderr no block of the debug allocator starts at this address
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    static char buf[256];
    printf("ADDRESS=%p\n", (void *)(buf + 64));
    fflush(stdout);
    PyMem_Free(buf + 64);
    return 0;
}
