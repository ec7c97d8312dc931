/* The smallest pyheap program: pooled allocation through CPython's
 * allocator API, no set-up, no tear-down.
 *
 *   cargo build --release
 *   cc -Iinclude examples/minimal.c target/release/libpyheap.a -lpthread -ldl -lm -o minimal
 */
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *names[1000];
    for (int i = 0; i < 1000; i++) {
        names[i] = PyObject_Malloc(32); /* pooled, 16-byte aligned */
        if (names[i] == NULL) return 1;
        snprintf(names[i], 32, "item %d", i);
    }
    int *grow = PyMem_New(int, 10);
    PyMem_Resize(grow, int, 100000); /* above 512 bytes: the RAW domain */
    if (grow == NULL) return 1;
    printf("%s; %zd blocks live\n", names[999], PyHeap_GetAllocatedBlocks());
    for (int i = 0; i < 1000; i++) PyObject_Free(names[i]);
    PyMem_Free(grow);
    printf("%zd blocks live\n", PyHeap_GetAllocatedBlocks());
    return 0;
}
