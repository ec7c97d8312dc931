/* Weak references and the cycle collector, by CPython's rules: weak
 * references to cyclic trash are cleared before any finalizer or tp_clear
 * runs; a reachable weak reference's callback runs (and sees None); a weak
 * reference that is itself trash never calls back; callbacks that allocate
 * or free their own weak reference; 100k weak references to 100k objects
 * freed in one collection. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include "harness.h"
#include "weak_nodes.h"

/* A two-node cycle a <-> b of type tp, ids id and id + 1. */
static void make_cycle(PyTypeObject *tp, long id, WNode **pa, WNode **pb) {
    WNode *a = wnode_new(tp, id), *b = wnode_new(tp, id + 1);
    a->a = Py_NewRef((PyObject *)b);
    b->a = Py_NewRef((PyObject *)a);
    *pa = a;
    *pb = b;
}

static void reachable_and_trash_weakrefs(void) {
    PyObject *cb_out = recorder_new(1), *cb_in = recorder_new(2);
    WNode *a, *b;
    make_cycle(&WNode_Type, 10, &a, &b);
    /* A weak reference held from outside the cycle... */
    PyObject *outside = PyWeakref_NewRef((PyObject *)a, cb_out);
    /* ...and one held by the cycle itself, to one of its members. */
    a->b = PyWeakref_NewRef((PyObject *)b, cb_in);
    CHECK(outside != NULL && a->b != NULL);
    Py_DECREF(a);
    Py_DECREF(b);

    events_reset();
    Py_ssize_t n = PyGC_Collect();
    CHECK(n == 3); /* a, b and the weak reference inside the cycle */
    CHECK(count_events(EV_CALL) == 1);
    CHECK(event_index(EV_CALL, 1) >= 0 && event_index(EV_CALL, 2) < 0);
    int call = event_index(EV_CALL, 1);
    CHECK(call >= 0 && events[call].arg == outside && events[call].seen == Py_None);
    /* The callback ran before anything was cleared or freed (clearing
     * one node breaks the cycle; the other is then freed by counting)... */
    int first_clear = event_index(EV_CLEAR, 10) >= 0 ? event_index(EV_CLEAR, 10) : event_index(EV_CLEAR, 11);
    CHECK(call >= 0 && first_clear > call);
    CHECK(event_index(EV_FREE, 10) > call && event_index(EV_FREE, 11) > call);
    /* ...and by then the weak references were detached. */
    CHECK(count_events(EV_CLEAR) >= 1);
    for (int i = 0; i < nevents; i++)
        if (events[i].kind == EV_CLEAR || events[i].kind == EV_FREE) CHECK(!events[i].had_weakrefs);
    CHECK(event_index(EV_FREE, 10) >= 0 && event_index(EV_FREE, 11) >= 0);
    CHECK(PyWeakref_GetObject(outside) == Py_None);
    CHECK(Py_REFCNT(outside) == 1);
    Py_DECREF(outside);
    Py_DECREF(cb_out);
    CHECK(Py_REFCNT(cb_in) == 1); /* the trash weak reference let it go */
    Py_DECREF(cb_in);
}

static void cleared_before_finalizers(void) {
    PyObject *cb = recorder_new(3);
    WNode *a, *b;
    make_cycle(&WFinNode_Type, 20, &a, &b);
    PyObject *wa = PyWeakref_NewRef((PyObject *)a, cb);
    PyObject *wb = PyWeakref_NewRef((PyObject *)b, NULL);
    Py_DECREF(a);
    Py_DECREF(b);
    events_reset();
    CHECK(PyGC_Collect() == 2);
    int call = event_index(EV_CALL, 3);
    int fin_a = event_index(EV_FIN, 20), fin_b = event_index(EV_FIN, 21);
    CHECK(call >= 0 && fin_a > call && fin_b > call);
    /* The finalizers saw their objects without weak references. */
    CHECK(fin_a >= 0 && !events[fin_a].had_weakrefs);
    CHECK(fin_b >= 0 && !events[fin_b].had_weakrefs);
    CHECK(PyWeakref_GetObject(wa) == Py_None && PyWeakref_GetObject(wb) == Py_None);
    Py_DECREF(wa);
    Py_DECREF(wb);
    Py_DECREF(cb);
}

/* The callback drops the only reference to its weak reference; the
 * collection counts it. It also allocates, creating garbage of its own. */
static PyObject *only_ref;
static void drop_and_allocate(Recorder *self, PyObject *arg) {
    (void)self;
    CHECK(arg == only_ref);
    Py_CLEAR(only_ref);
    for (int i = 0; i < 2000; i++) {
        WNode *x, *y;
        make_cycle(&WNode_Type, 100000 + 2 * i, &x, &y);
        Py_DECREF(x);
        Py_DECREF(y);
    }
}

static void callback_frees_weakref_and_allocates(void) {
    PyObject *cb = recorder_new(4);
    ((Recorder *)cb)->action = drop_and_allocate;
    WNode *a, *b;
    make_cycle(&WNode_Type, 30, &a, &b);
    only_ref = PyWeakref_NewRef((PyObject *)a, cb);
    Py_DECREF(a);
    Py_DECREF(b);
    events_reset();
    CHECK(PyGC_Collect() == 3); /* a, b, and the weak reference freed */
    CHECK(only_ref == NULL);
    CHECK(event_index(EV_CALL, 4) >= 0);
    /* The cycles the callback made are collected next time. */
    CHECK(PyGC_Collect() == 4000);
    CHECK(Py_REFCNT(cb) == 1);
    Py_DECREF(cb);
}

/* The callback keeps its weak reference alive: it survives the collection
 * and stays dead-but-valid. */
static PyObject *kept;
static void keep(Recorder *self, PyObject *arg) {
    (void)self;
    kept = Py_NewRef(arg);
}

static void callback_keeps_weakref(void) {
    PyObject *cb = recorder_new(5);
    ((Recorder *)cb)->action = keep;
    WNode *a, *b;
    make_cycle(&WNode_Type, 40, &a, &b);
    PyObject *w = PyWeakref_NewRef((PyObject *)b, cb);
    Py_DECREF(a);
    Py_DECREF(b);
    CHECK(PyGC_Collect() == 2);
    CHECK(kept == w && Py_REFCNT(w) == 2);
    CHECK(PyObject_GC_IsTracked(w));
    Py_DECREF(w);
    CHECK(PyWeakref_GetObject(kept) == Py_None);
    Py_CLEAR(kept);
    Py_DECREF(cb);
}

/* 100k weak references to 100k objects in 50k cycles, one collection. */
static void many(void) {
    enum { N = 100000 };
    PyObject **wrs = malloc(N * sizeof *wrs);
    PyObject *cb = recorder_new(6);
    for (long i = 0; i < N; i += 2) {
        WNode *a, *b;
        make_cycle(&WNode_Type, 1000000 + i, &a, &b);
        wrs[i] = PyWeakref_NewRef((PyObject *)a, cb);
        wrs[i + 1] = PyWeakref_NewRef((PyObject *)b, NULL);
        Py_DECREF(a);
        Py_DECREF(b);
    }
    PyGC_Collect(); /* whatever automatic collections left */
    events_reset();
    for (long i = 0; i < N; i += 2) {
        WNode *a, *b;
        make_cycle(&WNode_Type, 2000000 + i, &a, &b);
        Py_DECREF(wrs[i]);
        Py_DECREF(wrs[i + 1]);
        wrs[i] = PyWeakref_NewRef((PyObject *)a, cb);
        wrs[i + 1] = PyWeakref_NewRef((PyObject *)b, cb);
        Py_DECREF(a);
        Py_DECREF(b);
    }
    Py_ssize_t before = calls_total;
    Py_ssize_t n = PyGC_Collect();
    /* Automatic collections may have taken some cycles already; between
     * them and the last one, every object died and called back once. */
    CHECK(n > 0);
    CHECK(calls_total == N);
    CHECK(calls_total - before == n);
    int dead = 1;
    for (long i = 0; i < N; i++) dead &= PyWeakref_GetObject(wrs[i]) == Py_None;
    CHECK(dead);
    for (long i = 0; i < N; i++) Py_DECREF(wrs[i]);
    free(wrs);
    Py_DECREF(cb);
}

int main(void) {
    TEST_INIT();
    CHECK(weak_types_ready());
    PyGC_Collect();
    reachable_and_trash_weakrefs();
    cleared_before_finalizers();
    callback_frees_weakref_and_allocates();
    callback_keeps_weakref();
    many();
    return harness_summary();
}
