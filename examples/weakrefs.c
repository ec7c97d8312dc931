/* Weak references: a cache that does not keep its entries alive. Entries
 * are found while something else holds them, vanish with their last
 * strong reference, and a callback tells the cache to forget them.
 *
 *   cc -Iinclude examples/weakrefs.c target/release/libpyheap.a -lpthread -ldl -lm -o weakrefs
 */
#include <stddef.h>
#include <stdio.h>

#include "pyheap.h"

/* An object that can be weakly referenced: it has a weak-reference list,
 * and its deallocator clears it. */
typedef struct {
    PyObject_HEAD
    PyObject *weakreflist;
    int key;
} Resource;

static void resource_dealloc(PyObject *self) {
    if (((Resource *)self)->weakreflist != NULL) PyObject_ClearWeakRefs(self);
    printf("  resource %d freed\n", ((Resource *)self)->key);
    PyObject_Free(self);
}

static PyTypeObject Resource_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "example.Resource",
    .tp_basicsize = sizeof(Resource),
    .tp_dealloc = resource_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(Resource, weakreflist),
};

/* The cache: key -> weak reference. */
#define SLOTS 4
static PyObject *cache[SLOTS];

static void forget(PyObject *weakref, void *ctx) {
    int key = *(const int *)ctx;
    printf("  callback: entry %d is dead, dropping it from the cache\n", key);
    if (cache[key] == weakref) Py_CLEAR(cache[key]);
}

static PyObject *open_resource(int key) {
    static int keys[SLOTS] = {0, 1, 2, 3};
    PyObject *found = NULL;
    if (cache[key] != NULL && PyWeakref_GetRef(cache[key], &found) == 1) {
        printf("resource %d: from the cache\n", key);
        return found; /* a new strong reference */
    }
    Resource *r = PyObject_New(Resource, &Resource_Type);
    if (r == NULL) return NULL;
    r->weakreflist = NULL;
    r->key = key;
    Py_XSETREF(cache[key],
               PyHeap_Weakref_NewRefWithCallback((PyObject *)r, forget, &keys[key]));
    printf("resource %d: made\n", key);
    return (PyObject *)r;
}

static int cached(void) {
    int n = 0;
    for (int k = 0; k < SLOTS; k++) n += cache[k] != NULL;
    return n;
}

int main(void) {
    if (PyType_Ready(&Resource_Type) < 0) return 1;
    PyObject *a = open_resource(1);
    PyObject *b = open_resource(2);
    PyObject *again = open_resource(1);
    printf("same object: %s; weak references to it: %zd; cached: %d\n",
           a == again ? "yes" : "no", PyHeap_Weakref_Count(a), cached());
    Py_DECREF(again);

    /* A weak reference gives the object while it lives, None after. */
    PyObject *plain = PyWeakref_NewRef(b, NULL);
    printf("dropping resource 2:\n");
    Py_DECREF(b);
    printf("plain weak reference now gives %s; cached: %d\n",
           PyWeakref_GetObject(plain) == Py_None ? "None" : "the object", cached());
    Py_DECREF(plain);

    printf("dropping resource 1:\n");
    Py_DECREF(a);
    printf("cached: %d\n", cached());
    PyObject *c = open_resource(1);
    Py_DECREF(c);
    return cached() == 0 ? 0 : 1;
}
