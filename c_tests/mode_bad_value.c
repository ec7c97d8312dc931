/* An unknown PYHEAP_MALLOC value stops the program before main with a
 * message naming the value and the modes there are. */
// pyheap-test: modes pymalloc
// pyheap-test: env PYHEAP_MALLOC=pymallocc
// pyheap-test: exit 1
// pyheap-test: stderr PYHEAP_MALLOC="pymallocc" is not an allocator mode
// pyheap-test: stderr pymalloc, pymalloc_debug, malloc, malloc_debug or debug
#include <stdio.h>

#include "pyheap.h"

int main(void) {
    puts("main ran");
    PyObject_Free(PyObject_Malloc(8));
    return 0;
}
