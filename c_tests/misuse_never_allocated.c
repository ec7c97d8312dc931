/* Freeing a block-aligned address of a pool in use, beyond the blocks the
 * pool has ever handed out, stops the program: the block was never
 * allocated. One 208-byte block is allocated (a fresh pool: the block and
 * its neighbour are the only ones carved); five blocks further is virgin. */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyObject_Free: invalid free (not the start of an allocated block) at address
// pyheap-test: stderr the block (208 bytes, pool
// pyheap-test: stderr was never allocated
#include "compat.h"

int main(void) {
    char *p = PyObject_Malloc(208);
    char *virgin = p + 5 * 208;
    printf("ADDRESS=%p\n", (void *)virgin);
    fflush(stdout);
    PyObject_Free(virgin);
    printf("not reached\n");
    PyObject_Free(p);
    return 0;
}
