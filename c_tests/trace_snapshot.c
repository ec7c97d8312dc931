/* Snapshots: statistics group allocations by the line and file that made
 * them (allocations from known functions and lines); a comparison shows
 * the growth between two snapshots; dump and load give the same
 * statistics; text, JSON and collapsed-stack output; a frame provider's
 * script frames replace or top the native ones, and a provider that
 * allocates itself (re-entrant allocation) is not traced. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "harness.h"

static int line_a, line_b;
static void *kept_mem[64], *kept_obj[64];
static int nmem, nobj;

__attribute__((noinline)) static void alloc_a(void) {
    for (int i = 0; i < 10; i++) {
        line_a = __LINE__ + 1;
        kept_mem[nmem++] = PyMem_Malloc(100);
    }
}

__attribute__((noinline)) static void alloc_b(void) {
    for (int i = 0; i < 5; i++) {
        line_b = __LINE__ + 1;
        kept_obj[nobj++] = PyObject_Malloc(200);
    }
}

/* What the statistics callback saw for one line. */
typedef struct {
    int line;
    size_t size, count;
    Py_ssize_t size_diff, count_diff;
    int rank;
} Want;

static int seen;

static int find_line(const PyHeap_Statistic *st, void *ctx) {
    Want *w = ctx;
    if (strstr(st->frames[0].filename, "trace_snapshot.c") &&
        (int)st->frames[0].lineno == w->line) {
        w->size = st->size;
        w->count = st->count;
        w->size_diff = st->size_diff;
        w->count_diff = st->count_diff;
        w->rank = seen;
    }
    seen++;
    return 0;
}

static Want stat_of(PyHeap_Snapshot *s, PyHeap_Snapshot *old, int line) {
    Want w = {line, 0, 0, 0, 0, -1};
    seen = 0;
    if (old)
        PyHeap_Snapshot_CompareTo(s, old, "lineno", 0, find_line, &w);
    else
        PyHeap_Snapshot_Statistics(s, "lineno", 0, find_line, &w);
    return w;
}

static char *render(PyHeap_Snapshot *s, PyHeap_Snapshot *old, const char *key,
                    int format) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    PyHeap_Snapshot_Write(s, old, key, 0, format, 0, f);
    fclose(f);
    return buf;
}

/* A provider: two script frames; it allocates from pyheap itself. */
static int provider_calls;

static int script_frames(PyHeap_Frame *frames, int max, void *ctx) {
    (void)ctx;
    provider_calls++;
    void *scratch = PyMem_Malloc(33); /* re-entrant: not traced */
    PyMem_Free(scratch);
    if (max < 2) return 0;
    frames[0].filename = "game.lua";
    frames[0].lineno = 42;
    frames[1].filename = "main.lua";
    frames[1].lineno = 7;
    return 2;
}

int main(void) {
    CHECK(PyHeap_TraceMalloc_TakeSnapshot() == NULL);
    CHECK(last_error_contains("must be tracing memory allocations"));
    CHECK(PyHeap_TraceMalloc_Start(8) == 0);

    alloc_a();
    alloc_b();
    PyHeap_Snapshot *s1 = PyHeap_TraceMalloc_TakeSnapshot();
    CHECK(s1 != NULL);
    size_t total = 0, blocks = 0;
    PyHeap_Snapshot_GetTotals(s1, &total, &blocks);
    CHECKF(total == 2000 && blocks == 15, "%zu bytes in %zu", total, blocks);

    Want a = stat_of(s1, NULL, line_a), b = stat_of(s1, NULL, line_b);
    CHECKF(a.size == 1000 && a.count == 10, "a: %zu in %zu", a.size, a.count);
    CHECKF(b.size == 1000 && b.count == 5, "b: %zu in %zu", b.size, b.count);

    /* Growth: alloc_b again. */
    alloc_b();
    PyHeap_Snapshot *s2 = PyHeap_TraceMalloc_TakeSnapshot();
    Want d = stat_of(s2, s1, line_b), da = stat_of(s2, s1, line_a);
    CHECKF(d.size == 2000 && d.size_diff == 1000 && d.count_diff == 5 && d.rank == 0,
           "b: %zu %+zd %+zd rank %d", d.size, d.size_diff, d.count_diff, d.rank);
    CHECK(da.size == 1000 && da.size_diff == 0 && da.count_diff == 0);

    /* Text: tracemalloc's line format, biggest first. */
    char *text = render(s2, NULL, "lineno", PYHEAP_FORMAT_TEXT);
    char want[256];
    snprintf(want, sizeof want, "trace_snapshot.c:%d: size=2000 B, count=10, average=200 B\n",
             line_b);
    CHECKF(strstr(text, want) != NULL, "%s", text);
    char *diff = render(s2, s1, "lineno", PYHEAP_FORMAT_TEXT);
    snprintf(want, sizeof want,
             "trace_snapshot.c:%d: size=2000 B (+1000 B), count=10 (+5), average=200 B",
             line_b);
    CHECKF(strstr(diff, want) != NULL, "%s", diff);
    char *by_file = render(s2, NULL, "filename", PYHEAP_FORMAT_TEXT);
    CHECKF(strstr(by_file, "trace_snapshot.c:0: size=3000 B, count=20") != NULL, "%s",
           by_file);
    char *json = render(s2, NULL, "lineno", PYHEAP_FORMAT_JSON);
    snprintf(want, sizeof want, "\"lineno\": %d, \"function\": \"alloc_b\"", line_b);
    CHECKF(strncmp(json, "{\"statistics\": [", 16) == 0 && strstr(json, want), "%s", json);
    char *collapsed = render(s2, NULL, NULL, PYHEAP_FORMAT_COLLAPSED);
    /* Outermost first; alloc_b's calls from two lines of main are two
     * stacks. */
    CHECKF(strstr(collapsed, "main (") && strstr(collapsed, ");alloc_b (") &&
               strstr(collapsed, ");alloc_a (") && strstr(collapsed, " 1000\n") &&
               strstr(collapsed, "main (") < strstr(collapsed, "alloc_"),
           "%s", collapsed);

    /* Dump and load: the same statistics. */
    char path[] = "/tmp/pyheap-snapshot-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(PyHeap_Snapshot_Dump(s2, path) == 0);
    PyHeap_Snapshot *loaded = PyHeap_Snapshot_Load(path);
    CHECK(loaded != NULL);
    if (loaded) {
        char *again = render(loaded, NULL, "lineno", PYHEAP_FORMAT_TEXT);
        CHECK(strcmp(again, text) == 0);
        char *again_diff = render(loaded, s1, "lineno", PYHEAP_FORMAT_TEXT);
        CHECK(strcmp(again_diff, diff) == 0);
        free(again);
        free(again_diff);
    }
    unlink(path);
    CHECK(PyHeap_Snapshot_Load("/nonexistent/snapshot") == NULL);
    PyHeap_ClearError();
    CHECK(PyHeap_Snapshot_Statistics(s2, "traceback", 1, NULL, NULL) == -1);
    CHECK(last_error_contains("cumulative mode cannot by used with key type 'traceback'"));

    /* A provider's frames instead of native ones. */
    PyHeap_SetFrameProvider(script_frames, NULL, 0);
    PyHeap_TraceMalloc_ClearTraces();
    void *p = PyMem_Malloc(1234);
    size_t cur = 0;
    PyHeap_TraceMalloc_GetTracedMemory(&cur, NULL);
    CHECKF(cur == 1234, "%zu: the provider's own allocation is not traced", cur);
    CHECK(provider_calls == 1);
    PyHeap_Snapshot *s3 = PyHeap_TraceMalloc_TakeSnapshot();
    char *script = render(s3, NULL, "traceback", PYHEAP_FORMAT_TEXT);
    /* CPython's format: the oldest frame heads the line, and the frames
     * follow oldest first. */
    CHECKF(strncmp(script, "main.lua:7: size=1234 B, count=1", 32) == 0 &&
               strstr(script, "    File \"main.lua\", line 7\n    File \"game.lua\", line 42\n") &&
               !strstr(script, "trace_snapshot.c"),
           "%s", script);
    /* ... and above them. */
    PyHeap_SetFrameProvider(script_frames, NULL, 1);
    void *q = PyMem_Malloc(99);
    PyHeap_Snapshot *s4 = PyHeap_TraceMalloc_TakeSnapshot();
    char *mixed = render(s4, NULL, "traceback", PYHEAP_FORMAT_TEXT);
    const char *m = strstr(mixed, ": size=99 B");
    CHECKF(m && strstr(m, "trace_snapshot.c\", line") &&
               strstr(m, "    File \"main.lua\", line 7\n    File \"game.lua\", line 42\n") &&
               strstr(m, "trace_snapshot.c\", line") < strstr(m, "main.lua"),
           "%s", mixed);
    PyHeap_SetFrameProvider(NULL, NULL, 0);

    PyMem_Free(p);
    PyMem_Free(q);
    for (int i = 0; i < nmem; i++) PyMem_Free(kept_mem[i]);
    for (int i = 0; i < nobj; i++) PyObject_Free(kept_obj[i]);
    free(text);
    free(diff);
    free(by_file);
    free(json);
    free(collapsed);
    free(script);
    free(mixed);
    PyHeap_Snapshot_Free(s1);
    PyHeap_Snapshot_Free(s2);
    PyHeap_Snapshot_Free(s3);
    PyHeap_Snapshot_Free(s4);
    PyHeap_Snapshot_Free(loaded);
    PyHeap_TraceMalloc_Stop();
    return harness_summary();
}
