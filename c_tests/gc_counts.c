/* The collector's bookkeeping as CPython reports it: default thresholds
 * 700/10/10; count 0 moves at GC allocation (not at track) and back at
 * PyObject_GC_Del; an automatic collection runs once it passes threshold 0
 * and resets the counts; a disabled collector collects nothing by itself;
 * freeze/unfreeze; stats; callbacks; get_objects/referrers/referents. */
#include "gc_nodes.h"

#include "harness.h"

static Py_ssize_t c0(void) {
    Py_ssize_t c;
    PyHeap_GC_GetCount(&c, NULL, NULL);
    return c;
}

static int starts, stops;
static PyHeap_GCInfo last_stop;
static void on_gc(int phase, const PyHeap_GCInfo *info, void *ctx) {
    (void)ctx;
    if (phase == PyHeap_GC_PHASE_START) {
        starts++;
        CHECK(info->collected == 0 && info->uncollectable == 0);
    } else {
        stops++;
        last_stop = *info;
    }
}

static int counted;
static int count_cb(PyObject *op, void *ctx) {
    (void)op;
    (void)ctx;
    counted++;
    return 0;
}
static PyObject *seen[8];
static int nseen;
static int record_cb(PyObject *op, void *ctx) {
    (void)ctx;
    if (nseen < 8) seen[nseen++] = op;
    return 0;
}

int main(void) {
    CHECK(nodes_ready());
    Py_ssize_t t0, t1, t2;
    PyHeap_GC_GetThreshold(&t0, &t1, &t2);
    CHECK(t0 == 700 && t1 == 10 && t2 == 10);
    CHECK(PyGC_IsEnabled());

    /* Count 0 follows GC allocations, not tracking. */
    Py_ssize_t before = c0();
    Node *n = PyObject_GC_New(Node, &Node_Type);
    n->a = n->b = NULL;
    n->id = 0;
    CHECK(c0() == before + 1);
    PyObject_GC_Track(n);
    CHECK(c0() == before + 1);
    Py_DECREF(n);
    CHECK(c0() == before);

    /* Automatic collection: 701 net GC allocations trigger generation 0. */
    CHECK(PyHeap_GC_AddCallback(on_gc, NULL) == 0);
    PyHeap_GCStats s0[3], s1[3];
    PyHeap_GC_GetStats(s0);
    nodes_freed = 0;
    Node *keep[800];
    for (int i = 0; i < 800; i++) {
        keep[i] = node_new(&Node_Type, i);
        node_link(keep[i], keep[i]); /* self-cycles */
        if (i < 400) Py_DECREF(keep[i]); /* garbage for the collector */
    }
    PyHeap_GC_GetStats(s1);
    CHECK(s1[0].collections == s0[0].collections + 1);
    CHECK(starts == 1 && stops == 1 && last_stop.generation == 0);
    CHECKF(last_stop.collected == 400 && nodes_freed == 400, "collected %zd freed %ld",
           last_stop.collected, nodes_freed);
    Py_ssize_t c1;
    PyHeap_GC_GetCount(NULL, &c1, NULL);
    CHECK(c1 == 1);
    CHECK(c0() == 99); /* allocations since that collection */
    CHECK(PyHeap_GC_RemoveCallback(on_gc, NULL) == 0);
    CHECK(PyHeap_GC_RemoveCallback(on_gc, NULL) == -1);

    /* get_objects / referrers / referents. */
    counted = 0;
    CHECK(PyHeap_GC_GetObjects(-1, count_cb, NULL) >= 400);
    CHECK(PyHeap_GC_GetObjects(3, count_cb, NULL) == -1);
    CHECK(strstr(PyHeap_LastError(), "generation parameter must be less than") != NULL);
    CHECK(PyHeap_GC_GetObjects(-2, count_cb, NULL) == -1);
    Node *p = node_new(&Node_Type, 1000), *q = node_new(&Node_Type, 1001);
    node_link(p, q);
    PyObject *target = (PyObject *)q;
    nseen = 0;
    CHECK(PyHeap_GC_GetReferrers(&target, 1, record_cb, NULL) == 1 && seen[0] == (PyObject *)p);
    PyObject *src = (PyObject *)p;
    nseen = 0;
    CHECK(PyHeap_GC_GetReferents(&src, 1, record_cb, NULL) == 1 && seen[0] == (PyObject *)q);
    Py_DECREF(q);

    /* Disabled: nothing collected automatically; PyGC_Collect is a no-op,
     * PyHeap_GC_Collect still works. */
    CHECK(PyGC_Disable() == 1);
    nodes_freed = 0;
    for (int i = 0; i < 400; i++) Py_DECREF(keep[400 + i]);
    for (int i = 0; i < 2000; i++) {
        Node *g = node_new(&Node_Type, i);
        node_link(g, g);
        Py_DECREF(g);
    }
    CHECK(nodes_freed == 0);
    CHECK(PyGC_Collect() == 0);
    CHECK(PyHeap_GC_Collect(2) == 2400 && nodes_freed == 2400);
    CHECK(PyHeap_GC_Collect(7) == -1);
    CHECK(strstr(PyHeap_LastError(), "invalid generation") != NULL);
    CHECK(PyGC_Enable() == 0);

    /* Freeze: frozen cycles are not collected until unfrozen. */
    nodes_freed = 0;
    Node *f = node_new(&Node_Type, 7);
    node_link(f, f);
    PyHeap_GC_Freeze();
    CHECK(PyHeap_GC_GetFreezeCount() >= 2);
    Py_ssize_t cc0, cc1, cc2;
    PyHeap_GC_GetCount(&cc0, &cc1, &cc2);
    CHECK(cc0 == 0 && cc1 == 0 && cc2 == 0);
    Py_DECREF(f);
    PyHeap_GC_Collect(2);
    CHECK(nodes_freed == 0);
    PyHeap_GC_Unfreeze();
    CHECK(PyHeap_GC_GetFreezeCount() == 0);
    PyHeap_GC_Collect(2);
    CHECK(nodes_freed == 1);

    /* set_threshold: negative keeps; 0 turns automatic collection off. */
    PyHeap_GC_SetThreshold(0, -1, -1);
    PyHeap_GC_GetThreshold(&t0, &t1, &t2);
    CHECK(t0 == 0 && t1 == 10 && t2 == 10);
    nodes_freed = 0;
    for (int i = 0; i < 1500; i++) {
        Node *g = node_new(&Node_Type, i);
        node_link(g, g);
        Py_DECREF(g);
    }
    CHECK(nodes_freed == 0);
    PyHeap_GC_SetThreshold(700, 10, 10);
    PyHeap_GC_Collect(2);
    CHECK(nodes_freed == 1500);

    /* DEBUG_SAVEALL: unreachable objects go to the garbage list instead. */
    PyHeap_GC_SetDebug(PyHeap_GC_DEBUG_SAVEALL);
    CHECK(PyHeap_GC_GetDebug() == PyHeap_GC_DEBUG_SAVEALL);
    nodes_freed = 0;
    Node *sv = node_new(&Node_Type, 1);
    node_link(sv, sv);
    Py_DECREF(sv);
    CHECK(PyHeap_GC_Collect(2) == 1);
    CHECK(nodes_freed == 0 && PyHeap_GC_GetGarbage(NULL, NULL) == 1);
    PyHeap_GC_SetDebug(0);
    CHECK(PyHeap_GC_ClearGarbage() == 1);
    PyHeap_GC_Collect(2);
    CHECK(nodes_freed == 1);
    return harness_summary();
}
