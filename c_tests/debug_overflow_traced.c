/* Debug allocator with tracing on: the report of an overflow found at free
 * says where the block was allocated, as CPython's does with tracemalloc
 * ("Memory block allocated at (most recent call first)"). */
// pyheap-test: modes pymalloc_debug malloc_debug
// pyheap-test: env PYHEAP_TRACEMALLOC=4
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr fatal error in PyMem_Free: buffer overflow (bad trailing pad byte)
// pyheap-test: stderr Memory block allocated at (most recent call first):
// pyheap-test: stderr debug_overflow_traced.c", line
// pyheap-test: stderr debug_overflow_traced.c", line 16
#include <stdio.h>

#include "pyheap.h"

__attribute__((noinline)) static char *make_buffer(size_t n) { return PyMem_Malloc(n); }

int main(void) {
    char *p = make_buffer(24);
    printf("ADDRESS=%p\n", (void *)p);
    fflush(stdout);
    p[24] = 'A';
    PyMem_Free(p);
    return 0;
}
