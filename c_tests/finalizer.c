/* PEP 442 finalizers called from deallocation: tp_finalize runs before the
 * memory goes, a finalizer can resurrect its object, and a GC object's
 * finalizer runs at most once. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

static int finalized, deallocated;
static PyObject *lazarus; /* where a finalizer resurrects its object */
static int resurrect;

static void fin(PyObject *self) {
    finalized++;
    if (resurrect) {
        lazarus = self;
        Py_INCREF(self);
    }
}

static int traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    return 0;
}

/* Heap type, no dealloc slot: the default dealloc runs the finalizer. */
static PyType_Slot heap_slots[] = {{Py_tp_finalize, (void *)fin}, {0, NULL}};
static PyType_Spec heap_spec = {"test.Finalized", sizeof(PyObject), 0, Py_TPFLAGS_DEFAULT, heap_slots};

/* Static GC type whose dealloc calls the finalizer itself. */
static void gc_dealloc(PyObject *self) {
    if (PyObject_CallFinalizerFromDealloc(self) < 0) return; /* resurrected */
    PyObject_GC_UnTrack(self);
    deallocated++;
    Py_TYPE(self)->tp_free(self);
}
static PyTypeObject GcFin_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.GcFin",
    .tp_basicsize = sizeof(PyObject),
    .tp_dealloc = gc_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = traverse,
    .tp_finalize = fin,
};

int main(void) {
    TEST_INIT();
    PyTypeObject *tp = (PyTypeObject *)PyType_FromSpec(&heap_spec);
    CHECK(tp != NULL);
    PyObject *o = PyType_GenericNew(tp, NULL, NULL);
    Py_DECREF(o);
    CHECK(finalized == 1);

    /* Resurrection from the default dealloc: the object survives. */
    resurrect = 1;
    o = PyType_GenericNew(tp, NULL, NULL);
    Py_DECREF(o);
    CHECK(finalized == 2 && lazarus == o && Py_REFCNT(o) == 1);
    resurrect = 0;
    lazarus = NULL;
    Py_DECREF(o); /* heap type, not GC: finalizes again (as CPython) */
    CHECK(finalized == 3);

    /* GC type: finalizer runs once, even across a resurrection. */
    CHECK(PyType_Ready(&GcFin_Type) == 0);
    PyObject *g = PyObject_GC_New(PyObject, &GcFin_Type);
    PyObject_GC_Track(g);
    resurrect = 1;
    Py_DECREF(g);
    CHECK(finalized == 4 && lazarus == g && deallocated == 0);
    CHECK(PyObject_GC_IsFinalized(g));
    resurrect = 0;
    lazarus = NULL;
    Py_DECREF(g);
    CHECK(finalized == 4 && deallocated == 1);

    /* PyObject_CallFinalizer on a live GC object, then once more: no-op. */
    g = PyObject_GC_New(PyObject, &GcFin_Type);
    PyObject_CallFinalizer(g);
    PyObject_CallFinalizer(g);
    CHECK(finalized == 5);
    Py_DECREF(g);
    CHECK(finalized == 5 && deallocated == 2);
    Py_DECREF(tp);
    return harness_summary();
}
