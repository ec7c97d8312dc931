/* Tracing: where did the memory go? Snapshots group live blocks by the
 * line that allocated them, and a comparison shows what grew.
 *
 *   cc -g -Iinclude examples/trace_snapshot.c target/release/libpyheap.a -lpthread -ldl -lm -o trace_snapshot
 *
 * Frames are native return addresses named by addr2line (binutils), so
 * build with -g to get file:line.
 */
#include <stdio.h>
#include <string.h>

#include "pyheap.h"

#define N 500

static char *lines[N];
static double *vectors[N];

static void load_text(void) {
    for (int i = 0; i < N; i++) {
        lines[i] = PyMem_Malloc(80);
        if (lines[i] != NULL) snprintf(lines[i], 80, "line %d", i);
    }
}

static void load_vectors(int dim) {
    for (int i = 0; i < N; i++) {
        vectors[i] = PyMem_Realloc(vectors[i], sizeof(double) * (size_t)dim);
        if (vectors[i] != NULL) memset(vectors[i], 0, sizeof(double) * (size_t)dim);
    }
}

int main(void) {
    PyHeap_TraceMalloc_Start(4); /* or PYHEAP_TRACEMALLOC=4 in the environment */
    load_text();
    load_vectors(8);
    PyHeap_Snapshot *before = PyHeap_TraceMalloc_TakeSnapshot();

    load_vectors(40); /* the vectors grow */
    PyHeap_Snapshot *after = PyHeap_TraceMalloc_TakeSnapshot();
    if (before == NULL || after == NULL) return 1;

    size_t current = 0, peak = 0;
    PyHeap_TraceMalloc_GetTracedMemory(&current, &peak);
    printf("traced: %zu bytes now, %zu at the peak\n\n", current, peak);

    printf("top allocation sites:\n");
    PyHeap_Snapshot_Write(after, NULL, "lineno", 0, PYHEAP_FORMAT_TEXT, 3, stdout);
    printf("\nwhat grew since the first snapshot:\n");
    PyHeap_Snapshot_Write(after, before, "lineno", 0, PYHEAP_FORMAT_TEXT, 3, stdout);
    printf("\nthe same, as JSON:\n");
    PyHeap_Snapshot_Write(after, before, "lineno", 0, PYHEAP_FORMAT_JSON, 1, stdout);

    PyHeap_Snapshot_Free(before);
    PyHeap_Snapshot_Free(after);
    for (int i = 0; i < N; i++) {
        PyMem_Free(lines[i]);
        PyMem_Free(vectors[i]);
    }
    PyHeap_TraceMalloc_Stop();
    return 0;
}
