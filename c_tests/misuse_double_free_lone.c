/* A double free of the only block of its pool: the first free made the
 * pool free, and the second must still be reported as a double free (not
 * as a stray pointer into a free pool). */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyMem_Free: double free at address
// pyheap-test: stderr was already freed
#include "compat.h"

int main(void) {
    char *p = PyMem_Malloc(300);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    PyMem_Free(p);
    PyMem_Free(p); /* double free */
    printf("not reached\n");
    return 0;
}
