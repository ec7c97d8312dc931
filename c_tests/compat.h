/* Lets one C test build against pyheap (default) or, with -DUSE_CPYTHON,
 * against CPython 3.11's Python.h and libpython3.11.so, so the behaviour a
 * test expects is proven on the real thing. PYHEAP_ONLY(stmt) runs stmt only
 * against pyheap (for pyheap's own extensions). */
#ifndef PYHEAP_C_COMPAT_H
#define PYHEAP_C_COMPAT_H

#ifdef USE_CPYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PYHEAP_ONLY(stmt) do { } while (0)
#define IMPL_NAME "cpython"
#else
#include "pyheap.h"
#define PYHEAP_ONLY(stmt) do { stmt; } while (0)
#define IMPL_NAME "pyheap"
#endif

#endif
