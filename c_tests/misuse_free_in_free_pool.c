/* Freeing an address inside a pool of a live arena that holds no blocks
 * stops the program. The arena is 1 MiB aligned, so five pools (16 KiB
 * each) past the first block is a free pool of the same arena. */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyObject_Free: invalid free (not the start of an allocated block) at address
// pyheap-test: stderr lies in a free pool
#include "compat.h"

int main(void) {
    char *p = PyObject_Malloc(32);
    char *stray = p + 5 * 16384;
    printf("ADDRESS=%p\n", (void *)stray);
    fflush(stdout);
    PyObject_Free(stray);
    printf("not reached\n");
    PyObject_Free(p);
    return 0;
}
