/* Errors and collections: the error a caller had recorded before a
 * collection is still its last error afterwards, and an error a finalizer
 * leaves behind is reported ("exception ignored in garbage collection")
 * and forgotten, as CPython's PyGC_Collect saves and restores the pending
 * exception and writes a finalizer's as unraisable. */
// pyheap-test: modes pymalloc
#include <string.h>

#include "pyheap.h"
#include "capture.h"
#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *other;
} Node;

static int finalized;

static int node_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Node *)self)->other);
    return 0;
}

static int node_clear(PyObject *self) {
    Py_CLEAR(((Node *)self)->other);
    return 0;
}

/* A finalizer whose call fails and leaves a TypeError recorded: Node has
 * no weak reference support. */
static void node_finalize(PyObject *self) {
    finalized++;
    PyObject *w = PyWeakref_NewRef(self, NULL);
    (void)w;
}

static void node_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    node_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
    .tp_finalize = node_finalize,
};

int main(void) {
    CHECK(PyType_Ready(&Node_Type) == 0);
    PyHeap_SetOutput(collect, NULL);

    /* A pair in a cycle, dropped. */
    Node *a = PyObject_GC_New(Node, &Node_Type);
    Node *b = PyObject_GC_New(Node, &Node_Type);
    a->other = (PyObject *)b;
    b->other = (PyObject *)a;
    PyObject_GC_Track((PyObject *)a);
    PyObject_GC_Track((PyObject *)b);

    /* The caller's own error: a tuple index out of range. */
    PyObject *t = PyTuple_New(1);
    CHECK(PyTuple_GetItem(t, 5) == NULL);
    CHECK(PyHeap_LastErrorKind() == PYHEAP_ERR_INDEX);
    const char *before = PyHeap_LastError();
    char saved[256];
    snprintf(saved, sizeof saved, "%s", before ? before : "");

    CHECK(PyGC_Collect() == 2);
    CHECK(finalized == 2);
    /* The finalizers' TypeErrors were reported, once per collection... */
    CHECK(strstr(got, "exception ignored in garbage collection") != NULL);
    CHECK(strstr(got, "cannot create weak reference to 'test.Node' object") != NULL);
    /* ...and the caller's error is the one it had. */
    CHECK(PyHeap_LastErrorKind() == PYHEAP_ERR_INDEX);
    CHECK(PyHeap_LastError() != NULL && strcmp(PyHeap_LastError(), saved) == 0);

    /* No error before: none after. */
    PyHeap_ClearError();
    CHECK(PyGC_Collect() == 0);
    CHECK(PyHeap_LastError() == NULL);

    PyHeap_SetOutput(NULL, NULL);
    Py_DECREF(t);
    return harness_summary();
}
