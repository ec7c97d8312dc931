/* Minimal checks for pyheap's C tests: CHECK counts and reports, and
 * harness_summary() prints "N passed, N failed" and gives the exit status. */
#ifndef PYHEAP_C_HARNESS_H
#define PYHEAP_C_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

static int harness_passed, harness_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            harness_passed++;                                                  \
        } else {                                                               \
            harness_failed++;                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
        }                                                                      \
    } while (0)

/* CHECK with a message formatted on failure. */
#define CHECKF(cond, ...)                                                      \
    do {                                                                       \
        if (cond) {                                                            \
            harness_passed++;                                                  \
        } else {                                                               \
            harness_failed++;                                                  \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* 1 when running in pyheap's `malloc` or `malloc_debug` allocator mode
 * (every block from libc): checks of the pool heap's own behaviour (block
 * counts, in-place realloc) do not apply there, as in CPython's
 * PYTHONMALLOC=malloc. */
static inline int malloc_mode(void) {
    const char *m = getenv("PYHEAP_MALLOC");
    return m != NULL && m[0] == 'm';
}

static inline int harness_summary(void) {
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed == 0 && harness_passed > 0 ? 0 : 1;
}

#endif
