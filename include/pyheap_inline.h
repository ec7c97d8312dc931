/* pyheap: hand-written inline fast paths and function-like macros.
 *
 * Included at the end of the generated pyheap.h; includes it in turn, so
 * either header may be included first or alone. Everything here mirrors a
 * CPython macro or static inline function of the same name. */
#ifndef PYHEAP_INLINE_H
#define PYHEAP_INLINE_H

#include "pyheap.h"

/* ---- Allocator macros (CPython's pymem.h / objimpl.h) ------------------ */

/* Allocate an array of n TYPE from the MEM domain; NULL on overflow. */
#define PyMem_New(type, n)                                                  \
    (((size_t)(n) > (size_t)PY_SSIZE_T_MAX / sizeof(type))                  \
         ? NULL                                                             \
         : ((type *)PyMem_Malloc((size_t)(n) * sizeof(type))))

/* Resize p to n TYPE, assigning the result to p (NULL on overflow or
 * failure: save the old value first if you need it). */
#define PyMem_Resize(p, type, n)                                            \
    ((p) = ((size_t)(n) > (size_t)PY_SSIZE_T_MAX / sizeof(type))            \
               ? NULL                                                       \
               : (type *)PyMem_Realloc((p), (size_t)(n) * sizeof(type)))

/* Object-like aliases, usable as function pointers, as in CPython. */
#define PyMem_Del PyMem_Free
#define PyMem_DEL PyMem_Free
#define PyMem_MALLOC(n) PyMem_Malloc(n)
#define PyMem_NEW(type, n) PyMem_New(type, n)
#define PyMem_REALLOC(p, n) PyMem_Realloc((p), (n))
#define PyMem_RESIZE(p, type, n) PyMem_Resize(p, type, n)
#define PyMem_FREE(p) PyMem_Free(p)

#define PyObject_MALLOC PyObject_Malloc
#define PyObject_REALLOC PyObject_Realloc
#define PyObject_FREE PyObject_Free
#define PyObject_Del PyObject_Free
#define PyObject_DEL PyObject_Free

#endif /* PYHEAP_INLINE_H */
