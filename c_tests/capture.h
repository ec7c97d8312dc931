/* What pyheap writes through PyHeap_SetOutput, kept as text: pass
 * `collect` to PyHeap_SetOutput, read `got` (NUL-terminated), and empty it
 * with capture_reset(). Text past the buffer's end is dropped. */
#ifndef PYHEAP_C_CAPTURE_H
#define PYHEAP_C_CAPTURE_H

#include <stddef.h>
#include <string.h>

static char got[1 << 16];
static size_t got_len;

static void collect(const char *text, size_t len, void *ctx) {
    (void)ctx;
    if (got_len + len < sizeof got) {
        memcpy(got + got_len, text, len);
        got_len += len;
        got[got_len] = 0;
    }
}

static inline void capture_reset(void) {
    got_len = 0;
    got[0] = 0;
}

#endif
