/* Lets one C test build against pyheap (default) or, with -DUSE_CPYTHON,
 * against CPython 3.11's Python.h and libpython3.11.so, so the behaviour a
 * test expects is proven on the real thing. PYHEAP_ONLY(stmt) runs stmt only
 * against pyheap (for pyheap's own extensions). */
#ifndef PYHEAP_C_COMPAT_H
#define PYHEAP_C_COMPAT_H

#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#define PYHEAP_ONLY(stmt) do { } while (0)
#define IMPL_NAME "cpython"
/* Object tests need an interpreter under CPython; pyheap needs no set-up. */
#define TEST_INIT() Py_InitializeEx(0)
/* 1 if an error is pending whose message contains `text`; clears it. */
static inline int last_error_contains(const char *text) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) return 0;
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : "";
    int found = msg != NULL && strstr(msg, text) != NULL;
    if (!found) fprintf(stderr, "last error: %s\n", msg ? msg : "?");
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return found;
}
#else
#include "pyheap.h"
#include "structmember.h"
#include <string.h>
#define PYHEAP_ONLY(stmt) do { stmt; } while (0)
#define IMPL_NAME "pyheap"
#define TEST_INIT() ((void)0)
static inline int last_error_contains(const char *text) {
    const char *msg = PyHeap_LastError();
    int found = msg != NULL && strstr(msg, text) != NULL;
    if (!found) fprintf(stderr, "last error: %s\n", msg ? msg : "(none)");
    PyHeap_ClearError();
    return found;
}
#endif

#endif
