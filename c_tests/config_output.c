/* Where reports go: PyHeap_SetOutput's callback receives them (here a
 * failing weak reference callback's report and the collector's debug
 * lines); PYHEAP_LOG_FILE / the
 * log_file setting sends them to a file, misuse reports included (checked
 * from a forked child that aborts). */
// pyheap-test: modes pymalloc
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "capture.h"
#include "harness.h"
#include "weak_nodes.h"

int main(void) {
    CHECK(weak_types_ready());
    PyHeap_SetOutput(collect, NULL);
    PyObject *leaf = leaf_new(1), *cb = recorder_new(2);
    ((Recorder *)cb)->fail = 1;
    PyObject *w = PyWeakref_NewRef(leaf, cb);
    Py_DECREF(leaf); /* the callback fails: an unraisable report */
    CHECK(strstr(got, "exception ignored in: <test.Recorder object") != NULL);
    /* So do the collector's debug lines. */
    capture_reset();
    PyHeap_GC_SetDebug(PyHeap_GC_DEBUG_STATS);
    PyHeap_GC_Collect(2);
    PyHeap_GC_SetDebug(0);
    CHECK(strstr(got, "gc: collecting generation 2...\n") != NULL);
    CHECK(strstr(got, "gc: done, ") != NULL);
    PyHeap_SetOutput(NULL, NULL);
    Py_DECREF(w);
    Py_DECREF(cb);

    /* A misuse report lands in the log file. */
    char path[] = "/tmp/pyheap-log-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    pid_t child = fork();
    if (child == 0) {
        if (PyHeap_SetOption("log_file", path) != 0) _exit(3);
        void *p = PyObject_Malloc(32);
        PyObject_Free(p);
        PyObject_Free(p); /* double free: aborts */
        _exit(4);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    FILE *f = fopen(path, "r");
    char buf[2048] = {0};
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    unlink(path);
    CHECK(strstr(buf, "pyheap: fatal error in PyObject_Free: double free") != NULL);
    CHECK(PyHeap_SetOption("log_file", "/nonexistent-dir/x.log") == -1);
    CHECK(last_error_contains("cannot open"));
    return harness_summary();
}
