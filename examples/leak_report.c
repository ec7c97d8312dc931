/* Finding leaks: a leak scope says what a piece of code left alive, and
 * PYHEAP_LEAK_REPORT lists what is still alive when the program ends.
 *
 *   cc -g -Iinclude examples/leak_report.c target/release/libpyheap.a -lpthread -ldl -lm -o leak_report
 *   ./leak_report                                  # the scope's report
 *   PYHEAP_TRACEMALLOC=4 PYHEAP_LEAK_REPORT=1 ./leak_report   # and the exit report, with sites
 *   PYHEAP_LEAK_REPORT=1 PYHEAP_ABORT_ON_LEAK=1 ./leak_report; echo $?   # 1: for CI
 */
#include <stdio.h>

#include "pyheap.h"

typedef struct {
    PyObject_HEAD
    PyObject *payload;
} Session;

static void session_dealloc(PyObject *self) {
    Py_XDECREF(((Session *)self)->payload);
    PyObject_Free(self);
}

static PyTypeObject Session_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "example.Session",
    .tp_basicsize = sizeof(Session),
    .tp_dealloc = session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static PyObject *open_session(void) {
    Session *s = PyObject_New(Session, &Session_Type);
    if (s == NULL) return NULL;
    s->payload = PyTuple_New(3);
    return (PyObject *)s;
}

/* The bug: an early return skips the Py_DECREF, so every tenth session
 * (and the tuple it holds) stays alive. */
static void handle_request(int i) {
    PyObject *s = open_session();
    if (s == NULL) return;
    if (i % 10 == 0) return; /* "nothing to do" */
    Py_DECREF(s);
}

int main(void) {
    if (PyType_Ready(&Session_Type) < 0) return 1;

    PyHeap_LeakScope *scope = PyHeap_LeakScopeBegin();
    for (int i = 0; i < 30; i++) handle_request(i);
    printf("30 requests handled; what they left alive:\n");
    fflush(stdout);
    Py_ssize_t leaked = PyHeap_LeakScopeEnd(scope, stdout);
    printf("%zd objects leaked\n", leaked);
    /* The leaked sessions stay alive: with PYHEAP_LEAK_REPORT=1 the report
     * at exit lists them (and with PYHEAP_TRACEMALLOC, where they were
     * made). */
    return 0;
}
