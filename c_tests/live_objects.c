/* Live-object accounting: PyHeap_GetRefTotal (CPython's _Py_RefTotal,
 * immortals excluded), PyHeap_GetLiveObjects by type and
 * PyHeap_VisitObjects, for pooled, large and GC objects. */
#include "compat.h"

#include "harness.h"

typedef struct {
    PyObject_VAR_HEAD
    char data[1];
} Blob;

static PyTypeObject Small_Type = {PyVarObject_HEAD_INIT(NULL, 0).tp_name = "test.Small",
                                  .tp_basicsize = sizeof(PyObject)};
static PyTypeObject Blob_Type = {PyVarObject_HEAD_INIT(NULL, 0).tp_name = "test.Blob",
                                 .tp_basicsize = offsetof(Blob, data), .tp_itemsize = 1};
static int no_traverse(PyObject *self, visitproc visit, void *arg) {
    (void)self, (void)visit, (void)arg;
    return 0;
}
static PyTypeObject Gc_Type = {PyVarObject_HEAD_INIT(NULL, 0).tp_name = "test.Gc",
                               .tp_basicsize = sizeof(PyObject) + 16,
                               .tp_flags = Py_TPFLAGS_HAVE_GC,
                               .tp_traverse = no_traverse};

struct tally {
    size_t small, small_bytes, blob, blob_bytes, gc, gc_bytes, types;
};

static int by_type(PyTypeObject *tp, size_t count, size_t bytes, void *ctx) {
    struct tally *t = ctx;
    t->types++;
    if (tp == &Small_Type) t->small = count, t->small_bytes = bytes;
    if (tp == &Blob_Type) t->blob = count, t->blob_bytes = bytes;
    if (tp == &Gc_Type) t->gc = count, t->gc_bytes = bytes;
    return 0;
}

static int visited;
static int visit_one(PyObject *op, void *ctx) {
    (void)ctx;
    if (Py_TYPE(op) == &Small_Type) visited++;
    return 0;
}

int main(void) {
    CHECK(PyType_Ready(&Small_Type) == 0);
    CHECK(PyType_Ready(&Blob_Type) == 0);
    CHECK(PyType_Ready(&Gc_Type) == 0);
    Py_ssize_t total0 = PyHeap_GetRefTotal();

    PyObject *small[10];
    for (int i = 0; i < 10; i++) small[i] = PyObject_New(PyObject, &Small_Type);
    Blob *big = PyObject_NewVar(Blob, &Blob_Type, 5000);   /* beyond the pools */
    Blob *little = PyObject_NewVar(Blob, &Blob_Type, 10);
    PyObject *gc = PyObject_GC_New(PyObject, &Gc_Type);
    Py_INCREF(small[0]);
    Py_INCREF(big);
    CHECK(PyHeap_GetRefTotal() == total0 + 10 + 2 + 1 + 2);

    struct tally t = {0};
    Py_ssize_t n = PyHeap_GetLiveObjects(by_type, &t);
    CHECK(n == 13);
    CHECK(t.types == 3);
    CHECK(t.small == 10 && t.small_bytes == 10 * sizeof(PyObject));
    CHECK(t.blob == 2 && t.blob_bytes == 2 * offsetof(Blob, data) + 5010);
    CHECK(t.gc == 1 && t.gc_bytes == sizeof(PyObject) + 16 + 16);
    CHECK(PyHeap_VisitObjects(visit_one, NULL) == 13 && visited == 10);
    CHECK(PyHeap_GetLiveObjects(NULL, NULL) == -1);

    /* Immortal objects do not count; freed ones disappear. */
    Py_INCREF(Py_None);
    Py_DECREF(small[0]);
    Py_DECREF(small[0]);
    Py_DECREF(big);
    Py_DECREF(big);
    Py_DECREF(gc);
    CHECK(PyHeap_GetRefTotal() == total0 + 9 + 1);
    memset(&t, 0, sizeof t);
    CHECK(PyHeap_GetLiveObjects(by_type, &t) == 10);
    CHECK(t.small == 9 && t.blob == 1 && t.gc == 0);
    for (int i = 1; i < 10; i++) Py_DECREF(small[i]);
    Py_DECREF(little);
    CHECK(PyHeap_GetRefTotal() == total0);
    CHECK(PyHeap_GetLiveObjects(by_type, &t) == 0);

    /* Objects moved by PyObject_Realloc stay counted. */
    /* (In the malloc modes memory given to PyObject_Init is not known to be
     * pyheap's, so such objects are not listed.) */
    PyObject *r = PyObject_Malloc(sizeof(PyObject));
    PyObject_Init(r, &Small_Type);
    CHECK(malloc_mode() || PyHeap_VisitObjects(visit_one, NULL) == 1);
    r = PyObject_Realloc(r, 2000); /* moves out of the pools */
    CHECK(malloc_mode() || PyHeap_VisitObjects(visit_one, NULL) == 1);
    r = PyObject_Realloc(r, 64);
    CHECK(malloc_mode() || PyHeap_VisitObjects(visit_one, NULL) == 1);
    Py_DECREF(r);
    CHECK(PyHeap_VisitObjects(visit_one, NULL) == 0);
    return harness_summary();
}
