/* Objects allocated through an OBJ allocator installed with
 * PyMem_SetAllocator that does not forward to pyheap's (plain libc):
 * pyheap still lists them as live while they live and forgets them when
 * they are freed or moved, so live-object accounting stays right. */
#include <stdlib.h>

#include "harness.h"
#include "pyheap.h"

static void *m(void *ctx, size_t n) { (void)ctx; return malloc(n ? n : 1); }
static void *c(void *ctx, size_t k, size_t n) { (void)ctx; return calloc(k ? k : 1, n ? n : 1); }
static void *r(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n ? n : 1); }
static void f(void *ctx, void *p) { (void)ctx; free(p); }

typedef struct {
    PyObject_VAR_HEAD
    char data[];
} Blob;

static PyTypeObject Blob_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Blob",
    .tp_basicsize = sizeof(Blob),
    .tp_itemsize = 1,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static size_t blobs;
static int count_blobs(PyTypeObject *tp, size_t count, size_t bytes, void *ctx) {
    (void)bytes, (void)ctx;
    if (tp == &Blob_Type) blobs = count;
    return 0;
}

static size_t live_blobs(void) {
    blobs = 0;
    PyHeap_GetLiveObjects(count_blobs, NULL);
    return blobs;
}

int main(void) {
    CHECK(PyType_Ready(&Blob_Type) == 0);
    PyMemAllocatorEx old, libc = {NULL, m, c, r, f};
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &old);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &libc);

    enum { N = 200 };
    PyObject *objs[N];
    for (int i = 0; i < N; i++) objs[i] = (PyObject *)PyObject_NewVar(Blob, &Blob_Type, i % 2 ? 10 : 4000);
    CHECK(live_blobs() == N);
    Py_ssize_t total = PyHeap_GetRefTotal();
    CHECK(total >= N);
    for (int i = 0; i < N; i += 2) Py_DECREF(objs[i]);
    CHECK(live_blobs() == N / 2);
    /* Reuse of freed addresses by new objects does not confuse it. */
    for (int i = 0; i < N; i += 2) objs[i] = (PyObject *)PyObject_NewVar(Blob, &Blob_Type, 4000);
    CHECK(live_blobs() == N);
    /* Memory handed out for other things at freed addresses is no object. */
    for (int i = 0; i < N; i++) Py_DECREF(objs[i]);
    void *other[N];
    for (int i = 0; i < N; i++) {
        other[i] = PyObject_Malloc(4000 + sizeof(Blob));
        ((char *)other[i])[8] = 0x5a; /* garbage where a type would be */
    }
    CHECK(live_blobs() == 0);
    CHECK(PyHeap_GetRefTotal() == total - N);
    for (int i = 0; i < N; i++) PyObject_Free(other[i]);

    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &old);
    CHECK(live_blobs() == 0);
    return harness_summary();
}
