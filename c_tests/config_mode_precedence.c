/* The allocator mode from PYHEAP_MALLOC beats the one in PYHEAP_CONF, and
 * setting a mode replaces the one set before (here: PYHEAP_CONF asks for
 * malloc_debug, PYHEAP_MALLOC for pymalloc, and blocks come from pools
 * without debug frames). */
// pyheap-test: modes pymalloc
// pyheap-test: env PYHEAP_CONF=malloc:malloc_debug
// pyheap-test: env PYHEAP_MALLOC=pymalloc
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "harness.h"

int main(void) {
    FILE *f = tmpfile();
    char text[1024] = {0};
    if (f != NULL && PyHeap_PrintConfig(f) == 0) {
        rewind(f);
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
    }
    if (f) fclose(f);
    CHECK(strstr(text, "malloc: pymalloc (environment)") != NULL);
    unsigned char *p = PyObject_Malloc(24);
    PyHeap_HeapStats s;
    CHECK(PyHeap_GetHeapStats(&s) == 0 && s.pools_in_use >= 1);
    CHECK(p[-8] != 'o'); /* no debug header */
    PyObject_Free(p);
    return harness_summary();
}
