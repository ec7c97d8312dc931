/* The collector frees cycles: short and long ones, untracked objects are
 * left alone, finalizers run once before any clear, resurrection keeps what
 * the finalizer saved (and what it reaches), legacy tp_del cycles become
 * garbage. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "gc_nodes.h"

#include "harness.h"

/* A ring of `len` nodes of type tp; returns a new reference to its first. */
static Node *ring(PyTypeObject *tp, long len, long first_id) {
    Node *first = node_new(tp, first_id), *prev = first;
    for (long i = 1; i < len; i++) {
        Node *n = node_new(tp, first_id + i);
        node_link(prev, n);
        Py_DECREF(n);
        prev = n;
    }
    node_link(prev, first);
    return first;
}

static void collect_all(void) {
    PyGC_Collect();
    PyGC_Collect();
}

int main(void) {
    TEST_INIT();
    CHECK(nodes_ready());
    collect_all();
    PyGC_Disable(); /* only explicit collections in this test */

    /* A 2-cycle and a self-cycle survive reference counting... */
    Node *x = ring(&Node_Type, 2, 0);
    Node *self = node_new(&Node_Type, 9);
    node_link(self, self);
    Py_DECREF(x);
    Py_DECREF(self);
    CHECK(nodes_freed == 0);
    /* ...and are freed by a collection, which counts them. */
    Py_ssize_t found = PyGC_Collect();
    CHECK(found == 0 || found >= 3); /* PyGC_Collect is a no-op when disabled */
    PyGC_Enable();
    found = PyGC_Collect();
    PyGC_Disable();
    CHECKF(nodes_freed == 3, "freed %ld", nodes_freed);
    CHECK(found >= 3);
    CHECK(nodes_cleared >= 1);

    /* A 100,000-node ring. */
    nodes_freed = 0;
    Py_DECREF(ring(&Node_Type, 100000, 0));
    CHECK(nodes_freed == 0);
    PyGC_Enable();
    collect_all();
    PyGC_Disable();
    CHECKF(nodes_freed == 100000, "freed %ld", nodes_freed);

    /* Untracked objects are never collected. */
    nodes_freed = 0;
    Node *u = ring(&Node_Type, 2, 0);
    PyObject_GC_UnTrack(u);
    PyObject_GC_UnTrack(u->a);
    CHECK(!PyObject_GC_IsTracked((PyObject *)u));
    Py_DECREF(u);
    PyGC_Enable();
    collect_all();
    CHECK(nodes_freed == 0);
    /* Break it by hand. */
    PyObject *other = u->a;
    Py_INCREF(other);
    node_clear(other); /* other -> u gone: u freed (its a -> other dropped) */
    CHECK(nodes_freed == 1);
    Py_DECREF(other);
    CHECK(nodes_freed == 2);
    PyGC_Disable();

    /* Finalizers: each runs once, all before any clear. */
    nodes_freed = nodes_finalized = nodes_cleared = 0;
    Py_DECREF(ring(&FinNode_Type, 5, 0));
    PyGC_Enable();
    collect_all();
    PyGC_Disable();
    CHECK(nodes_finalized == 5 && nodes_freed == 5);

    /* Resurrection: the finalizer saves one node; the whole cycle it reaches
     * survives, no finalizer runs twice, and it is freed once released. */
    nodes_freed = nodes_finalized = 0;
    Node *r = ring(&FinNode_Type, 3, 0);
    r->resurrect = 1;
    Py_DECREF(r);
    PyGC_Enable();
    collect_all();
    CHECK(lazarus == (PyObject *)r);
    CHECK(nodes_finalized == 3);
    CHECK(nodes_freed == 0);
    CHECK(PyObject_GC_IsFinalized((PyObject *)r));
    CHECK(((Node *)r->a)->a != NULL); /* the graph it reaches is intact */
    r->resurrect = 0;
    Py_CLEAR(lazarus);
    collect_all();
    CHECK(nodes_freed == 3);
    CHECK(nodes_finalized == 3);
    PyGC_Disable();

    /* Legacy tp_del in a cycle: uncollectable, moved to the garbage list. */
    nodes_freed = 0;
    Node *d = ring(&DelNode_Type, 2, 0);
    Node *hanger = node_new(&Node_Type, 5); /* reachable from the cycle */
    node_link(hanger, hanger);
    Py_INCREF(hanger);
    ((Node *)d)->b = (PyObject *)hanger;
    Py_DECREF(hanger);
    Py_DECREF(d);
    PyGC_Enable();
    collect_all();
    CHECK(nodes_freed == 0);
    CHECK(legacy_dels == 0);
    PYHEAP_ONLY({
        CHECK(PyHeap_GC_GetGarbage(NULL, NULL) == 2);
        Py_ssize_t st_unc = 0;
        PyHeap_GCStats stats[3];
        PyHeap_GC_GetStats(stats);
        st_unc = stats[2].uncollectable;
        CHECK(st_unc >= 3); /* two DelNodes and the node they reach */
    });
    return harness_summary();
}
