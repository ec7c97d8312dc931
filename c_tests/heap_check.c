/* PyHeap_CheckHeap: 0 on a healthy heap at every stage of a varied
 * workload (pooled and large blocks in all domains, GC and non-GC objects,
 * heap types, tuples, weak references with callbacks, cycles, a
 * collection, gc.garbage); -1 with a message naming the broken structure
 * when a GC list link or a weak reference list link is corrupted (in live
 * objects: no memory error for the tools), and 0 again once repaired.
 * pyheap only. */
#include "compat.h"

#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "weak_nodes.h"

/* PyHeap_CheckHeap's result, its message (if any) in `msg`. */
static char msg[1024];
static int check_heap(void) {
    FILE *f = tmpfile();
    if (f == NULL) return -2;
    int r = PyHeap_CheckHeap(f);
    rewind(f);
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = '\0';
    fclose(f);
    return r;
}

#define HEALTHY(stage)                                                         \
    do {                                                                       \
        int r_ = check_heap();                                                 \
        CHECKF(r_ == 0 && msg[0] == '\0', "%s: %d %s", stage, r_, msg);        \
    } while (0)

static int callback_runs;
static void on_death(PyObject *wr, void *ctx) {
    (void)wr;
    (void)ctx;
    callback_runs++;
}

typedef struct {
    PyObject_HEAD
    PyObject *weaklist;
    double x;
} Weakable;

static PyMemberDef weakable_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Weakable, weaklist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};
static PyType_Slot weakable_slots[] = {
    {Py_tp_members, weakable_members},
    {0, NULL},
};
static PyType_Spec weakable_spec = {"test.Weakable", sizeof(Weakable), 0,
                                    Py_TPFLAGS_DEFAULT, weakable_slots};

int main(void) {
    HEALTHY("empty heap");
    CHECK(PyHeap_CheckHeap(NULL) == 0);
    CHECK(weak_types_ready());
    HEALTHY("types ready");

    /* Blocks of many sizes in every domain, some freed. */
    enum { NB = 600 };
    static void *raw[NB], *mem[NB], *obj[NB];
    for (int i = 0; i < NB; i++) {
        size_t n = (size_t)(i * 7 % 1100) + 1;
        raw[i] = PyMem_RawMalloc(n);
        mem[i] = PyMem_Malloc(n);
        obj[i] = PyObject_Malloc(n);
        CHECK(raw[i] && mem[i] && obj[i]);
    }
    for (int i = 0; i < NB; i += 3) {
        PyMem_RawFree(raw[i]);
        PyMem_Free(mem[i]);
        PyObject_Free(obj[i]);
        raw[i] = mem[i] = obj[i] = NULL;
    }
    for (int i = 1; i < NB; i += 3) obj[i] = PyObject_Realloc(obj[i], 700);
    HEALTHY("blocks");

    /* Objects: GC nodes in a cycle, a heap type with weak references, a
     * tuple, a large GC object, weak references with callbacks. */
    WNode *a = wnode_new(&WNode_Type, 1), *b = wnode_new(&WNode_Type, 2);
    a->a = Py_NewRef((PyObject *)b);
    b->a = Py_NewRef((PyObject *)a);
    PyTypeObject *wt = (PyTypeObject *)PyType_FromSpec(&weakable_spec);
    CHECK(wt != NULL);
    PyObject *w = PyObject_New(PyObject, wt);
    ((Weakable *)w)->weaklist = NULL;
    PyObject *r1 = PyHeap_Weakref_NewRefWithCallback(w, on_death, NULL);
    PyObject *r2 = PyWeakref_NewRef(w, NULL);
    PyObject *r3 = PyHeap_Weakref_NewRefWithCallback((PyObject *)b, on_death, NULL);
    PyObject *leaf = leaf_new(7);
    PyObject *p = PyWeakref_NewProxy(leaf, NULL);
    PyObject *t = PyTuple_Pack(3, (PyObject *)a, w, leaf);
    PyObject *big = PyTuple_New(200); /* a GC object from the RAW domain */
    CHECK(r1 && r2 && r3 && p && t && big);
    for (int i = 0; i < 200; i++) PyTuple_SET_ITEM(big, i, Py_NewRef(Py_None));
    HEALTHY("objects");

    /* Corrupt a GC list link in a live node, then repair it. */
    {
        uintptr_t *gc_prev = (uintptr_t *)((char *)a - 16) + 1;
        uintptr_t saved = *gc_prev;
        *gc_prev = saved ^ 0x40;
        CHECK(check_heap() == -1);
        CHECKF(strstr(msg, "heap check failed: gc:") != NULL, "message: %s", msg);
        *gc_prev = saved;
        HEALTHY("gc link repaired");
    }

    /* Corrupt a weak reference list link: the second reference's back
     * link (PyWeakReference: header, wr_object, wr_callback, hash,
     * wr_prev). */
    {
        PyObject **wr_prev = (PyObject **)((char *)r1 + sizeof(PyObject) + 3 * sizeof(void *));
        PyObject *saved = *wr_prev;
        CHECK(saved == r2); /* the basic reference is first */
        *wr_prev = r1;
        CHECK(check_heap() == -1);
        CHECKF(strstr(msg, "heap check failed: weakref:") != NULL, "message: %s", msg);
        *wr_prev = saved;
        HEALTHY("weakref link repaired");
    }

    /* A collection with garbage saved: the cycle stays in gc.garbage. */
    Py_DECREF(t);
    Py_DECREF(big);
    Py_DECREF(a);
    Py_DECREF(b);
    PyHeap_GC_SetDebug(PyHeap_GC_DEBUG_SAVEALL);
    CHECK(PyGC_Collect() == 2);
    PyHeap_GC_SetDebug(0);
    CHECK(callback_runs == 1);
    HEALTHY("after a collection, garbage saved");
    PyHeap_GC_ClearGarbage();
    PyGC_Collect();
    HEALTHY("garbage cleared");

    /* Everything freed. */
    Py_DECREF(w);
    CHECK(callback_runs == 2);
    Py_DECREF(r1);
    Py_DECREF(r2);
    Py_DECREF(r3);
    Py_DECREF(p);
    Py_DECREF(leaf);
    Py_DECREF(wt);
    for (int i = 0; i < NB; i++) {
        PyMem_RawFree(raw[i]);
        PyMem_Free(mem[i]);
        PyObject_Free(obj[i]);
    }
    HEALTHY("all freed");
    return harness_summary();
}
