/* A GC container type for the collector's tests: two references, counters
 * of deallocations, finalizations and clears, optional finalizer and
 * legacy tp_del behaviour chosen per object. Builds against pyheap and
 * against CPython 3.11. */
#ifndef PYHEAP_GC_NODES_H
#define PYHEAP_GC_NODES_H

#include "compat.h"

typedef struct Node {
    PyObject_HEAD
    PyObject *a, *b;
    long id;
    int resurrect; /* the finalizer stores the object in `lazarus` */
} Node;

static long nodes_freed, nodes_finalized, nodes_cleared;
static PyObject *lazarus;
static unsigned char *freed_ids; /* optional: freed_ids[id] = 1 on dealloc */
static long max_id;

static int node_traverse(PyObject *self, visitproc visit, void *arg) {
    Node *n = (Node *)self;
    Py_VISIT(n->a);
    Py_VISIT(n->b);
    return 0;
}

static int node_clear(PyObject *self) {
    Node *n = (Node *)self;
    nodes_cleared++;
    Py_CLEAR(n->a);
    Py_CLEAR(n->b);
    return 0;
}

static void node_dealloc(PyObject *self) {
    Node *n = (Node *)self;
    PyObject_GC_UnTrack(self);
    nodes_freed++;
    if (freed_ids != NULL && n->id >= 0 && n->id < max_id) freed_ids[n->id] = 1;
    Py_CLEAR(n->a);
    Py_CLEAR(n->b);
    PyObject_GC_Del(self);
}

static void node_finalize(PyObject *self) {
    Node *n = (Node *)self;
    nodes_finalized++;
    if (n->resurrect) {
        Py_INCREF(self);
        Py_XSETREF(lazarus, self);
    }
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
};

/* Same, with a PEP 442 finalizer. */
static PyTypeObject FinNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.FinNode",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
    .tp_finalize = node_finalize,
};

static long legacy_dels;
static void node_del(PyObject *self) {
    (void)self;
    legacy_dels++;
}

/* Same, with a legacy tp_del (uncollectable in cycles). */
static PyTypeObject DelNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.DelNode",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
    .tp_del = node_del,
};

static int nodes_ready(void) {
    return PyType_Ready(&Node_Type) == 0 && PyType_Ready(&FinNode_Type) == 0 &&
           PyType_Ready(&DelNode_Type) == 0;
}

/* A tracked node with no references. */
static Node *node_new(PyTypeObject *tp, long id) {
    Node *n = PyObject_GC_New(Node, tp);
    if (n == NULL) return NULL;
    n->a = n->b = NULL;
    n->id = id;
    n->resurrect = 0;
    PyObject_GC_Track((PyObject *)n);
    return n;
}

/* n->a = target (a new reference). */
static void node_link(Node *n, Node *target) {
    Py_INCREF(target);
    Py_XSETREF(n->a, (PyObject *)target);
}

#endif
