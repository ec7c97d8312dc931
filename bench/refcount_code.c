/* Py_INCREF / Py_DECREF as compiled code: built at -O2 against pyheap's
 * header (default) and CPython 3.11's Python.h (-DUSE_CPYTHON), then
 * disassembled by `bash bench/run.sh refcount` to compare instruction
 * counts. Nothing here is run. */
#ifdef USE_CPYTHON
#include <Python.h>
#else
#include "pyheap.h"
#endif

void incref(PyObject *o) { Py_INCREF(o); }
void decref(PyObject *o) { Py_DECREF(o); }
void xincref(PyObject *o) { Py_XINCREF(o); }
void xdecref(PyObject *o) { Py_XDECREF(o); }
/* Replace a reference held in a slot: the usual assignment pattern. */
void setref(PyObject **slot, PyObject *v) { Py_SETREF(*slot, Py_NewRef(v)); }
