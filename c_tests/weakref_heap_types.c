/* Weak reference support declared the heap-type ways: the
 * __weaklistoffset__ member of PyType_FromSpec (the default deallocator
 * then clears weak references and runs callbacks), inherited by a subtype
 * (pyheap only for non-GC types: see main);
 * and, pyheap only, CPython 3.12's Py_TPFLAGS_MANAGED_WEAKREF, where the
 * instance reserves no field. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h" /* first: Python.h must precede system headers */

#include <stddef.h>

#include "harness.h"
#include "weak_nodes.h"

typedef struct {
    PyObject_HEAD
    long value;
    PyObject *weakreflist;
} Box;

static PyMemberDef box_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Box, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot box_slots[] = {
    {Py_tp_members, box_members},
    {0, NULL},
};

static PyType_Spec box_spec = {
    .name = "test.Box",
    .basicsize = sizeof(Box),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = box_slots,
};

/* A GC heap type with the member. */
static int gbox_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyType_Slot gbox_slots[] = {
    {Py_tp_members, box_members},
    {Py_tp_traverse, (void *)gbox_traverse},
    {0, NULL},
};

static PyType_Spec gbox_spec = {
    .name = "test.GBox",
    .basicsize = sizeof(Box),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = gbox_slots,
};

static PyType_Slot sub_slots[] = {{0, NULL}};
static PyType_Spec sub_spec = {
    .name = "test.SubBox",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = sub_slots,
};

/* Creates an instance, weak references with callbacks, and drops it:
 * the default deallocator must have cleared the list and called back. */
static void check_type(PyTypeObject *tp, long rec_id) {
    CHECK(tp->tp_weaklistoffset == (Py_ssize_t)offsetof(Box, weakreflist));
    PyObject *o = tp->tp_alloc(tp, 0);
    CHECK(o != NULL);
    PyObject *cb = recorder_new(rec_id);
    PyObject *w1 = PyWeakref_NewRef(o, cb);
    PyObject *w2 = PyWeakref_NewRef(o, NULL);
    CHECK(w1 != NULL && w2 != NULL);
    CHECK(((Box *)o)->weakreflist == w2); /* the basic ref heads the list */
    events_reset();
    Py_DECREF(o);
    CHECK(count_events(EV_CALL) == 1 && events[0].arg == w1 && events[0].seen == Py_None);
    CHECK(PyWeakref_GetObject(w2) == Py_None);
    Py_DECREF(w1);
    Py_DECREF(w2);
    Py_DECREF(cb);
}

#ifndef USE_CPYTHON
/* CPython 3.12's managed list: no field, a flag. */
typedef struct {
    PyObject_HEAD
    long value;
} Managed;

static PyType_Slot managed_slots[] = {{0, NULL}};
static PyType_Spec managed_spec = {
    .name = "test.Managed",
    .basicsize = sizeof(Managed),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_MANAGED_WEAKREF,
    .slots = managed_slots,
};

static void managed_static_dealloc(PyObject *self) {
    PyObject_ClearWeakRefs(self);
    PyObject_Free(self);
}

static PyTypeObject ManagedStatic_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.ManagedStatic",
    .tp_basicsize = sizeof(Managed),
    .tp_dealloc = managed_static_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_MANAGED_WEAKREF,
};

static void managed(void) {
    PyTypeObject *tp = (PyTypeObject *)PyType_FromSpec(&managed_spec);
    CHECK(tp != NULL && tp->tp_weaklistoffset < 0);
    PyTypeObject *sub = (PyTypeObject *)PyType_FromSpecWithBases(&sub_spec, (PyObject *)tp);
    CHECK(sub != NULL && (sub->tp_flags & Py_TPFLAGS_MANAGED_WEAKREF));
    CHECK(PyType_Ready(&ManagedStatic_Type) == 0);
    PyTypeObject *types[3] = {tp, sub, &ManagedStatic_Type};
    for (int t = 0; t < 3; t++) {
        /* Many objects, so list heads of neighbours cannot mix. */
        enum { N = 200 };
        PyObject *objs[N], *wrs[N];
        PyObject *cb = recorder_new(50 + t);
        for (int i = 0; i < N; i++) {
            objs[i] = types[t]->tp_alloc(types[t], 0);
            wrs[i] = PyWeakref_NewRef(objs[i], i % 2 ? cb : NULL);
        }
        int ok = 1;
        for (int i = 0; i < N; i++) ok &= PyWeakref_GetObject(wrs[i]) == objs[i];
        for (int i = 0; i < N; i++) ok &= PyHeap_Weakref_Count(objs[i]) == 1;
        CHECK(ok);
        CHECK(PyWeakref_NewRef(objs[0], NULL) == wrs[0]); /* shared */
        Py_DECREF(wrs[0]);
        events_reset();
        for (int i = 0; i < N; i++) Py_DECREF(objs[i]);
        CHECK(count_events(EV_CALL) == N / 2);
        ok = 1;
        for (int i = 0; i < N; i++) ok &= PyWeakref_GetObject(wrs[i]) == Py_None;
        CHECK(ok);
        for (int i = 0; i < N; i++) Py_DECREF(wrs[i]);
        Py_DECREF(cb);
    }
    Py_DECREF(sub);
    Py_DECREF(tp);
}
#endif

int main(void) {
    TEST_INIT();
    CHECK(weak_types_ready());
    PyTypeObject *box = (PyTypeObject *)PyType_FromSpec(&box_spec);
    PyTypeObject *gbox = (PyTypeObject *)PyType_FromSpec(&gbox_spec);
    PyTypeObject *sub = (PyTypeObject *)PyType_FromSpecWithBases(&sub_spec, (PyObject *)box);
    CHECK(box != NULL && gbox != NULL && sub != NULL);
    if (box && gbox && sub) {
        check_type(gbox, 2);
        /* CPython 3.11's default deallocator clears weak references only
         * for GC types: a non-GC heap type's instance is freed with its
         * weak references left dangling. pyheap clears them for both. */
        PYHEAP_ONLY(check_type(box, 1));
        PYHEAP_ONLY(check_type(sub, 3));
    }
    Py_XDECREF(sub);
    Py_XDECREF(box);
    Py_XDECREF(gbox);
    PYHEAP_ONLY(managed());
    return harness_summary();
}
