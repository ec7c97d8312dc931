/* Freeing a pointer 8 bytes into an allocated block (a pointer to a member,
 * say: not 16-byte aligned, inside the block's first 16 bytes) stops the
 * program with a report; it must not free the block or put an unaligned
 * pointer on the free list. */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyObject_Free: invalid free (not the start of an allocated block) at address
// pyheap-test: stderr is 8 bytes into the 64-byte block at
#include "compat.h"

int main(void) {
    char *p = PyObject_Malloc(64);
    printf("ADDRESS=%p\n", (void *)(p + 8));
    fflush(stdout);
    PyObject_Free(p + 8); /* inside the block's first granule */
    void *q = PyObject_Malloc(64);
    printf("not reached: next block %p\n", q);
    return 0;
}
