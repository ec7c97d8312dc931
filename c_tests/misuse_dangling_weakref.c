/* A type with weak reference support whose tp_dealloc forgets
 * PyObject_ClearWeakRefs: freeing an instance while a weak reference still
 * points to it stops the program with a report naming the object. */
// pyheap-test: abort
// pyheap-test: stderr object freed with live weak references
// pyheap-test: stderr did not call
// pyheap-test: stderr test.Forgetful
// pyheap-test: stderr-address
#include <stddef.h>
#include <stdio.h>

#include "pyheap.h"

typedef struct {
    PyObject_HEAD
    PyObject *weakreflist;
} Forgetful;

static void forgetful_dealloc(PyObject *self) {
    /* Missing: PyObject_ClearWeakRefs(self); */
    PyObject_Free(self);
}

static PyTypeObject Forgetful_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Forgetful",
    .tp_basicsize = sizeof(Forgetful),
    .tp_dealloc = forgetful_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(Forgetful, weakreflist),
};

int main(void) {
    if (PyType_Ready(&Forgetful_Type) != 0) return 2;
    Forgetful *f = PyObject_New(Forgetful, &Forgetful_Type);
    f->weakreflist = NULL;
    PyObject *w = PyWeakref_NewRef((PyObject *)f, NULL);
    if (w == NULL) return 3;
    printf("ADDRESS=%p\n", (void *)f);
    fflush(stdout);
    Py_DECREF(f); /* aborts */
    return 0;
}
