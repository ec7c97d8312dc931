/* With checked reference counting (-DPYHEAP_REF_DEBUG), a Py_DECREF on an
 * object that was freed stops with a report naming the address and the
 * call's file and line, before the freed memory is touched. */
// pyheap-test: cflags -DPYHEAP_REF_DEBUG
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr use of a freed object
// pyheap-test: stderr in Py_DECREF
// pyheap-test: stderr misuse_decref_freed.c:
#include "compat.h"

typedef struct {
    PyObject_HEAD
    long payload[3];
} Thing;

static PyTypeObject Thing_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Thing",
    .tp_basicsize = sizeof(Thing),
};

int main(void) {
    PyType_Ready(&Thing_Type);
    PyObject *keep = (PyObject *)PyObject_New(Thing, &Thing_Type);
    PyObject *o = (PyObject *)PyObject_New(Thing, &Thing_Type);
    Py_INCREF(keep);
    Py_DECREF(keep); /* checked operations on a live object pass */
    printf("ADDRESS=%p\n", (void *)o);
    fflush(stdout);
    Py_DECREF(o); /* freed */
    Py_DECREF(o); /* use after free */
    printf("not reached\n");
    return 0;
}
