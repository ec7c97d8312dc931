/* Eight threads share one heap through the runtime lock: each takes and
 * releases it a fixed number of times, and while holding it allocates and
 * frees objects and blocks, builds and drops cycles, touches a shared
 * object's count, and now and then collects. Two more threads allocate
 * from the RAW domain all the while without ever taking the lock. At the
 * end every count must balance: objects made and freed, the shared
 * object's count, the live objects and reference total, the thread
 * states. */
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

#define THREADS 8
#define RAW_THREADS 2
/* PYHEAP_STRESS_ITERATIONS overrides this (fewer under the race tools). */
static int ITERATIONS = 1000;
#define CYCLES_PER_ITERATION 4

typedef struct {
    PyObject_HEAD
    PyObject *other;
    long payload[4];
} Node;

static long made, freed; /* under the runtime lock */

static int node_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Node *)self)->other);
    return 0;
}

static int node_clear(PyObject *self) {
    Py_CLEAR(((Node *)self)->other);
    return 0;
}

static void node_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    node_clear(self);
    freed++;
    PyObject_GC_Del(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stress.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
};

static PyObject *new_node(PyObject *other) {
    Node *n = PyObject_GC_New(Node, &Node_Type);
    if (n == NULL) return NULL;
    n->other = Py_XNewRef(other);
    PyObject_GC_Track((PyObject *)n);
    made++;
    return (PyObject *)n;
}

static PyObject *shared;

static int count_one(PyObject *op, void *ctx) {
    (void)op;
    (*(Py_ssize_t *)ctx)++;
    return 0;
}

static Py_ssize_t live_objects(void) {
    Py_ssize_t n = 0;
    PyHeap_VisitObjects(count_one, &n);
    return n;
}
static atomic_int workers_left = THREADS;
static atomic_long raw_ops;
static atomic_int failures;

static void *worker(void *arg) {
    unsigned seed = (unsigned)(size_t)arg * 2654435761u;
    for (int it = 0; it < ITERATIONS; it++) {
        PyGILState_STATE s = PyGILState_Ensure();
        if (!PyGILState_Check()) atomic_fetch_add(&failures, 1);
        Py_INCREF(shared);
        /* Cycles, a chain, and plain blocks of both domains. */
        for (int c = 0; c < CYCLES_PER_ITERATION; c++) {
            PyObject *a = new_node(shared);
            PyObject *b = new_node(a);
            Py_XSETREF(((Node *)a)->other, Py_NewRef(b)); /* a <-> b */
            Py_DECREF(a);
            Py_DECREF(b);
        }
        PyObject *chain = NULL;
        for (int i = 0; i < 8; i++) {
            PyObject *n = new_node(chain);
            Py_XDECREF(chain);
            chain = n;
        }
        void *blocks[16];
        for (int i = 0; i < 16; i++) {
            seed = seed * 1103515245u + 12345u;
            blocks[i] = (i & 1) ? PyMem_Malloc(1 + seed % 600)
                                : PyObject_Malloc(1 + seed % 600);
            if (blocks[i] == NULL) atomic_fetch_add(&failures, 1);
        }
        /* Lets the others run for a moment in the middle. */
        if (it % 16 == 0) {
            Py_BEGIN_ALLOW_THREADS
            void *r = PyMem_RawMalloc(64);
            PyMem_RawFree(r);
            Py_END_ALLOW_THREADS
        }
        for (int i = 0; i < 16; i++) {
            if (i & 1) PyMem_Free(blocks[i]);
            else PyObject_Free(blocks[i]);
        }
        Py_DECREF(chain);
        if (it % 50 == 0) PyGC_Collect();
        Py_DECREF(shared);
        PyGILState_Release(s);
        if (PyGILState_Check()) atomic_fetch_add(&failures, 1);
    }
    atomic_fetch_sub(&workers_left, 1);
    return NULL;
}

/* RAW only, never the lock: malloc, realloc, free in a ring. */
static void *raw_worker(void *arg) {
    (void)arg;
    void *ring[32] = {0};
    unsigned i = 0;
    while (atomic_load(&workers_left) > 0) {
        unsigned k = i++ % 32;
        PyMem_RawFree(ring[k]);
        ring[k] = PyMem_RawMalloc(16 + i % 300);
        ring[k] = PyMem_RawRealloc(ring[k], 32 + i % 500);
        if (ring[k] == NULL) atomic_fetch_add(&failures, 1);
        atomic_fetch_add(&raw_ops, 1);
    }
    for (int k = 0; k < 32; k++) PyMem_RawFree(ring[k]);
    return NULL;
}

int main(void) {
    const char *iters = getenv("PYHEAP_STRESS_ITERATIONS");
    if (iters != NULL && atoi(iters) > 0) ITERATIONS = atoi(iters);
    Py_Initialize();
    CHECK(PyType_Ready(&Node_Type) == 0);
    shared = new_node(NULL);
    PyGC_Collect();
    Py_ssize_t live_before = live_objects();
    Py_ssize_t refs_before = PyHeap_GetRefTotal();
    Py_ssize_t blocks_before = PyHeap_GetAllocatedBlocks();
    long made_before = made;

    pthread_t t[THREADS], r[RAW_THREADS];
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < RAW_THREADS; i++)
        CHECK(pthread_create(&r[i], NULL, raw_worker, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(size_t)(i + 1)) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < RAW_THREADS; i++) pthread_join(r[i], NULL);
    Py_END_ALLOW_THREADS

    PyGC_Collect();
    long expected = (long)THREADS * ITERATIONS * (2 * CYCLES_PER_ITERATION + 8);
    CHECKF(made - made_before == expected, "made %ld, expected %ld",
           made - made_before, expected);
    CHECKF(freed == made - 1, "freed %ld of %ld", freed, made - 1);
    CHECKF(Py_REFCNT(shared) == 1, "shared count %zd", Py_REFCNT(shared));
    CHECK(atomic_load(&failures) == 0);
    CHECK(atomic_load(&raw_ops) > 0);
    CHECKF(live_objects() == live_before, "live %zd, before %zd",
           live_objects(), live_before);
    CHECKF(PyHeap_GetRefTotal() == refs_before, "refs %zd, before %zd",
           PyHeap_GetRefTotal(), refs_before);
    CHECK(malloc_mode() || PyHeap_GetAllocatedBlocks() == blocks_before);
    CHECK(PyHeap_ThreadStateCount() == 1);
    printf("%ld objects made and freed by %d threads; %ld RAW operations "
           "meanwhile\n", expected, THREADS, atomic_load(&raw_ops));
    Py_DECREF(shared);
    CHECK(Py_FinalizeEx() == 0);
    return harness_summary();
}
