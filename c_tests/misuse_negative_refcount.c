/* A Py_DECREF that takes a count below zero stops the program with a report
 * naming the object's address, its type and this file and line, in a
 * normal (non-debug) build. */
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr reference count below zero
// pyheap-test: stderr object type name: test.Victim
// pyheap-test: stderr misuse_negative_refcount.c:
#include "compat.h"

static void victim_dealloc(PyObject *self) {
    /* Keep the memory readable, as a buggy program often does. */
    (void)self;
}

static PyTypeObject Victim_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Victim",
    .tp_basicsize = sizeof(PyObject),
    .tp_dealloc = victim_dealloc,
};

int main(void) {
    PyType_Ready(&Victim_Type);
    PyObject *o = PyObject_New(PyObject, &Victim_Type);
    printf("ADDRESS=%p\n", (void *)o);
    fflush(stdout);
    Py_DECREF(o); /* to zero: dealloc (which leaves the memory alone) */
    Py_DECREF(o); /* below zero */
    printf("not reached\n");
    return 0;
}
