/* The minimal tuple type and calls: PyTuple_New/Pack/Size/GetItem/SetItem,
 * the GET/SET_ITEM macros, errors, GC tracking (a collection untracks a
 * tuple that holds no GC object, as CPython's does), and PyObject_Call,
 * PyObject_CallOneArg, PyObject_CallNoArgs, PyCallable_Check. Runs against
 * CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include "harness.h"
#include "weak_nodes.h"

static void tuples(void) {
    PyObject *a = leaf_new(1), *b = leaf_new(2);
    PyObject *t = PyTuple_New(2);
    CHECK(t != NULL && PyTuple_Check(t) && PyTuple_CheckExact(t));
    CHECK(PyTuple_Size(t) == 2 && PyTuple_GET_SIZE(t) == 2);
    CHECK(PyTuple_GET_ITEM(t, 0) == NULL && PyTuple_GET_ITEM(t, 1) == NULL);
    CHECK(PyObject_GC_IsTracked(t));
    PyTuple_SET_ITEM(t, 0, Py_NewRef(a)); /* steals */
    CHECK(PyTuple_SetItem(t, 1, Py_NewRef(b)) == 0);
    CHECK(PyTuple_GetItem(t, 0) == a && PyTuple_GetItem(t, 1) == b);
    CHECK(Py_REFCNT(a) == 2 && Py_REFCNT(b) == 2);
    /* Replacing an item releases the old one. */
    CHECK(PyTuple_SetItem(t, 1, Py_NewRef(a)) == 0);
    CHECK(Py_REFCNT(b) == 1 && Py_REFCNT(a) == 3);

    /* Errors: out of range, not a tuple, shared tuple. */
    CHECK(PyTuple_GetItem(t, 2) == NULL);
    CHECK(last_error_contains("tuple index out of range"));
    CHECK(PyTuple_GetItem(t, -1) == NULL);
    CHECK(last_error_contains("tuple index out of range"));
    CHECK(PyTuple_SetItem(t, 5, Py_NewRef(b)) == -1);
    CHECK(last_error_contains("tuple assignment index out of range"));
    CHECK(Py_REFCNT(b) == 1); /* the item was released */
    CHECK(PyTuple_Size(a) == -1);
    CHECK(last_error_contains("bad argument to internal function"));
    CHECK(PyTuple_GetItem(a, 0) == NULL);
    CHECK(last_error_contains("bad argument to internal function"));
    Py_INCREF(t);
    CHECK(PyTuple_SetItem(t, 0, Py_NewRef(b)) == -1); /* count is 2 */
    CHECK(last_error_contains("bad argument to internal function"));
    CHECK(Py_REFCNT(b) == 1);
    Py_DECREF(t);
    Py_DECREF(t);
    CHECK(Py_REFCNT(a) == 1);

    /* PyTuple_Pack takes new references. */
    PyObject *p = PyTuple_Pack(3, a, b, a);
    CHECK(p != NULL && PyTuple_GET_SIZE(p) == 3);
    CHECK(PyTuple_GET_ITEM(p, 2) == a && Py_REFCNT(a) == 3 && Py_REFCNT(b) == 2);
    Py_DECREF(p);
    CHECK(Py_REFCNT(a) == 1 && Py_REFCNT(b) == 1);
    PyObject *empty = PyTuple_New(0);
    CHECK(empty != NULL && PyTuple_Size(empty) == 0);
    Py_XDECREF(empty);
    CHECK(PyTuple_New(-1) == NULL);
    CHECK(last_error_contains("bad argument to internal function"));

    /* A collection untracks tuples that cannot be in a cycle: here, one of
     * non-GC objects and one of untracked tuples; a tuple holding a GC
     * object stays tracked. */
    PyObject *flat = PyTuple_Pack(2, a, Py_None);
    PyObject *nested = PyTuple_Pack(1, flat);
    WNode *n = wnode_new(&WNode_Type, 3);
    PyObject *holder = PyTuple_Pack(2, a, (PyObject *)n);
    CHECK(PyObject_GC_IsTracked(flat) && PyObject_GC_IsTracked(nested));
    PyGC_Collect();
    CHECK(!PyObject_GC_IsTracked(flat));
    CHECK(PyObject_GC_IsTracked(holder));
    PyGC_Collect(); /* nested sees flat untracked now */
    CHECK(!PyObject_GC_IsTracked(nested));
    CHECK(PyObject_GC_IsTracked(holder));

    /* A cycle through a tuple is collected. */
    n->a = Py_NewRef(holder);
    Py_DECREF(holder);
    Py_DECREF(n);
    CHECK(PyGC_Collect() == 2);
    Py_DECREF(nested);
    Py_DECREF(flat);
    Py_DECREF(a);
    Py_DECREF(b);
}

static void calls(void) {
    PyObject *rec = recorder_new(7), *leaf = leaf_new(8);
    CHECK(PyCallable_Check(rec) && !PyCallable_Check(leaf));
    events_reset();
    PyObject *r = PyObject_CallOneArg(rec, leaf);
    CHECK(r == Py_None);
    Py_XDECREF(r);
    CHECK(nevents == 1 && events[0].arg == leaf);
    PyObject *args = PyTuple_Pack(2, leaf, rec);
    r = PyObject_Call(rec, args, NULL);
    CHECK(r == Py_None);
    Py_XDECREF(r);
    CHECK(nevents == 2 && events[1].arg == leaf);
    r = PyObject_CallNoArgs(rec);
    CHECK(r == Py_None && nevents == 3 && events[2].arg == NULL);
    Py_XDECREF(r);
    /* Not callable. */
    CHECK(PyObject_CallOneArg(leaf, rec) == NULL);
    CHECK(last_error_contains("'test.Leaf' object is not callable"));
    CHECK(PyObject_Call(leaf, args, NULL) == NULL);
    CHECK(last_error_contains("'test.Leaf' object is not callable"));
    /* A failing callable returns NULL with its error. */
    ((Recorder *)rec)->fail = 1;
    CHECK(PyObject_CallNoArgs(rec) == NULL);
    CHECK(last_error_contains(""));
    CHECK(Py_REFCNT(leaf) == 2 && Py_REFCNT(rec) == 2);
    Py_DECREF(args);
    Py_DECREF(rec);
    Py_DECREF(leaf);
}

int main(void) {
    TEST_INIT();
    CHECK(weak_types_ready());
    tuples();
    calls();
    return harness_summary();
}
