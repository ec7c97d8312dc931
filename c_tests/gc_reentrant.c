/* Finalizers and tp_clear that allocate, build new cycles, track and
 * untrack objects, release other objects and ask for a collection (which
 * does nothing and returns 0) leave the heap consistent: everything is
 * freed by later collections and the allocator's counts return to zero. */
// pyheap-test: cpython
#include "gc_nodes.h"

#include "harness.h"

static long nested_results_nonzero, naughty_finalized, naughty_cleared;
static PyObject *stash; /* objects made by finalizers, freed at the end */

static void naughty_finalize(PyObject *self) {
    naughty_finalized++;
    /* A nested collection does nothing. */
    if (PyGC_Collect() != 0) nested_results_nonzero++;
    /* Allocate a new cycle (garbage for a later collection). */
    Node *c = node_new(&Node_Type, -1);
    node_link(c, c);
    Py_DECREF(c);
    /* Untrack and re-track ourselves. */
    PyObject_GC_UnTrack(self);
    PyObject_GC_Track(self);
    /* Keep a fresh object alive through a global. */
    Node *k = node_new(&Node_Type, -1);
    Py_XSETREF(stash, (PyObject *)k);
}

static int naughty_clear(PyObject *self) {
    naughty_cleared++;
    Node *n = (Node *)self;
    if (PyGC_Collect() != 0) nested_results_nonzero++;
    /* Allocate while breaking the cycle, and release references. */
    for (int i = 0; i < 50; i++) {
        Node *t = node_new(&Node_Type, -1);
        Py_DECREF(t);
    }
    Py_CLEAR(n->a);
    Py_CLEAR(n->b);
    return 0;
}

static PyTypeObject Naughty_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Naughty",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = naughty_clear,
    .tp_finalize = naughty_finalize,
};

/* tp_clear misbehaving alone (no finalizer). */
static PyTypeObject NaughtyClear_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.NaughtyClear",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = naughty_clear,
};

int main(void) {
    TEST_INIT();
    CHECK(nodes_ready());
    CHECK(PyType_Ready(&Naughty_Type) == 0);
    CHECK(PyType_Ready(&NaughtyClear_Type) == 0);
    PyGC_Collect();
    Py_ssize_t blocks0 = 0;
    PYHEAP_ONLY(blocks0 = PyHeap_GetAllocatedBlocks());
    (void)blocks0;

    nodes_freed = 0;
    for (int round = 0; round < 40; round++) {
        /* A cycle of naughty and plain nodes (odd rounds: clears only). */
        PyTypeObject *naughty = round % 2 ? &NaughtyClear_Type : &Naughty_Type;
        Node *first = node_new(naughty, 0), *prev = first;
        for (int i = 1; i < 30; i++) {
            Node *x = node_new(i % 3 ? (round % 2 ? naughty : &Node_Type) : naughty, i);
            node_link(prev, x);
            Py_DECREF(x);
            prev = x;
        }
        node_link(prev, first);
        Py_DECREF(first);
        PyGC_Collect();
    }
    CHECK(naughty_finalized == 20 * 10);
    CHECK(nested_results_nonzero == 0);
    Py_CLEAR(stash);
    PyGC_Collect();
    PyGC_Collect();
    CHECK(naughty_cleared >= 20);
    CHECK(naughty_finalized == 20 * 10); /* never twice */
    /* 1200 ring nodes, two nodes per finalizer, 50 per naughty clear. */
    CHECKF(nodes_freed == 1200 + 2 * naughty_finalized + 50 * naughty_cleared, "freed %ld", nodes_freed);
    PYHEAP_ONLY({
        CHECKF(PyHeap_GetAllocatedBlocks() == blocks0, "blocks %zd, was %zd",
               PyHeap_GetAllocatedBlocks(), blocks0);
        Py_ssize_t c;
        PyHeap_GC_GetCount(&c, NULL, NULL);
        CHECK(c >= 0);
    });
    return harness_summary();
}
