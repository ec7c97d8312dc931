/* A chain of 1,000,000 objects, each owning the next, freed by one
 * Py_DECREF on a thread with a 256 KiB stack: deallocation must use a
 * bounded stack without the type using trashcan macros (CPython would
 * overflow the stack here). A GC chain and a trashcan-macro chain too. */
#include "compat.h"

#include <pthread.h>

#include "harness.h"

typedef struct Node {
    PyObject_HEAD
    struct Node *next;
} Node;

static long deallocs;

static void node_dealloc(PyObject *self) {
    Node *n = (Node *)self;
    deallocs++;
    Py_XDECREF(n->next);
    Py_TYPE(self)->tp_free(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
};

static int gcnode_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Node *)self)->next);
    return 0;
}

static void gcnode_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, gcnode_dealloc)
    deallocs++;
    Py_CLEAR(((Node *)self)->next);
    Py_TYPE(self)->tp_free(self);
    Py_TRASHCAN_END
}

static PyTypeObject GcNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.GcNode",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = gcnode_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = gcnode_traverse,
};

#define CHAIN 1000000L

static Node *build(PyTypeObject *tp, int gc) {
    Node *head = NULL;
    for (long i = 0; i < CHAIN; i++) {
        Node *n = gc ? PyObject_GC_New(Node, tp) : PyObject_New(Node, tp);
        if (n == NULL) return NULL;
        n->next = head;
        if (gc) PyObject_GC_Track(n);
        head = n;
    }
    return head;
}

static void *free_chain(void *arg) {
    PyGILState_STATE s = PyGILState_Ensure();
    Py_DECREF((Node *)arg);
    PyGILState_Release(s);
    return NULL;
}

/* Frees the chain on a thread with a small stack. */
static void free_on_small_stack(Node *head) {
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* The main thread lets the runtime lock go while the other one works. */
    Py_BEGIN_ALLOW_THREADS
    CHECK(pthread_create(&t, &attr, free_chain, head) == 0);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    pthread_attr_destroy(&attr);
}

int main(void) {
    CHECK(PyType_Ready(&Node_Type) == 0);
    CHECK(PyType_Ready(&GcNode_Type) == 0);
    Py_ssize_t blocks_before = PyHeap_GetAllocatedBlocks();

    Node *head = build(&Node_Type, 0);
    CHECK(head != NULL);
    CHECK(malloc_mode() || PyHeap_GetAllocatedBlocks() == blocks_before + CHAIN);
    free_on_small_stack(head);
    CHECK(deallocs == CHAIN);
    CHECK(PyHeap_GetAllocatedBlocks() == blocks_before);

    deallocs = 0;
    head = build(&GcNode_Type, 1);
    CHECK(head != NULL);
    free_on_small_stack(head);
    CHECK(deallocs == CHAIN);
    CHECK(PyHeap_GetAllocatedBlocks() == blocks_before);
    return harness_summary();
}
