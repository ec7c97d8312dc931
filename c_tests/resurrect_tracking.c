/* A GC object of a heap type (default deallocator) that its finalizer or
 * legacy tp_del resurrects stays tracked by the collector, also when it
 * died deep in a chain (the trashcan deferred it), so a cycle through it
 * can still be collected. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *next;
    long id;
} Obj;

static PyObject *saved;
static long resurrect_id = -1;
static long finalized;

static int obj_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Obj *)self)->next);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int obj_clear(PyObject *self) {
    Py_CLEAR(((Obj *)self)->next);
    return 0;
}

/* Releases the rest of the chain (the default deallocator would not:
 * the type declares no members), and resurrects the target. */
static void obj_finalize(PyObject *self) {
    finalized++;
    Py_CLEAR(((Obj *)self)->next);
    if (((Obj *)self)->id == resurrect_id) {
        Py_INCREF(self);
        Py_XSETREF(saved, self);
    }
}

static PyType_Slot fin_slots[] = {
    {Py_tp_traverse, (void *)obj_traverse},
    {Py_tp_clear, (void *)obj_clear},
    {Py_tp_finalize, (void *)obj_finalize},
    {0, NULL},
};
static PyType_Spec fin_spec = {
    .name = "test.FinObj",
    .basicsize = sizeof(Obj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = fin_slots,
};

static PyType_Slot del_slots[] = {
    {Py_tp_traverse, (void *)obj_traverse},
    {Py_tp_clear, (void *)obj_clear},
    {Py_tp_del, (void *)obj_finalize},
    {0, NULL},
};
static PyType_Spec del_spec = {
    .name = "test.DelObj",
    .basicsize = sizeof(Obj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = del_slots,
};

static PyObject *obj_new(PyTypeObject *tp, long id) {
    Obj *o = PyObject_GC_New(Obj, tp);
    o->next = NULL;
    o->id = id;
    PyObject_GC_Track((PyObject *)o);
    return (PyObject *)o;
}

/* A chain of n objects, the head returned; object `target` resurrects. */
static void run(PyTypeObject *tp, long n, long target) {
    PyObject *head = NULL;
    for (long i = n - 1; i >= 0; i--) {
        PyObject *o = obj_new(tp, i);
        ((Obj *)o)->next = head;
        head = o;
    }
    resurrect_id = target;
    finalized = 0;
    Py_DECREF(head);
    CHECKF(saved != NULL && ((Obj *)saved)->id == target, "%s n=%ld finalized=%ld saved=%ld", tp->tp_name, n, finalized, saved ? ((Obj *)saved)->id : -1L);
    if (saved == NULL) return;
    CHECKF(PyObject_GC_IsTracked(saved), "%s n=%ld target=%ld", tp->tp_name, n, target);
    CHECKF(finalized == n, "%s finalized %ld of %ld", tp->tp_name, finalized, n);
    /* A cycle through the survivor is found by the collector. */
    resurrect_id = -1;
    ((Obj *)saved)->next = Py_NewRef(saved);
    PyObject *s = saved;
    saved = NULL;
    Py_DECREF(s);
    CHECKF(PyGC_Collect() >= 1, "%s cycle collected", tp->tp_name);
}

int main(void) {
    TEST_INIT();
    PyTypeObject *fin = (PyTypeObject *)PyType_FromSpec(&fin_spec);
    PyTypeObject *del = (PyTypeObject *)PyType_FromSpec(&del_spec);
    CHECK(fin != NULL && del != NULL);
    run(fin, 1, 0);
    run(del, 1, 0);
    run(fin, 1000, 700); /* deep: deferred by the trashcan first */
    run(del, 1000, 700);
    PyGC_Collect(); /* DelObj cycles are uncollectable garbage in CPython */
    return harness_summary();
}
