/* Calling a type object makes an instance, as in CPython: tp_new with the
 * call's arguments, then tp_init on the result when it is an instance of
 * the type; a failing tp_init frees the new object; a type without tp_new
 * cannot be called. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *first;
    Py_ssize_t nargs;
} Box;

static int inits, deallocs;

static void box_dealloc(PyObject *self) {
    deallocs++;
    Py_XDECREF(((Box *)self)->first);
    Py_TYPE(self)->tp_free(self);
}

static int box_init(PyObject *self, PyObject *args, PyObject *kwds) {
    (void)kwds;
    inits++;
    Box *b = (Box *)self;
    b->nargs = PyTuple_GET_SIZE(args);
    if (b->nargs > 2) return -1; /* pretend the arguments are wrong */
    if (b->nargs > 0) Py_XSETREF(b->first, Py_NewRef(PyTuple_GET_ITEM(args, 0)));
    return 0;
}

static PyTypeObject Box_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Box",
    .tp_basicsize = sizeof(Box),
    .tp_dealloc = box_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_init = box_init,
    .tp_new = PyType_GenericNew,
};

/* No tp_new, directly under object: cannot be instantiated. */
static PyTypeObject Abstract_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Abstract",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* tp_new returns an object of another type: tp_init is not run. */
static PyObject *other_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)type;
    (void)kwds;
    return PyType_GenericNew(&Box_Type, args, NULL);
}

static int other_inits;
static int other_init(PyObject *self, PyObject *args, PyObject *kwds) {
    (void)self;
    (void)args;
    (void)kwds;
    other_inits++;
    return 0;
}

static PyTypeObject Other_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Other",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_init = other_init,
    .tp_new = other_new,
};

static PyType_Slot heap_slots[] = {
    {Py_tp_init, (void *)box_init},
    {Py_tp_new, (void *)PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec heap_spec = {
    .name = "test.HeapBox",
    .basicsize = sizeof(Box),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = heap_slots,
};

int main(void) {
    TEST_INIT();
    CHECK(PyType_Ready(&Box_Type) == 0);
    CHECK(PyType_Ready(&Abstract_Type) == 0);
    CHECK(PyType_Ready(&Other_Type) == 0);
    CHECK(PyCallable_Check((PyObject *)&Box_Type));

    /* No arguments: tp_new, then tp_init with the empty tuple. */
    PyObject *b = PyObject_CallNoArgs((PyObject *)&Box_Type);
    CHECK(b != NULL && Py_TYPE(b) == &Box_Type);
    CHECK(inits == 1);
    CHECK(b != NULL && ((Box *)b)->nargs == 0 && ((Box *)b)->first == NULL);

    /* One argument reaches tp_init. */
    PyObject *c = PyObject_CallOneArg((PyObject *)&Box_Type, b);
    CHECK(c != NULL && inits == 2);
    CHECK(c != NULL && ((Box *)c)->first == b && ((Box *)c)->nargs == 1);
    CHECK(Py_REFCNT(b) == 2);
    Py_XDECREF(c);
    CHECK(deallocs == 1 && Py_REFCNT(b) == 1);

    /* tp_init fails: NULL, the new object is freed. */
    PyObject *args = PyTuple_Pack(3, b, b, b);
    PyObject *d = PyObject_Call((PyObject *)&Box_Type, args, NULL);
    CHECK(d == NULL && inits == 3 && deallocs == 2);
#ifdef USE_CPYTHON
    PyErr_Clear(); /* tp_init returned -1 without setting an error */
#else
    PyHeap_ClearError();
#endif
    Py_DECREF(args);

    /* A type without tp_new cannot be called. */
    PyObject *e = PyObject_CallNoArgs((PyObject *)&Abstract_Type);
    CHECK(e == NULL);
    CHECK(last_error_contains("cannot create 'test.Abstract' instances"));

    /* tp_new gave another type's object: the called type's tp_init is not
     * run, and neither is the object's own. */
    int inits_before = inits;
    PyObject *f = PyObject_CallNoArgs((PyObject *)&Other_Type);
    CHECK(f != NULL && Py_TYPE(f) == &Box_Type);
    CHECK(other_inits == 0 && inits == inits_before);
    Py_XDECREF(f);

    /* A heap type from a spec is called the same way. */
    PyObject *heap = PyType_FromSpec(&heap_spec);
    CHECK(heap != NULL);
    PyObject *g = PyObject_CallOneArg(heap, b);
    CHECK(g != NULL && Py_TYPE(g) == (PyTypeObject *)heap);
    CHECK(g != NULL && ((Box *)g)->first == b);
    /* The default deallocator of a heap type does not know `first`. */
    Py_DECREF(b);
    Py_XDECREF(g);
    Py_DECREF(heap);

    Py_DECREF(b);
    return harness_summary();
}
