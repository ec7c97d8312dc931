/* Linked against libpyheap.so instead of the static library: the program
 * finds the library through its SONAME (libpyheap.so.0), the allocator
 * functions come from that shared object (checked in /proc/self/maps), and
 * allocation, realloc, free and the statistics work through it. */
// pyheap-test: pool-only
// pyheap-test: shared
#include "compat.h"

#include <stdint.h>
#include <string.h>

#include "harness.h"

/* 1 if `fn` lies in a mapping of a file named libpyheap.so*. */
static int from_shared_library(const void *fn) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps == NULL) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, maps) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
        if ((uintptr_t)fn >= lo && (uintptr_t)fn < hi) {
            found = strstr(line, "/libpyheap.so") != NULL;
            if (!found) fprintf(stderr, "mapped from: %s", line);
            break;
        }
    }
    fclose(maps);
    return found;
}

int main(void) {
    void *(*obj_malloc)(size_t) = PyObject_Malloc;
    CHECK(from_shared_library((const void *)(uintptr_t)obj_malloc));

    Py_ssize_t before = PyHeap_GetAllocatedBlocks();
    char *small[100];
    for (int i = 0; i < 100; i++) {
        small[i] = PyObject_Malloc(1 + (size_t)i * 5);
        memset(small[i], i, 1 + (size_t)i * 5);
    }
    char *big = PyMem_Malloc(10000);
    memset(big, 0x3C, 10000);
    big = PyMem_Realloc(big, 20000);
    CHECK(big != NULL && big[0] == 0x3C && big[9999] == 0x3C);
    CHECK(PyHeap_GetAllocatedBlocks() - before == 101);

    PyHeap_HeapStats s;
    CHECK(PyHeap_GetHeapStats(&s) == 0);
    CHECK(s.pooled_blocks == 100 && s.raw_blocks == 1 && s.arenas_current == 1);

    int bad = 0;
    for (int i = 0; i < 100; i++) {
        if (small[i][0] != i || small[i][i * 5] != i) bad++;
        PyObject_Free(small[i]);
    }
    CHECK(bad == 0);
    PyMem_Free(big);
    CHECK(PyHeap_GetAllocatedBlocks() == before);
    CHECK(_PyObject_DebugMallocStats(stdout) == 1);
    return harness_summary();
}
