/* Freeing a pointer 16 bytes into an allocated 64-byte block stops the
 * program with a report naming the block it points into. */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyMem_Free: invalid free (not the start of an allocated block) at address
// pyheap-test: stderr is 16 bytes into the 64-byte block at
#include "compat.h"

int main(void) {
    char *p = PyMem_Malloc(64);
    printf("ADDRESS=%p\n", (void *)(p + 16));
    fflush(stdout);
    PyMem_Free(p + 16); /* not the start of the block */
    printf("not reached\n");
    PyMem_Free(p);
    return 0;
}
