/* What Py_FinalizeEx reports and gives back: the warning about
 * uncollectable garbage (a cycle with a legacy tp_del), listed object by
 * object under PyHeap_GC_DEBUG_UNCOLLECTABLE; the allocator statistics when
 * configured, printed once (not again at exit); and the wholly free arena
 * handed back to the OS. */
// pyheap-test: pool-only
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "capture.h"
#include "harness.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

typedef struct {
    PyObject_HEAD
    PyObject *other;
} Legacy;

static int legacy_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Legacy *)self)->other);
    return 0;
}

static void legacy_del(PyObject *self) { (void)self; }

static void legacy_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(((Legacy *)self)->other);
    PyObject_GC_Del(self);
}

static PyTypeObject Legacy_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Legacy",
    .tp_basicsize = sizeof(Legacy),
    .tp_dealloc = legacy_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = legacy_traverse,
    .tp_del = legacy_del,
};

static void legacy_cycle(void) {
    Legacy *a = PyObject_GC_New(Legacy, &Legacy_Type);
    Legacy *b = PyObject_GC_New(Legacy, &Legacy_Type);
    a->other = Py_NewRef((PyObject *)b);
    b->other = Py_NewRef((PyObject *)a);
    PyObject_GC_Track((PyObject *)a);
    PyObject_GC_Track((PyObject *)b);
    Py_DECREF(a);
    Py_DECREF(b);
}

/* Runs after pyheap's own exit handler (registered later, so run
 * earlier): the statistics must not have been printed a second time. */
static void at_exit_check(void) {
    int n = count(got, "arenas");
    if (n == 0 || count(got, "# arenas allocated total") != 1) {
        fprintf(stderr, "statistics printed %d times in all\n",
                count(got, "# arenas allocated total"));
        _exit(1);
    }
}

int main(void) {
    atexit(at_exit_check);
    Py_Initialize();
    PyHeap_SetOutput(collect, NULL);
    CHECK(PyType_Ready(&Legacy_Type) == 0);
    CHECK(PyHeap_SetOption("malloc_stats", "1") == 0);

    /* A second arena's worth of blocks, all freed: one wholly free arena
     * is kept as the spare until finalisation. */
    enum { N = 40000 };
    static void *blocks[N];
    void *keep = PyObject_Malloc(64); /* keeps the first arena in use */
    for (int i = 0; i < N; i++) blocks[i] = PyObject_Malloc(64);
    for (int i = 0; i < N; i++) PyObject_Free(blocks[i]);
    legacy_cycle();
    PyHeap_HeapStats before, after;
    CHECK(PyHeap_GetHeapStats(&before) == 0);
    CHECK(Py_FinalizeEx() == 0);
    CHECK(strstr(got, "ResourceWarning: gc: 2 uncollectable objects at shutdown; "
                      "use PyHeap_GC_SetDebug(PyHeap_GC_DEBUG_UNCOLLECTABLE) to "
                      "list them") != NULL);
    CHECK(count(got, "# arenas allocated total") == 1);
    CHECK(PyHeap_GetHeapStats(&after) == 0);
    CHECKF(after.arenas_current < before.arenas_current, "arenas %zu -> %zu",
           before.arenas_current, after.arenas_current);
    CHECKF(after.pools_dirty == 0, "%zu dirty pools", after.pools_dirty);

    /* Again, listing the objects (the first two are still there). */
    capture_reset();
    Py_Initialize();
    legacy_cycle();
    PyHeap_GC_SetDebug(PyHeap_GC_DEBUG_UNCOLLECTABLE);
    CHECK(Py_FinalizeEx() == 0);
    CHECK(strstr(got, "gc: 4 uncollectable objects at shutdown\n") != NULL);
    CHECK(count(got, "    <test.Legacy 0x") == 4);
    if (harness_failed) fprintf(stderr, "%s", got);
    PyObject_Free(keep);
    return harness_summary();
}
