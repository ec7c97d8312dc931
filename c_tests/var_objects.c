/* Variable-size instances of static and heap types: PyObject_NewVar,
 * PyObject_InitVar, _PyObject_VAR_SIZE, PyType_GenericAlloc's zeroing and
 * extra item, Py_SIZE/Py_SET_SIZE. Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_VAR_HEAD
    long items[1];
} Vec;

static int vec_deallocs;
static void vec_dealloc(PyObject *self) {
    vec_deallocs++;
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) Py_DECREF(tp);
}

static PyTypeObject Vec_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Vec",
    .tp_basicsize = offsetof(Vec, items),
    .tp_itemsize = sizeof(long),
    .tp_dealloc = vec_dealloc,
};

static PyType_Slot heap_vec_slots[] = {{Py_tp_dealloc, (void *)vec_dealloc}, {0, NULL}};
static PyType_Spec heap_vec_spec = {"test.HeapVec", (int)offsetof(Vec, items), (int)sizeof(long),
                                    Py_TPFLAGS_DEFAULT, heap_vec_slots};

static void exercise(PyTypeObject *tp) {
    CHECK(_PyObject_VAR_SIZE(tp, 0) == (size_t)tp->tp_basicsize);
    CHECK(_PyObject_VAR_SIZE(tp, 3) == (size_t)tp->tp_basicsize + 3 * sizeof(long));
    CHECK(_PyObject_SIZE(tp) == tp->tp_basicsize);

    Vec *v = PyObject_NewVar(Vec, tp, 100);
    CHECK(v != NULL && Py_SIZE(v) == 100 && Py_TYPE(v) == tp);
    for (long i = 0; i < 100; i++) v->items[i] = i * i;
    long sum = 0;
    for (long i = 0; i < 100; i++) sum += v->items[i];
    CHECK(sum == 328350);
    Py_SET_SIZE(v, 50);
    CHECK(Py_SIZE(v) == 50);
    int before = vec_deallocs;
    Py_DECREF(v);
    CHECK(vec_deallocs == before + 1);

    /* tp_alloc zeroes the instance and its items, plus one more item. */
    Vec *z = (Vec *)PyType_GenericAlloc(tp, 7);
    CHECK(z != NULL && Py_SIZE(z) == 7 && Py_REFCNT(z) == 1);
    int nonzero = 0;
    for (int i = 0; i < 8; i++) nonzero |= z->items[i] != 0;
    CHECK(!nonzero);
    Py_DECREF(z);

    /* Large instances (beyond the pools) work the same. */
    Vec *big = PyObject_NewVar(Vec, tp, 100000);
    CHECK(big != NULL && Py_SIZE(big) == 100000);
    big->items[99999] = 42;
    Py_DECREF(big);
}

int main(void) {
    TEST_INIT();
    CHECK(PyType_Ready(&Vec_Type) == 0);
    exercise(&Vec_Type);
    PyTypeObject *heap = (PyTypeObject *)PyType_FromSpec(&heap_vec_spec);
    CHECK(heap != NULL && heap->tp_itemsize == (Py_ssize_t)sizeof(long));
    exercise(heap);

    /* PyObject_InitVar on memory from PyObject_Malloc. */
    Vec *m = (Vec *)PyObject_Malloc(_PyObject_VAR_SIZE(&Vec_Type, 4));
    CHECK(PyObject_InitVar((PyVarObject *)m, &Vec_Type, 4) == (PyVarObject *)m);
    CHECK(Py_SIZE(m) == 4 && Py_REFCNT(m) == 1 && Py_TYPE(m) == &Vec_Type);
    Py_DECREF(m);
    CHECK(vec_deallocs == 7);
    Py_DECREF(heap);
    return harness_summary();
}
