/* Reference counting: dealloc runs exactly once at zero; Py_CLEAR clears the
 * variable before the decref; Py_SETREF stores before releasing; the
 * accessors and NULL-tolerant forms. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_HEAD
    int id;
} Thing;

static int deallocs;
static int last_dealloc_id;
static PyObject **watched_slot;    /* a variable the dealloc reads */
static PyObject *seen_in_slot;

static void thing_dealloc(PyObject *self) {
    deallocs++;
    last_dealloc_id = ((Thing *)self)->id;
    if (watched_slot != NULL) seen_in_slot = *watched_slot;
    Py_TYPE(self)->tp_free(self);
}

static PyTypeObject Thing_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Thing",
    .tp_basicsize = sizeof(Thing),
    .tp_dealloc = thing_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
};

static PyObject *make(int id) {
    Thing *t = PyObject_New(Thing, &Thing_Type);
    t->id = id;
    return (PyObject *)t;
}

int main(void) {
    TEST_INIT();
    CHECK(PyType_Ready(&Thing_Type) == 0);

    /* Dealloc exactly once, at zero. */
    PyObject *a = make(1);
    CHECK(Py_REFCNT(a) == 1);
    CHECK(Py_TYPE(a) == &Thing_Type);
    CHECK(Py_IS_TYPE(a, &Thing_Type));
    Py_INCREF(a);
    Py_INCREF(a);
    CHECK(Py_REFCNT(a) == 3);
    Py_DECREF(a);
    Py_DECREF(a);
    CHECK(deallocs == 0);
    Py_DECREF(a);
    CHECK(deallocs == 1 && last_dealloc_id == 1);

    /* Py_CLEAR: the variable is NULL when the dealloc runs. */
    PyObject *slot = make(2);
    watched_slot = &slot;
    seen_in_slot = (PyObject *)1;
    Py_CLEAR(slot);
    CHECK(slot == NULL);
    CHECK(deallocs == 2 && last_dealloc_id == 2);
    CHECK(seen_in_slot == NULL);
    Py_CLEAR(slot); /* NULL: nothing happens */
    CHECK(deallocs == 2);

    /* Py_SETREF: the new value is stored before the old one is released. */
    PyObject *old = make(3), *newer = make(4);
    slot = old;
    Py_SETREF(slot, newer);
    CHECK(deallocs == 3 && last_dealloc_id == 3);
    CHECK(seen_in_slot == newer);
    CHECK(slot == newer);
    Py_XSETREF(slot, NULL);
    CHECK(deallocs == 4 && last_dealloc_id == 4 && seen_in_slot == NULL);
    watched_slot = NULL;

    /* NULL-tolerant forms and new references. */
    PyObject *n = NULL;
    Py_XINCREF(n);
    Py_XDECREF(n);
    Py_IncRef(NULL);
    Py_DecRef(NULL);
    CHECK(Py_XNewRef(n) == NULL);
    PyObject *b = make(5);
    PyObject *b2 = Py_NewRef(b);
    CHECK(b2 == b && Py_REFCNT(b) == 2);
    Py_IncRef(b);
    CHECK(Py_REFCNT(b) == 3);
    Py_DecRef(b);
    Py_XDECREF(b2);
    CHECK(Py_REFCNT(b) == 1);
    Py_SET_REFCNT(b, 7);
    CHECK(Py_REFCNT(b) == 7);
    Py_SET_REFCNT(b, 1);
    CHECK(Py_Is(b, b) && !Py_Is(b, Py_None));
    CHECK(Py_IsNone(Py_None));
    Py_DECREF(b);
    CHECK(deallocs == 5);

    /* Static type defaults filled by PyType_Ready. */
    CHECK(Thing_Type.tp_flags & Py_TPFLAGS_READY);
    CHECK(Thing_Type.tp_free == PyObject_Free);
    CHECK(Thing_Type.tp_alloc == PyType_GenericAlloc);
    CHECK(Thing_Type.tp_base == &PyBaseObject_Type);
    CHECK(Py_TYPE(&Thing_Type) == &PyType_Type);

    /* tp_alloc zeroes and counts the instance. */
    Thing *z = (Thing *)Thing_Type.tp_new(&Thing_Type, NULL, NULL);
    CHECK(z != NULL && z->id == 0 && Py_REFCNT(z) == 1);
    Py_DECREF(z);
    CHECK(deallocs == 6);
    return harness_summary();
}
