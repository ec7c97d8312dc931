/* Collector and object benchmark. The same source builds against pyheap
 * (default) and against CPython 3.11 (-DUSE_CPYTHON, linked with
 * libpython3.11.so), so both run the same graphs with the same GC type.
 *
 *   gc_bench cycles   100,000 rings of 10 nodes, then one full collection
 *   gc_bench live     1,000,000 reachable nodes, full collection, nothing freed
 *   gc_bench churn    10,000,000 short-lived nodes, every 10th in a 2-cycle,
 *                     automatic collection on
 *   gc_bench objects  10,000,000 create/destroy of a small non-GC object
 *
 * Output: one line of key=value pairs (times in ns, RSS in KiB). Shapes are
 * modelled on pyperformance's gc_collect and gc_traversal benchmarks. */
#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define IMPL "cpython-3.11"
#else
#include "pyheap.h"
#define IMPL "pyheap"
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct Node {
    PyObject_HEAD
    PyObject *a, *b;
    long value;
} Node;

static int node_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Node *)self)->a);
    Py_VISIT(((Node *)self)->b);
    return 0;
}

static int node_clear(PyObject *self) {
    Py_CLEAR(((Node *)self)->a);
    Py_CLEAR(((Node *)self)->b);
    return 0;
}

static void node_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(((Node *)self)->a);
    Py_CLEAR(((Node *)self)->b);
    PyObject_GC_Del(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bench.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
};

typedef struct {
    PyObject_HEAD
    long value;
} Small;

static PyTypeObject Small_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bench.Small",
    .tp_basicsize = sizeof(Small),
};

static Node *node_new(void) {
    Node *n = PyObject_GC_New(Node, &Node_Type);
    n->a = n->b = NULL;
    n->value = 0;
    PyObject_GC_Track((PyObject *)n);
    return n;
}

/* ---- pause measurement through the collector's callbacks --------------- */

static uint64_t pause_start, pause_max, pause_total, collections;

static void pause_begin(void) { pause_start = now_ns(); }
static void pause_end(void) {
    uint64_t d = now_ns() - pause_start;
    pause_total += d;
    if (d > pause_max) pause_max = d;
    collections++;
}

#ifdef USE_CPYTHON
static PyObject *py_gc_callback(PyObject *self, PyObject *args) {
    (void)self;
    const char *phase;
    PyObject *info;
    if (!PyArg_ParseTuple(args, "sO", &phase, &info)) return NULL;
    if (strcmp(phase, "start") == 0) pause_begin();
    else pause_end();
    Py_RETURN_NONE;
}
static PyMethodDef cb_def = {"cb", py_gc_callback, METH_VARARGS, NULL};
static void install_callback(void) {
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *cbs = PyObject_GetAttrString(gc, "callbacks");
    PyObject *f = PyCFunction_New(&cb_def, NULL);
    PyList_Append(cbs, f);
    Py_DECREF(f);
    Py_DECREF(cbs);
    Py_DECREF(gc);
}
#else
static void on_gc(int phase, const PyHeap_GCInfo *info, void *ctx) {
    (void)info;
    (void)ctx;
    if (phase == PyHeap_GC_PHASE_START) pause_begin();
    else pause_end();
}
static void install_callback(void) { PyHeap_GC_AddCallback(on_gc, NULL); }
#endif

/* ---- workloads ----------------------------------------------------------- */

static void report(const char *workload, long objects, uint64_t build_ns, uint64_t main_ns) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("impl=%s workload=%s objects=%ld build_ns=%llu main_ns=%llu ns_per_object=%.2f "
           "collections=%llu pause_max_ns=%llu pause_total_ns=%llu peak_rss_kib=%ld\n",
           IMPL, workload, objects, (unsigned long long)build_ns, (unsigned long long)main_ns,
           (double)main_ns / (double)objects, (unsigned long long)collections,
           (unsigned long long)pause_max, (unsigned long long)pause_total, ru.ru_maxrss);
}

static void cycles(void) {
    const long rings = 100000, len = 10;
    PyGC_Collect();
    PyGC_Disable();
    uint64_t t0 = now_ns();
    for (long r = 0; r < rings; r++) {
        Node *first = node_new(), *prev = first;
        for (long i = 1; i < len; i++) {
            Node *n = node_new();
            prev->a = (PyObject *)n; /* owns the new reference */
            prev = n;
        }
        Py_INCREF(first);
        prev->a = (PyObject *)first;
        Py_DECREF(first);
    }
    uint64_t t1 = now_ns();
    PyGC_Enable();
    collections = pause_max = pause_total = 0;
    Py_ssize_t found = PyGC_Collect();
    uint64_t t2 = now_ns();
    if (found < rings * len) fprintf(stderr, "collected only %zd\n", found);
    report("cycles", rings * len, t1 - t0, t2 - t1);
}

static void live(void) {
    const long n = 1000000;
    PyGC_Collect();
    PyGC_Disable();
    uint64_t t0 = now_ns();
    /* A binary-ish tree through a/b: node i's children are 2i+1, 2i+2. */
    Node **nodes = malloc(sizeof(Node *) * (size_t)n);
    for (long i = 0; i < n; i++) nodes[i] = node_new();
    for (long i = n - 1; i > 0; i--) {
        Node *parent = nodes[(i - 1) / 2];
        if (parent->a == NULL) parent->a = (PyObject *)nodes[i];
        else parent->b = (PyObject *)nodes[i];
    }
    Node *root = nodes[0];
    free(nodes);
    uint64_t t1 = now_ns();
    PyGC_Enable();
    collections = pause_max = pause_total = 0;
    Py_ssize_t found = PyGC_Collect();
    uint64_t t2 = now_ns();
    if (found != 0) fprintf(stderr, "collected %zd live objects?\n", found);
    report("live", n, t1 - t0, t2 - t1);
    Py_DECREF(root);
}

static void churn(void) {
    const long n = 10000000;
    PyGC_Collect();
    collections = pause_max = pause_total = 0;
    uint64_t t0 = now_ns();
    Node *prev = NULL;
    for (long i = 0; i < n; i++) {
        Node *x = node_new();
        if (i % 10 == 9 && prev != NULL) {
            /* a 2-cycle: x <-> prev, then both dropped */
            Py_INCREF(prev);
            x->a = (PyObject *)prev;
            Py_INCREF(x);
            prev->a = (PyObject *)x;
        }
        Py_XDECREF(prev);
        prev = x;
    }
    Py_XDECREF(prev);
    uint64_t t1 = now_ns();
    report("churn", n, 0, t1 - t0);
}

static void objects(void) {
    const long n = 10000000;
    uint64_t t0 = now_ns();
    Small *keep[8] = {0};
    for (long i = 0; i < n; i++) {
        Small *s = PyObject_New(Small, &Small_Type);
        s->value = i;
        Py_XDECREF(keep[i & 7]);
        keep[i & 7] = s;
    }
    for (int i = 0; i < 8; i++) Py_XDECREF(keep[i]);
    uint64_t t1 = now_ns();
    report("objects", n, 0, t1 - t0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s cycles|live|churn|objects\n", argv[0]);
        return 2;
    }
#ifdef USE_CPYTHON
    Py_InitializeEx(0);
#endif
    if (PyType_Ready(&Node_Type) < 0 || PyType_Ready(&Small_Type) < 0) return 1;
    install_callback();
    if (strcmp(argv[1], "cycles") == 0) cycles();
    else if (strcmp(argv[1], "live") == 0) live();
    else if (strcmp(argv[1], "churn") == 0) churn();
    else if (strcmp(argv[1], "objects") == 0) objects();
    else return 2;
    return 0;
}
