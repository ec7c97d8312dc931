//! The static types every program has: `object` (the default base),
//! `type` (the type of heap types) and `NoneType` with its immortal
//! instance `Py_None`.

use core::ffi::{c_char, c_void};

use super::layout::*;
use crate::domains::Py_ssize_t;

/// A heap type: the type object followed by what pyheap owns for it.
#[repr(C)]
pub struct HeapType {
    /// The type itself (must be first).
    pub ty: PyTypeObject,
    /// Owned copy of the name (RAW domain), or null.
    pub name: *mut c_char,
    /// Owned copy of the docstring (RAW domain), or null.
    pub doc: *mut c_char,
}

const fn static_header(tp: *mut PyTypeObject) -> PyVarObject {
    PyVarObject {
        ob_base: PyObject {
            ob_refcnt: _Py_IMMORTAL_REFCNT,
            ob_type: tp,
        },
        ob_size: 0,
    }
}

/// The `object` type: the base of every type.
#[unsafe(no_mangle)]
pub static mut PyBaseObject_Type: PyTypeObject = PyTypeObject {
    ob_base: static_header(&raw mut PyType_Type),
    tp_name: c"object".as_ptr(),
    tp_basicsize: core::mem::size_of::<PyObject>() as Py_ssize_t,
    tp_dealloc: Some(object_dealloc),
    tp_flags: Py_TPFLAGS_BASETYPE,
    tp_doc: c"The base class of the class hierarchy.".as_ptr(),
    tp_alloc: Some(crate::ffi::object::PyType_GenericAlloc),
    tp_new: Some(object_new),
    tp_free: Some(crate::ffi::mem::PyObject_Free),
    ..ZEROED_TYPE
};

/// The `type` type: the type of every type object.
#[unsafe(no_mangle)]
pub static mut PyType_Type: PyTypeObject = PyTypeObject {
    ob_base: static_header(&raw mut PyType_Type),
    tp_name: c"type".as_ptr(),
    tp_basicsize: core::mem::size_of::<HeapType>() as Py_ssize_t,
    tp_dealloc: Some(type_dealloc),
    tp_flags: Py_TPFLAGS_BASETYPE | Py_TPFLAGS_TYPE_SUBCLASS,
    tp_doc: c"type(name): the type of type objects.".as_ptr(),
    tp_call: Some(type_call),
    tp_base: &raw mut PyBaseObject_Type,
    tp_free: Some(crate::ffi::mem::PyObject_Free),
    ..ZEROED_TYPE
};

/// The type of `None`.
#[unsafe(no_mangle)]
pub static mut _PyNone_Type: PyTypeObject = PyTypeObject {
    ob_base: static_header(&raw mut PyType_Type),
    tp_name: c"NoneType".as_ptr(),
    tp_basicsize: 0,
    tp_dealloc: Some(none_dealloc),
    tp_base: &raw mut PyBaseObject_Type,
    ..ZEROED_TYPE
};

/// `None`: an immortal singleton (use the `Py_None` macro).
#[unsafe(no_mangle)]
pub static mut _Py_NoneStruct: PyObject = PyObject {
    ob_refcnt: _Py_IMMORTAL_REFCNT,
    ob_type: &raw mut _PyNone_Type,
};

/// Pointer to `None`.
#[inline]
pub fn none() -> *mut PyObject {
    &raw mut _Py_NoneStruct
}

/// Pointer to the `object` type.
#[inline]
pub fn object_type() -> *mut PyTypeObject {
    &raw mut PyBaseObject_Type
}

/// Pointer to the `type` type.
#[inline]
pub fn type_type() -> *mut PyTypeObject {
    &raw mut PyType_Type
}

/// `object`'s deallocator: hands the memory to the instance type's
/// `tp_free`.
///
/// # Safety
/// `op` is an object whose count reached zero.
pub unsafe extern "C" fn object_dealloc(op: *mut PyObject) {
    // SAFETY: op is a dying object of a ready type.
    unsafe {
        if let Some(free) = (*(*op).ob_type).tp_free {
            free(op.cast());
        }
    }
}

/// `object`'s `tp_new`: allocates with the type's `tp_alloc`.
///
/// # Safety
/// `tp` is a ready type.
pub unsafe extern "C" fn object_new(
    tp: *mut PyTypeObject,
    _args: *mut PyObject,
    _kwds: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe { crate::object::alloc::generic_new(tp) }
}

/// `type`'s `tp_call`: calling a type makes an instance, as in CPython:
/// `tp_new(type, args, kwds)`, then the type's `tp_init` on the result if
/// it is an instance of the type (a `tp_new` may return something else).
/// NULL with a `TypeError` if the type has no `tp_new`, or with the error
/// `tp_new` or `tp_init` set.
///
/// # Safety
/// `callable` is a ready type; `args` a tuple; `kwds` NULL or live.
unsafe extern "C" fn type_call(
    callable: *mut PyObject,
    args: *mut PyObject,
    kwds: *mut PyObject,
) -> *mut PyObject {
    let tp = callable.cast::<PyTypeObject>();
    // SAFETY: only type objects have `type` (or a subtype) as their type,
    // so `callable` is a type; the slots are the type's own.
    unsafe {
        let Some(new) = (*tp).tp_new else {
            return crate::error::null(crate::error::Error::Type(format!(
                "cannot create '{}' instances",
                type_name(tp)
            )));
        };
        let obj = new(tp, args, kwds);
        if obj.is_null() || crate::ffi::object::PyType_IsSubtype((*obj).ob_type, tp) == 0 {
            return obj;
        }
        if let Some(init) = (*(*obj).ob_type).tp_init
            && init(obj, args, kwds) < 0
        {
            crate::object::dealloc::decref(obj);
            return core::ptr::null_mut();
        }
        obj
    }
}

/// Deallocates a heap type once its last instance and reference are gone.
///
/// # Safety
/// `op` is a heap type whose count reached zero.
pub unsafe extern "C" fn type_dealloc(op: *mut PyObject) {
    let ht = op.cast::<HeapType>();
    // SAFETY: only heap types reach zero (static types are immortal), and a
    // heap type is a HeapType allocated by PyType_FromSpec.
    unsafe {
        let base = (*ht).ty.tp_base;
        crate::ffi::mem::PyMem_RawFree((*ht).name.cast());
        crate::ffi::mem::PyMem_RawFree((*ht).doc.cast());
        crate::ffi::mem::PyObject_Free(op.cast::<c_void>());
        if !base.is_null() {
            crate::object::dealloc::decref(base.cast());
        }
    }
}

/// `None` is immortal; reaching this is a bug in reference counting.
///
/// # Safety
/// Never legitimately called.
pub unsafe extern "C" fn none_dealloc(op: *mut PyObject) {
    crate::fatal::internal("_Py_Dealloc", &format!("deallocating None at {op:p}"))
}

/// True iff `tp` is a heap type.
///
/// # Safety
/// `tp` is a valid type object.
#[inline]
pub unsafe fn is_heap_type(tp: *const PyTypeObject) -> bool {
    // SAFETY: caller's contract.
    unsafe { (*tp).tp_flags & Py_TPFLAGS_HEAPTYPE != 0 }
}

/// True if `op` is a type object (its type is `type` or a subtype).
///
/// # Safety
/// `op` is a live object.
pub unsafe fn is_type_object(op: *mut PyObject) -> bool {
    // SAFETY: caller's contract; base chains of ready types end in NULL.
    unsafe {
        let mut t = (*op).ob_type;
        while !t.is_null() {
            if t == type_type() {
                return true;
            }
            t = (*t).tp_base;
        }
        false
    }
}

/// The type's name as text (for reports), or `"?"`.
///
/// # Safety
/// `tp` is null or a valid type object whose name is null or a C string.
pub unsafe fn type_name(tp: *const PyTypeObject) -> String {
    // SAFETY: caller's contract.
    unsafe {
        if tp.is_null() || (*tp).tp_name.is_null() {
            return "?".into();
        }
        core::ffi::CStr::from_ptr((*tp).tp_name)
            .to_string_lossy()
            .into_owned()
    }
}
