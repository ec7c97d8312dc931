/* PyType_Ready fills CPython's defaults and rejects inconsistent types with
 * -1 and CPython's message. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *ref;
} Box;

static int box_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Box *)self)->ref);
    return 0;
}

static int box_clear(PyObject *self) {
    Py_CLEAR(((Box *)self)->ref);
    return 0;
}

static void box_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    box_clear(self);
    Py_TYPE(self)->tp_free(self);
}

/* A static GC type without tp_new and tp_free. */
static PyTypeObject Box_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Box",
    .tp_basicsize = sizeof(Box),
    .tp_dealloc = box_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = box_traverse,
    .tp_clear = box_clear,
};

/* GC flag without a traverse function. */
static PyTypeObject NoTraverse_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.NoTraverse",
    .tp_basicsize = sizeof(Box),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
};

/* A GC base type whose tp_free is PyObject_Free. */
static PyTypeObject BadFree_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.BadFree",
    .tp_basicsize = sizeof(Box),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_traverse = box_traverse,
    .tp_free = PyObject_Free,
};

/* A subtype that inherits everything from Box. */
static PyTypeObject SubBox_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.SubBox",
    .tp_base = &Box_Type,
};

static PyTypeObject NoName_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_basicsize = sizeof(PyObject),
};

int main(void) {
    TEST_INIT();
    CHECK(PyType_Ready(&Box_Type) == 0);
    CHECK(Box_Type.tp_free == PyObject_GC_Del);
    CHECK(Box_Type.tp_alloc == PyType_GenericAlloc);
    CHECK(Box_Type.tp_new == NULL);
    CHECK(Box_Type.tp_flags & Py_TPFLAGS_DISALLOW_INSTANTIATION);
    CHECK(Box_Type.tp_flags & Py_TPFLAGS_IMMUTABLETYPE);
    CHECK(Box_Type.tp_flags & Py_TPFLAGS_READY);
    CHECK(PyType_Ready(&Box_Type) == 0); /* again: nothing to do */

    /* GenericAlloc on a GC type tracks the object. */
    PyObject *b = PyType_GenericAlloc(&Box_Type, 0);
    CHECK(b != NULL && PyObject_GC_IsTracked(b) && PyObject_IS_GC(b));
    CHECK(!PyObject_GC_IsFinalized(b));
    PyObject_GC_UnTrack(b);
    CHECK(!PyObject_GC_IsTracked(b));
    PyObject_GC_UnTrack(b); /* twice is fine */
    PyObject_GC_Track(b);
    CHECK(PyObject_GC_IsTracked(b));
    Py_DECREF(b);

    CHECK(PyType_Ready(&SubBox_Type) == 0);
    CHECK(SubBox_Type.tp_flags & Py_TPFLAGS_HAVE_GC);
    CHECK(SubBox_Type.tp_traverse == box_traverse && SubBox_Type.tp_clear == box_clear);
    CHECK(SubBox_Type.tp_basicsize == (Py_ssize_t)sizeof(Box));
    CHECK(SubBox_Type.tp_dealloc == box_dealloc);
    CHECK(SubBox_Type.tp_free == PyObject_GC_Del);

    CHECK(PyType_Ready(&NoTraverse_Type) == -1);
    CHECK(last_error_contains("type test.NoTraverse has the Py_TPFLAGS_HAVE_GC flag but has no traverse function"));
    CHECK(!(NoTraverse_Type.tp_flags & Py_TPFLAGS_READY));

    CHECK(PyType_Ready(&BadFree_Type) == -1);
    CHECK(last_error_contains("participates in gc and is a base type but has inappropriate tp_free slot"));

    CHECK(PyType_Ready(&NoName_Type) == -1);
    CHECK(last_error_contains("Type does not define the tp_name field."));

    /* A non-GC object has no GC state. */
    PyObject *plain = PyType_GenericNew(&PyBaseObject_Type, NULL, NULL);
    CHECK(plain != NULL && !PyObject_IS_GC(plain) && !PyObject_GC_IsTracked(plain));
    Py_DECREF(plain);
    return harness_summary();
}
