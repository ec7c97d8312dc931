//! The object API: reference counting entry points, creation, types, GC
//! allocation, live-object statistics and the last error.

use core::ffi::{c_char, c_int, c_ulong, c_void};
use core::ptr;

use crate::domains::{Py_ssize_t, runtime};
use crate::error::{self, Error, PyHeap_ErrorKind};
use crate::object::dealloc::{self, CallSite};
use crate::object::layout::*;
use crate::object::{alloc, live, ready, spec};

/// Deallocates an object whose count reached zero (called by `Py_DECREF`).
/// Deep chains are deallocated with a bounded stack.
///
/// # Safety
/// `op` is an object whose count is zero.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _Py_Dealloc(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe { dealloc::dealloc(op) }
}

/// Reports a reference count below zero at `file:line` and aborts (called
/// by `Py_DECREF`).
///
/// # Safety
/// `op` points to the object's header; `file` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _Py_NegativeRefcount(file: *const c_char, line: c_int, op: *mut PyObject) {
    // SAFETY: forwarded contract.
    unsafe { dealloc::negative_refcount(op, Some(&CallSite { file, line })) }
}

/// The checked `Py_INCREF` of `PYHEAP_REF_DEBUG` builds.
///
/// # Safety
/// `op` is what the caller believes to be a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyHeap_IncRefDebug(op: *mut PyObject, file: *const c_char, line: c_int) {
    // SAFETY: forwarded contract.
    unsafe { dealloc::checked_ref(op, 1, &CallSite { file, line }) }
}

/// The checked `Py_DECREF` of `PYHEAP_REF_DEBUG` builds.
///
/// # Safety
/// `op` is what the caller believes to be a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyHeap_DecRefDebug(op: *mut PyObject, file: *const c_char, line: c_int) {
    // SAFETY: forwarded contract.
    unsafe { dealloc::checked_ref(op, -1, &CallSite { file, line }) }
}

/// `Py_IncRef`: `Py_XINCREF` as a function.
///
/// # Safety
/// `op` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_IncRef(op: *mut PyObject) {
    if !op.is_null() {
        // SAFETY: caller's contract.
        unsafe { dealloc::incref(op) }
    }
}

/// `Py_DecRef`: `Py_XDECREF` as a function.
///
/// # Safety
/// `op` is NULL or a live object owning the reference given up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_DecRef(op: *mut PyObject) {
    if !op.is_null() {
        // SAFETY: caller's contract.
        unsafe { dealloc::decref(op) }
    }
}

/// `_Py_IncRef`: `Py_INCREF` as a function.
///
/// # Safety
/// `op` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _Py_IncRef(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe { dealloc::incref(op) }
}

/// `_Py_DecRef`: `Py_DECREF` as a function.
///
/// # Safety
/// `op` is a live object owning the reference given up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _Py_DecRef(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe { dealloc::decref(op) }
}

/// `Py_NewRef` as a function (the header's macro is inline): a new
/// reference to `op`.
///
/// # Safety
/// `op` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_NewRef(op: *mut PyObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe { dealloc::incref(op) };
    op
}

/// `Py_XNewRef` as a function: NULL stays NULL.
///
/// # Safety
/// `op` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Py_XNewRef(op: *mut PyObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe { Py_IncRef(op) };
    op
}

/// Initialises the header of `op` (type, count 1; heap types gain a
/// reference). NULL gives NULL with `MemoryError`. Returns `op`.
///
/// # Safety
/// `op` is NULL or writable memory for an instance of `tp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_Init(op: *mut PyObject, tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::object_init(op, tp) }
}

/// `PyObject_Init` plus `ob_size = size`.
///
/// # Safety
/// As for [`PyObject_Init`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_InitVar(
    op: *mut PyVarObject,
    tp: *mut PyTypeObject,
    size: Py_ssize_t,
) -> *mut PyVarObject {
    // SAFETY: forwarded contract.
    unsafe {
        let r = alloc::object_init(op.cast(), tp).cast::<PyVarObject>();
        if !r.is_null() {
            (*r).ob_size = size;
        }
        r
    }
}

/// Allocates an instance of `tp` (`tp_basicsize` bytes, not zeroed) and
/// initialises its header: a new reference, or NULL. Use `PyObject_New`.
///
/// # Safety
/// `tp` is a valid type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyObject_New(tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::new_object(tp) }
}

/// Allocates a variable-size instance with `nitems` items: a new
/// reference, or NULL. Use `PyObject_NewVar`.
///
/// # Safety
/// `tp` is a valid type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyObject_NewVar(
    tp: *mut PyTypeObject,
    nitems: Py_ssize_t,
) -> *mut PyVarObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::new_var_object(tp, nitems) }
}

/// The default `tp_alloc`: a zeroed instance (tracked if the type is GC): a
/// new reference, or NULL.
///
/// # Safety
/// `tp` is a valid, ready type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_GenericAlloc(
    tp: *mut PyTypeObject,
    nitems: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::generic_alloc(tp, nitems) }
}

/// `tp->tp_alloc(tp, 0)`: a new reference, or NULL.
///
/// # Safety
/// `tp` is a valid, ready type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_GenericNew(
    tp: *mut PyTypeObject,
    _args: *mut PyObject,
    _kwds: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::generic_new(tp) }
}

/// Allocates an untracked GC instance (fields not initialised): a new
/// reference, or NULL. Use `PyObject_GC_New`.
///
/// # Safety
/// `tp` is a valid type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyObject_GC_New(tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::gc_new(tp) }
}

/// Allocates an untracked variable-size GC instance. Use
/// `PyObject_GC_NewVar`.
///
/// # Safety
/// `tp` is a valid type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyObject_GC_NewVar(
    tp: *mut PyTypeObject,
    nitems: Py_ssize_t,
) -> *mut PyVarObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::gc_new_var(tp, nitems) }
}

/// Resizes an untracked variable-size GC object; NULL (object unchanged) on
/// failure. Use `PyObject_GC_Resize`.
///
/// # Safety
/// `op` is a live, untracked GC object of a variable-size type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyObject_GC_Resize(
    op: *mut PyVarObject,
    nitems: Py_ssize_t,
) -> *mut PyVarObject {
    // SAFETY: forwarded contract.
    unsafe { alloc::gc_resize(op, nitems) }
}

/// Frees a GC object's memory (unlinking it if still tracked).
///
/// # Safety
/// `op` is NULL or a GC object allocated by pyheap, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_GC_Del(op: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { alloc::gc_del(op.cast()) }
}

/// Starts tracking a GC object; tracking it twice is a fatal error.
///
/// # Safety
/// `op` is a live GC object allocated by pyheap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_GC_Track(op: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { alloc::gc_track(op.cast(), "PyObject_GC_Track") }
}

/// Stops tracking a GC object (no-op if untracked).
///
/// # Safety
/// `op` is a live GC object allocated by pyheap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_GC_UnTrack(op: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { alloc::gc_untrack(op.cast()) }
}

/// 1 if `op` is a GC object that is tracked, else 0.
///
/// # Safety
/// `op` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_GC_IsTracked(op: *mut PyObject) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { (alloc::is_gc(op) && crate::gc::is_tracked(crate::gc::as_gc(op))) as c_int }
}

/// 1 if `op` is a GC object whose finalizer has run, else 0.
///
/// # Safety
/// `op` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_GC_IsFinalized(op: *mut PyObject) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        (alloc::is_gc(op) && (*crate::gc::as_gc(op))._gc_prev & crate::gc::PREV_MASK_FINALIZED != 0)
            as c_int
    }
}

/// 1 if `op` is managed by the collector (its type is GC and `tp_is_gc`,
/// if any, agrees).
///
/// # Safety
/// `op` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_IS_GC(op: *mut PyObject) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { alloc::is_gc(op) as c_int }
}

/// Runs `tp_finalize` if it has not run yet.
///
/// # Safety
/// `op` is a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_CallFinalizer(op: *mut PyObject) {
    // SAFETY: forwarded contract.
    unsafe { dealloc::call_finalizer(op) }
}

/// Runs the finalizer from a deallocator: 0, or -1 if the object was
/// resurrected (the deallocator must then return at once).
///
/// # Safety
/// `op` is an object whose count is zero.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_CallFinalizerFromDealloc(op: *mut PyObject) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { dealloc::call_finalizer_from_dealloc(op) }
}

/// Finishes a type: checks it, fills defaults, inherits from its base.
/// 0, or -1 with the last error set (`PyHeap_LastError`).
///
/// # Safety
/// `tp` is a valid, writable type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_Ready(tp: *mut PyTypeObject) -> c_int {
    if tp.is_null() {
        error::set(Error::System(
            "bad internal call: PyType_Ready(NULL)".into(),
        ));
        return -1;
    }
    // SAFETY: forwarded contract.
    super::boundary("PyType_Ready", || unsafe { ready::ready_c(tp) })
}

/// Creates a heap type from `spec`: a new reference, or NULL with the last
/// error set.
///
/// # Safety
/// `spec` is a valid `PyType_Spec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_FromSpec(spec: *mut PyType_Spec) -> *mut PyObject {
    // SAFETY: forwarded contract.
    unsafe { PyType_FromSpecWithBases(spec, ptr::null_mut()) }
}

/// `PyType_FromSpec` with a base: `bases` is NULL or a type object (pyheap
/// has single inheritance only). A new reference, or NULL.
///
/// # Safety
/// `spec` is a valid `PyType_Spec`; `bases` is NULL or a type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_FromSpecWithBases(
    spec: *mut PyType_Spec,
    bases: *mut PyObject,
) -> *mut PyObject {
    if spec.is_null() {
        return error::null(Error::System("bad internal call: NULL spec".into()));
    }
    // SAFETY: forwarded contract.
    super::boundary("PyType_FromSpec", || unsafe {
        spec::from_spec(spec, bases)
    })
}

/// The function or value stored in slot `slot` (a `Py_tp_*` id), or NULL.
///
/// # Safety
/// `tp` is a valid type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_GetSlot(tp: *mut PyTypeObject, slot: c_int) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { spec::get_slot(tp, slot) }
}

/// The type's `tp_flags`.
///
/// # Safety
/// `tp` is a valid type object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_GetFlags(tp: *mut PyTypeObject) -> c_ulong {
    // SAFETY: forwarded contract.
    unsafe { (*tp).tp_flags }
}

/// 1 if `a` is `b` or derives from it through `tp_base`, else 0.
///
/// # Safety
/// `a` and `b` are valid type objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyType_IsSubtype(a: *mut PyTypeObject, b: *mut PyTypeObject) -> c_int {
    let mut t = a;
    while !t.is_null() {
        if t == b {
            return 1;
        }
        // SAFETY: walking valid base pointers.
        t = unsafe { (*t).tp_base };
    }
    (b == crate::object::types::object_type()) as c_int
}

/// Sum of the reference counts of all live objects pyheap allocated
/// (immortal ones excluded): CPython's `_Py_RefTotal`, computed on demand.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GetRefTotal() -> Py_ssize_t {
    super::boundary("PyHeap_GetRefTotal", || {
        // SAFETY: runtime lock held; read only.
        let rt = unsafe { runtime() };
        live::ref_total(rt)
    })
}

/// Receives one line of `PyHeap_GetLiveObjects`: a type, how many live
/// objects it has and the bytes they occupy. Return 0 to go on.
pub type PyHeap_LiveTypeFn = Option<
    unsafe extern "C" fn(
        tp: *mut PyTypeObject,
        count: usize,
        bytes: usize,
        ctx: *mut c_void,
    ) -> c_int,
>;

/// Calls `cb` once per type with live objects. Returns the number of live
/// objects, or -1 if `cb` is NULL. Stops early if `cb` returns non-zero.
///
/// # Safety
/// `cb` must not create or destroy objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GetLiveObjects(
    cb: PyHeap_LiveTypeFn,
    ctx: *mut c_void,
) -> Py_ssize_t {
    let Some(cb) = cb else { return -1 };
    let by_type = super::boundary("PyHeap_GetLiveObjects", || {
        // SAFETY: runtime lock held; read only.
        let rt = unsafe { runtime() };
        live::by_type(rt)
    });
    let total: usize = by_type.values().map(|c| c.count).sum();
    for (tp, c) in by_type {
        // SAFETY: the caller's callback, given a live type.
        if unsafe { cb(tp as *mut PyTypeObject, c.count, c.bytes, ctx) } != 0 {
            break;
        }
    }
    total as Py_ssize_t
}

/// Receives each live object of `PyHeap_VisitObjects`; return 0 to go on.
pub type PyHeap_ObjectFn =
    Option<unsafe extern "C" fn(op: *mut PyObject, ctx: *mut c_void) -> c_int>;

/// Calls `cb` for every live object pyheap allocated. Returns how many
/// were visited, or -1 if `cb` is NULL.
///
/// # Safety
/// `cb` must not create or destroy objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_VisitObjects(cb: PyHeap_ObjectFn, ctx: *mut c_void) -> Py_ssize_t {
    let Some(cb) = cb else { return -1 };
    let mut all = Vec::new();
    super::boundary("PyHeap_VisitObjects", || {
        // SAFETY: runtime lock held; read only.
        let rt = unsafe { runtime() };
        live::for_each(rt, |op| all.push(op))
    });
    let mut n = 0;
    for op in all {
        n += 1;
        // SAFETY: the caller's callback with a live object.
        if unsafe { cb(op, ctx) } != 0 {
            break;
        }
    }
    n
}

/// Records `MemoryError` and returns NULL (CPython's `PyErr_NoMemory`).
#[unsafe(no_mangle)]
pub extern "C" fn PyErr_NoMemory() -> *mut PyObject {
    error::null(Error::NoMemory)
}

/// The kind of this thread's last error (`PYHEAP_ERR_NONE` if none).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_LastErrorKind() -> PyHeap_ErrorKind {
    error::last().map_or(PyHeap_ErrorKind::PYHEAP_ERR_NONE, |e| e.kind())
}

/// The message of this thread's last error, e.g. `"TypeError: ..."`, or
/// NULL. Valid until the next error on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_LastError() -> *const c_char {
    error::last_message_ptr()
}

/// Forgets this thread's last error.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_ClearError() {
    error::clear()
}
