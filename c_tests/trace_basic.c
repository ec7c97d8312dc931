/* Tracing, tracemalloc's model: current and peak follow every allocation,
 * resize and free exactly (a large block's trip through RAW counted once);
 * reset_peak, clear, the limit and the tracer's own memory; Track/Untrack
 * for foreign blocks (-2 when not tracing); the traceback of an object
 * names the function and line that made it; a bad frame count is a
 * ValueError; after Stop nothing is traced. */
#include "compat.h"

#include <string.h>

#include "harness.h"

typedef struct {
    PyObject_HEAD
    int x;
} Thing;

static void thing_dealloc(PyObject *self) { Py_TYPE(self)->tp_free(self); }

static PyTypeObject Thing_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "test.Thing",
    .tp_basicsize = sizeof(Thing),
    .tp_dealloc = thing_dealloc,
};

static int made_at;

__attribute__((noinline)) static PyObject *make_thing(void) {
    made_at = __LINE__ + 1;
    Thing *t = PyObject_New(Thing, &Thing_Type);
    return (PyObject *)t;
}

static size_t current(void) {
    size_t c = 0;
    PyHeap_TraceMalloc_GetTracedMemory(&c, NULL);
    return c;
}

static size_t peak(void) {
    size_t p = 0;
    PyHeap_TraceMalloc_GetTracedMemory(NULL, &p);
    return p;
}

int main(void) {
    CHECK(PyType_Ready(&Thing_Type) == 0);
    CHECK(PyHeap_TraceMalloc_IsTracing() == 0);
    CHECK(PyTraceMalloc_Track(5, 0x1000, 64) == -2);
    CHECK(PyTraceMalloc_Untrack(5, 0x1000) == -2);
    CHECK(PyHeap_TraceMalloc_Start(0) == -1);
    CHECK(last_error_contains("the number of frames must be in range [1; 65535]"));
    CHECK(PyHeap_TraceMalloc_Start(65536) == -1);
    PyHeap_ClearError();

    CHECK(PyHeap_TraceMalloc_Start(4) == 0);
    CHECK(PyHeap_TraceMalloc_IsTracing() == 1);
    CHECK(PyHeap_TraceMalloc_GetTracebackLimit() == 4);
    CHECK(current() == 0 && peak() == 0);

    void *a = PyMem_Malloc(100);
    CHECK(current() == 100);
    void *b = PyObject_Malloc(50);
    void *r = PyMem_RawMalloc(7);
    CHECKF(current() == 157, "%zu", current());
    PyMem_Free(a);
    CHECKF(current() == 57 && peak() == 157, "%zu %zu", current(), peak());
    PyHeap_TraceMalloc_ResetPeak();
    CHECK(peak() == 57);
    b = PyObject_Realloc(b, 5000); /* leaves the pools for RAW: once */
    CHECKF(current() == 5007, "%zu", current());
    b = PyObject_Realloc(b, 10);
    CHECKF(current() == 17 && peak() == 5007, "%zu %zu", current(), peak());
    void *z = PyMem_Calloc(10, 10);
    CHECK(current() == 117);
    PyMem_Free(z);
    PyObject_Free(b);
    PyMem_RawFree(r);
    CHECKF(current() == 0, "%zu", current());
    CHECK(PyHeap_TraceMalloc_GetTracemallocMemory() > 0);

    /* Foreign blocks. */
    CHECK(PyTraceMalloc_Track(5, 0x1000, 64) == 0);
    CHECK(current() == 64);
    CHECK(PyTraceMalloc_Track(5, 0x1000, 32) == 0); /* replaces */
    CHECK(current() == 32);
    CHECK(PyTraceMalloc_Untrack(5, 0x1000) == 0);
    CHECK(PyTraceMalloc_Untrack(5, 0x2000) == 0); /* unknown: fine */
    CHECK(current() == 0);

    /* Where an object was made. */
    PyObject *t = make_thing();
    CHECK(current() == sizeof(Thing));
    PyHeap_FrameInfo frames[8];
    Py_ssize_t n = PyHeap_TraceMalloc_GetObjectTraceback(t, frames, 8);
    CHECKF(n >= 2 && n <= 4, "%zd frames", n);
    if (n >= 2) {
        printf("object made at %s:%u in %s, called from %s:%u in %s\n",
               frames[0].filename, frames[0].lineno, frames[0].function,
               frames[1].filename, frames[1].lineno, frames[1].function);
        CHECK(strstr(frames[0].filename, "trace_basic.c") != NULL);
        CHECKF((int)frames[0].lineno == made_at, "%u, not %d", frames[0].lineno,
               made_at);
        CHECK(strcmp(frames[0].function, "make_thing") == 0);
        CHECK(strcmp(frames[1].function, "main") == 0);
    }
    void *untraced_before = PyMem_RawMalloc(1);
    PyHeap_TraceMalloc_ClearTraces();
    CHECK(current() == 0);
    CHECK(PyHeap_TraceMalloc_GetObjectTraceback(t, frames, 8) == 0);
    Py_DECREF(t);
    PyMem_RawFree(untraced_before); /* its trace is gone: fine */
    CHECK(current() == 0);

    PyHeap_TraceMalloc_Stop();
    CHECK(PyHeap_TraceMalloc_IsTracing() == 0);
    void *c = PyMem_Malloc(10);
    CHECK(current() == 0 && peak() == 0);
    CHECK(PyHeap_TraceMalloc_GetTracebackLimit() == 4); /* the last limit, as CPython */
    PyMem_Free(c);
    return harness_summary();
}
