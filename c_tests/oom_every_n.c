/* Out of memory at every allocation: a counting hook over the RAW, MEM
 * and OBJ domains (PyMem_SetAllocator) and over the arena allocator
 * (PyObject_SetArenaAllocator) makes the N-th allocation call fail, for
 * N = 1, 2, ... until a realistic workload runs without a failure. The
 * workload uses all three domains with many sizes (pooled and large),
 * reallocs that grow across size classes and into large blocks and shrink
 * back, strdup, objects of GC and non-GC types, var-sized GC objects and
 * their resize, tuples, calls, heap types from PyType_FromSpec, weak
 * references and proxies with object and C callbacks, cycles and a
 * collection; then frees everything.
 *
 * Each API must fail only when an allocation was made to fail, and then
 * with its documented error value: NULL (and, where CPython raises
 * MemoryError, PyHeap_LastErrorKind() == PYHEAP_ERR_NO_MEMORY), the
 * original block untouched by a failed realloc or GC resize. After each N,
 * PyHeap_CheckHeap passes and the heap is back to its baseline: the same
 * PyHeap_GetAllocatedBlocks(), and in every domain as many blocks live
 * as before (no leak on any error path).
 *
 * The pass runs three times: plainly, with tracemalloc over the hooks
 * (no trace may outlive its block, whatever failed), and with a collection
 * every few GC allocations (collections, finalizers and weak reference
 * callbacks inside the allocations). A last pass fails only the k-th arena
 * allocation, k = 1, 2, ..., with a phase that needs more than one new
 * arena: the pool allocator runs out, and small requests must fall back to
 * the RAW domain with nothing failing.
 *
 * PYHEAP_OOM_STRIDE=s tests every s-th N only (for slow tools). */
#include "compat.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gc_nodes.h"
#include "harness.h"
#include "weak_nodes.h"

/* ------------------------------------------------------------------ */
/* The fault injector. */

static PyMemAllocatorEx prev_table[3];
static PyObjectArenaAllocator prev_arena;
static int armed;           /* count (and fail) calls */
static int arenas_only;     /* the arena pass: only arena calls count */
static long calls, fail_at; /* the call that fails (0: none) */
static long failures;       /* calls made to fail so far */
static long live[3];        /* per domain: blocks handed out minus freed */
static long arena_calls;    /* arena allocations asked for while armed */
static int tracing;         /* the tracing pass: tracemalloc over the hooks */
static int gc_often;        /* a collection every few GC allocations */

static int fail_now(void) {
    if (!armed || arenas_only) return 0;
    if (++calls == fail_at) {
        failures++;
        return 1;
    }
    return 0;
}

static void *h_malloc(void *ctx, size_t n) {
    int d = (int)(intptr_t)ctx;
    if (fail_now()) return NULL;
    void *p = prev_table[d].malloc(prev_table[d].ctx, n);
    if (p != NULL) live[d]++;
    return p;
}

static void *h_calloc(void *ctx, size_t nelem, size_t elsize) {
    int d = (int)(intptr_t)ctx;
    if (fail_now()) return NULL;
    void *p = prev_table[d].calloc(prev_table[d].ctx, nelem, elsize);
    if (p != NULL) live[d]++;
    return p;
}

static void *h_realloc(void *ctx, void *p, size_t n) {
    int d = (int)(intptr_t)ctx;
    if (fail_now()) return NULL;
    void *q = prev_table[d].realloc(prev_table[d].ctx, p, n);
    if (q != NULL && p == NULL) live[d]++;
    return q;
}

static void h_free(void *ctx, void *p) {
    int d = (int)(intptr_t)ctx;
    if (p != NULL) live[d]--;
    prev_table[d].free(prev_table[d].ctx, p);
}

static void *h_arena_alloc(void *ctx, size_t size) {
    (void)ctx;
    if (armed) {
        arena_calls++;
        if (arenas_only ? arena_calls == fail_at : fail_now()) {
            if (arenas_only) failures++;
            return NULL;
        }
    }
    return prev_arena.alloc(prev_arena.ctx, size);
}

static void h_arena_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    prev_arena.free(prev_arena.ctx, p, size);
}

static void install_hooks(void) {
    for (int d = 0; d < 3; d++) {
        PyMem_GetAllocator((PyMemAllocatorDomain)d, &prev_table[d]);
        PyMemAllocatorEx a = {(void *)(intptr_t)d, h_malloc, h_calloc, h_realloc, h_free};
        PyMem_SetAllocator((PyMemAllocatorDomain)d, &a);
    }
    PyObject_GetArenaAllocator(&prev_arena);
    PyObjectArenaAllocator a = {NULL, h_arena_alloc, h_arena_free};
    PyObject_SetArenaAllocator(&a);
}

/* ------------------------------------------------------------------ */
/* Checks of error values. */

static long run_n; /* the N of the run, for messages */

/* `what` returned NULL: only allowed if a call was made to fail since
 * `before` (failures then), and never in the arena pass (where the pools
 * fall back to the RAW domain, which does not fail). */
#define FAILED_HONESTLY(what, before)                                          \
    CHECKF(failures > (before) && !arenas_only,                                \
           "N=%ld%s: %s failed with no allocation failing", run_n,             \
           arenas_only ? " (arenas)" : "", what)

/* As FAILED_HONESTLY, for an API that raises MemoryError in CPython. */
#define FAILED_WITH_MEMORY_ERROR(what, before)                                 \
    do {                                                                       \
        FAILED_HONESTLY(what, before);                                         \
        CHECKF(PyHeap_LastErrorKind() == PYHEAP_ERR_NO_MEMORY,                 \
               "N=%ld: %s failed with error kind %d (%s)", run_n, what,        \
               (int)PyHeap_LastErrorKind(),                                    \
               PyHeap_LastError() ? PyHeap_LastError() : "none");              \
        PyHeap_ClearError();                                                   \
    } while (0)

/* Calls `expr` (an object API) into `var`; a NULL result is checked. */
#define OBJ_CALL(var, expr, what)                                              \
    do {                                                                       \
        long before_ = failures;                                               \
        PyHeap_ClearError();                                                   \
        var = (expr);                                                          \
        if (var == NULL) FAILED_WITH_MEMORY_ERROR(what, before_);              \
    } while (0)

static int is_filled(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Types for the workload (besides gc_nodes.h and weak_nodes.h). */

/* A var-sized GC object: its items are owned references. */
typedef struct {
    PyObject_VAR_HEAD
    PyObject *items[1];
} Vec;

static int vec_traverse(PyObject *self, visitproc visit, void *arg) {
    Vec *v = (Vec *)self;
    for (Py_ssize_t i = 0; i < Py_SIZE(v); i++) Py_VISIT(v->items[i]);
    return 0;
}

static int vec_clear(PyObject *self) {
    Vec *v = (Vec *)self;
    for (Py_ssize_t i = 0; i < Py_SIZE(v); i++) Py_CLEAR(v->items[i]);
    return 0;
}

static void vec_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    vec_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject Vec_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Vec",
    .tp_basicsize = offsetof(Vec, items),
    .tp_itemsize = sizeof(PyObject *),
    .tp_dealloc = vec_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = vec_traverse,
    .tp_clear = vec_clear,
};

/* A heap type: GC, weakly referenceable, default deallocator. */
typedef struct {
    PyObject_HEAD
    PyObject *ref;
    PyObject *weaklist;
} HObj;

static int hobj_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((HObj *)self)->ref);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int hobj_clear(PyObject *self) {
    Py_CLEAR(((HObj *)self)->ref);
    return 0;
}

static PyMemberDef hobj_members[] = {
    {"ref", T_OBJECT_EX, offsetof(HObj, ref), 0, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HObj, weaklist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot hobj_slots[] = {
    {Py_tp_doc, (void *)"A heap type of the out-of-memory test."},
    {Py_tp_traverse, (void *)hobj_traverse},
    {Py_tp_clear, (void *)hobj_clear},
    {Py_tp_members, hobj_members},
    {0, NULL},
};

static PyType_Spec hobj_spec = {"test.HObj", sizeof(HObj), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, hobj_slots};

/* A non-GC heap type with no slots but its name. */
static PyType_Slot bare_slots[] = {{0, NULL}};
static PyType_Spec bare_spec = {"test.Bare", sizeof(PyObject) + 24, 0, Py_TPFLAGS_DEFAULT,
                                bare_slots};

static int c_callback_runs;
static void on_death(PyObject *wr, void *ctx) {
    (void)wr;
    (void)ctx;
    c_callback_runs++;
}

/* ------------------------------------------------------------------ */
/* The workload. */

typedef struct {
    const char *name;
    void *(*malloc_)(size_t);
    void *(*calloc_)(size_t, size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
} family;

static const family fams[3] = {
    {"RAW", PyMem_RawMalloc, PyMem_RawCalloc, PyMem_RawRealloc, PyMem_RawFree},
    {"MEM", PyMem_Malloc, PyMem_Calloc, PyMem_Realloc, PyMem_Free},
    {"OBJ", PyObject_Malloc, PyObject_Calloc, PyObject_Realloc, PyObject_Free},
};

static const size_t sizes[] = {0, 1, 8, 16, 24, 100, 255, 256, 511, 512, 513, 1000, 4096, 70000};
#define NSIZES (sizeof sizes / sizeof sizes[0])
static const size_t chain[] = {8, 24, 100, 500, 600, 5000, 70000, 300, 10, 0, 40};
#define NCHAIN (sizeof chain / sizeof chain[0])

/* Blocks: every size in every domain, calloc, a realloc chain, strdup. */
static void blocks(void) {
    void *blk[3][NSIZES];
    for (int d = 0; d < 3; d++) {
        for (size_t i = 0; i < NSIZES; i++) {
            long before = failures;
            blk[d][i] = fams[d].malloc_(sizes[i]);
            if (blk[d][i] == NULL)
                FAILED_HONESTLY(fams[d].name, before);
            else
                memset(blk[d][i], 0x40 + (int)i, sizes[i]);
        }
        long before = failures;
        unsigned char *c = fams[d].calloc_(300, 4);
        if (c == NULL)
            FAILED_HONESTLY("calloc", before);
        else
            CHECKF(is_filled(c, 1200, 0), "N=%ld: %s calloc not zeroed", run_n, fams[d].name);
        fams[d].free_(c);

        /* Grow across classes into large blocks, shrink back. A failed
         * realloc returns NULL and leaves the block as it was. */
        before = failures;
        unsigned char *p = fams[d].malloc_(chain[0]);
        if (p == NULL) {
            FAILED_HONESTLY("chain malloc", before);
        } else {
            size_t have = chain[0];
            memset(p, 0x11, have);
            for (size_t k = 1; k < NCHAIN; k++) {
                before = failures;
                unsigned char *q = fams[d].realloc_(p, chain[k]);
                size_t keep = have < chain[k] ? have : chain[k];
                if (q == NULL) {
                    FAILED_HONESTLY("realloc", before);
                    CHECKF(is_filled(p, have, 0x11), "N=%ld: %s failed realloc %zu -> %zu "
                           "changed the block", run_n, fams[d].name, have, chain[k]);
                    continue;
                }
                CHECKF(is_filled(q, keep, 0x11), "N=%ld: %s realloc %zu -> %zu lost data",
                       run_n, fams[d].name, have, chain[k]);
                memset(q, 0x11, chain[k]);
                p = q;
                have = chain[k];
            }
            fams[d].free_(p);
        }
    }
    /* Strings and the typed helpers. */
    long before = failures;
    char *s1 = _PyMem_RawStrdup("a string in the RAW domain");
    if (s1 == NULL) FAILED_HONESTLY("_PyMem_RawStrdup", before);
    before = failures;
    char *s2 = _PyMem_Strdup("a string in the MEM domain");
    if (s2 == NULL) FAILED_HONESTLY("_PyMem_Strdup", before);
    CHECK(s1 == NULL || strcmp(s1, "a string in the RAW domain") == 0);
    CHECK(s2 == NULL || strcmp(s2, "a string in the MEM domain") == 0);
    PyMem_RawFree(s1);
    PyMem_Free(s2);
    before = failures;
    int *ints = PyMem_New(int, 50);
    if (ints == NULL) {
        FAILED_HONESTLY("PyMem_New", before);
    } else {
        for (int i = 0; i < 50; i++) ints[i] = i;
        int *old = ints;
        before = failures;
        PyMem_Resize(ints, int, 5000);
        if (ints == NULL) {
            FAILED_HONESTLY("PyMem_Resize", before);
            ints = old; /* CPython's macro leaves NULL; the block is still ours */
        }
        for (int i = 0; i < 50; i++) CHECK(ints[i] == i);
        PyMem_Del(ints);
    }
    for (int d = 0; d < 3; d++)
        for (size_t i = 0; i < NSIZES; i++) {
            if (blk[d][i] != NULL)
                CHECKF(is_filled(blk[d][i], sizes[i], 0x40 + (int)i),
                       "N=%ld: %s block of %zu bytes overwritten", run_n, fams[d].name,
                       sizes[i]);
            fams[d].free_(blk[d][i]);
        }
}

static void node_link_b(Node *n, PyObject *target) {
    Py_XINCREF(target);
    Py_XSETREF(n->b, target);
}

/* Objects, weak references, a collection; everything released. */
static void objects(void) {
    PyObject *leaf, *rec, *t1, *t2, *big, *call_result, *init_obj;
    Node *a, *b, *c, *fin;
    WNode *w;
    Vec *v;
    PyTypeObject *htp, *bare;

    OBJ_CALL(leaf, leaf_new(1), "PyObject_New");
    OBJ_CALL(rec, recorder_new(2), "PyObject_New (callable)");
    OBJ_CALL(a, node_new(&Node_Type, 10), "PyObject_GC_New");
    OBJ_CALL(b, node_new(&Node_Type, 11), "PyObject_GC_New");
    OBJ_CALL(c, node_new(&Node_Type, 12), "PyObject_GC_New");
    OBJ_CALL(fin, node_new(&FinNode_Type, 13), "PyObject_GC_New (finalizer)");
    OBJ_CALL(w, wnode_new(&WNode_Type, 14), "PyObject_GC_New (weakly referenceable)");

    /* PyObject_Init over PyObject_Malloc: NULL in gives MemoryError. */
    {
        long before = failures;
        void *mem = PyObject_Malloc(sizeof(Leaf));
        PyHeap_ClearError();
        init_obj = PyObject_Init(mem, &Leaf_Type);
        if (init_obj == NULL) FAILED_WITH_MEMORY_ERROR("PyObject_Init", before);
        if (init_obj != NULL) {
            ((Leaf *)init_obj)->weakreflist = NULL;
            ((Leaf *)init_obj)->id = 15;
        }
    }

    /* A cycle a -> b -> c -> a, fin -> itself, w -> w and w -> leaf. */
    if (a && b) node_link(a, b);
    if (b && c) node_link(b, c);
    if (c && a) node_link(c, a);
    if (fin) {
        node_link(fin, fin);
        fin->resurrect = 1; /* its finalizer brings it back once */
    }
    if (w) {
        w->a = Py_NewRef((PyObject *)w);
        w->b = Py_XNewRef(leaf);
    }

    /* Tuples: small, large (past the pools), packed. */
    OBJ_CALL(t1, PyTuple_New(3), "PyTuple_New");
    if (t1) {
        PyTuple_SET_ITEM(t1, 0, Py_NewRef(Py_None));
        PyTuple_SET_ITEM(t1, 1, Py_XNewRef(leaf ? leaf : Py_None));
        PyTuple_SET_ITEM(t1, 2, Py_XNewRef(a ? (PyObject *)a : Py_None));
    }
    OBJ_CALL(big, PyTuple_New(100), "PyTuple_New (large)");
    if (big)
        for (int i = 0; i < 100; i++) PyTuple_SET_ITEM(big, i, Py_NewRef(Py_None));
    OBJ_CALL(t2, PyTuple_Pack(2, Py_None, t1 ? t1 : Py_None), "PyTuple_Pack");
    if (c && t2) node_link_b(c, t2); /* a tuple inside the cycle */

    /* A var-sized GC object, grown past the pools; a failed resize leaves
     * it as it was. */
    OBJ_CALL(v, PyObject_GC_NewVar(Vec, &Vec_Type, 2), "PyObject_GC_NewVar");
    if (v) {
        v->items[0] = Py_NewRef(Py_None);
        v->items[1] = Py_NewRef(Py_None);
        long before = failures;
        PyHeap_ClearError();
        Vec *grown = PyObject_GC_Resize(Vec, v, 80);
        if (grown == NULL) {
            FAILED_WITH_MEMORY_ERROR("PyObject_GC_Resize", before);
            CHECK(Py_SIZE(v) == 2 && v->items[0] == Py_None && v->items[1] == Py_None);
        } else {
            v = grown;
            for (int i = 2; i < 80; i++) v->items[i] = Py_NewRef(Py_None);
        }
        PyObject_GC_Track((PyObject *)v);
    }

    /* Heap types and their instances. */
    OBJ_CALL(htp, (PyTypeObject *)PyType_FromSpec(&hobj_spec), "PyType_FromSpec");
    OBJ_CALL(bare, (PyTypeObject *)PyType_FromSpec(&bare_spec), "PyType_FromSpec (bare)");
    PyObject *h1 = NULL, *h2 = NULL, *b1 = NULL;
    if (htp) {
        OBJ_CALL(h1, htp->tp_alloc(htp, 0), "tp_alloc (PyType_GenericAlloc)");
        OBJ_CALL(h2, PyType_GenericNew(htp, NULL, NULL), "PyType_GenericNew");
        if (h1 && h2) {
            ((HObj *)h1)->ref = Py_NewRef(h2);
            ((HObj *)h2)->ref = Py_NewRef(h1); /* a cycle through a heap type */
        }
    }
    if (bare) OBJ_CALL(b1, PyObject_New(PyObject, bare), "PyObject_New (heap type)");

    /* Weak references: an object callback, a C callback, shared basic
     * references, a proxy, to a heap type instance. */
    PyObject *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL, *px = NULL, *r5 = NULL;
    if (w && rec) OBJ_CALL(r1, PyWeakref_NewRef((PyObject *)w, rec), "PyWeakref_NewRef");
    if (leaf) {
        OBJ_CALL(r2, PyHeap_Weakref_NewRefWithCallback(leaf, on_death, NULL),
                 "PyHeap_Weakref_NewRefWithCallback");
        OBJ_CALL(r3, PyWeakref_NewRef(leaf, NULL), "PyWeakref_NewRef (basic)");
        OBJ_CALL(r4, PyWeakref_NewRef(leaf, NULL), "PyWeakref_NewRef (shared)");
        CHECK(r3 == NULL || r4 == NULL || r3 == r4);
        OBJ_CALL(px, PyWeakref_NewProxy(leaf, NULL), "PyWeakref_NewProxy");
    }
    if (h1) OBJ_CALL(r5, PyHeap_Weakref_NewRefWithCallback(h1, on_death, NULL),
                     "PyHeap_Weakref_NewRefWithCallback (heap type)");

    /* A chain of leaves, each weakly referenced with a C callback; the
     * first also through a proxy with an object callback. */
    enum { NCHAIN_LEAVES = 12 };
    PyObject *chain_leaf[NCHAIN_LEAVES], *chain_ref[NCHAIN_LEAVES], *cpx = NULL;
    for (int i = 0; i < NCHAIN_LEAVES; i++) {
        OBJ_CALL(chain_leaf[i], leaf_new(100 + i), "PyObject_New (chain)");
        chain_ref[i] = NULL;
        if (chain_leaf[i])
            OBJ_CALL(chain_ref[i],
                     PyHeap_Weakref_NewRefWithCallback(chain_leaf[i], on_death, NULL),
                     "PyHeap_Weakref_NewRefWithCallback (chain)");
    }
    if (chain_leaf[0] && rec)
        OBJ_CALL(cpx, PyWeakref_NewProxy(chain_leaf[0], rec), "PyWeakref_NewProxy (callback)");
    for (int i = 0; i < NCHAIN_LEAVES; i++) {
        if (chain_ref[i] == NULL) continue;
        PyObject *got = NULL;
        CHECK(PyWeakref_GetRef(chain_ref[i], &got) == 1 && got == chain_leaf[i]);
        Py_XDECREF(got);
    }

    /* A call: the argument tuple is an allocation. */
    if (rec && leaf) {
        OBJ_CALL(call_result, PyObject_CallOneArg(rec, leaf), "PyObject_CallOneArg");
        Py_XDECREF(call_result);
    }

    /* The heap holds together in the middle of it all. */
    int saved = armed;
    armed = 0;
    CHECKF(PyHeap_CheckHeap(stderr) == 0, "N=%ld: heap check with everything alive", run_n);
    armed = saved;

    /* Drop the cycles' outside references and collect; the callbacks run
     * (unless the allocation of their argument tuple is the one failing:
     * CPython reports that as unraisable and goes on). An object whose
     * cycle was never made dies at once. */
    long before = failures;
    c_callback_runs = 0;
    events_reset();
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    Py_XDECREF(fin);
    Py_XDECREF(w);
    Py_XDECREF(v);
    Py_XDECREF(h1);
    Py_XDECREF(h2);
    Py_XDECREF(t1);
    Py_XDECREF(t2);
    Py_XDECREF(big);
    Py_ssize_t collected = PyGC_Collect();
    CHECK(collected >= 0);
    if (failures == before) {
        CHECKF(r1 == NULL || count_events(EV_CALL) == 1, "N=%ld: object callback runs %d",
               run_n, count_events(EV_CALL));
        CHECKF(r5 == NULL || c_callback_runs == 1, "N=%ld: C callback runs %d", run_n,
               c_callback_runs);
    }
    CHECK(r1 == NULL || PyWeakref_GetObject(r1) == Py_None);
    /* The finalizer resurrected `fin`: it dies for good now. */
    if (fin) CHECK(lazarus == (PyObject *)fin);
    Py_CLEAR(lazarus);
    PyGC_Collect();

    /* The chain dies leaf by leaf (from the end: each callback runs
     * once its leaf dies). */
    before = failures;
    c_callback_runs = 0;
    int expect = 0;
    for (int i = NCHAIN_LEAVES - 1; i >= 0; i--) {
        expect += chain_ref[i] != NULL;
        Py_XDECREF(chain_leaf[i]);
    }
    if (failures == before) CHECK(c_callback_runs == expect);
    for (int i = 0; i < NCHAIN_LEAVES; i++) {
        if (chain_ref[i] == NULL) continue;
        PyObject *got = (PyObject *)1;
        CHECK(PyWeakref_GetRef(chain_ref[i], &got) == 0 && got == NULL);
        Py_DECREF(chain_ref[i]);
    }
    Py_XDECREF(cpx);

    /* Everything else. */
    Py_XDECREF(b1);
    Py_XDECREF(init_obj);
    before = failures;
    c_callback_runs = 0;
    Py_XDECREF(leaf);
    if (failures == before) CHECK(r2 == NULL || c_callback_runs == 1);
    CHECK(r3 == NULL || PyWeakref_GetObject(r3) == Py_None);
    Py_XDECREF(r1);
    Py_XDECREF(r2);
    Py_XDECREF(r3);
    Py_XDECREF(r4);
    Py_XDECREF(px);
    Py_XDECREF(r5);
    Py_XDECREF(rec);
    Py_XDECREF(htp);
    Py_XDECREF(bare);
    PyGC_Collect(); /* a type dies in a collection when it was in a cycle */
}

/* More than an arena's worth of small blocks (for the arena pass). */
static void bulk(void) {
    enum { NBULK = 6000, SIZE = 400 }; /* 150 pools (160 in debug mode), 64 an arena */
    static void *p[NBULK];
    long before = failures;
    for (int i = 0; i < NBULK; i++) {
        p[i] = PyObject_Malloc(SIZE);
        if (p[i] == NULL) {
            FAILED_HONESTLY("bulk PyObject_Malloc", before);
        } else {
            memset(p[i], 0x22, SIZE);
        }
    }
    for (int i = 0; i < NBULK; i++) PyObject_Free(p[i]);
}

/* ------------------------------------------------------------------ */

typedef struct {
    Py_ssize_t blocks;
    long live[3];
} baseline;

static baseline now(void) {
    baseline b = {PyHeap_GetAllocatedBlocks(), {live[0], live[1], live[2]}};
    return b;
}

/* One run of the workload with call `n` failing (0: none); returns the
 * calls made to fail. */
static long run(long n, int with_bulk) {
    baseline base = now();
    run_n = n;
    fail_at = n;
    calls = 0;
    arena_calls = 0;
    long failed_before = failures;
    if (tracing) CHECK(PyHeap_TraceMalloc_Start(1) == 0);
    if (gc_often) CHECK(PyHeap_GC_SetThreshold(1, 1, 1) == 0);
    armed = 1;
    blocks();
    objects();
    if (with_bulk) bulk();
    armed = 0;
    long failed = failures - failed_before;
    if (gc_often) CHECK(PyHeap_GC_SetThreshold(700, 10, 10) == 0);
    if (tracing) {
        /* Every traced block was freed: no trace left behind by a failed
         * allocation or realloc. */
        size_t current = 1, peak = 0;
        PyHeap_TraceMalloc_GetTracedMemory(&current, &peak);
        CHECKF(current == 0 && peak > 0, "N=%ld (tracing): %zu bytes traced, peak %zu", n,
               current, peak);
        PyHeap_TraceMalloc_Stop();
    }

    int ok = PyHeap_CheckHeap(stderr) == 0;
    CHECKF(ok, "N=%ld%s: heap check", n, arenas_only ? " (arenas)" : "");
    baseline after = now();
    CHECKF(after.blocks == base.blocks, "N=%ld%s: %zd blocks allocated, %zd before", n,
           arenas_only ? " (arenas)" : "", after.blocks, base.blocks);
    for (int d = 0; d < 3; d++)
        CHECKF(after.live[d] == base.live[d], "N=%ld%s: %s: %ld blocks live, %ld before", n,
               arenas_only ? " (arenas)" : "", fams[d].name, after.live[d], base.live[d]);
    CHECKF(PyHeap_LastErrorKind() == PYHEAP_ERR_NONE, "N=%ld: error left set: %s", n,
           PyHeap_LastError());
    PyHeap_ClearError();
    return failed;
}

static double seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the workload failing call N = 1, 1 + stride, ... (in the arena
 * pass: arena allocation N) until a run fails nothing; returns the runs. */
static long fail_each(const char *name, long stride, int with_bulk) {
    double t0 = seconds();
    long n, runs = 0;
    for (n = 1;; n += stride) {
        runs++;
        if (run(n, with_bulk) == 0) break; /* past the last call */
        if (harness_failed > 20) break;
    }
    long made = arenas_only ? arena_calls : calls;
    CHECKF(n > made, "%s: stopped at N=%ld of %ld calls", name, n, made);
    printf("%s: %ld calls in a run, %ld runs (stride %ld), %.2f s\n", name, made, runs,
           stride, seconds() - t0);
    return runs;
}

int main(void) {
    CHECK(nodes_ready() && weak_types_ready() && PyType_Ready(&Vec_Type) == 0);
    install_hooks();
    const char *s = getenv("PYHEAP_OOM_STRIDE");
    long stride = s != NULL && atol(s) > 0 ? atol(s) : 1;

    /* A clean run first. */
    CHECK(run(0, 0) == 0);
    CHECKF(calls > 100, "the workload made only %ld allocation calls", calls);

    fail_each("every allocation", stride, 0);

    /* Again with tracing on: the tracer sits over the hooks. */
    tracing = 1;
    fail_each("every allocation, tracing", stride, 0);
    tracing = 0;

    /* Again with automatic collections inside the allocations. */
    PyHeap_GCStats st0[3], st1[3];
    CHECK(PyHeap_GC_GetStats(st0) == 0);
    gc_often = 1;
    long runs = fail_each("every allocation, frequent collections", stride, 0);
    gc_often = 0;
    CHECK(PyHeap_GC_GetStats(st1) == 0);
    long automatic = (long)(st1[0].collections - st0[0].collections);
    CHECKF(automatic > 5 * runs, "%ld young collections in %ld runs", automatic, runs);

    /* The arena pass (the malloc modes have no arenas). */
    if (!malloc_mode()) {
        arenas_only = 1;
        CHECK(run(0, 1) == 0);
        CHECKF(arena_calls >= 2, "the bulk phase asked for %ld new arenas", arena_calls);
        fail_each("every arena", 1, 1);
        arenas_only = 0;
    }
    return harness_summary();
}
