/* Tracking a GC object twice stops the program with CPython's message. */
// pyheap-test: abort
// pyheap-test: stderr-address
// pyheap-test: stderr object already tracked by the garbage collector
// pyheap-test: stderr test.Tracked
#include "compat.h"

static int traverse(PyObject *self, visitproc visit, void *arg) {
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

static PyTypeObject Tracked_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Tracked",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_HAVE_GC,
    .tp_traverse = traverse,
};

int main(void) {
    PyType_Ready(&Tracked_Type);
    PyObject *o = PyObject_GC_New(PyObject, &Tracked_Type);
    PyObject_GC_Track(o);
    printf("ADDRESS=%p\n", (void *)o);
    fflush(stdout);
    PyObject_GC_Track(o);
    printf("not reached\n");
    return 0;
}
