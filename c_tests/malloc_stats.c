/* The per-size-class report (CPython's sys._debugmallocstats() text):
 * after known numbers of blocks of two classes are allocated, the rows of
 * those classes count them, the byte lines add up to the arena total, and
 * freeing takes the counts back. This part runs against CPython 3.11 too.
 * pyheap's own entry points must give the same text (to a FILE * and
 * through a callback) and a JSON object with the same numbers, and refuse
 * bad arguments. */
// pyheap-test: pool-only
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifdef USE_CPYTHON
/* Exported by libpython, declared in an internal header only. */
PyAPI_FUNC(int) _PyObject_DebugMallocStats(FILE *out);
#endif

#define NCLASSES 32
#define POOL_BYTES 16384L
#define ARENA_BYTES 1048576L

/* ------------------------------------------------------------------ */
/* The text report, parsed. */

typedef struct {
    long pools, in_use, avail;
} row;

typedef struct {
    int header_ok, rows_bad;
    row cls[NCLASSES];
    long arenas_current, arena_bytes, allocated, available, unused_pools,
        headers, quantization, alignment, total;
} text_report;

/* The value of a `label = 1,234` line, commas dropped; -1 if none. */
static long value_of(const char *eq) {
    long v = 0;
    int digits = 0;
    for (const char *c = eq + 1; *c && *c != '\n'; c++) {
        if (*c >= '0' && *c <= '9') {
            v = v * 10 + (*c - '0');
            digits++;
        } else if (*c != ',' && *c != ' ') {
            return -1;
        }
    }
    return digits ? v : -1;
}

static int starts(const char *line, const char *prefix) {
    return strncmp(line, prefix, strlen(prefix)) == 0;
}

static text_report parse_text(const char *text) {
    text_report r;
    memset(&r, 0, sizeof r);
    r.total = -1;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[256];
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        unsigned c, size;
        long pools, in_use, avail;
        const char *eq = strchr(buf, '=');
        if (starts(buf, "Small block threshold = 512, in 32 size classes.")) {
            r.header_ok = 1;
        } else if (eq == NULL &&
                   sscanf(buf, "%u %u %ld %ld %ld", &c, &size, &pools, &in_use,
                          &avail) == 5) {
            if (c >= NCLASSES || size != (c + 1) * 16)
                r.rows_bad++;
            else
                r.cls[c] = (row){pools, in_use, avail};
        } else if (eq != NULL) {
            long v = value_of(eq);
            if (starts(buf, "# arenas allocated current")) r.arenas_current = v;
            if (strstr(buf, "arenas * 1048576 bytes/arena")) r.arena_bytes = v;
            if (starts(buf, "# bytes in allocated blocks")) r.allocated = v;
            if (starts(buf, "# bytes in available blocks")) r.available = v;
            if (strstr(buf, "unused pools * 16384 bytes")) r.unused_pools = v;
            if (starts(buf, "# bytes lost to pool headers")) r.headers = v;
            if (starts(buf, "# bytes lost to quantization")) r.quantization = v;
            if (starts(buf, "# bytes lost to arena alignment")) r.alignment = v;
            if (starts(buf, "Total") && r.total < 0) r.total = v; /* the first */
        }
        line = end ? end + 1 : line + strlen(line);
    }
    return r;
}

/* The report as _PyObject_DebugMallocStats writes it, in a malloc'd string. */
static char *debug_malloc_stats(void) {
    FILE *f = tmpfile();
    if (f == NULL) return NULL;
    int r = _PyObject_DebugMallocStats(f);
    CHECKF(r == 1, "_PyObject_DebugMallocStats returned %d", r);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    if (text != NULL && n > 0 && fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = 0;
    fclose(f);
    return text;
}

/* Rows and byte lines agree with each other and with the arena total. */
static void check_consistent(const text_report *r, const char *when) {
    CHECKF(r->header_ok && r->rows_bad == 0, "%s: header or rows malformed", when);
    long allocated = 0, available = 0;
    for (int c = 0; c < NCLASSES; c++) {
        const row *w = &r->cls[c];
        long size = (c + 1) * 16;
        allocated += w->in_use * size;
        available += w->avail * size;
        if (w->pools == 0) continue;
        long blocks = w->in_use + w->avail, per_pool = blocks / w->pools;
        /* Every pool of a class holds the same number of blocks, which fill
         * the pool but for a header of under 512 bytes and a remainder. */
        CHECKF(blocks % w->pools == 0 && per_pool * size <= POOL_BYTES &&
                   POOL_BYTES - per_pool * size < 512 + size,
               "%s: class %d: %ld blocks in %ld pools", when, c, blocks, w->pools);
    }
    CHECKF(allocated == r->allocated, "%s: rows hold %ld bytes, the line says %ld",
           when, allocated, r->allocated);
    CHECKF(available == r->available, "%s: rows have %ld bytes free, the line %ld",
           when, available, r->available);
    long sum = r->allocated + r->available + r->unused_pools + r->headers +
               r->quantization + r->alignment;
    CHECKF(sum == r->total && r->total == r->arenas_current * ARENA_BYTES &&
               r->arena_bytes == r->total,
           "%s: parts %ld, total %ld, %ld arenas (%ld bytes)", when, sum, r->total,
           r->arenas_current, r->arena_bytes);
}

/* ------------------------------------------------------------------ */
/* pyheap's own outputs. */

#ifndef USE_CPYTHON
typedef struct {
    char *text;
    size_t len, calls;
} sink;

static void collect(void *ctx, const char *text, size_t len) {
    sink *s = ctx;
    char *grown = realloc(s->text, s->len + len + 1);
    if (grown == NULL) return;
    memcpy(grown + s->len, text, len);
    s->len += len;
    grown[s->len] = '\0';
    s->text = grown;
    s->calls++;
}

static char *write_stats(int format) {
    sink s = {NULL, 0, 0};
    CHECK(PyHeap_WriteMallocStats(collect, &s, format) == 0);
    CHECK(s.calls > 0);
    return s.text;
}

static char *fprint_stats(int format) {
    FILE *f = tmpfile();
    if (f == NULL) return NULL;
    CHECK(PyHeap_FPrintMallocStats(f, format) == 0);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    if (text != NULL && n > 0 && fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = 0;
    fclose(f);
    return text;
}

/* The number after `"key":` in json (from `from` on); -1 if absent. */
static long json_number(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (at == NULL) return -1;
    char *end;
    long v = strtol(at + strlen(pattern), &end, 10);
    return end == at + strlen(pattern) ? -1 : v;
}

/* Braces and brackets balance (no strings hold any in this report), the
 * text is one object, and every key is a quoted name. */
static int json_shape_ok(const char *json) {
    int depth = 0, quotes = 0;
    size_t n = strlen(json);
    if (n < 3 || json[0] != '{' || strcmp(json + n - 2, "}\n") != 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = json[i];
        if (c == '"') quotes++;
        if (c == '{' || c == '[') depth++;
        if (c == '}' || c == ']') depth--;
        if (depth < 0 || (depth == 0 && i < n - 2)) return 0;
    }
    return depth == 0 && quotes % 2 == 0;
}

static void check_json(const text_report *t, long class_a, long class_b) {
    char *json = write_stats(PYHEAP_STATS_JSON);
    char *json2 = fprint_stats(PYHEAP_STATS_JSON);
    CHECK(json != NULL && json2 != NULL && strcmp(json, json2) == 0);
    if (json == NULL) return;
    CHECKF(json_shape_ok(json), "malformed JSON: %s", json);

    PyHeap_HeapStats s;
    PyHeap_GetHeapStats(&s);
    CHECK(json_number(json, "small_block_threshold") == 512);
    CHECK(json_number(json, "arena_size") == ARENA_BYTES);
    CHECK(json_number(json, "pool_size") == POOL_BYTES);
    CHECK(json_number(json, "allocated_blocks") == PyHeap_GetAllocatedBlocks());
    CHECK(json_number(json, "arenas_current") == (long)s.arenas_current);
    CHECK(json_number(json, "arenas_current") == t->arenas_current);
    CHECK(json_number(json, "pools_in_use") == (long)s.pools_in_use);
    CHECK(json_number(json, "pools_free") == (long)s.pools_free);
    CHECK(json_number(json, "raw_blocks") == (long)s.raw_blocks);
    CHECK(json_number(json, "bytes_in_allocated_blocks") == t->allocated);
    CHECK(json_number(json, "bytes_in_available_blocks") == t->available);
    CHECK(json_number(json, "bytes_lost_to_pool_headers") == t->headers);
    CHECK(json_number(json, "bytes_lost_to_quantization") == t->quantization);
    CHECK(json_number(json, "bytes_lost_to_arena_alignment") == t->alignment);

    /* One object per class with pools, with the text's numbers. */
    int objects = 0, rows = 0;
    for (const char *c = json; (c = strstr(c, "{\"class\":")) != NULL; c++) objects++;
    for (int c = 0; c < NCLASSES; c++) rows += t->cls[c].pools > 0;
    CHECKF(objects == rows, "%d class objects, %d text rows", objects, rows);
    long classes[2] = {class_a, class_b};
    for (int k = 0; k < 2; k++) {
        char key[32];
        snprintf(key, sizeof key, "{\"class\":%ld,", classes[k]);
        const char *obj = strstr(json, key);
        CHECKF(obj != NULL, "no object for class %ld", classes[k]);
        if (obj == NULL) continue;
        const row *w = &t->cls[classes[k]];
        CHECK(json_number(obj, "size") == (classes[k] + 1) * 16);
        CHECK(json_number(obj, "pools") == w->pools);
        CHECK(json_number(obj, "blocks_in_use") == w->in_use);
        CHECK(json_number(obj, "avail_blocks") == w->avail);
    }
    free(json);
    free(json2);
}

static void check_pyheap_outputs(const char *debug_text, const text_report *t,
                                 long class_a, long class_b) {
    char *written = write_stats(PYHEAP_STATS_TEXT);
    char *printed = fprint_stats(PYHEAP_STATS_TEXT);
    CHECK(written != NULL && strcmp(written, debug_text) == 0);
    CHECK(printed != NULL && strcmp(printed, debug_text) == 0);
    free(written);
    free(printed);
    check_json(t, class_a, class_b);

    /* Bad arguments: -1, and the callback is never called. */
    sink s = {NULL, 0, 0};
    CHECK(PyHeap_WriteMallocStats(NULL, &s, PYHEAP_STATS_TEXT) == -1);
    CHECK(PyHeap_WriteMallocStats(collect, &s, 7) == -1);
    CHECK(s.calls == 0);
    CHECK(PyHeap_FPrintMallocStats(NULL, PYHEAP_STATS_TEXT) == -1);
    FILE *f = tmpfile();
    CHECK(f != NULL && PyHeap_FPrintMallocStats(f, -1) == -1 && ftell(f) == 0);
    if (f) fclose(f);
}
#endif

/* ------------------------------------------------------------------ */

#define NA 1000 /* blocks of 496 bytes: class 30 */
#define NB 5000 /* blocks of 40 bytes: class 2 */
#define CLASS_A 30
#define CLASS_B 2
static void *a[NA], *b[NB];

int main(void) {
    char *t0 = debug_malloc_stats();
    CHECK(t0 != NULL);
    text_report before = parse_text(t0 ? t0 : "");
    check_consistent(&before, "before");

    for (int i = 0; i < NA; i++) a[i] = PyObject_Malloc(496);
    for (int i = 0; i < NB; i++) b[i] = PyMem_Malloc(33 + i % 16); /* 33..48 */
    char *t1 = debug_malloc_stats();
    CHECK(t1 != NULL);
    text_report during = parse_text(t1 ? t1 : "");
    check_consistent(&during, "during");
    const row *a0 = &before.cls[CLASS_A], *a1 = &during.cls[CLASS_A];
    const row *b0 = &before.cls[CLASS_B], *b1 = &during.cls[CLASS_B];
    CHECKF(a1->in_use - a0->in_use == NA, "class %d: %ld more in use", CLASS_A,
           a1->in_use - a0->in_use);
    CHECKF(b1->in_use - b0->in_use == NB, "class %d: %ld more in use", CLASS_B,
           b1->in_use - b0->in_use);
    /* 32 blocks of 496 bytes fit a pool in both implementations. */
    if (a0->pools == 0) CHECK(a1->pools == (NA + 31) / 32);
    CHECK(b1->pools > b0->pools);
    CHECKF(during.allocated - before.allocated == NA * 496L + NB * 48L,
           "%ld more bytes in allocated blocks", during.allocated - before.allocated);

#ifndef USE_CPYTHON
    check_pyheap_outputs(t1 ? t1 : "", &during, CLASS_A, CLASS_B);
#endif

    for (int i = 0; i < NA; i++) PyObject_Free(a[i]);
    for (int i = 0; i < NB; i++) PyMem_Free(b[i]);
    char *t2 = debug_malloc_stats();
    text_report after = parse_text(t2 ? t2 : "");
    check_consistent(&after, "after");
    CHECK(after.cls[CLASS_A].in_use == a0->in_use);
    CHECK(after.cls[CLASS_B].in_use == b0->in_use);
    CHECK(after.allocated == before.allocated);
    free(t0);
    free(t1);
    free(t2);
    return harness_summary();
}
