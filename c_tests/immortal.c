/* Immortal objects (PEP 683, 3.12's scheme): static objects made with
 * PyObject_HEAD_INIT and Py_None never change count and are never freed. */
#include "compat.h"

#include "harness.h"

static int deallocs;
static void counting_dealloc(PyObject *self) {
    (void)self;
    deallocs++;
}

static PyTypeObject Static_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Static",
    .tp_basicsize = sizeof(PyObject),
    .tp_dealloc = counting_dealloc,
};

typedef struct {
    PyObject_HEAD
    int payload;
} StaticObj;

static StaticObj static_struct = {PyObject_HEAD_INIT(&Static_Type) 5};
#define static_obj (*(PyObject *)&static_struct)

static PyObject *none_getter(void) { Py_RETURN_NONE; }

int main(void) {
    CHECK(PyType_Ready(&Static_Type) == 0);
    Py_ssize_t start = Py_REFCNT(&static_obj);
    CHECK(_Py_IsImmortal(&static_obj));
    CHECK(start == _Py_IMMORTAL_REFCNT);
    for (int i = 0; i < 1000000; i++) Py_DECREF(&static_obj);
    for (int i = 0; i < 1000; i++) Py_INCREF(&static_obj);
    CHECK(Py_REFCNT(&static_obj) == start);
    CHECK(deallocs == 0 && static_struct.payload == 5);
    Py_SET_REFCNT(&static_obj, 1); /* no effect on immortal objects */
    CHECK(Py_REFCNT(&static_obj) == start);

    CHECK(_Py_IsImmortal(Py_None));
    Py_ssize_t none_count = Py_REFCNT(Py_None);
    for (int i = 0; i < 100000; i++) Py_DECREF(Py_None);
    PyObject *n = none_getter();
    CHECK(n == Py_None);
    CHECK(Py_REFCNT(Py_None) == none_count);
    CHECK(strcmp(Py_TYPE(Py_None)->tp_name, "NoneType") == 0);

    /* Static type objects are immortal too. */
    CHECK(_Py_IsImmortal((PyObject *)&Static_Type));
    CHECK(_Py_IsImmortal((PyObject *)&PyBaseObject_Type));

    /* A mortal object whose count saturates becomes immortal, not zero. */
    PyObject *o = PyObject_New(PyObject, &Static_Type);
    CHECK(!_Py_IsImmortal(o));
    Py_SET_REFCNT(o, _Py_IMMORTAL_REFCNT - 1);
    Py_INCREF(o);
    CHECK(_Py_IsImmortal(o));
    Py_INCREF(o);
    CHECK(Py_REFCNT(o) == _Py_IMMORTAL_REFCNT);
    Py_DECREF(o);
    CHECK(Py_REFCNT(o) == _Py_IMMORTAL_REFCNT && deallocs == 0);
    return harness_summary();
}
