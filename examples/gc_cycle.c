/* A GC type and a reference cycle: reference counting frees what has no
 * references left; the cycle collector frees rings that only reference
 * themselves, and runs their finalizers (PEP 442) first.
 *
 *   cc -Iinclude examples/gc_cycle.c target/release/libpyheap.a -lpthread -ldl -lm -o gc_cycle
 */
#include <stdio.h>

#include "pyheap.h"

typedef struct {
    PyObject_HEAD
    PyObject *next; /* a strong reference, or NULL */
    int id;
} Link;

static int finalized, freed;

static int link_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Link *)self)->next); /* every reference the object owns */
    return 0;
}

static int link_clear(PyObject *self) {
    Py_CLEAR(((Link *)self)->next); /* breaks the cycle */
    return 0;
}

static void link_finalize(PyObject *self) {
    (void)self;
    finalized++; /* runs once, before tp_clear, while the ring is intact */
}

static void link_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(((Link *)self)->next);
    freed++;
    PyObject_GC_Del(self);
}

static PyTypeObject Link_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "example.Link",
    .tp_basicsize = sizeof(Link),
    .tp_dealloc = link_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = link_traverse,
    .tp_clear = link_clear,
    .tp_finalize = link_finalize,
};

static PyObject *link_new(int id, PyObject *next) {
    Link *l = PyObject_GC_New(Link, &Link_Type);
    if (l == NULL) return NULL;
    l->id = id;
    l->next = next; /* steals the reference */
    PyObject_GC_Track((PyObject *)l);
    return (PyObject *)l;
}

/* A ring of n links: the last one points back to the first. */
static PyObject *make_ring(int n) {
    PyObject *first = link_new(0, NULL);
    if (first == NULL) return NULL;
    PyObject *head = Py_NewRef(first);
    for (int i = 1; i < n; i++) {
        head = link_new(i, head);
        if (head == NULL) return NULL;
    }
    ((Link *)first)->next = head; /* close the ring */
    return first;                /* our reference to one member */
}

int main(void) {
    if (PyType_Ready(&Link_Type) < 0) return 1;

    /* A chain without a cycle dies as soon as its last reference goes. */
    PyObject *chain = link_new(1, link_new(2, link_new(3, NULL)));
    Py_DECREF(chain);
    printf("chain of 3: %d freed by reference counting\n", freed);

    /* Rings do not: each member still has a reference from its neighbour. */
    freed = 0;
    for (int r = 0; r < 10; r++) {
        PyObject *ring = make_ring(100);
        if (ring == NULL) return 1;
        Py_DECREF(ring);
    }
    /* The collector also runs by itself once allocations of GC objects
     * outnumber deallocations by the generation 0 threshold (700). */
    Py_ssize_t t0, t1, t2;
    PyHeap_GC_GetThreshold(&t0, &t1, &t2);
    int automatic = freed;
    printf("10 rings of 100 dropped: %d freed by automatic collections (threshold %zd)\n",
           automatic, t0);

    Py_ssize_t found = PyGC_Collect();
    printf("PyGC_Collect(): %zd unreachable; in all %d finalized, %d freed\n", found, finalized,
           freed);
    return found == 1000 - automatic && freed == 1000 && finalized == 1000 ? 0 : 1;
}
