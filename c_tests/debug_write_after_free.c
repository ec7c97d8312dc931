/* Debug allocator over the pool heap: a write to a freed block is found
 * when the pool hands the block out again (pyheap only: CPython finds such
 * writes only if the bytes are read; over libc, which serves other code
 * too, pyheap leaves this to memcheck and AddressSanitizer). */
// pyheap-test: modes pymalloc_debug
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr write to freed memory
// pyheap-test: stderr byte 0x07 at data offset 20 (0xdd expected)
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    char *p = PyObject_Malloc(48);
    PyObject_Free(p);
    printf("ADDRESS=%p\n", (void *)(p + 20));
    fflush(stdout);
    p[20] = 7; /* use after free */
    char *q = PyObject_Malloc(48); /* the same block: checked */
    printf("not reached %p\n", (void *)q);
    return 0;
}
