/* pyheap: hand-written inline fast paths and function-like macros.
 *
 * Included at the end of the generated pyheap.h; includes it in turn, so
 * either header may be included first or alone. Everything here mirrors a
 * CPython macro or static inline function of the same name. */
#ifndef PYHEAP_INLINE_H
#define PYHEAP_INLINE_H

#include <stdarg.h>
#include <stdint.h>

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

/* ---- Objects (CPython's object.h, 3.11 layout, 3.12 immortality) ------ */

#define PyObject_HEAD PyObject ob_base;
#define PyObject_VAR_HEAD PyVarObject ob_base;
/* Static objects are immortal: their count never changes, they are never
 * freed (PEP 683). */
#define PyObject_HEAD_INIT(type) {{_Py_IMMORTAL_REFCNT}, (type)},
#define PyVarObject_HEAD_INIT(type, size) {PyObject_HEAD_INIT(type)(size)},
#define Py_INVALID_SIZE ((Py_ssize_t)-1)

#define _PyObject_CAST(op) ((PyObject *)(op))
#define _PyVarObject_CAST(op) ((PyVarObject *)(op))

static inline Py_ssize_t Py_REFCNT(PyObject *ob) { return ob->ob_refcnt; }
#define Py_REFCNT(ob) Py_REFCNT(_PyObject_CAST(ob))

static inline PyTypeObject *Py_TYPE(PyObject *ob) { return ob->ob_type; }
#define Py_TYPE(ob) Py_TYPE(_PyObject_CAST(ob))

static inline Py_ssize_t Py_SIZE(PyObject *ob) { return ((PyVarObject *)ob)->ob_size; }
#define Py_SIZE(ob) Py_SIZE(_PyObject_CAST(ob))

static inline int Py_IS_TYPE(PyObject *ob, PyTypeObject *type) { return ob->ob_type == type; }
#define Py_IS_TYPE(ob, type) Py_IS_TYPE(_PyObject_CAST(ob), (type))

/* Immortal iff the low 32 bits of the count, read as signed, are negative
 * (3.12's rule on 64-bit platforms). */
static inline int _Py_IsImmortal(PyObject *op) { return (int32_t)op->ob_refcnt < 0; }
#define _Py_IsImmortal(op) _Py_IsImmortal(_PyObject_CAST(op))

static inline void Py_SET_REFCNT(PyObject *ob, Py_ssize_t refcnt) {
    if (_Py_IsImmortal(ob)) return;
    ob->ob_refcnt = refcnt;
}
#define Py_SET_REFCNT(ob, refcnt) Py_SET_REFCNT(_PyObject_CAST(ob), (refcnt))

static inline void Py_SET_TYPE(PyObject *ob, PyTypeObject *type) { ob->ob_type = type; }
#define Py_SET_TYPE(ob, type) Py_SET_TYPE(_PyObject_CAST(ob), (type))

static inline void Py_SET_SIZE(PyVarObject *ob, Py_ssize_t size) { ob->ob_size = size; }
#define Py_SET_SIZE(ob, size) Py_SET_SIZE(_PyVarObject_CAST(ob), (size))

#define Py_Is(x, y) ((x) == (y))
#define Py_None (&_Py_NoneStruct)
#define Py_IsNone(x) Py_Is((x), Py_None)

/* Py_INCREF: four instructions, CPython 3.12's immortal form (3.11's is one
 * add); the count saturates at the immortal value instead of wrapping. */
static inline void _Py_IncRefImpl(PyObject *op) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint32_t n = op->ob_refcnt_split[1] + 1;
    if (n != 0) op->ob_refcnt_split[1] = n;
#else
    /* Only the low half changes: a mortal count stays below 2^32 - 1, and
     * an immortal one (low half all ones) is left alone. */
    uint32_t n = op->ob_refcnt_split[0] + 1;
    if (n != 0) op->ob_refcnt_split[0] = n;
#endif
}

/* Py_DECREF: reaching zero calls _Py_Dealloc; going below zero is reported
 * with this call's file and line. Both live on one branch that is never
 * taken on the fast path, so the check costs nothing there. */
static inline void _Py_DecRefImpl(PyObject *op, const char *file, int line) {
    Py_ssize_t rc = op->ob_refcnt;
    if ((int32_t)rc < 0) return; /* immortal */
    op->ob_refcnt = --rc;
    if (rc <= 0) {
        if (rc == 0) {
            _Py_Dealloc(op);
        } else {
            _Py_NegativeRefcount(file, line, op);
        }
    }
}

#if defined(PYHEAP_REF_DEBUG) || defined(Py_REF_DEBUG)
/* Checked reference counting: each call verifies that the object is live
 * (not freed) and names this file and line if it is not. */
#define Py_INCREF(op) _PyHeap_IncRefDebug(_PyObject_CAST(op), __FILE__, __LINE__)
#define Py_DECREF(op) _PyHeap_DecRefDebug(_PyObject_CAST(op), __FILE__, __LINE__)
#else
#define Py_INCREF(op) _Py_IncRefImpl(_PyObject_CAST(op))
#define Py_DECREF(op) _Py_DecRefImpl(_PyObject_CAST(op), __FILE__, __LINE__)
#endif

#define Py_XINCREF(op)                                                      \
    do {                                                                    \
        PyObject *_py_xincref_tmp = _PyObject_CAST(op);                     \
        if (_py_xincref_tmp != NULL) Py_INCREF(_py_xincref_tmp);            \
    } while (0)
#define Py_XDECREF(op)                                                      \
    do {                                                                    \
        PyObject *_py_xdecref_tmp = _PyObject_CAST(op);                     \
        if (_py_xdecref_tmp != NULL) Py_DECREF(_py_xdecref_tmp);            \
    } while (0)

/* Clear the variable first, then release: a deallocator that reads the
 * variable sees NULL. */
#define Py_CLEAR(op)                                                        \
    do {                                                                    \
        PyObject *_py_tmp = _PyObject_CAST(op);                             \
        if (_py_tmp != NULL) {                                              \
            (op) = NULL;                                                    \
            Py_DECREF(_py_tmp);                                             \
        }                                                                   \
    } while (0)

/* Store the new value, then release the old one. */
#define Py_SETREF(dst, src)                                                 \
    do {                                                                    \
        PyObject *_py_tmp = _PyObject_CAST(dst);                            \
        (dst) = (src);                                                      \
        Py_DECREF(_py_tmp);                                                 \
    } while (0)
#define Py_XSETREF(dst, src)                                                \
    do {                                                                    \
        PyObject *_py_tmp = _PyObject_CAST(dst);                            \
        (dst) = (src);                                                      \
        Py_XDECREF(_py_tmp);                                                \
    } while (0)

static inline PyObject *_Py_NewRef(PyObject *obj) {
    Py_INCREF(obj);
    return obj;
}
static inline PyObject *_Py_XNewRef(PyObject *obj) {
    Py_XINCREF(obj);
    return obj;
}
#define Py_NewRef(obj) _Py_NewRef(_PyObject_CAST(obj))
#define Py_XNewRef(obj) _Py_XNewRef(_PyObject_CAST(obj))

#define Py_RETURN_NONE return Py_None

/* ---- Creating objects (objimpl.h) --------------------------------------- */

#define PyObject_New(type, typeobj) ((type *)_PyObject_New(typeobj))
#define PyObject_NewVar(type, typeobj, n) ((type *)_PyObject_NewVar((typeobj), (n)))
#define PyObject_NEW(type, typeobj) PyObject_New(type, typeobj)
#define PyObject_NEW_VAR(type, typeobj, n) PyObject_NewVar(type, typeobj, n)
#define PyObject_INIT(op, typeobj) PyObject_Init(_PyObject_CAST(op), (typeobj))
#define PyObject_INIT_VAR(op, typeobj, size) PyObject_InitVar(_PyVarObject_CAST(op), (typeobj), (size))

#define _PyObject_SIZE(typeobj) ((typeobj)->tp_basicsize)
/* basicsize + n * itemsize, rounded up to a pointer's size. */
#define _PyObject_VAR_SIZE(typeobj, nitems)                                 \
    ((size_t)(((size_t)(typeobj)->tp_basicsize +                            \
               (size_t)(nitems) * (size_t)(typeobj)->tp_itemsize +          \
               (sizeof(void *) - 1)) &                                      \
              ~(sizeof(void *) - 1)))

#define PyObject_GC_New(type, typeobj) ((type *)_PyObject_GC_New(typeobj))
#define PyObject_GC_NewVar(type, typeobj, n) ((type *)_PyObject_GC_NewVar((typeobj), (n)))
#define PyObject_GC_Resize(type, op, n) ((type *)_PyObject_GC_Resize(_PyVarObject_CAST(op), (n)))

/* In a tp_traverse whose parameters are named visit and arg. */
#define Py_VISIT(op)                                                        \
    do {                                                                    \
        if (op) {                                                           \
            int vret = visit(_PyObject_CAST(op), arg);                      \
            if (vret) return vret;                                          \
        }                                                                   \
    } while (0)

static inline int PyType_HasFeature(PyTypeObject *type, unsigned long feature) {
    return (type->tp_flags & feature) != 0;
}
#define PyType_IS_GC(t) PyType_HasFeature((t), Py_TPFLAGS_HAVE_GC)
#define PyType_Check(op) Py_IS_TYPE((op), &PyType_Type)

/* Deep deallocation is handled by _Py_Dealloc itself (as in 3.14), so the
 * trashcan brackets only keep their block structure. */
#define Py_TRASHCAN_BEGIN(op, dealloc) {                                    \
    (void)(op);                                                             \
    (void)(dealloc);
#define Py_TRASHCAN_END }

/* ---- Type checks ------------------------------------------------------- */

static inline int PyObject_TypeCheck(PyObject *ob, PyTypeObject *type) {
    return Py_IS_TYPE(ob, type) || PyType_IsSubtype(Py_TYPE(ob), type);
}
#define PyObject_TypeCheck(ob, type) PyObject_TypeCheck(_PyObject_CAST(ob), (type))
#define PyType_FastSubclass(type, flag) PyType_HasFeature((type), (flag))

/* ---- Tuples (CPython's tupleobject.h) ---------------------------------- */

#define PyTuple_Check(op) PyType_FastSubclass(Py_TYPE(op), Py_TPFLAGS_TUPLE_SUBCLASS)
#define PyTuple_CheckExact(op) Py_IS_TYPE((op), &PyTuple_Type)
#define _PyTuple_CAST(op) ((PyTupleObject *)(op))
#define PyTuple_GET_SIZE(op) Py_SIZE(op)
#define PyTuple_GET_ITEM(op, i) (_PyTuple_CAST(op)->ob_item[(i)])
/* Stores v without releasing the previous item: for filling a new tuple. */
#define PyTuple_SET_ITEM(op, i, v) ((void)(_PyTuple_CAST(op)->ob_item[(i)] = (v)))

/* A new tuple of the n objects that follow (new references are taken).
 * CPython exports it; it is variadic, so pyheap defines it here. */
static inline PyObject *PyTuple_Pack(Py_ssize_t n, ...) {
    PyObject *t = PyTuple_New(n);
    if (t == NULL) {
        return NULL;
    }
    va_list ap;
    va_start(ap, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = va_arg(ap, PyObject *);
        Py_INCREF(o);
        PyTuple_SET_ITEM(t, i, o);
    }
    va_end(ap);
    return t;
}

/* ---- Weak references (CPython's weakrefobject.h) ----------------------- */

#define PyWeakref_CheckRef(op) PyObject_TypeCheck((op), &_PyWeakref_RefType)
#define PyWeakref_CheckRefExact(op) Py_IS_TYPE((op), &_PyWeakref_RefType)
#define PyWeakref_CheckProxy(op)                                            \
    (Py_IS_TYPE((op), &_PyWeakref_ProxyType) ||                             \
     Py_IS_TYPE((op), &_PyWeakref_CallableProxyType))
#define PyWeakref_Check(op) (PyWeakref_CheckRef(op) || PyWeakref_CheckProxy(op))

/* The referent, borrowed, or Py_None once it is dead; no checks. */
static inline PyObject *PyWeakref_GET_OBJECT(PyObject *ref) {
    PyObject *obj = ((PyWeakReference *)ref)->wr_object;
    return Py_REFCNT(obj) > 0 ? obj : Py_None;
}
#define PyWeakref_GET_OBJECT(ref) PyWeakref_GET_OBJECT(_PyObject_CAST(ref))

/* ---- Letting other threads run (CPython's ceval.h) --------------------- */

/* Py_BEGIN_ALLOW_THREADS opens a block that runs without the runtime lock
 * (no PyMem_, PyObject_ or reference-count calls on shared objects inside);
 * Py_END_ALLOW_THREADS takes the lock back and closes the block. Inside,
 * Py_BLOCK_THREADS takes the lock back early and Py_UNBLOCK_THREADS lets it
 * go again. */
#define Py_BEGIN_ALLOW_THREADS                                              \
    {                                                                       \
        PyThreadState *_save = PyEval_SaveThread();
#define Py_BLOCK_THREADS PyEval_RestoreThread(_save);
#define Py_UNBLOCK_THREADS _save = PyEval_SaveThread();
#define Py_END_ALLOW_THREADS                                                \
        PyEval_RestoreThread(_save);                                        \
    }

#endif /* PYHEAP_INLINE_H */
