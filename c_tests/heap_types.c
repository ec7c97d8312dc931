/* Heap types from PyType_FromSpec: instances hold a reference to their
 * type; the type outlives its last instance and dies after it; slots and
 * flags are filled as CPython does. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_HEAD
    double value;
} Point;

static int point_deallocs;

static void point_dealloc(PyObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    point_deallocs++;
    tp->tp_free(self);
    Py_DECREF(tp); /* heap type instances own a reference to the type */
}

static PyType_Slot point_slots[] = {
    {Py_tp_dealloc, (void *)point_dealloc},
    {Py_tp_doc, (void *)"A point."},
    {0, NULL},
};

static PyType_Spec point_spec = {
    .name = "test.Point",
    .basicsize = sizeof(Point),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = point_slots,
};

/* A heap type with no dealloc slot: the default one releases the type. */
static PyType_Slot plain_slots[] = {{0, NULL}};
static PyType_Spec plain_spec = {"test.Plain", sizeof(PyObject), 0, Py_TPFLAGS_DEFAULT, plain_slots};

#ifndef USE_CPYTHON
static int type_objects;
static int count_types(PyObject *op, void *ctx) {
    if (Py_TYPE(op) == (PyTypeObject *)ctx) type_objects++;
    return 0;
}
#endif

int main(void) {
    TEST_INIT();
    PyTypeObject *tp = (PyTypeObject *)PyType_FromSpec(&point_spec);
    CHECK(tp != NULL);
    CHECK(PyType_GetFlags(tp) & Py_TPFLAGS_HEAPTYPE);
    CHECK(PyType_GetFlags(tp) & Py_TPFLAGS_READY);
    CHECK(!(PyType_GetFlags(tp) & Py_TPFLAGS_IMMUTABLETYPE));
    CHECK(tp->tp_basicsize == (Py_ssize_t)sizeof(Point));
    CHECK(tp->tp_base == &PyBaseObject_Type);
    CHECK(strcmp(tp->tp_name, "test.Point") == 0);
    CHECK(PyType_GetSlot(tp, Py_tp_dealloc) == (void *)point_dealloc);
    CHECK(PyType_GetSlot(tp, Py_tp_free) == (void *)PyObject_Free);
    CHECK(PyType_GetSlot(tp, Py_tp_alloc) == (void *)PyType_GenericAlloc);
    CHECK(strcmp((const char *)PyType_GetSlot(tp, Py_tp_doc), "A point.") == 0);
    CHECK(PyType_GetSlot(tp, 0) == NULL);
    CHECK(last_error_contains("bad"));
    CHECK(tp->tp_new != NULL); /* heap types inherit object's tp_new */

    Py_ssize_t base_count = Py_REFCNT(tp);
    PyObject *p = tp->tp_alloc(tp, 0);
    CHECK(p != NULL && Py_TYPE(p) == tp);
    CHECK(Py_REFCNT(tp) == base_count + 1);
    Point *q = PyObject_New(Point, tp);
    CHECK(Py_REFCNT(tp) == base_count + 2);
    Py_DECREF(p);
    CHECK(point_deallocs == 1);
    CHECK(Py_REFCNT(tp) == base_count + 1);

    /* Drop our own reference: the instance keeps the type alive. */
    PYHEAP_ONLY({
        Py_DECREF(tp);
        type_objects = 0;
        PyHeap_VisitObjects(count_types, &PyType_Type);
        CHECK(type_objects == 1);
        CHECK(Py_REFCNT(tp) == 1);
        Py_DECREF(q); /* last instance: the type dies after it */
        CHECK(point_deallocs == 2);
        type_objects = 0;
        PyHeap_VisitObjects(count_types, &PyType_Type);
        CHECK(type_objects == 0);
    });
#ifdef USE_CPYTHON
    Py_DECREF(q);
    CHECK(point_deallocs == 2);
    CHECK(Py_REFCNT(tp) == base_count);
#endif

    /* Default dealloc of a heap type drops the instance's type reference. */
    PyTypeObject *plain = (PyTypeObject *)PyType_FromSpec(&plain_spec);
    CHECK(plain != NULL);
    Py_ssize_t before = Py_REFCNT(plain);
    PyObject *o = PyType_GenericNew(plain, NULL, NULL);
    CHECK(Py_REFCNT(plain) == before + 1);
    Py_DECREF(o);
    CHECK(Py_REFCNT(plain) == before);

    /* Bases given as a tuple of one type, to PyType_FromSpecWithBases and
     * in Py_tp_bases. */
    PyType_Spec base_spec = {"test.Base", sizeof(Point), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, plain_slots};
    PyObject *basetp = PyType_FromSpec(&base_spec);
    CHECK(basetp != NULL);
    PyObject *bases = PyTuple_Pack(1, basetp);
    PyType_Spec derived_spec = {"test.Derived", sizeof(Point), 0, Py_TPFLAGS_DEFAULT,
                                plain_slots};
    PyObject *derived = PyType_FromSpecWithBases(&derived_spec, bases);
    CHECK(derived != NULL && ((PyTypeObject *)derived)->tp_base == (PyTypeObject *)basetp);
    PyType_Slot bases_slots[] = {{Py_tp_bases, bases}, {0, NULL}};
    PyType_Spec derived2_spec = {"test.Derived2", sizeof(Point), 0, Py_TPFLAGS_DEFAULT,
                                 bases_slots};
    PyObject *derived2 = PyType_FromSpec(&derived2_spec);
    CHECK(derived2 != NULL && ((PyTypeObject *)derived2)->tp_base == (PyTypeObject *)basetp);
    Py_XDECREF(derived);
    Py_XDECREF(derived2);
    Py_DECREF(bases);
    Py_XDECREF(basetp);

    /* Errors: no name; a base that is not a base type. */
    PyType_Spec noname = {NULL, sizeof(PyObject), 0, 0, plain_slots};
    PYHEAP_ONLY({
        CHECK(PyType_FromSpec(&noname) == NULL);
        CHECK(last_error_contains("Type spec does not define the name field."));
    });
    (void)noname;
    PyType_Slot final_slots[] = {{Py_tp_base, plain}, {0, NULL}};
    PyType_Spec sub = {"test.Sub", 0, 0, 0, final_slots};
    CHECK(PyType_FromSpec(&sub) == NULL);
    CHECK(last_error_contains("is not an acceptable base type"));
    PyType_Slot bad_slots[] = {{999, NULL}, {0, NULL}};
    PyType_Spec bad = {"test.Bad", sizeof(PyObject), 0, 0, bad_slots};
    CHECK(PyType_FromSpec(&bad) == NULL);
    CHECK(last_error_contains("invalid slot offset"));
    return harness_summary();
}
