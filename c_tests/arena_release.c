/* Arenas go back to the OS when all their pools are free: after 32 arenas'
 * worth of blocks are freed (in random order), the arena count falls back
 * (one wholly free arena may be kept), the reclaimed count rises, and RSS
 * falls by at least half of what the blocks added. A second round does the
 * same (nothing leaks). Then the arena choice: a new pool comes from the
 * fullest arena with room, so the emptiest can drain. pyheap only: RSS, the
 * statistics and arena addresses (default arenas are 1 MiB aligned) are
 * pyheap's. */
// pyheap-test: pool-only
#define _POSIX_C_SOURCE 200809L
#include "compat.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pool_stats.h"

#define ARENAS 32
#define NBLOCKS (ARENAS * 64 * PER_POOL)

static unsigned char *blk[NBLOCKS];



static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* One round: fill NBLOCKS 512-byte blocks, free them in random order. */
static void round_trip(int round) {
    PyHeap_HeapStats s0 = stats();
    long r0 = rss();

    for (int i = 0; i < NBLOCKS; i++) {
        blk[i] = PyObject_Malloc(512);
        if (blk[i] != NULL) memset(blk[i], (i + round) & 0xFF, 512);
    }
    PyHeap_HeapStats s1 = stats();
    long r1 = rss();
    size_t made = s1.arenas_allocated_total - s0.arenas_allocated_total;
    CHECKF(made >= ARENAS - 1 && made <= ARENAS, "round %d: %zu arenas made",
           round, made);
    CHECKF(s1.arenas_current >= ARENAS, "round %d: %zu arenas live", round,
           s1.arenas_current);
    CHECKF(s1.pooled_blocks - s0.pooled_blocks == NBLOCKS, "round %d: %zu blocks",
           round, s1.pooled_blocks - s0.pooled_blocks);
    CHECKF(r1 - r0 >= (long)(ARENAS - 4) * (long)ARENA,
           "round %d: RSS grew by %ld bytes only", round, r1 - r0);

    for (int i = NBLOCKS - 1; i > 0; i--) { /* shuffle */
        int j = (int)(rng() % (uint64_t)(i + 1));
        unsigned char *t = blk[i];
        blk[i] = blk[j];
        blk[j] = t;
    }
    int bad = 0;
    for (int i = 0; i < NBLOCKS; i++) {
        if (blk[i] == NULL || blk[i][0] != blk[i][511]) bad++;
        PyObject_Free(blk[i]);
    }
    CHECK(bad == 0);

    PyHeap_HeapStats s2 = stats();
    long r2 = rss();
    printf("round %d: %zu arenas made, %zu reclaimed, %zu live; RSS %ld -> %ld "
           "-> %ld KiB\n",
           round, made, s2.arenas_reclaimed - s0.arenas_reclaimed,
           s2.arenas_current, r0 >> 10, r1 >> 10, r2 >> 10);
    CHECKF(s2.arenas_current <= 1, "round %d: %zu arenas still live", round,
           s2.arenas_current);
    CHECKF(s2.arenas_reclaimed - s0.arenas_reclaimed + 1 >= made,
           "round %d: %zu of %zu arenas reclaimed", round,
           s2.arenas_reclaimed - s0.arenas_reclaimed, made);
    CHECK(s2.pooled_blocks == s0.pooled_blocks &&
          s2.pools_in_use == s0.pools_in_use);
    CHECK(s2.arenas_highwater >= s1.arenas_current);
    CHECKF(r1 - r2 >= (r1 - r0) / 2, "round %d: RSS fell by %ld of %ld bytes",
           round, r1 - r2, r1 - r0);
}

static uintptr_t arena_of(const void *p) { return (uintptr_t)p & ~(ARENA - 1); }
static uintptr_t pool_of(const void *p) { return (uintptr_t)p & ~(POOL - 1); }

/* A new pool comes from the arena with the fewest free pools. */
static void check_fullest_first(void) {
    int n = 0;
    /* Fill whole arenas: at least 3, and no free pool anywhere. */
    for (;;) {
        for (int k = 0; k < PER_POOL && n < NBLOCKS; k++)
            blk[n++] = PyObject_Malloc(512);
        PyHeap_HeapStats s = stats();
        if ((s.arenas_current >= 3 && s.pools_free == 0) || n >= NBLOCKS) break;
    }
    CHECKF(n < NBLOCKS, "no arena filled up in %d blocks", n);
    /* The first two arenas the blocks went to. */
    uintptr_t a = arena_of(blk[0]), b = 0;
    for (int i = 0; i < n && b == 0; i++)
        if (arena_of(blk[i]) != a) b = arena_of(blk[i]);
    int pools_a = 0, pools_b = 0;
    uintptr_t last_pool = 0;
    for (int i = 0; i < n; i++) {
        if (pool_of(blk[i]) == last_pool) continue;
        last_pool = pool_of(blk[i]);
        pools_a += arena_of(blk[i]) == a;
        pools_b += arena_of(blk[i]) == b;
    }
    CHECKF(pools_a == 64 && pools_b == 64, "arenas of %d and %d pools", pools_a,
           pools_b);

    /* Arena a: all pools free but its first; arena b: 4 pools free. */
    uintptr_t first_a = UINTPTR_MAX;
    for (int i = 0; i < n; i++)
        if (arena_of(blk[i]) == a && pool_of(blk[i]) < first_a)
            first_a = pool_of(blk[i]);
    uintptr_t freed_b[4] = {0, 0, 0, 0};
    int nfreed_b = 0;
    for (int i = 0; i < n; i++) {
        uintptr_t pa = arena_of(blk[i]), pp = pool_of(blk[i]);
        int drop = 0;
        if (pa == a && pp != first_a) drop = 1;
        if (pa == b) {
            for (int k = 0; k < nfreed_b; k++) drop |= freed_b[k] == pp;
            if (!drop && nfreed_b < 4) {
                freed_b[nfreed_b++] = pp;
                drop = 1;
            }
        }
        if (drop) {
            PyObject_Free(blk[i]);
            blk[i] = NULL;
        }
    }
    PyHeap_HeapStats s = stats();
    CHECKF(s.pools_free == 63 + 4, "%zu free pools", s.pools_free);

    /* A class with no pool yet needs a new pool: it must come from b. */
    void *x = PyObject_Malloc(16);
    CHECKF(arena_of(x) == b, "new pool in arena %#lx; the fullest is %#lx, a is %#lx",
           (unsigned long)arena_of(x), (unsigned long)b, (unsigned long)a);
    int in_freed = 0;
    for (int k = 0; k < 4; k++) in_freed |= pool_of(x) == freed_b[k];
    CHECK(in_freed);
    PyObject_Free(x);

    for (int i = 0; i < n; i++) PyObject_Free(blk[i]);
    s = stats();
    CHECK(s.pooled_blocks == 0 && s.arenas_current <= 1);
}

int main(void) {
    memset(blk, 0, sizeof blk); /* resident before the first RSS reading */
    round_trip(1);
    round_trip(2);
    check_fullest_first();
    return harness_summary();
}
