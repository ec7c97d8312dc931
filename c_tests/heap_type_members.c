/* The default deallocator of a PyType_FromSpec type releases its writable
 * object members (T_OBJECT_EX), as CPython's clear_slots does, and leaves
 * read-only ones alone: for GC types as CPython 3.11, and (pyheap only) for
 * non-GC types too, whose members 3.11 leaks. Runs against CPython 3.11. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stddef.h>

#include "harness.h"
#include "weak_nodes.h"

typedef struct {
    PyObject_HEAD
    PyObject *x;
    PyObject *ro;
    long plain;
} Holder;

static PyMemberDef holder_members[] = {
    {"x", T_OBJECT_EX, offsetof(Holder, x), 0, NULL},
    {"ro", T_OBJECT_EX, offsetof(Holder, ro), READONLY, NULL},
    {"plain", T_LONG, offsetof(Holder, plain), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static int holder_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Holder *)self)->x);
    Py_VISIT(((Holder *)self)->ro);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

#ifndef USE_CPYTHON
static PyType_Slot holder_slots[] = {
    {Py_tp_members, holder_members},
    {0, NULL},
};

static PyType_Spec holder_spec = {
    .name = "test.Holder",
    .basicsize = sizeof(Holder),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = holder_slots,
};
#endif

static PyType_Slot gholder_slots[] = {
    {Py_tp_members, holder_members},
    {Py_tp_traverse, (void *)holder_traverse},
    {0, NULL},
};

static PyType_Spec gholder_spec = {
    .name = "test.GHolder",
    .basicsize = sizeof(Holder),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = gholder_slots,
};

static PyType_Slot sub_slots[] = {{0, NULL}};
static PyType_Spec sub_spec = {
    .name = "test.SubHolder",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = sub_slots,
};

static void run(PyTypeObject *tp) {
    PyObject *a = leaf_new(1), *b = leaf_new(2);
    Holder *h = (Holder *)tp->tp_alloc(tp, 0);
    CHECK(h != NULL && h->x == NULL && h->ro == NULL);
    h->x = Py_NewRef(a);
    h->ro = Py_NewRef(b);
    Py_DECREF(h);
    CHECKF(Py_REFCNT(a) == 1, "%s: the writable member was released", tp->tp_name);
    CHECKF(Py_REFCNT(b) == 2, "%s: the read-only member was left", tp->tp_name);
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(b);
}

int main(void) {
    TEST_INIT();
    CHECK(weak_types_ready());
    PyTypeObject *g = (PyTypeObject *)PyType_FromSpec(&gholder_spec);
    PyTypeObject *gsub = (PyTypeObject *)PyType_FromSpecWithBases(&sub_spec, (PyObject *)g);
    CHECK(g != NULL && gsub != NULL);
    if (g && gsub) {
        run(g);
        run(gsub);
    }
    Py_XDECREF(gsub);
    Py_XDECREF(g);
#ifndef USE_CPYTHON
    PyTypeObject *tp = (PyTypeObject *)PyType_FromSpec(&holder_spec);
    PyTypeObject *sub = (PyTypeObject *)PyType_FromSpecWithBases(&sub_spec, (PyObject *)tp);
    CHECK(tp != NULL && sub != NULL);
    if (tp && sub) {
        run(tp);
        run(sub);
    }
    Py_XDECREF(sub);
    Py_XDECREF(tp);
#endif
    return harness_summary();
}
