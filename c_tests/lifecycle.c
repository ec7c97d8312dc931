/* The runtime's life cycle: the RAW domain before initialisation,
 * Py_Initialize giving the calling thread the runtime lock, the lock API on
 * one thread and across two, the shutdown collection of Py_FinalizeEx, and
 * initialising again after finalisation. Runs against CPython 3.11 too. */
// pyheap-test: cpython
// pyheap-test: cflags -pthread
#include "compat.h"

#include <pthread.h>

#include "harness.h"

/* A GC object with one reference: enough to make a cycle. */
typedef struct {
    PyObject_HEAD
    PyObject *other;
} Node;

static int node_deallocs;

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
    node_deallocs++;
    PyObject_GC_Del(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
};

static PyObject *new_node(void) {
    Node *n = PyObject_GC_New(Node, &Node_Type);
    n->other = NULL;
    PyObject_GC_Track((PyObject *)n);
    return (PyObject *)n;
}

/* Makes a two-node cycle and drops it, leaving it to the collector. */
static void drop_cycle(void) {
    PyObject *a = new_node(), *b = new_node();
    ((Node *)a)->other = Py_NewRef(b);
    ((Node *)b)->other = Py_NewRef(a);
    Py_DECREF(a);
    Py_DECREF(b);
}

/* What a second thread saw while the main thread let the lock go. */
static struct {
    int check_before, state, check_inside, check_after, node_ok;
} seen;

static void *worker(void *arg) {
    (void)arg;
    seen.check_before = PyGILState_Check();
    PyGILState_STATE s = PyGILState_Ensure();
    seen.state = (int)s;
    seen.check_inside = PyGILState_Check();
    PyObject *n = new_node();
    seen.node_ok = n != NULL && Py_REFCNT(n) == 1;
    Py_DECREF(n);
    PyGILState_Release(s);
    seen.check_after = PyGILState_Check();
    return NULL;
}

/* A RAW hook that counts and forwards, installed before initialisation. */
static PyMemAllocatorEx raw_orig;
static int raw_calls;

static void *counting_malloc(void *ctx, size_t n) {
    (void)ctx;
    raw_calls++;
    return raw_orig.malloc(raw_orig.ctx, n);
}

int main(void) {
    /* Before anything: not initialised, yet RAW and PyMem_SetAllocator
     * work. */
    CHECK(Py_IsInitialized() == 0);
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_orig);
    PyMemAllocatorEx hook = raw_orig;
    hook.malloc = counting_malloc;
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &hook);
    void *raw = PyMem_RawMalloc(100);
    CHECK(raw != NULL);
    CHECK(raw_calls == 1);
    PyMem_RawFree(raw);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw_orig);
    CHECK(Py_IsInitialized() == 0);

    Py_Initialize();
    CHECK(Py_IsInitialized() == 1);
    Py_Initialize(); /* a second call does nothing */
    CHECK(Py_IsInitialized() == 1);
    CHECK(PyType_Ready(&Node_Type) == 0);

    /* The initialising thread holds the lock. */
    CHECK(PyGILState_Check() == 1);
    PyThreadState *ts = PyThreadState_Get();
    CHECK(ts != NULL);
    CHECK(PyGILState_GetThisThreadState() == ts);
    PyGILState_STATE s = PyGILState_Ensure();
    CHECK(s == PyGILState_LOCKED);
    CHECK(PyGILState_Check() == 1);
    PyGILState_Release(s);
    CHECK(PyGILState_Check() == 1);

    /* Letting go, on this thread alone. */
    PyThreadState *saved = PyEval_SaveThread();
    CHECK(saved == ts);
    CHECK(PyGILState_Check() == 0);
    PyEval_RestoreThread(saved);
    CHECK(PyGILState_Check() == 1);

    /* Ensure from a thread without the lock takes it and lets it go. */
    Py_BEGIN_ALLOW_THREADS
    CHECK(PyGILState_Check() == 0);
    s = PyGILState_Ensure();
    CHECK(s == PyGILState_UNLOCKED);
    CHECK(PyGILState_Check() == 1);
    PyGILState_Release(s);
    CHECK(PyGILState_Check() == 0);
    Py_END_ALLOW_THREADS
    CHECK(PyGILState_Check() == 1);

    /* A second thread runs while this one is inside ALLOW_THREADS. */
    pthread_t t;
    Py_BEGIN_ALLOW_THREADS
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    CHECK(seen.check_before == 0);
    CHECK(seen.state == PyGILState_UNLOCKED);
    CHECK(seen.check_inside == 1);
    CHECK(seen.node_ok);
    CHECK(seen.check_after == 0);
    CHECKF(node_deallocs == 1, "%d", node_deallocs);

    /* Finalisation collects the cycles left behind. */
    PyGC_Disable();
    drop_cycle();
    drop_cycle();
    CHECKF(node_deallocs == 1, "%d", node_deallocs);
    CHECK(Py_FinalizeEx() == 0);
    CHECKF(node_deallocs == 5, "%d", node_deallocs);
    CHECK(Py_IsInitialized() == 0);
    CHECK(PyGILState_Check() == 1); /* no lock rules after finalisation */
    CHECK(Py_FinalizeEx() == 0);    /* a second call does nothing */
    raw = PyMem_RawMalloc(10);      /* RAW still works */
    CHECK(raw != NULL);
    PyMem_RawFree(raw);

    /* And again. */
    Py_Initialize();
    CHECK(Py_IsInitialized() == 1);
    CHECK(PyGILState_Check() == 1);
    CHECK(PyThreadState_Get() != NULL);
    CHECK(Py_FinalizeEx() == 0);
    CHECK(Py_IsInitialized() == 0);
    return harness_summary();
}
