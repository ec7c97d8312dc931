//! Destroying objects: `_Py_Dealloc` with an automatic trashcan, the
//! reference-count misuse reports, finalizers called from deallocators, and
//! the default deallocator of heap types (SPEC.md §4.3–4.6).
//!
//! The trashcan: `_Py_Dealloc` counts how deeply deallocations nest. Past
//! [`TRASHCAN_LIMIT`] it does not call `tp_dealloc`; it pushes the object on
//! a deferred list and returns, and the outermost `_Py_Dealloc` drains the
//! list. A dead object's `ob_refcnt` is free, so the list is threaded
//! through it, stored complemented (`!next`): a deferred object reads as a
//! negative count, which every liveness check treats as dead. Deallocating a
//! million-long chain therefore uses a bounded stack, for every type, with
//! no macros in the type's code.

use core::fmt::Write;

use super::layout::*;
use super::types::{is_heap_type, type_name};
use crate::domains::runtime;
use crate::fatal::{self, Misuse};
use crate::gc;

/// Nested deallocations allowed before further ones are deferred.
pub(crate) const TRASHCAN_LIMIT: usize = 50;

/// `Py_INCREF` for Rust callers (immortal objects are left alone).
///
/// # Safety
/// `op` is a live object.
#[inline]
pub unsafe fn incref(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe {
        let n = (*op).ob_refcnt.wrapping_add(1);
        if n as u32 != 0 {
            (*op).ob_refcnt = n;
        }
    }
}

/// `Py_DECREF` for Rust callers.
///
/// # Safety
/// `op` is a live object owning the reference given up.
#[inline]
pub unsafe fn decref(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe {
        let rc = (*op).ob_refcnt;
        if is_immortal_count(rc) {
            return;
        }
        (*op).ob_refcnt = rc - 1;
        if rc - 1 == 0 {
            dealloc(op);
        } else if rc - 1 < 0 {
            negative_refcount(op, None);
        }
    }
}

/// `_Py_Dealloc`: calls `tp_dealloc`, or defers it past the nesting limit.
///
/// # Safety
/// `op` is an object whose count just reached zero.
#[inline]
pub unsafe fn dealloc(op: *mut PyObject) {
    // SAFETY: runtime lock held; each access to the runtime is short and
    // none is live while tp_dealloc (user code) runs. Everything but the
    // common case is out of line, so this path saves few registers.
    unsafe {
        let st = &mut runtime().objects;
        let depth = st.dealloc_depth;
        if depth >= TRASHCAN_LIMIT {
            return defer(op);
        }
        st.dealloc_depth = depth + 1;
        call_tp_dealloc(op);
        let st = &mut runtime().objects;
        st.dealloc_depth -= 1;
        // Deferred objects are rare: test for them first.
        if !st.deferred.is_null() && st.dealloc_depth == 0 {
            drain();
        }
    }
}

/// # Safety
/// `op` is a dead object (count zero).
#[inline(always)]
unsafe fn call_tp_dealloc(op: *mut PyObject) {
    // SAFETY: a dead object still has its type.
    unsafe {
        let tp = (*op).ob_type;
        match (*tp).tp_dealloc {
            Some(f) if (*tp).tp_weaklistoffset == 0 => f(op),
            _ => call_tp_dealloc_checked(op),
        }
    }
}

/// `tp_dealloc` of an object whose type supports weak references (then
/// checking that the deallocator cleared them), or a fatal error for a type
/// without `tp_dealloc`.
///
/// # Safety
/// `op` is a dead object (count zero).
#[inline(never)]
unsafe fn call_tp_dealloc_checked(op: *mut PyObject) {
    // SAFETY: a dead object still has its type.
    unsafe {
        let tp = (*op).ob_type;
        match (*tp).tp_dealloc {
            Some(f) if crate::weakref::supports(tp) => {
                let saved = crate::weakref::snapshot(op);
                f(op);
                if !saved[0].is_null() {
                    crate::weakref::check_dangling(op, tp, &saved);
                }
            }
            Some(f) => f(op),
            None => fatal::internal(
                "_Py_Dealloc",
                &format!("type '{}' has no tp_dealloc", type_name((*op).ob_type)),
            ),
        }
    }
}

/// # Safety
/// `op` is a dead object not yet deallocated.
#[cold]
#[inline(never)]
unsafe fn defer(op: *mut PyObject) {
    // SAFETY: runtime lock held; a dead GC object is unlinked from its
    // generation so no collection sees its borrowed count field, and marked
    // (with the collecting flag, unused on untracked objects) so that
    // `drain` tracks it again before its deallocator runs, as it would
    // have been without the deferral.
    unsafe {
        if super::alloc::is_gc(op) {
            let g = gc::as_gc(op);
            if gc::is_tracked(g) {
                gc::untrack(g);
                (*g)._gc_prev |= gc::PREV_MASK_COLLECTING;
            }
        }
        let st = &mut runtime().objects;
        (*op).ob_refcnt = !(st.deferred as isize);
        st.deferred = op;
    }
}

/// Deallocates every deferred object, at nesting depth 1.
///
/// # Safety
/// Called by the outermost `_Py_Dealloc`, with the runtime lock held.
#[cold]
#[inline(never)]
unsafe fn drain() {
    // SAFETY: runtime lock held; the list holds dead objects linked by the
    // complemented `ob_refcnt` (see the module docs).
    unsafe {
        // Counted up and down, not set: a deallocator that lets other
        // threads run (Py_BEGIN_ALLOW_THREADS) lets them nest deallocations
        // on the same count.
        runtime().objects.dealloc_depth += 1;
        loop {
            let op = runtime().objects.deferred;
            if op.is_null() {
                break;
            }
            runtime().objects.deferred = !(*op).ob_refcnt as *mut PyObject;
            (*op).ob_refcnt = 0;
            if super::alloc::is_gc(op) {
                let g = gc::as_gc(op);
                if (*g)._gc_prev & gc::PREV_MASK_COLLECTING != 0 {
                    (*g)._gc_prev &= !gc::PREV_MASK_COLLECTING;
                    runtime().gc.track(g);
                }
            }
            call_tp_dealloc(op);
        }
        runtime().objects.dealloc_depth -= 1;
    }
}

/// Where a reference operation was written, when the header passed it.
pub struct CallSite {
    /// Source file.
    pub file: *const core::ffi::c_char,
    /// Line.
    pub line: core::ffi::c_int,
}

fn write_site(
    out: &mut crate::fatal::StackBuf<2048>,
    site: Option<&CallSite>,
) -> core::fmt::Result {
    if let Some(s) = site {
        let file = if s.file.is_null() {
            "?".into()
        } else {
            // SAFETY: __FILE__ from the C header: a NUL-terminated string.
            unsafe { core::ffi::CStr::from_ptr(s.file).to_string_lossy() }
        };
        writeln!(out, "  at {}:{}", file, s.line)?;
    }
    Ok(())
}

/// Reports a count below zero and aborts.
///
/// # Safety
/// `op` points to a readable object header.
#[cold]
pub unsafe fn negative_refcount(op: *mut PyObject, site: Option<&CallSite>) -> ! {
    fatal::misuse(Misuse::NegativeRefcount, op as usize, "Py_DECREF", &|out| {
        // SAFETY: the object's header is still readable (its count was just
        // decremented through it).
        let (rc, tp) = unsafe { ((*op).ob_refcnt, (*op).ob_type) };
        writeln!(out, "  object refcount : {rc}")?;
        // SAFETY: best effort: the type pointer of an object being released.
        writeln!(out, "  object type name: {}", unsafe { type_name(tp) })?;
        write_site(out, site)
    })
}

/// What pyheap knows about the memory at `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    /// A live object allocated by pyheap.
    Live,
    /// Memory of pyheap's heap that holds no live object (freed, reused for
    /// something else, or deferred by the trashcan).
    Dead,
    /// Not memory pyheap allocated objects in (static objects, foreign).
    Unknown,
}

/// Classifies `op` (a pointer given as an object).
#[expect(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "op is read only once the heap or the registry proves it a live object block"
)]
pub fn object_state(op: *mut PyObject) -> ObjectState {
    // SAFETY: runtime lock held; we only read the bitmaps and the registry.
    let rt = unsafe { runtime() };
    let plain = op.cast::<u8>();
    let after_gc = plain.wrapping_sub(GC_HEADER_SIZE);
    let heap_says = |block: *mut u8, want_gc: bool| match rt.heap.object_kind(block) {
        None => None,
        Some(Some(gc)) if gc == want_gc => Some(true),
        Some(_) => Some(false),
    };
    let found = match (heap_says(plain, false), heap_says(after_gc, true)) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), _) | (_, Some(false)) => Some(false),
        (None, None) => None,
    };
    // Objects not at the start of a pooled block (unpooled, or inside one as
    // the debug allocator places them) are in the registry.
    let registered = || {
        matches!(
            (
                rt.objects.raw.get(&(plain as usize)),
                rt.objects.raw.get(&(after_gc as usize)),
            ),
            (Some(false), _) | (_, Some(true))
        )
    };
    let alive = match found {
        Some(true) => true,
        Some(false) => registered(),
        None if registered() => true,
        None => return ObjectState::Unknown,
    };
    // SAFETY: a live object block of ours is readable.
    if alive && unsafe { (*op).ob_refcnt } >= 0 {
        ObjectState::Live
    } else {
        ObjectState::Dead
    }
}

/// The checked `Py_INCREF`/`Py_DECREF` of `PYHEAP_REF_DEBUG` builds: stops
/// with a report if `op` is not a live object or its count goes below zero.
///
/// # Safety
/// `op` is a pointer the caller believes to be a live object.
pub unsafe fn checked_ref(op: *mut PyObject, delta: isize, site: &CallSite) {
    let api = if delta > 0 { "Py_INCREF" } else { "Py_DECREF" };
    if op.is_null() {
        fatal::misuse(Misuse::FreedObject, 0, api, &|out| {
            writeln!(out, "  the object pointer is NULL")?;
            write_site(out, Some(site))
        });
    }
    if object_state(op) == ObjectState::Dead {
        fatal::misuse(Misuse::FreedObject, op as usize, api, &|out| {
            writeln!(out, "  no live object is at this address (it was freed)")?;
            // SAFETY: the memory is pyheap's and readable; the type word of a
            // freed block usually survives, so print it as a hint only.
            let tp = unsafe { (*op).ob_type };
            let plausible = !crate::debug::is_ptr_freed(tp as usize) && (tp as usize) % 8 == 0;
            if plausible && object_state(tp.cast()) != ObjectState::Dead {
                // SAFETY: the pointer is not known-dead memory; best effort.
                writeln!(out, "  last object type name: {}", unsafe { type_name(tp) })?;
            }
            write_site(out, Some(site))
        });
    }
    // SAFETY: op is live (or a static object).
    unsafe {
        if delta > 0 {
            incref(op);
            return;
        }
        let rc = (*op).ob_refcnt;
        if is_immortal_count(rc) {
            return;
        }
        (*op).ob_refcnt = rc - 1;
        if rc - 1 == 0 {
            dealloc(op);
        } else if rc - 1 < 0 {
            negative_refcount(op, Some(site));
        }
    }
}

/// `PyObject_CallFinalizer`: runs `tp_finalize` once (GC objects remember).
///
/// # Safety
/// `op` is a live object.
pub unsafe fn call_finalizer(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe {
        let Some(fin) = (*(*op).ob_type).tp_finalize else {
            return;
        };
        let gc_obj = super::alloc::is_gc(op);
        let g = gc::as_gc(op);
        if gc_obj && (*g)._gc_prev & gc::PREV_MASK_FINALIZED != 0 {
            return;
        }
        fin(op);
        if gc_obj {
            (*g)._gc_prev |= gc::PREV_MASK_FINALIZED;
        }
    }
}

/// `PyObject_CallFinalizerFromDealloc`: 0, or -1 if the finalizer
/// resurrected the object (which then keeps the new references).
///
/// # Safety
/// `op` is an object whose count is zero.
pub unsafe fn call_finalizer_from_dealloc(op: *mut PyObject) -> core::ffi::c_int {
    // SAFETY: caller's contract.
    unsafe {
        if (*op).ob_refcnt != 0 {
            fatal::internal(
                "PyObject_CallFinalizerFromDealloc",
                "called on an object with a non-zero reference count",
            );
        }
        (*op).ob_refcnt = 1;
        call_finalizer(op);
        (*op).ob_refcnt -= 1;
        if (*op).ob_refcnt == 0 { 0 } else { -1 }
    }
}

/// The default `tp_dealloc` of heap types (CPython's `subtype_dealloc`):
/// finalizer, untrack, legacy `tp_del`, then the nearest base's deallocator;
/// drops the instance's reference to its type when that base is static.
///
/// # Safety
/// `op` is an instance of a heap type whose count reached zero.
pub unsafe extern "C" fn subtype_dealloc(op: *mut PyObject) {
    // SAFETY: caller's contract; every step only uses op while it is alive.
    unsafe {
        let tp = (*op).ob_type;
        let gc_obj = super::alloc::is_gc(op);
        // Finalizers run with the object tracked, so one that resurrects
        // it leaves it tracked (as CPython 3.11 does).
        let track = move || {
            if gc_obj && !gc::is_tracked(gc::as_gc(op)) {
                runtime().gc.track(gc::as_gc(op));
            }
        };
        let untrack = move || {
            if gc_obj {
                super::alloc::gc_untrack(op);
            }
        };
        untrack();
        let mut base = tp;
        let me = subtype_dealloc as unsafe extern "C" fn(_) as usize;
        while !base.is_null() && (*base).tp_dealloc.map(|f| f as usize) == Some(me) {
            base = (*base).tp_base;
        }
        if (*tp).tp_finalize.is_some() {
            track();
            if call_finalizer_from_dealloc(op) < 0 {
                return; // resurrected
            }
            untrack();
        }
        // A weak-reference list this heap type added is cleared here, before
        // tp_del; a base that has its own list clears it itself.
        let own_weaklist =
            crate::weakref::supports(tp) && (base.is_null() || !crate::weakref::supports(base));
        if own_weaklist {
            crate::weakref::clear_weakrefs(op);
        }
        if let Some(del) = (*tp).tp_del {
            track();
            (*op).ob_refcnt = 1;
            del(op);
            (*op).ob_refcnt -= 1;
            if (*op).ob_refcnt != 0 {
                return; // resurrected
            }
            untrack();
        }
        // Finalizers may have made new weak references: drop them, without
        // their callbacks.
        if own_weaklist && ((*tp).tp_finalize.is_some() || (*tp).tp_del.is_some()) {
            crate::weakref::clear_weakrefs_no_callbacks(op);
        }
        // CPython's clear_slots: the writable object members (T_OBJECT_EX)
        // of each heap type up to the nearest base with its own
        // deallocator are released.
        let mut t = tp;
        while !t.is_null() && t != base {
            if is_heap_type(t) && !(*t).tp_members.is_null() {
                let mut m = (*t).tp_members;
                while !(*m).name.is_null() {
                    if (*m).r#type == T_OBJECT_EX && (*m).flags & READONLY == 0 && (*m).offset > 0 {
                        let slot = op
                            .cast::<u8>()
                            .add((*m).offset as usize)
                            .cast::<*mut PyObject>();
                        let obj = *slot;
                        if !obj.is_null() {
                            *slot = core::ptr::null_mut();
                            decref(obj);
                        }
                    }
                    m = m.add(1);
                }
            }
            t = (*t).tp_base;
        }
        // A GC base's deallocator expects a tracked object.
        if !base.is_null() && (*base).tp_flags & Py_TPFLAGS_HAVE_GC != 0 {
            track();
        }
        let drop_type = is_heap_type(tp) && (base.is_null() || !is_heap_type(base));
        match base.as_ref().and_then(|b| b.tp_dealloc) {
            Some(f) => f(op),
            None => {
                if let Some(free) = (*tp).tp_free {
                    free(op.cast());
                }
            }
        }
        if drop_type {
            decref(tp.cast());
        }
    }
}
