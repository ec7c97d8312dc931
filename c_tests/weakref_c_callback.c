/* PyHeap_Weakref_NewRefWithCallback: a C function told when an object
 * dies, with its context, once, in order with object callbacks, through
 * reference counting and through the collector. pyheap only. */
#include "compat.h"

#include "harness.h"
#include "weak_nodes.h"

static int order[16];
static int norder;
static PyObject *seen_ref[16];
static PyObject *seen_obj[16];

static void on_death(PyObject *weakref, void *ctx) {
    int id = *(int *)ctx;
    if (norder < 16) {
        seen_ref[norder] = weakref;
        seen_obj[norder] = PyWeakref_GetObject(weakref);
        order[norder++] = id;
    }
}

int main(void) {
    CHECK(weak_types_ready());
    static int ids[4] = {1, 2, 3, 4};

    /* By reference counting: newest first, mixed with an object callback. */
    PyObject *leaf = leaf_new(1);
    PyObject *w1 = PyHeap_Weakref_NewRefWithCallback(leaf, on_death, &ids[0]);
    PyObject *rec = recorder_new(99);
    PyObject *w2 = PyWeakref_NewRef(leaf, rec);
    PyObject *w3 = PyHeap_Weakref_NewRefWithCallback(leaf, on_death, &ids[2]);
    CHECK(w1 && w2 && w3 && w1 != w3);
    CHECK(PyWeakref_CheckRefExact(w1));
    CHECK(PyWeakref_GetObject(w1) == leaf);
    /* Without a function it is the shared basic reference. */
    PyObject *basic = PyHeap_Weakref_NewRefWithCallback(leaf, NULL, NULL);
    PyObject *basic2 = PyWeakref_NewRef(leaf, NULL);
    CHECK(basic != NULL && basic == basic2);
    CHECK(PyHeap_Weakref_Count(leaf) == 4);

    events_reset();
    Py_DECREF(leaf);
    CHECK(norder == 2 && order[0] == 3 && order[1] == 1);
    CHECK(seen_ref[0] == w3 && seen_ref[1] == w1);
    CHECK(seen_obj[0] == Py_None && seen_obj[1] == Py_None);
    CHECK(event_index(EV_CALL, 99) >= 0); /* the object callback ran too */
    Py_DECREF(w1);
    Py_DECREF(w2);
    Py_DECREF(w3);
    Py_DECREF(basic);
    Py_DECREF(basic2);
    Py_DECREF(rec);

    /* A weak reference that dies first is never called. */
    norder = 0;
    leaf = leaf_new(2);
    PyObject *w = PyHeap_Weakref_NewRefWithCallback(leaf, on_death, &ids[1]);
    Py_DECREF(w);
    Py_DECREF(leaf);
    CHECK(norder == 0);

    /* Through the collector: a cycle dies, the function is told. */
    norder = 0;
    WNode *a = wnode_new(&WNode_Type, 10), *b = wnode_new(&WNode_Type, 11);
    a->a = Py_NewRef((PyObject *)b);
    b->a = Py_NewRef((PyObject *)a);
    w = PyHeap_Weakref_NewRefWithCallback((PyObject *)b, on_death, &ids[3]);
    Py_DECREF(a);
    Py_DECREF(b);
    CHECK(PyGC_Collect() == 2);
    CHECK(norder == 1 && order[0] == 4 && seen_ref[0] == w && seen_obj[0] == Py_None);
    Py_DECREF(w);

    /* Objects that cannot be weakly referenced. */
    PyObject *plain = PyObject_New(PyObject, &Plain_Type);
    CHECK(PyHeap_Weakref_NewRefWithCallback(plain, on_death, NULL) == NULL);
    CHECK(last_error_contains("cannot create weak reference to 'test.Plain' object"));
    CHECK(PyHeap_Weakref_NewRefWithCallback(NULL, on_death, NULL) == NULL);
    CHECK(last_error_contains("bad argument to internal function"));
    CHECK(PyHeap_Weakref_Count(plain) == 0);
    Py_DECREF(plain);
    return harness_summary();
}
