/* Debug allocator: a pointer kept after realloc moved its block reads as
 * freed memory, and freeing it is reported as a double free (the old block
 * was poisoned before the move, as CPython does). */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyMem_Free: double free
#include <stdio.h>
#include <string.h>

#include "pyheap.h"

int main(void) {
    char *p = PyMem_Malloc(16);
    char *blocker = PyMem_Malloc(16); /* keeps libc from growing p in place */
    memset(p, 'a', 16);
    char *q = PyMem_Realloc(p, 4000); /* a larger size class: it moves */
    if (q == NULL || q == p || memcmp(q, "aaaaaaaaaaaaaaaa", 16) != 0) return 2;
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    PyMem_Free(p); /* the stale pointer */
    PyMem_Free(blocker);
    return 0;
}
