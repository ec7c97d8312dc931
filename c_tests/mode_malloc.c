/* PYHEAP_MALLOC=malloc: the MEM and OBJ domains go straight to libc (no
 * pool is ever made), and objects, the collector and weak references work
 * on top as usual. */
// pyheap-test: modes malloc
#include "harness.h"
#include "weak_nodes.h"

int main(void) {
    CHECK(weak_types_ready());
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) blocks[i] = PyObject_Malloc(16 + i % 400);
    PyHeap_HeapStats s;
    CHECK(PyHeap_GetHeapStats(&s) == 0);
    CHECK(s.pools_in_use == 0 && s.arenas_current == 0);
    for (int i = 0; i < 1000; i++) PyObject_Free(blocks[i]);

    /* Objects: a cycle with a weak reference, collected. */
    WNode *a = wnode_new(&WNode_Type, 1), *b = wnode_new(&WNode_Type, 2);
    a->a = Py_NewRef((PyObject *)b);
    b->a = Py_NewRef((PyObject *)a);
    PyObject *w = PyWeakref_NewRef((PyObject *)a, NULL);
    Py_DECREF(a);
    Py_DECREF(b);
    CHECK(PyGC_Collect() == 2);
    CHECK(PyWeakref_GetObject(w) == Py_None);
    Py_DECREF(w);
    CHECK(PyHeap_GetHeapStats(&s) == 0 && s.pools_in_use == 0);
    return harness_summary();
}
