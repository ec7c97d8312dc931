//! Creating objects: `PyObject_Init`, `_PyObject_New`, `PyType_GenericAlloc`
//! and the GC allocation functions (SPEC.md §4.6, §5.5).
//!
//! Memory comes from the OBJ domain (through its table, so hooks see it).
//! A GC object's block starts with its 16-byte GC header; the object follows.
//! Each new object block is recorded as an object (see `object/mod.rs`).

use core::ptr;

use super::dealloc::incref;
use super::layout::*;
use super::types::is_heap_type;
use crate::domains::{Py_ssize_t, runtime};
use crate::error::{self, Error};
use crate::ffi::mem::{PyObject_Calloc, PyObject_Free, PyObject_Malloc, PyObject_Realloc};
use crate::gc::{self, PyGC_Head};

/// `_PyObject_VAR_SIZE`: `basicsize + n * itemsize` rounded up to a pointer
/// size, or None on overflow.
///
/// # Safety
/// `tp` is a valid type object.
pub unsafe fn var_size(tp: *const PyTypeObject, n: Py_ssize_t) -> Option<usize> {
    // SAFETY: caller's contract.
    let (basic, item) = unsafe { ((*tp).tp_basicsize, (*tp).tp_itemsize) };
    let total = n.checked_mul(item)?.checked_add(basic)?;
    let total = usize::try_from(total).ok()?;
    let rounded = total.checked_add(7)? & !7;
    (rounded <= isize::MAX as usize).then_some(rounded)
}

/// Allocates an object block of `size` bytes from the OBJ domain and
/// records it as an object block. Null (with `MemoryError`) on failure.
#[inline]
pub fn alloc_block(size: usize, gc: bool, zeroed: bool) -> *mut u8 {
    // SAFETY: the runtime lock is held by our caller; the borrow ends here.
    let rt = unsafe { runtime() };
    // With the default OBJ table (nothing to see the call), straight from
    // the pool heap, marked as an object in the same step.
    if !zeroed && rt.direct[crate::domains::PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ as usize] {
        if let Some(p) = rt.heap.try_alloc_object(size, gc) {
            return p;
        }
    }
    alloc_block_slow(size, gc, zeroed)
}

#[inline(never)]
fn alloc_block_slow(size: usize, gc: bool, zeroed: bool) -> *mut u8 {
    let p = if zeroed {
        PyObject_Calloc(1, size)
    } else {
        PyObject_Malloc(size)
    }
    .cast::<u8>();
    if p.is_null() {
        return error::null(Error::NoMemory);
    }
    // SAFETY: the runtime lock is held by our caller; no other reference to
    // the runtime is live here.
    let rt = unsafe { runtime() };
    if !rt.heap.set_object(p, gc) {
        rt.objects.remember_raw(p, gc);
    }
    p
}

/// Sets type and count of a new object (`_Py_NewReference`); a heap type
/// gains a reference from each instance.
///
/// # Safety
/// `op` is writable for a `PyObject`; `tp` is a valid type object.
pub unsafe fn init(op: *mut PyObject, tp: *mut PyTypeObject) {
    // SAFETY: caller's contract.
    unsafe {
        (*op).ob_type = tp;
        if is_heap_type(tp) {
            incref(tp.cast());
        }
        (*op).ob_refcnt = 1;
    }
}

/// `PyObject_Init`: NULL gives `MemoryError`. If `op` is the start of a
/// pooled block it is recorded as an object.
///
/// # Safety
/// `op` is NULL or writable for `tp_basicsize` bytes; `tp` is a valid type.
pub unsafe fn object_init(op: *mut PyObject, tp: *mut PyTypeObject) -> *mut PyObject {
    if op.is_null() {
        return error::null(Error::NoMemory);
    }
    // SAFETY: runtime lock held; op is writable (caller).
    unsafe {
        let rt = runtime();
        if rt.heap.is_live_block(op.cast()) {
            rt.heap.set_object(op.cast(), false);
        } else if crate::debug::is_obj_debug_block(op.cast()) {
            // A block from the OBJ debug allocator over the pool heap: freed
            // or moved through PyObject_Free/Realloc, which keep the
            // registry. (In the malloc modes, memory given to PyObject_Init
            // is not recognised, so such an object is not listed as live.)
            rt.objects.remember_raw(op.cast(), false);
        }
        init(op, tp);
    }
    op
}

/// `_PyObject_New`: an uninitialised instance of `tp_basicsize` bytes.
///
/// # Safety
/// `tp` is a valid type object.
pub unsafe fn new_object(tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    let size = unsafe { (*tp).tp_basicsize.max(0) as usize };
    let op = alloc_block(size, false, false).cast::<PyObject>();
    if !op.is_null() {
        // SAFETY: a fresh block of at least basicsize bytes.
        unsafe { init(op, tp) };
    }
    op
}

/// `_PyObject_NewVar`: an instance with `n` items.
///
/// # Safety
/// `tp` is a valid type object.
pub unsafe fn new_var_object(tp: *mut PyTypeObject, n: Py_ssize_t) -> *mut PyVarObject {
    if n < 0 {
        return error::null(Error::System("bad internal call: negative size".into()));
    }
    // SAFETY: caller's contract.
    let Some(size) = (unsafe { var_size(tp, n) }) else {
        return error::null(Error::NoMemory);
    };
    let op = alloc_block(size, false, false).cast::<PyVarObject>();
    if !op.is_null() {
        // SAFETY: a fresh block of `size` bytes.
        unsafe {
            init(op.cast(), tp);
            (*op).ob_size = n;
        }
    }
    op
}

/// Counts a GC allocation (`count[0]`) and runs an automatic collection
/// when it passes threshold 0 (CPython 3.11: synchronously, here).
fn gc_link() {
    // SAFETY: runtime lock held; short borrow, released before collecting.
    let due = unsafe {
        let st = &mut runtime().gc;
        st.count[0] += 1;
        st.count[0] > st.threshold[0] && st.enabled && st.threshold[0] != 0 && !st.collecting
    };
    if due {
        // SAFETY: runtime lock held; the new object is not allocated yet.
        unsafe { gc::collect::collect_generations() };
    }
}

/// Allocates a GC object: header + `size` bytes, header zeroed (untracked).
fn gc_alloc(size: usize, zeroed: bool) -> *mut PyObject {
    let Some(total) = size.checked_add(GC_HEADER_SIZE) else {
        return error::null(Error::NoMemory);
    };
    // Counted (and any automatic collection run) before the block exists,
    // so no collection or finalizer can meet a registered object whose
    // type is not set yet; uncounted again if the allocation fails.
    gc_link();
    let block = alloc_block(total, true, zeroed);
    if block.is_null() {
        // SAFETY: runtime lock held; short borrow.
        let st = unsafe { &mut runtime().gc };
        if st.count[0] > 0 {
            st.count[0] -= 1;
        }
        return ptr::null_mut();
    }
    let g = block.cast::<PyGC_Head>();
    // SAFETY: the block starts with room for the header.
    unsafe { gc::init_header(g) };
    gc::from_gc(g)
}

/// `_PyObject_GC_New`: an untracked GC instance, fields not initialised.
///
/// # Safety
/// `tp` is a valid type object.
pub unsafe fn gc_new(tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    let size = unsafe { (*tp).tp_basicsize.max(0) as usize };
    let op = gc_alloc(size, false);
    if !op.is_null() {
        // SAFETY: a fresh object of basicsize bytes.
        unsafe { init(op, tp) };
    }
    op
}

/// `_PyObject_GC_NewVar`.
///
/// # Safety
/// `tp` is a valid type object.
pub unsafe fn gc_new_var(tp: *mut PyTypeObject, n: Py_ssize_t) -> *mut PyVarObject {
    if n < 0 {
        return error::null(Error::System("bad internal call: negative size".into()));
    }
    // SAFETY: caller's contract.
    let Some(size) = (unsafe { var_size(tp, n) }) else {
        return error::null(Error::NoMemory);
    };
    let op = gc_alloc(size, false).cast::<PyVarObject>();
    if !op.is_null() {
        // SAFETY: a fresh object of `size` bytes.
        unsafe {
            init(op.cast(), tp);
            (*op).ob_size = n;
        }
    }
    op
}

/// `_PyObject_GC_Resize`: the object must be untracked. NULL (object
/// unchanged) on failure.
///
/// # Safety
/// `op` is a live, untracked GC object of a variable-size type.
pub unsafe fn gc_resize(op: *mut PyVarObject, n: Py_ssize_t) -> *mut PyVarObject {
    if n < 0 {
        return error::null(Error::System("bad internal call: negative size".into()));
    }
    // SAFETY: caller's contract.
    unsafe {
        let g = gc::as_gc(op.cast());
        if gc::is_tracked(g) {
            crate::fatal::internal("PyObject_GC_Resize", "the object is still tracked");
        }
        let Some(size) = var_size((*op).ob_base.ob_type, n) else {
            return error::null(Error::NoMemory);
        };
        let block = PyObject_Realloc(g.cast(), size + GC_HEADER_SIZE).cast::<PyGC_Head>();
        if block.is_null() {
            return error::null(Error::NoMemory);
        }
        let op = gc::from_gc(block).cast::<PyVarObject>();
        (*op).ob_size = n;
        op
    }
}

/// `PyObject_GC_Del`: unlinks a still-tracked object and frees its block.
///
/// # Safety
/// `op` is NULL or a GC object allocated by pyheap, not used afterwards.
pub unsafe fn gc_del(op: *mut PyObject) {
    if op.is_null() {
        return;
    }
    let g = gc::as_gc(op);
    // SAFETY: caller's contract: g is the object's live header.
    unsafe {
        if gc::is_tracked(g) {
            gc::untrack(g);
        }
        let st = &mut runtime().gc;
        if st.count[0] > 0 {
            st.count[0] -= 1;
        }
        PyObject_Free(g.cast());
    }
}

/// `PyObject_GC_Track`: tracking an already tracked object is fatal.
///
/// # Safety
/// `op` is a live GC object allocated by pyheap.
pub unsafe fn gc_track(op: *mut PyObject, api: &'static str) {
    let g = gc::as_gc(op);
    // SAFETY: caller's contract.
    unsafe {
        if gc::is_tracked(g) {
            already_tracked(op, api);
        }
        runtime().gc.track(g);
    }
}

#[cold]
fn already_tracked(op: *mut PyObject, api: &'static str) -> ! {
    crate::fatal::misuse(
        crate::fatal::Misuse::AlreadyTracked,
        op as usize,
        api,
        &|out| {
            use core::fmt::Write;
            // SAFETY: op is a live object (caller of gc_track).
            let name = unsafe { super::types::type_name((*op).ob_type) };
            writeln!(out, "  object type: {name}")
        },
    )
}

/// `PyObject_GC_UnTrack`: a no-op when untracked.
///
/// # Safety
/// `op` is a live GC object allocated by pyheap.
pub unsafe fn gc_untrack(op: *mut PyObject) {
    let g = gc::as_gc(op);
    // SAFETY: caller's contract.
    unsafe {
        if gc::is_tracked(g) {
            gc::untrack(g);
        }
    }
}

/// `PyObject_IS_GC`.
///
/// # Safety
/// `op` is a live object.
pub unsafe fn is_gc(op: *mut PyObject) -> bool {
    // SAFETY: caller's contract.
    unsafe {
        let tp = (*op).ob_type;
        (*tp).tp_flags & Py_TPFLAGS_HAVE_GC != 0 && (*tp).tp_is_gc.is_none_or(|f| f(op) != 0)
    }
}

/// `PyType_GenericAlloc`: a zeroed instance with `nitems` items (plus one
/// sentinel item, as CPython), tracked if the type is GC.
///
/// # Safety
/// `tp` is a valid, ready type object.
pub unsafe fn generic_alloc(tp: *mut PyTypeObject, nitems: Py_ssize_t) -> *mut PyObject {
    if nitems < 0 {
        return error::null(Error::System("bad internal call: negative size".into()));
    }
    // SAFETY: caller's contract.
    unsafe {
        let Some(size) = nitems.checked_add(1).and_then(|n| var_size(tp, n)) else {
            return error::null(Error::NoMemory);
        };
        let gc_type = (*tp).tp_flags & Py_TPFLAGS_HAVE_GC != 0;
        let op = if gc_type {
            gc_alloc(size, true)
        } else {
            alloc_block(size, false, true).cast()
        };
        if op.is_null() {
            return op;
        }
        init(op, tp);
        if (*tp).tp_itemsize != 0 {
            (*op.cast::<PyVarObject>()).ob_size = nitems;
        }
        if gc_type {
            gc_track(op, "PyType_GenericAlloc");
        }
        op
    }
}

/// `PyType_GenericNew`: `tp->tp_alloc(tp, 0)`.
///
/// # Safety
/// `tp` is a valid, ready type object.
pub unsafe fn generic_new(tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        match (*tp).tp_alloc {
            Some(alloc) => alloc(tp, 0),
            None => generic_alloc(tp, 0),
        }
    }
}
