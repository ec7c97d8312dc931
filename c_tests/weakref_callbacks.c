/* Weak reference callbacks when a referent dies by reference counting:
 * called once, with the right weak reference, newest first; not called for
 * a weak reference that died first; a failing callback is reported and the
 * others still run; callbacks that allocate, create and drop weak
 * references, or keep their weak reference alive; the caller's pending
 * error survives. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include "harness.h"
#include "weak_nodes.h"

#ifdef USE_CPYTHON
static int error_pending(void) { return PyErr_Occurred() != NULL; }
#else
static int error_pending(void) { return PyHeap_LastError() != NULL; }
#endif

static void order_newest_first(void) {
    PyObject *leaf = leaf_new(1);
    PyObject *cb[3], *wr[3];
    for (int i = 0; i < 3; i++) {
        cb[i] = recorder_new(100 + i);
        wr[i] = PyWeakref_NewRef(leaf, cb[i]);
    }
    /* Two more with the same callback object are distinct references. */
    PyObject *dup = PyWeakref_NewRef(leaf, cb[0]);
    CHECK(dup != wr[0]);
    /* One dies before the referent: it never calls back. */
    Py_DECREF(dup);

    events_reset();
    Py_DECREF(leaf);
    CHECK(count_events(EV_CALL) == 3);
    CHECK(nevents == 4);
    /* Created 0, 1, 2 -> called 2, 1, 0, each with its own reference. */
    for (int i = 0; i < 3 && nevents == 4; i++) {
        CHECK(events[1 + i].kind == EV_CALL && events[1 + i].id == 102 - i);
        CHECK(events[1 + i].arg == wr[2 - i]);
        CHECK(events[1 + i].seen == Py_None);
    }
    for (int i = 0; i < 3; i++) {
        CHECK(Py_REFCNT(wr[i]) == 1);
        CHECK(Py_REFCNT(cb[i]) == 1); /* the callback was dropped */
        Py_DECREF(wr[i]);
        Py_DECREF(cb[i]);
    }
}

static void failing_callback(void) {
    PyObject *leaf = leaf_new(2);
    PyObject *good = recorder_new(201), *bad = recorder_new(202);
    ((Recorder *)bad)->fail = 1;
    PyObject *w1 = PyWeakref_NewRef(leaf, good);
    PyObject *w2 = PyWeakref_NewRef(leaf, bad); /* called first, fails */
    events_reset();
    Py_DECREF(leaf);
    CHECK(count_events(EV_CALL) == 2);
    CHECK(event_index(EV_CALL, 202) < event_index(EV_CALL, 201));
    CHECK(!error_pending()); /* the failure was reported, not left set */
    CHECK(PyWeakref_GetObject(w1) == Py_None && PyWeakref_GetObject(w2) == Py_None);
    Py_DECREF(w1);
    Py_DECREF(w2);
    Py_DECREF(good);
    Py_DECREF(bad);
}

static void pending_error_kept(void) {
    PyObject *leaf = leaf_new(3);
    PyObject *cb = recorder_new(301);
    PyObject *w = PyWeakref_NewRef(leaf, cb);
    PyObject *w2 = PyWeakref_NewRef(leaf, cb);
    CHECK(PyTuple_Size(leaf) == -1); /* sets an error */
    CHECK(error_pending());
    events_reset();
    Py_DECREF(leaf);
    CHECK(count_events(EV_CALL) == 2);
    CHECK(last_error_contains("bad argument to internal function"));
    Py_DECREF(w);
    Py_DECREF(w2);
    Py_DECREF(cb);
}

/* Globals the re-entrant actions work on. */
static PyObject *other_leaf, *other_cb, *new_wr, *dropped_wr, *kept_wr;
static PyObject *allocated[1000];

static void busy_action(Recorder *self, PyObject *arg) {
    (void)self;
    /* Allocate and free a lot, including GC objects. */
    for (int i = 0; i < 1000; i++) allocated[i] = leaf_new(1000 + i);
    for (int i = 0; i < 1000; i++) {
        WNode *n = wnode_new(&WNode_Type, 5000 + i);
        Py_DECREF(n);
    }
    for (int i = 0; i < 1000; i++) Py_DECREF(allocated[i]);
    /* A new weak reference with a callback to another object. */
    if (new_wr == NULL) new_wr = PyWeakref_NewRef(other_leaf, other_cb);
    /* Drop our hold on another weak reference whose callback is pending. */
    Py_CLEAR(dropped_wr);
    /* Keep the weak reference we were called with. */
    if (kept_wr == NULL) kept_wr = Py_NewRef(arg);
}

static void reentrant_callbacks(void) {
    PyObject *leaf = leaf_new(4);
    other_leaf = leaf_new(5);
    other_cb = recorder_new(402);
    PyObject *cb_first = recorder_new(401); /* runs last */
    PyObject *cb_busy = recorder_new(400);  /* runs first */
    ((Recorder *)cb_busy)->action = busy_action;
    dropped_wr = PyWeakref_NewRef(leaf, cb_first);
    PyObject *busy_wr = PyWeakref_NewRef(leaf, cb_busy);

    events_reset();
    Py_DECREF(leaf);
    /* Both callbacks ran, the dropped reference's too: it was held for
     * the duration of the callbacks. */
    CHECK(event_index(EV_CALL, 400) >= 0);
    CHECK(event_index(EV_CALL, 401) > event_index(EV_CALL, 400));
    CHECK(dropped_wr == NULL);
    CHECK(kept_wr == busy_wr && Py_REFCNT(busy_wr) == 2);
    CHECK(PyWeakref_GetObject(kept_wr) == Py_None);
    /* The weak reference made during the callback works. */
    CHECK(new_wr != NULL && PyWeakref_GetObject(new_wr) == other_leaf);
    events_reset();
    Py_DECREF(other_leaf);
    CHECK(count_events(EV_CALL) == 1 && event_index(EV_CALL, 402) >= 0);
    CHECK(nevents >= 2 && events[1].arg == new_wr);

    Py_CLEAR(kept_wr);
    Py_DECREF(busy_wr);
    Py_CLEAR(new_wr);
    Py_DECREF(other_cb);
    Py_DECREF(cb_first);
    Py_DECREF(cb_busy);
}

/* A callback that drops the last reference to its own weak reference. */
static PyObject *self_owned;
static void drop_self(Recorder *self, PyObject *arg) {
    (void)self;
    CHECK(arg == self_owned);
    Py_CLEAR(self_owned);
}

static void callback_frees_its_weakref(void) {
    PyObject *leaf = leaf_new(6);
    PyObject *cb = recorder_new(600);
    ((Recorder *)cb)->action = drop_self;
    self_owned = PyWeakref_NewRef(leaf, cb);
    events_reset();
    Py_DECREF(leaf);
    CHECK(count_events(EV_CALL) == 1);
    CHECK(self_owned == NULL);
    CHECK(Py_REFCNT(cb) == 1);
    Py_DECREF(cb);
}

#ifdef USE_CPYTHON
static Py_ssize_t live_objects(void) { return 0; }
#else
static int ignore_type(PyTypeObject *tp, size_t count, size_t bytes, void *ctx) {
    (void)tp, (void)count, (void)bytes, (void)ctx;
    return 0;
}
static Py_ssize_t live_objects(void) { return PyHeap_GetLiveObjects(ignore_type, NULL); }
#endif

int main(void) {
    TEST_INIT();
    CHECK(weak_types_ready());
    Py_ssize_t live_before = live_objects();
    order_newest_first();
    failing_callback();
    pending_error_kept();
    reentrant_callbacks();
    callback_frees_its_weakref();
    /* Nothing leaked: every object the tests made is gone. */
    CHECK(live_objects() == live_before);
    return harness_summary();
}
