//! Calling objects whose type defines `tp_call` (`PyObject_Call`,
//! `PyObject_CallOneArg`), and a callable that wraps a C function pointer
//! with a context (what `PyHeap_Weakref_NewRefWithCallback` registers).

use core::ffi::c_void;

use super::alloc::new_object;
use super::dealloc::{decref, incref};
use super::layout::*;
use super::tuple;
use super::types::{none, type_name};
use crate::domains::Py_ssize_t;
use crate::error::{self, Error};

/// `PyObject_Call(callable, args, kwargs)`: a new reference, or NULL with
/// the last error set (`TypeError` if the object is not callable).
///
/// # Safety
/// `callable` is a live object; `args` a live tuple; `kwargs` NULL or live.
pub unsafe fn call(
    callable: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        match (*(*callable).ob_type).tp_call {
            Some(f) => f(callable, args, kwargs),
            None => error::null(Error::Type(format!(
                "'{}' object is not callable",
                type_name((*callable).ob_type)
            ))),
        }
    }
}

/// `PyObject_CallOneArg(callable, arg)`.
///
/// # Safety
/// `callable` and `arg` are live objects.
pub unsafe fn call_one_arg(callable: *mut PyObject, arg: *mut PyObject) -> *mut PyObject {
    let args = tuple::new(1);
    if args.is_null() {
        return args;
    }
    // SAFETY: caller's contract; the tuple owns the new reference to arg.
    unsafe {
        incref(arg);
        *tuple::item_slot(args, 0) = arg;
        let r = call(callable, args, core::ptr::null_mut());
        decref(args);
        r
    }
}

/// A callable object around a C function: calling it with one argument `x`
/// runs `f(x, ctx)` and returns `None`.
#[repr(C)]
pub struct CCallback {
    /// Header.
    pub ob_base: PyObject,
    /// The function.
    pub f: unsafe extern "C" fn(*mut PyObject, *mut c_void),
    /// Its context.
    pub ctx: *mut c_void,
}

unsafe extern "C" fn ccallback_call(
    self_: *mut PyObject,
    args: *mut PyObject,
    _kw: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: self_ is a CCallback; args is the argument tuple.
    unsafe {
        if tuple::size(args) != 1 {
            return error::null(Error::Type(
                "a C callback takes exactly one argument".into(),
            ));
        }
        let cb = self_.cast::<CCallback>();
        ((*cb).f)(*tuple::item_slot(args, 0), (*cb).ctx);
        let n = none();
        incref(n);
        n
    }
}

/// The type of [`CCallback`] objects.
pub static mut CCALLBACK_TYPE: PyTypeObject = PyTypeObject {
    ob_base: PyVarObject {
        ob_base: PyObject {
            ob_refcnt: _Py_IMMORTAL_REFCNT,
            ob_type: &raw mut super::types::PyType_Type,
        },
        ob_size: 0,
    },
    tp_name: c"pyheap.CCallback".as_ptr(),
    tp_basicsize: core::mem::size_of::<CCallback>() as Py_ssize_t,
    tp_dealloc: Some(super::types::object_dealloc),
    tp_call: Some(ccallback_call),
    tp_flags: Py_TPFLAGS_READY | Py_TPFLAGS_IMMUTABLETYPE,
    tp_base: &raw mut super::types::PyBaseObject_Type,
    tp_free: Some(crate::ffi::mem::PyObject_Free),
    ..ZEROED_TYPE
};

/// A new callable wrapping `f` and `ctx`.
pub fn new_ccallback(
    f: unsafe extern "C" fn(*mut PyObject, *mut c_void),
    ctx: *mut c_void,
) -> *mut PyObject {
    let tp = &raw mut CCALLBACK_TYPE;
    // SAFETY: the type is static and ready; new_object set the header, the
    // fields are set before use.
    unsafe {
        let op = new_object(tp).cast::<CCallback>();
        if op.is_null() {
            return core::ptr::null_mut();
        }
        (*op).f = f;
        (*op).ctx = ctx;
        op.cast()
    }
}
