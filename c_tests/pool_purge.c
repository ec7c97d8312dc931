/* Free pools inside live arenas give their pages back once the free pools
 * that may be resident pass a budget: the larger of 64 pools (1 MiB) and
 * twice the pools in use. Past it, the emptiest arenas are purged first
 * (madvise), down to three quarters of the budget. First the exact rule,
 * one freed pool at a time over two pinned arenas; then bursts: half of a
 * live set freed and allocated again, round after round, purges nothing
 * (a tracing collector's sweep must not cost a page fault per page it
 * reuses); then RSS: 16 arenas filled, one block per arena kept, RSS must
 * fall by at least half of what the blocks added while every arena stays;
 * purged pools then serve new blocks of other classes correctly. pyheap
 * only (CPython never gives back part of an arena). */
// pyheap-test: pool-only
#define _POSIX_C_SOURCE 200809L
#include "compat.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pool_stats.h"

#define THRESHOLD 64 /* the budget's floor, in pools */
#define RATIO 2      /* free pools tolerated per pool in use */
#define ARENAS 16
#define NBLOCKS (ARENAS * 64 * PER_POOL)

static unsigned char *blk[NBLOCKS];



static uintptr_t arena_of(const void *p) { return (uintptr_t)p & ~(ARENA - 1); }
static uintptr_t pool_of(const void *p) { return (uintptr_t)p & ~(POOL - 1); }

/* Allocates 512-byte blocks a pool at a time until `arenas` arenas are live
 * and none has a free pool; returns the number of blocks. */
static int fill_arenas(size_t arenas) {
    int n = 0;
    while (n + PER_POOL <= NBLOCKS) {
        for (int k = 0; k < PER_POOL; k++) {
            blk[n] = PyObject_Malloc(512);
            memset(blk[n], n & 0xFF, 512);
            n++;
        }
        PyHeap_HeapStats s = stats();
        if (s.arenas_current >= arenas && s.pools_free == 0) break;
    }
    return n;
}

/* Marks in pinned[] the lowest-addressed block of each arena among
 * blk[0..n); returns how many. */
static char pinned[NBLOCKS];

static int choose_pins(int n) {
    enum { MAX_ARENAS = 64 };
    uintptr_t arena[MAX_ARENAS];
    int lowest[MAX_ARENAS], count = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < count && arena[k] != arena_of(blk[i])) k++;
        if (k == count) {
            if (count == MAX_ARENAS) return -1;
            arena[count] = arena_of(blk[i]);
            lowest[count++] = i;
        } else if (blk[i] < blk[lowest[k]]) {
            lowest[k] = i;
        }
    }
    memset(pinned, 0, sizeof pinned);
    for (int k = 0; k < count; k++) pinned[lowest[k]] = 1;
    return count;
}

/* Pins blocks with choose_pins(n), frees the others; returns the pins. */
static int free_unpinned(int n) {
    int pins = choose_pins(n);
    for (int i = 0; i < n; i++) {
        if (pinned[i]) continue;
        PyObject_Free(blk[i]);
        blk[i] = NULL;
    }
    return pins;
}

/* The rule, exactly: free two arenas a pool at a time (their first pools
 * pinned by one block) and check the dirty and purged counts after each
 * pool becomes free against a model of the rule. */
static void check_threshold(void) {
    int n = fill_arenas(2);
    PyHeap_HeapStats s = stats();
    CHECKF(s.arenas_current == 2 && n == 2 * 64 * PER_POOL,
           "%zu arenas for %d blocks", s.arenas_current, n);
    CHECK(s.pools_dirty == 0);
    /* The model: per arena, free and dirty pools; pools in use. */
    size_t nfree[2] = {0, 0}, dirty[2] = {0, 0};
    size_t in_use = s.pools_in_use, purged = s.pools_purged, base = purged;
    /* Pins: the first block of each arena's first pool. Blocks are in
     * address order within an arena, and pools fill in order. */
    int steps = 0, wrong = 0, purges = 0;
    for (int i = 0; i < n; i++) {
        if (i % (64 * PER_POOL) == 0) continue; /* the pin */
        uintptr_t pool = pool_of(blk[i]);
        PyObject_Free(blk[i]);
        blk[i] = NULL;
        int last_of_pool = i + 1 == n || pool_of(blk[i + 1]) != pool;
        if (!last_of_pool || i % (64 * PER_POOL) < PER_POOL) continue;
        /* The pool of arena k just became free. */
        int k = i / (64 * PER_POOL);
        nfree[k]++;
        dirty[k]++;
        in_use--;
        size_t budget = RATIO * in_use > THRESHOLD ? RATIO * in_use : THRESHOLD;
        if (dirty[0] + dirty[1] > budget) {
            /* Emptiest arena first, down to three quarters. */
            size_t low = budget - budget / 4;
            int first = nfree[1] > nfree[0];
            for (int j = 0; j < 2 && dirty[0] + dirty[1] > low; j++) {
                int a = j == 0 ? first : !first;
                purged += dirty[a];
                dirty[a] = 0;
            }
            purges++;
        }
        s = stats();
        if (s.pools_dirty != dirty[0] + dirty[1] || s.pools_purged != purged ||
            s.pools_in_use != in_use) {
            if (wrong++ < 5)
                fprintf(stderr,
                        "pool %d freed: dirty %zu purged %zu in use %zu, "
                        "want %zu %zu %zu\n",
                        steps, s.pools_dirty, s.pools_purged, s.pools_in_use,
                        dirty[0] + dirty[1], purged, in_use);
        }
        steps++;
    }
    CHECKF(steps == 2 * 63, "%d pools freed", steps);
    CHECK(wrong == 0);
    /* The rule as it plays out: one purge, of the first arena's 63 pools
     * once 86 are free and 42 in use (budget 84). */
    s = stats();
    CHECKF(purges == 1 && s.pools_purged - base == 63 && s.pools_dirty == 63,
           "%d purges, purged %zu, dirty %zu", purges, s.pools_purged - base,
           s.pools_dirty);
    CHECK(s.arenas_current == 2 && s.pools_in_use == 2);
    for (int i = 0; i < n; i++) PyObject_Free(blk[i]);
    s = stats();
    CHECK(s.pooled_blocks == 0 && s.arenas_current <= 1);
}

/* Bursts: a live set of ARENAS arenas; each round frees the blocks of
 * every other pool (half the set, no arena emptied) and allocates them
 * again. The freed pools stay resident and are reused: nothing is purged,
 * round after round. Then the quiet end: all but one block per arena
 * freed, RSS falls. */
static void check_bursts(void) {
    PyHeap_HeapStats s0 = stats();
    long r0 = rss();
    int n = fill_arenas(ARENAS);
    long r1 = rss();
    PyHeap_HeapStats s1 = stats();
    int bad = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < n; i++) {
            if ((i / PER_POOL) % 2 == 0) continue;
            PyObject_Free(blk[i]);
            blk[i] = NULL;
        }
        PyHeap_HeapStats s = stats();
        if (s.pools_dirty < (size_t)n / PER_POOL / 2) bad++;
        for (int i = 0; i < n; i++) {
            if (blk[i] != NULL) continue;
            blk[i] = PyObject_Malloc(512);
            memset(blk[i], (i + round) & 0xFF, 512);
        }
    }
    PyHeap_HeapStats s2 = stats();
    printf("bursts: %d blocks, 20 rounds of half freed and reallocated: purged "
           "%zu pools, %zu arenas made\n",
           n, s2.pools_purged - s1.pools_purged,
           s2.arenas_allocated_total - s1.arenas_allocated_total);
    CHECKF(bad == 0, "%d rounds with freed pools purged", bad);
    CHECKF(s2.pools_purged == s1.pools_purged, "%zu pools purged",
           s2.pools_purged - s1.pools_purged);
    CHECK(s2.arenas_allocated_total == s1.arenas_allocated_total);

    /* The quiet end. */
    int pins = free_unpinned(n);
    PyHeap_HeapStats s3 = stats();
    long r3 = rss();
    printf("bursts end: %d pins, %zu dirty pools, RSS %ld -> %ld -> %ld KiB\n",
           pins, s3.pools_dirty, r0 >> 10, r1 >> 10, r3 >> 10);
    CHECK(s3.pools_dirty <= THRESHOLD);
    CHECKF(r1 - r3 >= (r1 - r0) / 2, "RSS fell by %ld of %ld bytes", r1 - r3,
           r1 - r0);
    for (int i = 0; i < n; i++) PyObject_Free(blk[i]);
    PyHeap_HeapStats s4 = stats();
    CHECK(s4.pooled_blocks == s0.pooled_blocks && s4.arenas_current <= 1);
}

/* RSS follows live data while one block per arena keeps every arena. */
static void check_rss(void) {
    PyHeap_HeapStats s0 = stats();
    long r0 = rss();
    int n = fill_arenas(ARENAS);
    PyHeap_HeapStats s1 = stats();
    long r1 = rss();
    CHECKF(s1.arenas_current >= ARENAS, "%zu arenas", s1.arenas_current);

    int pins = free_unpinned(n);
    PyHeap_HeapStats s2 = stats();
    long r2 = rss();
    printf("%d blocks, %d pins: arenas %zu -> %zu, purged %zu pools; "
           "RSS %ld -> %ld -> %ld KiB\n",
           n, pins, s1.arenas_current, s2.arenas_current,
           s2.pools_purged - s0.pools_purged, r0 >> 10, r1 >> 10, r2 >> 10);
    CHECKF((size_t)pins == s1.arenas_current, "%d pins, %zu arenas", pins,
           s1.arenas_current);
    CHECK(s2.arenas_current == s1.arenas_current);
    CHECK(s2.pooled_blocks == (size_t)pins && s2.pools_in_use == (size_t)pins);
    CHECK(s2.pools_dirty <= THRESHOLD);
    CHECKF(s2.pools_purged - s0.pools_purged >= (size_t)pins * 63 - THRESHOLD,
           "%zu pools purged", s2.pools_purged - s0.pools_purged);
    CHECKF(r1 - r0 >= (long)(ARENAS - 2) * (long)ARENA, "RSS grew by %ld only",
           r1 - r0);
    CHECKF(r1 - r2 >= (r1 - r0) / 2, "RSS fell by %ld of %ld bytes", r1 - r2,
           r1 - r0);

    /* Purged pools read as zeroes; they must serve new blocks of another
     * class with intact contents. */
    int m = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (blk[i] != NULL) continue;
        blk[i] = PyObject_Malloc(48);
        memset(blk[i], i & 0xFF, 48);
        m++;
    }
    for (int i = 0; i < n; i++) {
        if (pinned[i]) continue;
        if (blk[i][0] != (i & 0xFF) || blk[i][47] != (i & 0xFF)) bad++;
    }
    CHECKF(bad == 0 && m > 0, "%d of %d reused blocks changed", bad, m);
    for (int i = 0; i < n; i++) PyObject_Free(blk[i]);
    PyHeap_HeapStats s3 = stats();
    CHECK(s3.pooled_blocks == 0 && s3.arenas_current <= 1);
}

int main(void) {
    memset(blk, 0, sizeof blk); /* resident before the first RSS reading */
    check_threshold();
    check_bursts();
    check_rss();
    return harness_summary();
}
