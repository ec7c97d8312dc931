/* Leak scopes say what a region of code left alive: nothing for a region
 * that cleans up after itself (cycles included, once collected), the
 * deliberately leaked objects, by type and allocation site, for one that
 * does not. The live objects dump as a snapshot, by type and site.
 * Py_FinalizeEx writes the leak report to the configured file;
 * without abort_on_leak the exit status stays 0. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *other;
} Node;

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
    PyObject_GC_Del(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
};

static PyObject *node(PyObject *other) {
    Node *n = PyObject_GC_New(Node, &Node_Type);
    n->other = Py_XNewRef(other);
    PyObject_GC_Track((PyObject *)n);
    return (PyObject *)n;
}

static PyObject *leaked[3];

__attribute__((noinline)) static void forgetful(void) {
    leaked[0] = node(NULL);
    leaked[1] = node(leaked[0]);
    leaked[2] = node(NULL);
}

static char *run_scope_report(Py_ssize_t *n, void (*body)(void)) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    PyHeap_LeakScope *s = PyHeap_LeakScopeBegin();
    body();
    PyGC_Collect();
    *n = PyHeap_LeakScopeEnd(s, f);
    fclose(f);
    return buf;
}

static void tidy(void) {
    PyObject *a = node(NULL), *b = node(a);
    ((Node *)a)->other = Py_NewRef(b); /* a cycle, left to the collector */
    Py_DECREF(a);
    Py_DECREF(b);
    PyObject_Free(PyObject_Malloc(100));
}

int main(void) {
    CHECK(PyType_Ready(&Node_Type) == 0);
    PyObject *before = node(NULL); /* alive before: never reported */
    CHECK(PyHeap_TraceMalloc_Start(3) == 0);

    Py_ssize_t n = -1;
    char *text = run_scope_report(&n, tidy);
    CHECKF(n == 0, "%zd", n);
    CHECKF(strstr(text, "no objects alive made in this scope") != NULL, "%s", text);
    free(text);

    text = run_scope_report(&n, forgetful);
    CHECKF(n == 3, "%zd", n);
    CHECKF(strstr(text, "pyheap: leak report: 3 objects,") &&
               strstr(text, "3 objects (") && strstr(text, "): scope.Node") &&
               strstr(text, "in forgetful") && strstr(text, "leak_scope.c\", line"),
           "%s", text);
    free(text);
    CHECK(PyHeap_LeakScopeEnd(NULL, NULL) == -1);
    PyHeap_ClearError();

    /* The live objects as a snapshot (what the report tool reads): by
     * type, and by type and allocation site. */
    char path[] = "/tmp/pyheap-leaks-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECKF(PyHeap_DumpLiveObjects(path) == 4, "%zd", PyHeap_DumpLiveObjects(path));
    PyHeap_Snapshot *live = PyHeap_Snapshot_Load(path);
    CHECK(live != NULL);
    if (live) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        PyHeap_Snapshot_Write(live, NULL, "lineno", 0, PYHEAP_FORMAT_TEXT, 0, m);
        PyHeap_Snapshot_Write(live, NULL, "traceback", 0, PYHEAP_FORMAT_TEXT, 0, m);
        fclose(m);
        CHECKF(strstr(buf, "<scope.Node>:0: size=") && strstr(buf, "count=4,") &&
                   strstr(buf, "    File \"<scope.Node>\", line 0\n") && strstr(buf, "in forgetful"),
               "%s", buf);
        free(buf);
        PyHeap_Snapshot_Free(live);
    }

    /* Py_FinalizeEx writes the report to the configured file. */
    unlink(path);
    CHECK(PyHeap_SetOption("leak_report", path) == 0);
    Py_DECREF(leaked[2]);
    CHECK(Py_FinalizeEx() == 0);
    FILE *f = fopen(path, "r");
    char buf[4096] = {0};
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    unlink(path);
    CHECKF(got > 0 && strstr(buf, "pyheap: leak report: 3 objects,") &&
               strstr(buf, "still alive at finalization") && strstr(buf, "in forgetful"),
           "%s", buf);
    (void)before;
    return harness_summary();
}
