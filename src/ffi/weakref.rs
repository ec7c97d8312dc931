//! Weak references, tuples and calls: CPython's `PyWeakref_*`,
//! `PyObject_ClearWeakRefs`, `PyTuple_*` and `PyObject_Call*`, plus
//! `PyHeap_Weakref_NewRefWithCallback`, the C-native way to be told when an
//! object dies.

use core::ffi::{c_int, c_void};
use core::ptr;

use crate::domains::Py_ssize_t;
use crate::error::{self, Error};
use crate::object::layout::PyObject;
use crate::object::{call, tuple};
use crate::weakref::{self, PyWeakReference};

/// A C weak-reference callback: called with the weak reference (whose
/// referent already reads as `Py_None`) and the context given at creation.
pub type PyHeap_WeakrefCallback =
    Option<unsafe extern "C" fn(weakref: *mut PyObject, ctx: *mut c_void)>;

/// Sets a `SystemError` for a NULL argument; true if `op` is NULL.
fn null_arg(op: *mut PyObject) -> bool {
    if op.is_null() {
        error::set(Error::bad_internal_call());
    }
    op.is_null()
}

/// A new weak reference to `ob` (CPython's `PyWeakref_NewRef`). `callback`
/// (NULL or `Py_None` for none) is called with the weak reference when `ob`
/// dies, if the weak reference is still alive then. Without a callback the
/// one basic reference of `ob` is shared. NULL with a `TypeError` if `ob`'s
/// type does not support weak references.
///
/// # Safety
/// `ob` is a live object; `callback` NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyWeakref_NewRef(
    ob: *mut PyObject,
    callback: *mut PyObject,
) -> *mut PyObject {
    super::boundary("PyWeakref_NewRef", || {
        if null_arg(ob) {
            return ptr::null_mut();
        }
        // SAFETY: caller's contract.
        unsafe { weakref::new_ref(ob, callback) }
    })
}

/// A new weak proxy to `ob` (CPython's `PyWeakref_NewProxy`). pyheap has
/// no attribute access, so a proxy is a weak reference of type
/// `weakref.ProxyType` (`weakref.CallableProxyType`, which forwards calls,
/// if `ob`'s type has `tp_call`); `PyWeakref_GetObject` accepts it. Without
/// a callback the basic proxy of `ob` is shared.
///
/// # Safety
/// As [`PyWeakref_NewRef`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyWeakref_NewProxy(
    ob: *mut PyObject,
    callback: *mut PyObject,
) -> *mut PyObject {
    super::boundary("PyWeakref_NewProxy", || {
        if null_arg(ob) {
            return ptr::null_mut();
        }
        // SAFETY: caller's contract.
        unsafe { weakref::new_proxy(ob, callback) }
    })
}

/// The referent of `ref` as a borrowed reference, or `Py_None` once it is
/// dead (or its count already reached zero); NULL with a `SystemError` if
/// `ref` is NULL or not a weak reference.
///
/// # Safety
/// `ref_` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyWeakref_GetObject(ref_: *mut PyObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    super::boundary("PyWeakref_GetObject", || unsafe {
        weakref::get_object(ref_)
    })
}

/// CPython 3.13's `PyWeakref_GetRef`: 1 and a new reference to the
/// referent in `*pobj`; 0 and NULL if it is dead; -1 and NULL with a
/// `TypeError` if `ref` is not a weak reference (`SystemError` if NULL).
///
/// # Safety
/// `ref_` is NULL or a live object; `pobj` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyWeakref_GetRef(ref_: *mut PyObject, pobj: *mut *mut PyObject) -> c_int {
    super::boundary("PyWeakref_GetRef", || {
        if pobj.is_null() {
            error::set(Error::bad_internal_call());
            return -1;
        }
        // SAFETY: caller's contract.
        unsafe { weakref::get_ref(ref_, pobj) }
    })
}

/// Detaches every weak reference to `op` and calls the callbacks of those
/// still alive, newest first. Call it from the `tp_dealloc` of a type that
/// supports weak references, before freeing anything (the instance's count
/// is zero then). A `SystemError` if `op` is NULL, its type has no weak
/// reference support or its count is not zero. An error set on this thread
/// before the call is kept; a callback's error is printed and dropped.
///
/// # Safety
/// `op` is NULL or an object in its deallocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_ClearWeakRefs(op: *mut PyObject) {
    // SAFETY: caller's contract.
    super::boundary("PyObject_ClearWeakRefs", || unsafe {
        weakref::clear_weakrefs(op)
    })
}

/// Length of the weak-reference list starting at `head`.
///
/// # Safety
/// `head` is NULL or the first weak reference of a referent's list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyWeakref_GetWeakrefCount(head: *mut PyWeakReference) -> Py_ssize_t {
    // SAFETY: caller's contract.
    unsafe { weakref::count(head) }
}

/// Number of weak references (and proxies) to `ob`; 0 if its type does not
/// support them (`weakref.getweakrefcount`).
///
/// # Safety
/// `ob` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Weakref_Count(ob: *mut PyObject) -> Py_ssize_t {
    super::boundary("PyHeap_Weakref_Count", || {
        if ob.is_null() {
            return 0;
        }
        // SAFETY: caller's contract.
        unsafe { weakref::count_for(ob) }
    })
}

/// A new weak reference to `ob` whose callback is the C function `cb`:
/// when `ob` dies, `cb(weakref, ctx)` is called (if the weak reference is
/// still alive then), in the same order as other callbacks. Each call
/// creates a new weak reference. NULL with a `TypeError` if `ob`'s type
/// does not support weak references; with `cb` NULL this is
/// `PyWeakref_NewRef(ob, NULL)`.
///
/// # Safety
/// `ob` is a live object; `ctx` stays valid for `cb` while the weak
/// reference lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Weakref_NewRefWithCallback(
    ob: *mut PyObject,
    cb: PyHeap_WeakrefCallback,
    ctx: *mut c_void,
) -> *mut PyObject {
    super::boundary("PyHeap_Weakref_NewRefWithCallback", || {
        if null_arg(ob) {
            return ptr::null_mut();
        }
        // SAFETY: caller's contract.
        unsafe {
            match cb {
                Some(f) => weakref::new_ref_with_c_callback(ob, f, ctx),
                None => weakref::new_ref(ob, ptr::null_mut()),
            }
        }
    })
}

/// A new tuple of `n` NULL items (fill it with `PyTuple_SET_ITEM`), tracked
/// by the collector; NULL with an error if `n` is negative or on no memory.
#[unsafe(no_mangle)]
pub extern "C" fn PyTuple_New(n: Py_ssize_t) -> *mut PyObject {
    super::boundary("PyTuple_New", || tuple::new(n))
}

/// Number of items of tuple `op`; -1 with a `SystemError` if it is not one.
///
/// # Safety
/// `op` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyTuple_Size(op: *mut PyObject) -> Py_ssize_t {
    // SAFETY: caller's contract.
    super::boundary("PyTuple_Size", || unsafe { tuple::size(op) })
}

/// Item `i` of tuple `op`, borrowed; NULL with an error if `op` is not a
/// tuple or `i` is out of range.
///
/// # Safety
/// `op` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyTuple_GetItem(op: *mut PyObject, i: Py_ssize_t) -> *mut PyObject {
    // SAFETY: caller's contract.
    super::boundary("PyTuple_GetItem", || unsafe { tuple::get_item(op, i) })
}

/// Stores `item` (a reference this call steals) at index `i` of tuple `op`,
/// releasing the previous item; -1 with an error (and `item` released) if
/// `op` is not a tuple or `i` is out of range.
///
/// # Safety
/// `op` is NULL or a live object; `item` NULL or an owned reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyTuple_SetItem(
    op: *mut PyObject,
    i: Py_ssize_t,
    item: *mut PyObject,
) -> c_int {
    // SAFETY: caller's contract.
    super::boundary("PyTuple_SetItem", || unsafe {
        tuple::set_item(op, i, item)
    })
}

/// Calls `callable(*args, **kwargs)` through its type's `tp_call`; `args`
/// is a tuple, `kwargs` NULL (pyheap has no dict). A new reference, or NULL
/// with an error (a `TypeError` if the object is not callable).
///
/// # Safety
/// `callable` and `args` are live objects; `kwargs` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_Call(
    callable: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    super::boundary("PyObject_Call", || {
        if null_arg(callable) || null_arg(args) {
            return ptr::null_mut();
        }
        // SAFETY: caller's contract.
        unsafe {
            if !tuple::is_tuple(args) {
                return error::null(Error::Type("argument list must be a tuple".into()));
            }
            call::call(callable, args, kwargs)
        }
    })
}

/// Calls `callable(arg)`.
///
/// # Safety
/// `callable` and `arg` are live objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_CallOneArg(
    callable: *mut PyObject,
    arg: *mut PyObject,
) -> *mut PyObject {
    super::boundary("PyObject_CallOneArg", || {
        if null_arg(callable) || null_arg(arg) {
            return ptr::null_mut();
        }
        // SAFETY: caller's contract.
        unsafe { call::call_one_arg(callable, arg) }
    })
}

/// Calls `callable()`.
///
/// # Safety
/// `callable` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_CallNoArgs(callable: *mut PyObject) -> *mut PyObject {
    super::boundary("PyObject_CallNoArgs", || {
        if null_arg(callable) {
            return ptr::null_mut();
        }
        let args = tuple::new(0);
        if args.is_null() {
            return args;
        }
        // SAFETY: caller's contract; args is a new tuple we release.
        unsafe {
            let r = call::call(callable, args, ptr::null_mut());
            crate::object::dealloc::decref(args);
            r
        }
    })
}

/// 1 if `op`'s type defines `tp_call`, else 0.
///
/// # Safety
/// `op` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyCallable_Check(op: *mut PyObject) -> c_int {
    // SAFETY: caller's contract.
    (!op.is_null() && unsafe { (*(*op).ob_type).tp_call.is_some() }) as c_int
}
