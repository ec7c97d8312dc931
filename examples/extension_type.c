/* An extension type written exactly as for CPython: the type below is
 * plain CPython C API, and this file builds unchanged against CPython 3.11
 * (-DUSE_CPYTHON) and against pyheap, printing the same lines.
 *
 * pyheap:  cc -Iinclude examples/extension_type.c target/release/libpyheap.a \
 *             -lpthread -ldl -lm -o extension_type
 * CPython: cc -DUSE_CPYTHON $(python3.11-config --includes) examples/extension_type.c \
 *             $(python3.11-config --ldflags --embed) -o extension_type_cpython
 */
#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#else
#include "pyheap.h"
#endif

#include <stddef.h>
#include <stdio.h>

/* ---- the extension: a tree whose nodes know their parent ------------- */

typedef struct {
    PyObject_HEAD
    PyObject *parent;   /* strong: parent and child reference each other */
    PyObject *children; /* a tuple, or NULL */
    PyObject *weakreflist;
} TreeNode;

static int nodes_freed;

static int TreeNode_traverse(TreeNode *self, visitproc visit, void *arg) {
    Py_VISIT(self->parent);
    Py_VISIT(self->children);
    return 0;
}

static int TreeNode_clear(TreeNode *self) {
    Py_CLEAR(self->parent);
    Py_CLEAR(self->children);
    return 0;
}

static void TreeNode_dealloc(TreeNode *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) PyObject_ClearWeakRefs((PyObject *)self);
    TreeNode_clear(self);
    nodes_freed++;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject TreeNode_Type;

/* TreeNode(parent=None): adds the new node to its parent's children. */
static int TreeNode_init(TreeNode *self, PyObject *args, PyObject *kwds) {
    (void)kwds;
    if (PyTuple_GET_SIZE(args) == 0) return 0;
    PyObject *parent = PyTuple_GET_ITEM(args, 0);
    if (!PyObject_TypeCheck(parent, &TreeNode_Type)) return -1;
    TreeNode *p = (TreeNode *)parent;
    Py_ssize_t n = p->children ? PyTuple_GET_SIZE(p->children) : 0;
    PyObject *grown = PyTuple_New(n + 1);
    if (grown == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(grown, i, Py_NewRef(PyTuple_GET_ITEM(p->children, i)));
    PyTuple_SET_ITEM(grown, n, Py_NewRef((PyObject *)self));
    Py_XSETREF(p->children, grown);
    Py_XSETREF(self->parent, Py_NewRef(parent));
    return 0;
}

static PyTypeObject TreeNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tree.TreeNode",
    .tp_doc = "A tree node that references its parent and its children.",
    .tp_basicsize = sizeof(TreeNode),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TreeNode_init,
    .tp_dealloc = (destructor)TreeNode_dealloc,
    .tp_traverse = (traverseproc)TreeNode_traverse,
    .tp_clear = (inquiry)TreeNode_clear,
    .tp_weaklistoffset = offsetof(TreeNode, weakreflist),
};

/* ---- the host ------------------------------------------------------ */

/* Adds `fanout` children to `parent`, `depth` levels deep; returns how many. */
static int grow(PyObject *parent, int depth, int fanout) {
    int made = 0;
    for (int i = 0; depth > 0 && i < fanout; i++) {
        PyObject *child = PyObject_CallOneArg((PyObject *)&TreeNode_Type, parent);
        if (child == NULL) return -1;
        made += 1 + grow(child, depth - 1, fanout);
        Py_DECREF(child); /* the parent's children tuple keeps it */
    }
    return made;
}

int main(void) {
    Py_Initialize();
    if (PyType_Ready(&TreeNode_Type) < 0) return 1;
    PyObject *root = PyObject_CallNoArgs((PyObject *)&TreeNode_Type);
    if (root == NULL) return 1;
    int n = 1 + grow(root, 3, 3);
    PyObject *leaf = PyTuple_GET_ITEM(((TreeNode *)root)->children, 2);
    PyObject *watch = PyWeakref_NewRef(leaf, NULL);
    printf("a tree of %d nodes; the root's count is %zd (ours and its 3 children's)\n", n,
           Py_REFCNT(root));

    Py_DECREF(root);
    printf("root dropped: %d nodes freed, the weak reference is %s\n", nodes_freed,
           PyWeakref_GetObject(watch) == Py_None ? "dead" : "alive");

    PyGC_Collect();
    printf("after a collection: %d nodes freed, the weak reference is %s\n", nodes_freed,
           PyWeakref_GetObject(watch) == Py_None ? "dead" : "alive");
    Py_DECREF(watch);
    return Py_FinalizeEx() < 0 || nodes_freed != n ? 1 : 0;
}
