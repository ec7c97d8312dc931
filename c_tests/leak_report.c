/* The leak report at exit: with PYHEAP_LEAK_REPORT=1 a program that ends
 * with objects alive gets them listed by type, with where they were
 * allocated (PYHEAP_TRACEMALLOC), and PYHEAP_ABORT_ON_LEAK=1 makes its exit
 * status 1, after the statistics (PYHEAP_MALLOCSTATS) are printed. A
 * garbage cycle is collected first, not reported; heap types are not
 * counted; a forked child does not report its parent's objects. */
// pyheap-test: env PYHEAP_LEAK_REPORT=1
// pyheap-test: env PYHEAP_ABORT_ON_LEAK=1
// pyheap-test: env PYHEAP_TRACEMALLOC=4
// pyheap-test: env PYHEAP_MALLOCSTATS=1
// pyheap-test: stderr # arenas allocated total
// pyheap-test: exit 1
// pyheap-test: stderr pyheap: leak report: 2 objects, 
// pyheap-test: stderr  still alive at exit
// pyheap-test: stderr 2 objects (
// pyheap-test: stderr ): test.Thing
// pyheap-test: stderr allocated at
// pyheap-test: stderr in leak_things
// pyheap-test: stderr in main
#include "compat.h"

#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *other;
} Thing;

static int thing_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Thing *)self)->other);
    return 0;
}

static int thing_clear(PyObject *self) {
    Py_CLEAR(((Thing *)self)->other);
    return 0;
}

static void thing_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(((Thing *)self)->other);
    PyObject_GC_Del(self);
}

static PyTypeObject Thing_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Thing",
    .tp_basicsize = sizeof(Thing),
    .tp_dealloc = thing_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = thing_traverse,
    .tp_clear = thing_clear,
};

static PyObject *kept[2];

__attribute__((noinline)) static void leak_things(void) {
    for (int i = 0; i < 2; i++) {
        kept[i] = (PyObject *)PyObject_GC_New(Thing, &Thing_Type);
        ((Thing *)kept[i])->other = NULL;
    }
}

int main(void) {
    CHECK(PyType_Ready(&Thing_Type) == 0);
    CHECK(PyHeap_TraceMalloc_IsTracing() == 1);
    leak_things();
    /* A cycle dropped: garbage, collected before the report. */
    Thing *a = PyObject_GC_New(Thing, &Thing_Type);
    a->other = Py_NewRef((PyObject *)a);
    PyObject_GC_Track((PyObject *)a);
    Py_DECREF(a);
    /* A heap type kept for good: not a leak. */
    static PyType_Slot slots[] = {{0, NULL}};
    static PyType_Spec spec = {"test.Kept", sizeof(PyObject), 0, Py_TPFLAGS_DEFAULT, slots};
    PyObject *tp = PyType_FromSpec(&spec);
    CHECK(tp != NULL);
    /* A forked child inherits the objects but not the report: it exits 0. */
    pid_t pid = fork();
    if (pid == 0) exit(0);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    (void)harness_summary();
    return 0; /* the leaks make it 1 */
}
