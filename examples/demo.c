/* pyheap demo: CPython's objects, cycle collector, weak references and
 * allocator API in a plain C program.
 *
 * Build and run (from the repository root):
 *   cargo build --release && cc -O2 -Iinclude examples/demo.c \
 *     target/release/libpyheap.a -lpthread -ldl -lm -o target/demo && ./target/demo
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "pyheap.h"

typedef struct node {
    struct node *next;
    char name[40];
} node;

/* An object type written exactly as for CPython: a GC container that can
 * be weakly referenced. */
typedef struct {
    PyObject_HEAD
    PyObject *partner;
    PyObject *weakreflist;
    int id;
} Pair;

static int pair_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Pair *)self)->partner);
    return 0;
}

static int pair_clear(PyObject *self) {
    Py_CLEAR(((Pair *)self)->partner);
    return 0;
}

static void pair_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    if (((Pair *)self)->weakreflist != NULL) PyObject_ClearWeakRefs(self);
    Py_CLEAR(((Pair *)self)->partner);
    PyObject_GC_Del(self);
}

static PyTypeObject Pair_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "demo.Pair",
    .tp_basicsize = sizeof(Pair),
    .tp_dealloc = pair_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = pair_traverse,
    .tp_clear = pair_clear,
    .tp_weaklistoffset = offsetof(Pair, weakreflist),
};

static PyObject *pair_new(int id) {
    Pair *p = PyObject_GC_New(Pair, &Pair_Type);
    if (p == NULL) return NULL;
    p->partner = NULL;
    p->weakreflist = NULL;
    p->id = id;
    PyObject_GC_Track((PyObject *)p);
    return (PyObject *)p;
}

static void on_death(PyObject *weakref, void *ctx) {
    printf("  weakref callback: pair %d died (the weakref now gives %s)\n", *(int *)ctx,
           PyWeakref_GetObject(weakref) == Py_None ? "None" : "the object");
}

static void objects_demo(void) {
    if (PyType_Ready(&Pair_Type) != 0) return;
    /* Two pairs pointing at each other: reference counting cannot free
     * them, the cycle collector does. */
    static int ids[2] = {1, 2};
    PyObject *a = pair_new(ids[0]), *b = pair_new(ids[1]);
    ((Pair *)a)->partner = Py_NewRef(b);
    ((Pair *)b)->partner = Py_NewRef(a);
    PyObject *wa = PyHeap_Weakref_NewRefWithCallback(a, on_death, &ids[0]);
    PyObject *wb = PyHeap_Weakref_NewRefWithCallback(b, on_death, &ids[1]);
    printf("objects: a cycle of two demo.Pair, refcounts %zd and %zd\n", Py_REFCNT(a),
           Py_REFCNT(b));
    Py_DECREF(a);
    Py_DECREF(b);
    printf("  after Py_DECREF of both: still alive, weakref gives %s\n",
           PyWeakref_GetObject(wa) == a ? "the object" : "None");
    Py_ssize_t n = PyGC_Collect();
    printf("  PyGC_Collect() found %zd unreachable objects\n\n", n);
    Py_DECREF(wa);
    Py_DECREF(wb);
}

/* Where memory goes: tracing native frames, a snapshot's statistics, and
 * what keeps a leaked object alive. */
static void *grow_cache(int n) { return PyMem_Malloc(64 + 16 * (size_t)n); }

static void tracing_demo(void) {
    PyHeap_TraceMalloc_Start(4);
    void *cache[200];
    for (int i = 0; i < 200; i++) cache[i] = grow_cache(i);
    void *other = PyObject_Malloc(4000);
    size_t current = 0, peak = 0;
    PyHeap_TraceMalloc_GetTracedMemory(&current, &peak);
    printf("tracing: %zu bytes traced (peak %zu); biggest allocation sites:\n", current, peak);
    PyHeap_Snapshot *snap = PyHeap_TraceMalloc_TakeSnapshot();
    if (snap != NULL) {
        PyHeap_Snapshot_Write(snap, NULL, "lineno", 0, PYHEAP_FORMAT_TEXT, 2, stdout);
        PyHeap_Snapshot_Free(snap);
    }
    for (int i = 0; i < 200; i++) PyMem_Free(cache[i]);
    PyObject_Free(other);
    PyHeap_TraceMalloc_Stop();
    printf("\n");
}

int main(void) {
    Py_Initialize();
    objects_demo();
    tracing_demo();

    /* Small objects come from 16 KiB pools inside 1 MiB arenas. */
    node *head = NULL;
    for (int i = 0; i < 100000; i++) {
        node *n = PyObject_Malloc(sizeof *n);
        if (n == NULL) return 1;
        snprintf(n->name, sizeof n->name, "node %d", i);
        n->next = head;
        head = n;
    }
    /* Arrays through the MEM domain, resized in place or moved as needed. */
    double *v = PyMem_New(double, 16);
    PyMem_Resize(v, double, 4096); /* above 512 bytes: served by the RAW domain */
    if (v == NULL) return 1;

    PyHeap_HeapStats st;
    PyHeap_GetHeapStats(&st);
    printf("live blocks: %zd (pooled %zu in %zu pools, %zu arenas; %zu from malloc)\n",
           PyHeap_GetAllocatedBlocks(), st.pooled_blocks, st.pools_in_use, st.arenas_current,
           st.raw_blocks);

    /* Free every other node: pools stay, their blocks are reused. */
    size_t freed = 0;
    for (node **link = &head; *link != NULL;) {
        node *n = *link;
        if (freed++ % 2 == 0) {
            *link = n->next;
            PyObject_Free(n);
        } else {
            link = &n->next;
        }
    }
    printf("after freeing half: %zd live blocks\n", PyHeap_GetAllocatedBlocks());

    /* Free the rest: empty arenas go back to the OS (one is kept). */
    while (head != NULL) {
        node *n = head;
        head = n->next;
        PyObject_Free(n);
    }
    PyMem_Del(v);
    PyHeap_GetHeapStats(&st);
    printf("after freeing all: %zd live blocks, %zu arena(s) kept, %zu given back\n\n",
           PyHeap_GetAllocatedBlocks(), st.arenas_current, st.arenas_reclaimed);

    /* CPython's sys._debugmallocstats() report, for a heap with something in it. */
    void *keep[3] = {PyObject_Malloc(24), PyObject_Malloc(100), PyMem_Malloc(500)};
    PyHeap_FPrintMallocStats(stdout, PYHEAP_STATS_TEXT);
    PyObject_Free(keep[0]);
    PyObject_Free(keep[1]);
    PyMem_Free(keep[2]);
    return Py_FinalizeEx();
}
