/* The object header, type object and API constants have CPython 3.11's
 * sizes, offsets and values (run against Python.h too, which proves the
 * numbers). */
// pyheap-test: cpython
#include "compat.h"

#include <stddef.h>

#include "harness.h"

int main(void) {
    CHECK(sizeof(PyObject) == 16);
    CHECK(offsetof(PyObject, ob_refcnt) == 0);
    CHECK(offsetof(PyObject, ob_type) == 8);
    CHECK(sizeof(PyVarObject) == 24);
    CHECK(offsetof(PyVarObject, ob_size) == 16);
    CHECK(sizeof(PyTypeObject) == 408);
    CHECK(offsetof(PyTypeObject, tp_name) == 24);
    CHECK(offsetof(PyTypeObject, tp_basicsize) == 32);
    CHECK(offsetof(PyTypeObject, tp_itemsize) == 40);
    CHECK(offsetof(PyTypeObject, tp_dealloc) == 48);
    CHECK(offsetof(PyTypeObject, tp_call) == 128);
    CHECK(offsetof(PyTypeObject, tp_flags) == 168);
    CHECK(offsetof(PyTypeObject, tp_doc) == 176);
    CHECK(offsetof(PyTypeObject, tp_traverse) == 184);
    CHECK(offsetof(PyTypeObject, tp_clear) == 192);
    CHECK(offsetof(PyTypeObject, tp_weaklistoffset) == 208);
    CHECK(offsetof(PyTypeObject, tp_members) == 240);
    CHECK(offsetof(PyTypeObject, tp_base) == 256);
    CHECK(offsetof(PyTypeObject, tp_alloc) == 304);
    CHECK(offsetof(PyTypeObject, tp_new) == 312);
    CHECK(offsetof(PyTypeObject, tp_free) == 320);
    CHECK(offsetof(PyTypeObject, tp_is_gc) == 328);
    CHECK(offsetof(PyTypeObject, tp_del) == 376);
    CHECK(offsetof(PyTypeObject, tp_finalize) == 392);
    CHECK(offsetof(PyTypeObject, tp_vectorcall) == 400);
    CHECK(sizeof(PyType_Slot) == 16);
    CHECK(sizeof(PyType_Spec) == 32);
    CHECK(offsetof(PyType_Spec, slots) == 24);
    CHECK(sizeof(PyMemberDef) == 40);

    CHECK(Py_TPFLAGS_HEAPTYPE == (1UL << 9));
    CHECK(Py_TPFLAGS_BASETYPE == (1UL << 10));
    CHECK(Py_TPFLAGS_READY == (1UL << 12));
    CHECK(Py_TPFLAGS_READYING == (1UL << 13));
    CHECK(Py_TPFLAGS_HAVE_GC == (1UL << 14));
    CHECK(Py_TPFLAGS_DISALLOW_INSTANTIATION == (1UL << 7));
    CHECK(Py_TPFLAGS_IMMUTABLETYPE == (1UL << 8));
    CHECK(Py_TPFLAGS_MANAGED_DICT == (1UL << 4));
    CHECK(Py_TPFLAGS_TYPE_SUBCLASS == (1UL << 31));
    CHECK(Py_tp_alloc == 47 && Py_tp_base == 48 && Py_tp_dealloc == 52);
    CHECK(Py_tp_doc == 56 && Py_tp_new == 65 && Py_tp_traverse == 71);
    CHECK(Py_tp_members == 72 && Py_tp_free == 74 && Py_tp_finalize == 80);
    CHECK(Py_nb_add == 7 && Py_sq_item == 44 && Py_am_send == 81);
    CHECK(PYMEM_DOMAIN_RAW == 0 && PYMEM_DOMAIN_MEM == 1 && PYMEM_DOMAIN_OBJ == 2);
    return harness_summary();
}
