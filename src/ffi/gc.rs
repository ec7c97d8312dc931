//! The collector's C API: CPython's `PyGC_*` functions and the `gc`
//! module's Python-only functions as the `PyHeap_GC_*` family.
//!
//! Conventions of the family: functions that list objects take a callback
//! `int cb(PyObject *op, void *ctx)` returning 0 to go on (non-zero stops),
//! pass borrowed references, and return how many objects were passed, or -1
//! with the last error set (`PyHeap_LastError`) for a bad argument.

use core::ffi::{c_int, c_void};
use core::ptr;

use super::object::PyHeap_ObjectFn;
use crate::domains::{Py_ssize_t, runtime};
use crate::error::{self, Error};
use crate::gc::{self, Callback, PyHeap_GCCallback, PyHeap_GCStats, api, collect};
use crate::object::dealloc::{decref, incref};
use crate::object::layout::PyObject;

/// Passes each object to `cb` until it returns non-zero; returns the count.
fn pass_all(
    objs: &[*mut PyObject],
    cb: unsafe extern "C" fn(*mut PyObject, *mut c_void) -> c_int,
    ctx: *mut c_void,
) -> Py_ssize_t {
    // Every object is held from before the first call to after the last,
    // as CPython's lists of objects hold them: a callback that drops the
    // last other reference to an object not yet passed cannot free it.
    for &op in objs {
        // SAFETY: the objects are live (tracked, in gc.garbage, or visited
        // by a live object's tp_traverse).
        unsafe { incref(op) };
    }
    let mut n = 0;
    for &op in objs {
        n += 1;
        // SAFETY: the program's callback with a live, held object.
        if unsafe { cb(op, ctx) } != 0 {
            break;
        }
    }
    for &op in objs {
        // SAFETY: the references taken above.
        unsafe { decref(op) };
    }
    n
}

/// Full collection (CPython's `PyGC_Collect`): returns the number of
/// unreachable objects found; 0 if collection is disabled or running.
#[unsafe(no_mangle)]
pub extern "C" fn PyGC_Collect() -> Py_ssize_t {
    super::boundary("PyGC_Collect", || {
        // SAFETY: runtime lock held; short borrow.
        if !unsafe { runtime() }.gc.enabled {
            return 0;
        }
        // SAFETY: runtime lock held.
        unsafe { collect::collect_with_callbacks(2) }
    })
}

/// Turns automatic collection on; returns the previous state (1 or 0).
#[unsafe(no_mangle)]
pub extern "C" fn PyGC_Enable() -> c_int {
    // SAFETY: runtime lock held; short borrow.
    let st = unsafe { &mut runtime().gc };
    core::mem::replace(&mut st.enabled, true) as c_int
}

/// Turns automatic collection off; returns the previous state.
#[unsafe(no_mangle)]
pub extern "C" fn PyGC_Disable() -> c_int {
    // SAFETY: runtime lock held; short borrow.
    let st = unsafe { &mut runtime().gc };
    core::mem::replace(&mut st.enabled, false) as c_int
}

/// 1 if automatic collection is on.
#[unsafe(no_mangle)]
pub extern "C" fn PyGC_IsEnabled() -> c_int {
    // SAFETY: runtime lock held; read only.
    unsafe { runtime() }.gc.enabled as c_int
}

/// Visits every tracked object, generations first, then the permanent one
/// (3.12's `PyUnstable_GC_VisitObjects`): `cb` returns 1 to go on, 0 to
/// stop; every object is held by a new reference from before the first
/// call to after the last, and automatic collection is off meanwhile.
///
/// # Safety
/// `cb` must be callable with `arg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyUnstable_GC_VisitObjects(
    cb: Option<unsafe extern "C" fn(*mut PyObject, *mut c_void) -> c_int>,
    arg: *mut c_void,
) {
    let Some(cb) = cb else { return };
    let was = PyGC_Disable();
    let mut all = Vec::new();
    // SAFETY: runtime lock held; reading well-formed lists.
    unsafe {
        let st = &mut runtime().gc;
        for g in 0..=gc::PERMANENT {
            gc::list::for_each(st.head(g), |h| all.push(gc::from_gc(h)));
        }
    }
    // Held from before the first call to after the last, so a callback
    // that frees an object not yet visited leaves no dangling pointer here.
    for &op in &all {
        // SAFETY: op was tracked, hence live.
        unsafe { incref(op) };
    }
    for &op in &all {
        // SAFETY: the program's callback with a live, held object.
        if unsafe { cb(op, arg) } == 0 {
            break;
        }
    }
    for &op in &all {
        // SAFETY: the references taken above.
        unsafe { decref(op) };
    }
    if was != 0 {
        PyGC_Enable();
    }
}

/// `gc.collect(generation)`: collects generation 0, 1 or 2 even when
/// automatic collection is off. Returns the number of unreachable objects
/// found (collected plus uncollectable), 0 if a collection is already
/// running, or -1 (`ValueError`) for another generation.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_Collect(generation: c_int) -> Py_ssize_t {
    // SAFETY: runtime lock held.
    match super::boundary("PyHeap_GC_Collect", || unsafe { api::collect(generation) }) {
        Ok(n) => n,
        Err(e) => {
            error::set(e);
            -1
        }
    }
}

/// `gc.get_count()`: writes each generation's count (NULL pointers are
/// skipped). Count 0 is GC allocations minus deallocations since the last
/// collection; count g is collections of g-1 since the last of g.
///
/// # Safety
/// Each pointer is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetCount(
    count0: *mut Py_ssize_t,
    count1: *mut Py_ssize_t,
    count2: *mut Py_ssize_t,
) {
    // SAFETY: runtime lock held; read only.
    let c = unsafe { runtime() }.gc.count;
    for (p, v) in [(count0, c[0]), (count1, c[1]), (count2, c[2])] {
        if !p.is_null() {
            // SAFETY: caller's contract.
            unsafe { *p = v };
        }
    }
}

/// `gc.get_threshold()`: writes the three thresholds (NULL skipped).
///
/// # Safety
/// Each pointer is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetThreshold(
    t0: *mut Py_ssize_t,
    t1: *mut Py_ssize_t,
    t2: *mut Py_ssize_t,
) {
    // SAFETY: runtime lock held; read only.
    let t = unsafe { runtime() }.gc.threshold;
    for (p, v) in [(t0, t[0]), (t1, t[1]), (t2, t[2])] {
        if !p.is_null() {
            // SAFETY: caller's contract.
            unsafe { *p = v };
        }
    }
}

/// `gc.set_threshold(t0, t1, t2)`: a negative value leaves that threshold
/// unchanged (Python's optional arguments). `t0 == 0` turns automatic
/// collection off. Returns 0.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_SetThreshold(t0: Py_ssize_t, t1: Py_ssize_t, t2: Py_ssize_t) -> c_int {
    // SAFETY: runtime lock held; short borrow.
    let st = unsafe { &mut runtime().gc };
    for (i, v) in [t0, t1, t2].into_iter().enumerate() {
        if v >= 0 {
            st.threshold[i] = v;
        }
    }
    0
}

/// `gc.get_objects(generation)`: passes every object tracked in
/// `generation` (0–2, or -1 for all three; not the permanent generation),
/// each held by a reference until the last call returns (as the list
/// CPython returns holds them), so the callback may drop references.
///
/// # Safety
/// `cb` must be callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetObjects(
    generation: c_int,
    cb: PyHeap_ObjectFn,
    ctx: *mut c_void,
) -> Py_ssize_t {
    let Some(cb) = cb else {
        error::set(Error::System("bad internal call: NULL callback".into()));
        return -1;
    };
    // SAFETY: runtime lock held.
    match unsafe { api::objects(generation) } {
        Ok(v) => pass_all(&v, cb, ctx),
        Err(e) => {
            error::set(e);
            -1
        }
    }
}

/// `gc.get_referrers(*objs)`: passes every object in generations 0–2 whose
/// `tp_traverse` visits one of the `n` objects at `objs`.
///
/// # Safety
/// `objs` points to `n` live objects; `cb` as for `PyHeap_GC_GetObjects`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetReferrers(
    objs: *const *mut PyObject,
    n: Py_ssize_t,
    cb: PyHeap_ObjectFn,
    ctx: *mut c_void,
) -> Py_ssize_t {
    let (Some(cb), false) = (cb, objs.is_null() && n > 0) else {
        error::set(Error::System("bad internal call: NULL argument".into()));
        return -1;
    };
    // SAFETY: caller's contract.
    let targets = unsafe {
        core::slice::from_raw_parts(
            if n > 0 {
                objs
            } else {
                ptr::NonNull::dangling().as_ptr()
            },
            n.max(0) as usize,
        )
    };
    // SAFETY: runtime lock held.
    let found = super::boundary("PyHeap_GC_GetReferrers", || unsafe {
        api::referrers(targets)
    });
    pass_all(&found, cb, ctx)
}

/// `gc.get_referents(*objs)`: passes what the GC objects among the `n`
/// objects at `objs` visit with `tp_traverse` (non-GC objects add nothing).
///
/// # Safety
/// As for [`PyHeap_GC_GetReferrers`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetReferents(
    objs: *const *mut PyObject,
    n: Py_ssize_t,
    cb: PyHeap_ObjectFn,
    ctx: *mut c_void,
) -> Py_ssize_t {
    let (Some(cb), false) = (cb, objs.is_null() && n > 0) else {
        error::set(Error::System("bad internal call: NULL argument".into()));
        return -1;
    };
    // SAFETY: caller's contract.
    let objs = unsafe {
        core::slice::from_raw_parts(
            if n > 0 {
                objs
            } else {
                ptr::NonNull::dangling().as_ptr()
            },
            n.max(0) as usize,
        )
    };
    // SAFETY: caller's contract.
    let found = super::boundary("PyHeap_GC_GetReferents", || unsafe { api::referents(objs) });
    pass_all(&found, cb, ctx)
}

/// `gc.freeze()`: moves every tracked object to the permanent generation,
/// which no collection examines, and zeroes the counts.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_Freeze() {
    // SAFETY: runtime lock held.
    unsafe { api::freeze() }
}

/// `gc.unfreeze()`: moves the permanent generation into generation 2.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_Unfreeze() {
    // SAFETY: runtime lock held.
    unsafe { api::unfreeze() }
}

/// `gc.get_freeze_count()`: objects in the permanent generation.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_GetFreezeCount() -> Py_ssize_t {
    // SAFETY: runtime lock held; read only.
    unsafe { runtime() }.gc.len(gc::PERMANENT) as Py_ssize_t
}

/// `gc.get_stats()`: writes three entries (generations 0, 1, 2) to
/// `stats`. Returns 0, or -1 if `stats` is NULL.
///
/// # Safety
/// `stats` is NULL or writable for three `PyHeap_GCStats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetStats(stats: *mut PyHeap_GCStats) -> c_int {
    if stats.is_null() {
        return -1;
    }
    // SAFETY: runtime lock held; caller's contract for the writes.
    unsafe {
        let s = runtime().gc.stats;
        for (i, v) in s.iter().enumerate() {
            stats.add(i).write(*v);
        }
    }
    0
}

/// Adds a callback run at the start (`PyHeap_GC_PHASE_START`) and end
/// (`PyHeap_GC_PHASE_STOP`) of every collection, with the generation and,
/// at the end, the numbers collected and uncollectable (`gc.callbacks`).
/// Returns 0, or -1 for a NULL callback.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_AddCallback(cb: PyHeap_GCCallback, ctx: *mut c_void) -> c_int {
    let Some(f) = cb else { return -1 };
    // SAFETY: runtime lock held; short borrow.
    unsafe { runtime() }.gc.callbacks.push(Callback { f, ctx });
    0
}

/// Removes the first callback registered with the same function and
/// context. Returns 0, or -1 if there is none.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_RemoveCallback(cb: PyHeap_GCCallback, ctx: *mut c_void) -> c_int {
    let Some(f) = cb else { return -1 };
    // SAFETY: runtime lock held; short borrow.
    let cbs = &mut unsafe { runtime() }.gc.callbacks;
    match cbs
        .iter()
        .position(|c| c.f as usize == f as usize && c.ctx == ctx)
    {
        Some(i) => {
            cbs.remove(i);
            0
        }
        None => -1,
    }
}

/// `gc.set_debug(flags)` with the `PyHeap_GC_DEBUG_*` flags.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_SetDebug(flags: c_int) {
    // SAFETY: runtime lock held; short borrow.
    unsafe { runtime() }.gc.debug = flags;
}

/// `gc.get_debug()`.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_GetDebug() -> c_int {
    // SAFETY: runtime lock held; read only.
    unsafe { runtime() }.gc.debug
}

/// `gc.garbage`: passes each object of the garbage list (uncollectable
/// objects with a legacy `tp_del`, or everything unreachable under
/// `DEBUG_SAVEALL`). Returns how many were passed; NULL `cb` just counts.
///
/// # Safety
/// `cb` must be callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_GetGarbage(cb: PyHeap_ObjectFn, ctx: *mut c_void) -> Py_ssize_t {
    // SAFETY: runtime lock held; a copy, so the callback may change the list.
    let garbage = unsafe { runtime() }.gc.garbage.clone();
    match cb {
        Some(cb) => pass_all(&garbage, cb, ctx),
        None => garbage.len() as Py_ssize_t,
    }
}

/// Empties the garbage list, releasing its references (`del gc.garbage[:]`).
/// Returns how many objects it held.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GC_ClearGarbage() -> Py_ssize_t {
    // SAFETY: runtime lock held.
    super::boundary("PyHeap_GC_ClearGarbage", || unsafe { api::clear_garbage() }) as Py_ssize_t
}
