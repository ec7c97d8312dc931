/* Types for the weak reference tests, building against pyheap and against
 * CPython 3.11:
 * - WNode: a GC container with two references and a weak-reference list;
 *   WFinNode adds a PEP 442 finalizer. Deallocation, finalization and
 *   tp_clear are logged as events, with whether the object still had weak
 *   references at that moment.
 * - Leaf: a plain (non-GC) object with a weak-reference list.
 * - Plain: an object without weak reference support.
 * - Recorder: a callable object that logs each call (as a weak reference
 *   callback it sees the weak reference and what it refers to), can fail,
 *   and can run an action of the test's choosing. */
#ifndef PYHEAP_WEAK_NODES_H
#define PYHEAP_WEAK_NODES_H

#include <stddef.h>

#include "compat.h"

enum { EV_CALL = 1, EV_FIN, EV_CLEAR, EV_FREE };

typedef struct {
    int kind;
    long id;        /* object id, or the recorder's id for EV_CALL */
    PyObject *arg;  /* EV_CALL: the argument (borrowed, maybe dead later) */
    PyObject *seen; /* EV_CALL: what the weak reference argument refers to */
    int had_weakrefs;
} Event;

#define MAX_EVENTS 4096
static Event events[MAX_EVENTS];
static int nevents;
static long calls_total; /* every EV_CALL, even past MAX_EVENTS */

static inline void log_event(int kind, long id, PyObject *arg, PyObject *seen, int had) {
    if (kind == EV_CALL) calls_total++;
    if (nevents < MAX_EVENTS) {
        Event e = {kind, id, arg, seen, had};
        events[nevents++] = e;
    }
}

static inline void events_reset(void) {
    nevents = 0;
    calls_total = 0;
}

/* Index of the first event of `kind` for `id`, or -1. */
static inline int event_index(int kind, long id) {
    for (int i = 0; i < nevents; i++)
        if (events[i].kind == kind && events[i].id == id) return i;
    return -1;
}

static inline int count_events(int kind) {
    int n = 0;
    for (int i = 0; i < nevents; i++) n += events[i].kind == kind;
    return n;
}

/* ---- WNode ------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *a, *b;
    long id;
    PyObject *weakreflist;
} WNode;

static int wnode_traverse(PyObject *self, visitproc visit, void *arg) {
    WNode *n = (WNode *)self;
    Py_VISIT(n->a);
    Py_VISIT(n->b);
    return 0;
}

static int wnode_clear(PyObject *self) {
    WNode *n = (WNode *)self;
    log_event(EV_CLEAR, n->id, NULL, NULL, n->weakreflist != NULL);
    Py_CLEAR(n->a);
    Py_CLEAR(n->b);
    return 0;
}

static void wnode_dealloc(PyObject *self) {
    WNode *n = (WNode *)self;
    PyObject_GC_UnTrack(self);
    log_event(EV_FREE, n->id, NULL, NULL, n->weakreflist != NULL);
    if (n->weakreflist != NULL) PyObject_ClearWeakRefs(self);
    Py_CLEAR(n->a);
    Py_CLEAR(n->b);
    PyObject_GC_Del(self);
}

static void wnode_finalize(PyObject *self) {
    WNode *n = (WNode *)self;
    log_event(EV_FIN, n->id, NULL, NULL, n->weakreflist != NULL);
}

static PyTypeObject WNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.WNode",
    .tp_basicsize = sizeof(WNode),
    .tp_dealloc = wnode_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = wnode_traverse,
    .tp_clear = wnode_clear,
    .tp_weaklistoffset = offsetof(WNode, weakreflist),
};

static PyTypeObject WFinNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.WFinNode",
    .tp_basicsize = sizeof(WNode),
    .tp_dealloc = wnode_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = wnode_traverse,
    .tp_clear = wnode_clear,
    .tp_finalize = wnode_finalize,
    .tp_weaklistoffset = offsetof(WNode, weakreflist),
};

static inline WNode *wnode_new(PyTypeObject *tp, long id) {
    WNode *n = PyObject_GC_New(WNode, tp);
    if (n == NULL) return NULL;
    n->a = n->b = NULL;
    n->id = id;
    n->weakreflist = NULL;
    PyObject_GC_Track((PyObject *)n);
    return n;
}

/* ---- Leaf and Plain ----------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    long id;
    PyObject *weakreflist;
} Leaf;

static void leaf_dealloc(PyObject *self) {
    Leaf *l = (Leaf *)self;
    log_event(EV_FREE, l->id, NULL, NULL, l->weakreflist != NULL);
    if (l->weakreflist != NULL) PyObject_ClearWeakRefs(self);
    Py_TYPE(self)->tp_free(self);
}

static PyTypeObject Leaf_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Leaf",
    .tp_basicsize = sizeof(Leaf),
    .tp_dealloc = leaf_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(Leaf, weakreflist),
};

static inline PyObject *leaf_new(long id) {
    Leaf *l = PyObject_New(Leaf, &Leaf_Type);
    if (l == NULL) return NULL;
    l->id = id;
    l->weakreflist = NULL;
    return (PyObject *)l;
}

static PyTypeObject Plain_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Plain",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* ---- Recorder ----------------------------------------------------------- */

typedef struct Recorder {
    PyObject_HEAD
    long id;
    int fail; /* return NULL with an error set */
    void (*action)(struct Recorder *self, PyObject *arg);
    PyObject *weakreflist;
} Recorder;

static void recorder_dealloc(PyObject *self) {
    if (((Recorder *)self)->weakreflist != NULL) PyObject_ClearWeakRefs(self);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *recorder_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)kwargs;
    Recorder *r = (Recorder *)self;
    PyObject *arg = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    PyObject *seen = arg != NULL && PyWeakref_Check(arg) ? PyWeakref_GetObject(arg) : NULL;
    log_event(EV_CALL, r->id, arg, seen, 0);
    if (r->action != NULL) r->action(r, arg);
    if (r->fail) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyTypeObject Recorder_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_dealloc = recorder_dealloc,
    .tp_call = recorder_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(Recorder, weakreflist),
};

static inline PyObject *recorder_new(long id) {
    Recorder *r = PyObject_New(Recorder, &Recorder_Type);
    if (r == NULL) return NULL;
    r->id = id;
    r->fail = 0;
    r->action = NULL;
    r->weakreflist = NULL;
    return (PyObject *)r;
}

static inline int weak_types_ready(void) {
    return PyType_Ready(&WNode_Type) == 0 && PyType_Ready(&WFinNode_Type) == 0 &&
           PyType_Ready(&Leaf_Type) == 0 && PyType_Ready(&Plain_Type) == 0 &&
           PyType_Ready(&Recorder_Type) == 0;
}

#endif
