/* pyheap demo: CPython's allocator API in a plain C program.
 *
 * Build and run (from the repository root):
 *   cargo build --release && cc -O2 -Iinclude examples/demo.c \
 *     target/release/libpyheap.a -lpthread -ldl -lm -o target/demo && ./target/demo
 */
#include <stdio.h>
#include <string.h>

#include "pyheap.h"

typedef struct node {
    struct node *next;
    char name[40];
} node;

int main(void) {
    /* Small objects come from 16 KiB pools inside 1 MiB arenas. */
    node *head = NULL;
    for (int i = 0; i < 100000; i++) {
        node *n = PyObject_Malloc(sizeof *n);
        if (n == NULL) return 1;
        snprintf(n->name, sizeof n->name, "node %d", i);
        n->next = head;
        head = n;
    }
    /* Arrays through the MEM domain, resized in place or moved as needed. */
    double *v = PyMem_New(double, 16);
    PyMem_Resize(v, double, 4096); /* above 512 bytes: served by the RAW domain */
    if (v == NULL) return 1;

    PyHeap_HeapStats st;
    PyHeap_GetHeapStats(&st);
    printf("live blocks: %zd (pooled %zu in %zu pools, %zu arenas; %zu from malloc)\n",
           PyHeap_GetAllocatedBlocks(), st.pooled_blocks, st.pools_in_use, st.arenas_current,
           st.raw_blocks);

    /* Free every other node: pools stay, their blocks are reused. */
    size_t freed = 0;
    for (node **link = &head; *link != NULL;) {
        node *n = *link;
        if (freed++ % 2 == 0) {
            *link = n->next;
            PyObject_Free(n);
        } else {
            link = &n->next;
        }
    }
    printf("after freeing half: %zd live blocks\n", PyHeap_GetAllocatedBlocks());

    /* Free the rest: empty arenas go back to the OS (one is kept). */
    while (head != NULL) {
        node *n = head;
        head = n->next;
        PyObject_Free(n);
    }
    PyMem_Del(v);
    PyHeap_GetHeapStats(&st);
    printf("after freeing all: %zd live blocks, %zu arena(s) kept, %zu given back\n\n",
           PyHeap_GetAllocatedBlocks(), st.arenas_current, st.arenas_reclaimed);

    /* CPython's sys._debugmallocstats() report, for a heap with something in it. */
    void *keep[3] = {PyObject_Malloc(24), PyObject_Malloc(100), PyMem_Malloc(500)};
    PyHeap_FPrintMallocStats(stdout, PYHEAP_STATS_TEXT);
    for (int i = 0; i < 3; i++) PyObject_Free(keep[i]);
    return 0;
}
