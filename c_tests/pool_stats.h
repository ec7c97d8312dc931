/* Helpers of the pool heap's own tests (arena_release, pool_purge): the
 * pool geometry, the process's resident set size, and the heap statistics.
 * Include after harness.h, with _POSIX_C_SOURCE defined before any header. */
#ifndef PYHEAP_POOL_STATS_H
#define PYHEAP_POOL_STATS_H

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pyheap.h"

#define ARENA ((uintptr_t)1 << 20)
#define POOL ((uintptr_t)1 << 14)
#define PER_POOL 31 /* 512-byte blocks in a pool */

/* Resident set size in bytes (/proc/self/statm, second field), or -1. */
static inline long rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* The heap statistics; a failed call is a failed check and reads as all
 * ones. */
static inline PyHeap_HeapStats stats(void) {
    PyHeap_HeapStats s;
    int rc = PyHeap_GetHeapStats(&s);
    CHECK(rc == 0);
    if (rc != 0) memset(&s, 0xFF, sizeof s);
    return s;
}

#endif
