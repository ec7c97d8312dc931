/* Weak references without the collector: layout, creation and sharing,
 * the getters while the referent lives and after it dies, proxies, type
 * checks, errors, and a weak reference outliving its referent. Runs against
 * CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stddef.h>

#include "harness.h"
#include "weak_nodes.h"

static PyObject *list_head(PyObject *leaf) { return ((Leaf *)leaf)->weakreflist; }

static void layout(void) {
    CHECK(sizeof(PyWeakReference) == 64);
    CHECK(offsetof(PyWeakReference, wr_object) == 16);
    CHECK(offsetof(PyWeakReference, wr_callback) == 24);
    CHECK(offsetof(PyWeakReference, hash) == 32);
    CHECK(offsetof(PyWeakReference, wr_prev) == 40);
    CHECK(offsetof(PyWeakReference, wr_next) == 48);
    CHECK(_PyWeakref_RefType.tp_basicsize == (Py_ssize_t)sizeof(PyWeakReference));
    CHECK(strcmp(_PyWeakref_RefType.tp_name, "weakref.ReferenceType") == 0);
    CHECK(strcmp(_PyWeakref_ProxyType.tp_name, "weakref.ProxyType") == 0);
    CHECK(strcmp(_PyWeakref_CallableProxyType.tp_name, "weakref.CallableProxyType") == 0);
    CHECK(PyType_IS_GC(&_PyWeakref_RefType));
}

static void alive_and_dead(void) {
    PyObject *leaf = leaf_new(1);
    PyObject *r1 = PyWeakref_NewRef(leaf, NULL);
    CHECK(r1 != NULL);
    CHECK(PyWeakref_Check(r1) && PyWeakref_CheckRef(r1) && PyWeakref_CheckRefExact(r1));
    CHECK(!PyWeakref_CheckProxy(r1));
    CHECK(!PyWeakref_Check(leaf));
    CHECK(Py_REFCNT(leaf) == 1); /* a weak reference owns nothing */
    CHECK(PyWeakref_GetObject(r1) == leaf);
    CHECK(PyWeakref_GET_OBJECT(r1) == leaf);
    CHECK(PyObject_GC_IsTracked(r1));

    /* Without a callback (NULL or None) the basic reference is shared. */
    PyObject *r2 = PyWeakref_NewRef(leaf, Py_None);
    CHECK(r2 == r1);
    CHECK(Py_REFCNT(r1) == 2);

    /* Proxies: their own shared basic proxy, listed after the basic ref. */
    PyObject *p1 = PyWeakref_NewProxy(leaf, NULL);
    PyObject *p2 = PyWeakref_NewProxy(leaf, Py_None);
    CHECK(p1 != NULL && p1 == p2 && p1 != r1);
    CHECK(Py_IS_TYPE(p1, &_PyWeakref_ProxyType));
    CHECK(PyWeakref_CheckProxy(p1) && PyWeakref_Check(p1) && !PyWeakref_CheckRef(p1));
    CHECK(PyWeakref_GetObject(p1) == leaf);

    /* References with callbacks are never shared and go after the basic
     * ones, newest first. */
    PyObject *cb = recorder_new(7);
    PyObject *r3 = PyWeakref_NewRef(leaf, cb);
    PyObject *r4 = PyWeakref_NewRef(leaf, cb);
    CHECK(r3 != NULL && r4 != NULL && r3 != r1 && r4 != r3);
    CHECK(Py_REFCNT(cb) == 3);
    PyWeakReference *w = (PyWeakReference *)list_head(leaf);
    CHECK((PyObject *)w == r1);
    CHECK(w && (PyObject *)w->wr_next == p1);
    CHECK(w && w->wr_next && (PyObject *)w->wr_next->wr_next == r4);
    CHECK(w && w->wr_next && w->wr_next->wr_next &&
          (PyObject *)w->wr_next->wr_next->wr_next == r3);
    CHECK(_PyWeakref_GetWeakrefCount((PyWeakReference *)list_head(leaf)) == 4);

    /* A new basic ref after callback refs still goes first. */
    Py_DECREF(r1);
    Py_DECREF(r1); /* r1 is gone; the list heads with p1 now */
    CHECK(list_head(leaf) == p1);
    PyObject *r5 = PyWeakref_NewRef(leaf, NULL);
    CHECK(list_head(leaf) == r5);

    /* Calling a reference gives a new reference to its referent. */
    PyObject *got = PyObject_CallNoArgs(r5);
    CHECK(got == leaf && Py_REFCNT(leaf) == 2);
    Py_XDECREF(got);

    PYHEAP_ONLY({
        PyObject *o = NULL;
        CHECK(PyWeakref_GetRef(r5, &o) == 1 && o == leaf && Py_REFCNT(leaf) == 2);
        Py_XDECREF(o);
        CHECK(PyHeap_Weakref_Count(leaf) == 4);
    });

    /* The referent dies: every weak reference now reads None; the
     * callbacks ran once each, newest first, with their own reference. */
    events_reset();
    Py_DECREF(leaf);
    CHECK(event_index(EV_FREE, 1) == 0);
    CHECK(count_events(EV_CALL) == 2);
    CHECK(nevents == 3 && events[1].arg == r4 && events[2].arg == r3);
    CHECK(nevents == 3 && events[1].seen == Py_None && events[2].seen == Py_None);
    CHECK(PyWeakref_GetObject(r5) == Py_None);
    CHECK(PyWeakref_GET_OBJECT(r5) == Py_None);
    CHECK(PyWeakref_GetObject(p1) == Py_None);
    CHECK(PyWeakref_GetObject(r3) == Py_None);
    got = PyObject_CallNoArgs(r5);
    CHECK(got == Py_None);
    Py_XDECREF(got);
    PYHEAP_ONLY({
        PyObject *o = leaf;
        CHECK(PyWeakref_GetRef(r5, &o) == 0 && o == NULL);
    });
    /* Callbacks were dropped when called. */
    CHECK(((PyWeakReference *)r3)->wr_callback == NULL);
    CHECK(Py_REFCNT(cb) == 1);

    /* The weak references outlive the referent and die normally. */
    Py_DECREF(r5);
    Py_DECREF(p1);
    Py_DECREF(r3);
    Py_DECREF(r4);
    Py_DECREF(cb);
}

static void proxies(void) {
    /* A proxy to a callable object is a callable proxy that forwards. */
    PyObject *target = recorder_new(3);
    PyObject *cp = PyWeakref_NewProxy(target, NULL);
    CHECK(cp != NULL && Py_IS_TYPE(cp, &_PyWeakref_CallableProxyType));
    CHECK(PyWeakref_CheckProxy(cp));
    events_reset();
    PyObject *r = PyObject_CallNoArgs(cp);
    CHECK(r == Py_None);
    Py_XDECREF(r);
    CHECK(nevents == 1 && events[0].kind == EV_CALL && events[0].id == 3);
    Py_DECREF(target);
    /* Once the referent is dead the proxy refuses. */
    r = PyObject_CallNoArgs(cp);
    CHECK(r == NULL);
    CHECK(last_error_contains("weakly-referenced object no longer exists"));
    Py_DECREF(cp);
}

static void errors(void) {
    PyObject *plain = PyObject_New(PyObject, &Plain_Type);
    CHECK(PyWeakref_NewRef(plain, NULL) == NULL);
    CHECK(last_error_contains("cannot create weak reference to 'test.Plain' object"));
    CHECK(PyWeakref_NewProxy(plain, NULL) == NULL);
    CHECK(last_error_contains("cannot create weak reference to 'test.Plain' object"));

    /* GetObject on NULL or a non-weakref: NULL and a SystemError. */
    CHECK(PyWeakref_GetObject(NULL) == NULL);
    CHECK(last_error_contains("bad argument to internal function"));
    CHECK(PyWeakref_GetObject(plain) == NULL);
    CHECK(last_error_contains("bad argument to internal function"));
    PYHEAP_ONLY({
        PyObject *o = plain;
        CHECK(PyWeakref_GetRef(plain, &o) == -1 && o == NULL);
        CHECK(last_error_contains("expected a weakref"));
    });

    /* Weak references cannot be weakly referenced. */
    PyObject *leaf = leaf_new(2);
    PyObject *r = PyWeakref_NewRef(leaf, NULL);
    CHECK(PyWeakref_NewRef(r, NULL) == NULL);
    CHECK(last_error_contains("cannot create weak reference to 'weakref.ReferenceType' object"));
    Py_DECREF(r);
    Py_DECREF(leaf);
    Py_DECREF(plain);
}

int main(void) {
    TEST_INIT();
    CHECK(weak_types_ready());
    layout();
    alive_and_dead();
    proxies();
    errors();
    return harness_summary();
}
