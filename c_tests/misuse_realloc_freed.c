/* PyMem_Realloc of a pooled block that was already freed stops the program
 * with a report naming the API and the address, before anything is copied.
 * Another block keeps the pool in use. */
// pyheap-test: pool-only
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr pyheap: fatal error in PyMem_Realloc:
// pyheap-test: stderr the block (96 bytes, pool
// pyheap-test: stderr was already freed
#include "compat.h"

int main(void) {
    void *keep = PyMem_Malloc(96);
    char *p = PyMem_Malloc(96);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    PyMem_Free(p);
    p = PyMem_Realloc(p, 200); /* use after free */
    printf("not reached\n");
    PyMem_Free(p);
    PyMem_Free(keep);
    return 0;
}
