//! A minimal tuple type with CPython's C API, for calling objects (weak
//! reference callbacks take their arguments as a tuple). Tuples are GC
//! objects, tracked at creation; every collection untracks the surviving
//! ones that hold no GC object, as CPython's does.

use core::ffi::{c_int, c_void};

use super::alloc::{gc_new_var, gc_track, is_gc};
use super::dealloc::decref;
use super::layout::*;
use crate::domains::Py_ssize_t;
use crate::error::{self, Error};
use crate::gc;

/// CPython's `PyTupleObject`: the items follow the header.
#[repr(C)]
pub struct PyTupleObject {
    /// Header; `ob_size` is the number of items.
    pub ob_base: PyVarObject,
    /// The items (`ob_size` of them).
    pub ob_item: [*mut PyObject; 1],
}

unsafe extern "C" fn tuple_traverse(
    op: *mut PyObject,
    visit: visitproc,
    arg: *mut c_void,
) -> c_int {
    let Some(visit) = visit else { return 0 };
    // SAFETY: op is a live tuple; its items are owned references or NULL.
    unsafe {
        let t = op.cast::<PyTupleObject>();
        for i in 0..(*t).ob_base.ob_size.max(0) as usize {
            let item = *(*t).ob_item.as_ptr().add(i);
            if !item.is_null() {
                let r = visit(item, arg);
                if r != 0 {
                    return r;
                }
            }
        }
    }
    0
}

unsafe extern "C" fn tuple_dealloc(op: *mut PyObject) {
    // SAFETY: op is a tuple whose count reached zero.
    unsafe {
        super::alloc::gc_untrack(op);
        let t = op.cast::<PyTupleObject>();
        for i in 0..(*t).ob_base.ob_size.max(0) as usize {
            let item = *(*t).ob_item.as_ptr().add(i);
            if !item.is_null() {
                decref(item);
            }
        }
        // Only exact tuples are counted (tuple::new makes only those).
        if (*op).ob_type == tuple_type() {
            let st = &mut crate::domains::runtime().objects;
            debug_assert!(st.tuples > 0);
            st.tuples = st.tuples.saturating_sub(1);
        }
        match (*(*op).ob_type).tp_free {
            Some(free) => free(op.cast()),
            None => super::alloc::gc_del(op),
        }
    }
}

/// The tuple type.
#[unsafe(no_mangle)]
pub static mut PyTuple_Type: PyTypeObject = PyTypeObject {
    ob_base: PyVarObject {
        ob_base: PyObject {
            ob_refcnt: _Py_IMMORTAL_REFCNT,
            ob_type: &raw mut super::types::PyType_Type,
        },
        ob_size: 0,
    },
    tp_name: c"tuple".as_ptr(),
    tp_basicsize: (core::mem::size_of::<PyTupleObject>() - core::mem::size_of::<*mut PyObject>())
        as Py_ssize_t,
    tp_itemsize: core::mem::size_of::<*mut PyObject>() as Py_ssize_t,
    tp_dealloc: Some(tuple_dealloc),
    tp_flags: Py_TPFLAGS_HAVE_GC
        | Py_TPFLAGS_BASETYPE
        | Py_TPFLAGS_TUPLE_SUBCLASS
        | Py_TPFLAGS_READY
        | Py_TPFLAGS_IMMUTABLETYPE,
    tp_traverse: Some(tuple_traverse),
    tp_base: &raw mut super::types::PyBaseObject_Type,
    tp_free: Some(crate::ffi::object::PyObject_GC_Del),
    ..ZEROED_TYPE
};

/// Pointer to the tuple type.
pub fn tuple_type() -> *mut PyTypeObject {
    &raw mut PyTuple_Type
}

/// True iff `op` is a tuple or an instance of a tuple subclass.
///
/// # Safety
/// `op` is a live object.
pub unsafe fn is_tuple(op: *mut PyObject) -> bool {
    // SAFETY: caller's contract.
    unsafe { (*(*op).ob_type).tp_flags & Py_TPFLAGS_TUPLE_SUBCLASS != 0 }
}

/// `PyTuple_New(n)`: a tracked tuple of `n` NULL items.
pub fn new(n: Py_ssize_t) -> *mut PyObject {
    if n < 0 {
        return error::null(Error::bad_internal_call());
    }
    // SAFETY: the tuple type is a valid, ready type.
    unsafe {
        let t = gc_new_var(tuple_type(), n).cast::<PyTupleObject>();
        if t.is_null() {
            return core::ptr::null_mut();
        }
        core::ptr::write_bytes((*t).ob_item.as_mut_ptr(), 0, n as usize);
        crate::domains::runtime().objects.tuples += 1;
        gc_track(t.cast(), "PyTuple_New");
        t.cast()
    }
}

/// Address of item `i` of tuple `op`.
///
/// # Safety
/// `op` is a live tuple and `0 <= i < size`.
pub unsafe fn item_slot(op: *mut PyObject, i: Py_ssize_t) -> *mut *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        (*op.cast::<PyTupleObject>())
            .ob_item
            .as_mut_ptr()
            .add(i as usize)
    }
}

/// `PyTuple_Size`: -1 with `SystemError` if `op` is not a tuple.
///
/// # Safety
/// `op` is NULL or a live object.
pub unsafe fn size(op: *mut PyObject) -> Py_ssize_t {
    // SAFETY: caller's contract.
    unsafe {
        if op.is_null() || !is_tuple(op) {
            error::set(Error::bad_internal_call());
            return -1;
        }
        (*op.cast::<PyVarObject>()).ob_size
    }
}

/// `PyTuple_GetItem`: a borrowed item, or NULL with `IndexError` out of
/// range.
///
/// # Safety
/// `op` is NULL or a live object.
pub unsafe fn get_item(op: *mut PyObject, i: Py_ssize_t) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        let n = size(op);
        if n < 0 {
            return core::ptr::null_mut();
        }
        if i < 0 || i >= n {
            return error::null(Error::Index("tuple index out of range".into()));
        }
        *item_slot(op, i)
    }
}

/// `PyTuple_SetItem`: steals `item`; 0, or -1 (item released) on error,
/// which includes a tuple whose count is not 1.
///
/// # Safety
/// `op` is NULL or a live object; `item` is NULL or an owned reference.
pub unsafe fn set_item(op: *mut PyObject, i: Py_ssize_t, item: *mut PyObject) -> c_int {
    // SAFETY: caller's contract.
    unsafe {
        // As in CPython, only a tuple nobody else holds may be changed.
        if op.is_null() || !is_tuple(op) || (*op).ob_refcnt != 1 {
            if !item.is_null() {
                decref(item);
            }
            error::set(Error::bad_internal_call());
            return -1;
        }
        let n = (*op.cast::<PyVarObject>()).ob_size;
        if i < 0 || i >= n {
            if !item.is_null() {
                decref(item);
            }
            error::set(Error::Index("tuple assignment index out of range".into()));
            return -1;
        }
        let slot = item_slot(op, i);
        let old = *slot;
        *slot = item;
        if !old.is_null() {
            decref(old);
        }
        0
    }
}

/// During a collection: an exact tuple whose items are all non-GC objects
/// or untracked tuples cannot be part of a cycle, so it is untracked
/// (CPython's `_PyTuple_MaybeUntrack`). Returns whether it was untracked.
///
/// # Safety
/// `op` is a live, tracked object, outside the collection's flagged set.
pub unsafe fn maybe_untrack(op: *mut PyObject) -> bool {
    // SAFETY: caller's contract.
    unsafe {
        if (*op).ob_type != tuple_type() {
            return false;
        }
        for i in 0..(*op.cast::<PyVarObject>()).ob_size.max(0) {
            let item = *item_slot(op, i);
            if item.is_null() {
                return false;
            }
            // A GC object other than an exact tuple may be tracked at any
            // time; an exact tuple only matters while it is tracked.
            if is_gc(item) && ((*item).ob_type != tuple_type() || gc::is_tracked(gc::as_gc(item))) {
                return false;
            }
        }
        gc::untrack(gc::as_gc(op));
        true
    }
}
