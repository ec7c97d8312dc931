//! Weak references (SPEC.md §6): reference and proxy objects, the
//! per-object list they hang on, `PyObject_ClearWeakRefs`, and what the
//! collector does with weak references to cyclic trash.
//!
//! A type supports weak references by reserving a list head in its
//! instances (`tp_weaklistoffset > 0`), or with `Py_TPFLAGS_MANAGED_WEAKREF`
//! (CPython 3.12), where pyheap keeps the head in a side table keyed by the
//! object's address instead of a pre-header: no allocation changes shape.
//!
//! The list of an object, from its head: the basic reference (no callback)
//! if any, then the basic proxy if any, then every reference with a
//! callback, the newest first, so callbacks run newest first. A weak
//! reference whose referent is dead points to `None`.

use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::ptr;
use std::collections::BTreeMap;

use crate::domains::{Py_ssize_t, runtime};
use crate::error::{self, Error};
use crate::fatal::{self, Misuse};
use crate::gc::{self, PREV_MASK_COLLECTING, PyGC_Head, list};
use crate::object::alloc::{gc_del, gc_new, gc_track, gc_untrack};
use crate::object::call;
use crate::object::dealloc::{ObjectState, decref, incref, object_state};
use crate::object::layout::*;
use crate::object::tuple;
use crate::object::types::{none, type_name};

/// CPython 3.11's `PyWeakReference`. A weak reference is a GC object.
#[repr(C)]
pub struct PyWeakReference {
    /// Header.
    pub ob_base: PyObject,
    /// The referent (borrowed), or `Py_None` once it is dead.
    pub wr_object: *mut PyObject,
    /// The callback (owned), or NULL.
    pub wr_callback: *mut PyObject,
    /// Cached hash, -1 until computed (pyheap never computes it).
    pub hash: Py_hash_t,
    /// Previous reference in the referent's list.
    pub wr_prev: *mut PyWeakReference,
    /// Next reference in the referent's list.
    pub wr_next: *mut PyWeakReference,
    /// Unused by pyheap; kept for CPython's layout.
    pub vectorcall: vectorcallfunc,
}

/// What `tp_weaklistoffset` holds for a `Py_TPFLAGS_MANAGED_WEAKREF` type
/// (CPython 3.12's value: four words before the object).
pub const MANAGED_WEAKREF_OFFSET: Py_ssize_t =
    -4 * core::mem::size_of::<*mut PyObject>() as Py_ssize_t;

/// Weak-reference bookkeeping of the runtime.
pub struct WeakrefState {
    /// List heads of objects whose type has `Py_TPFLAGS_MANAGED_WEAKREF`,
    /// by object address. Boxed so a head keeps its address while the map
    /// changes.
    managed: BTreeMap<usize, Box<*mut PyWeakReference>>,
    /// Weak reference objects alive: without any, a collection skips its
    /// weak-reference pass.
    live: usize,
}

impl WeakrefState {
    /// No managed lists yet.
    pub const fn new() -> Self {
        WeakrefState {
            managed: BTreeMap::new(),
            live: 0,
        }
    }

    /// Number of objects with a managed list head.
    pub fn managed_heads(&self) -> usize {
        self.managed.len()
    }
}

impl Default for WeakrefState {
    fn default() -> Self {
        Self::new()
    }
}

unsafe extern "C" fn weakref_traverse(
    op: *mut PyObject,
    visit: visitproc,
    arg: *mut c_void,
) -> c_int {
    let Some(visit) = visit else { return 0 };
    // SAFETY: op is a live weak reference.
    unsafe {
        let cb = (*op.cast::<PyWeakReference>()).wr_callback;
        if cb.is_null() { 0 } else { visit(cb, arg) }
    }
}

unsafe extern "C" fn weakref_clear(op: *mut PyObject) -> c_int {
    // SAFETY: op is a live weak reference.
    unsafe { clear_weakref(op.cast()) };
    0
}

unsafe extern "C" fn weakref_dealloc(op: *mut PyObject) {
    // SAFETY: op is a weak reference whose count reached zero.
    unsafe {
        gc_untrack(op);
        clear_weakref(op.cast());
        let st = &mut runtime().weakrefs;
        st.live = st.live.saturating_sub(1);
        match (*(*op).ob_type).tp_free {
            Some(free) => free(op.cast()),
            None => gc_del(op),
        }
    }
}

/// Calling a reference returns its referent, or `None` once it is dead.
unsafe extern "C" fn weakref_call(
    op: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: op is a live weak reference; args NULL or a live tuple.
    unsafe {
        if !kwargs.is_null() || (!args.is_null() && tuple::size(args) != 0) {
            return error::null(Error::Type("weakref() takes no arguments".into()));
        }
        let obj = referent(op.cast());
        incref(obj);
        obj
    }
}

/// Calling a callable proxy calls its referent.
unsafe extern "C" fn proxy_call(
    op: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: op is a live proxy; the referent is held across the call.
    unsafe {
        let obj = referent(op.cast());
        if obj == none() {
            return error::null(Error::Reference(
                "weakly-referenced object no longer exists".into(),
            ));
        }
        incref(obj);
        let r = call::call(obj, args, kwargs);
        decref(obj);
        r
    }
}

const fn weakref_type(name: &'static core::ffi::CStr, call: ternaryfunc) -> PyTypeObject {
    PyTypeObject {
        ob_base: PyVarObject {
            ob_base: PyObject {
                ob_refcnt: _Py_IMMORTAL_REFCNT,
                ob_type: &raw mut crate::object::types::PyType_Type,
            },
            ob_size: 0,
        },
        tp_name: name.as_ptr(),
        tp_basicsize: core::mem::size_of::<PyWeakReference>() as Py_ssize_t,
        tp_dealloc: Some(weakref_dealloc),
        tp_call: call,
        tp_flags: Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_READY | Py_TPFLAGS_IMMUTABLETYPE,
        tp_traverse: Some(weakref_traverse),
        tp_clear: Some(weakref_clear),
        tp_base: &raw mut crate::object::types::PyBaseObject_Type,
        tp_free: Some(crate::ffi::object::PyObject_GC_Del),
        ..ZEROED_TYPE
    }
}

/// The weak reference type (`weakref.ReferenceType`). Unlike CPython's it
/// cannot be subclassed: pyheap has no argument parsing for `tp_new`.
#[unsafe(no_mangle)]
pub static mut _PyWeakref_RefType: PyTypeObject =
    weakref_type(c"weakref.ReferenceType", Some(weakref_call));

/// The proxy type for referents that are not callable. pyheap has no
/// attribute access, so a proxy is a weak reference of its own type.
#[unsafe(no_mangle)]
pub static mut _PyWeakref_ProxyType: PyTypeObject = weakref_type(c"weakref.ProxyType", None);

/// The proxy type for callable referents: calling it calls the referent.
#[unsafe(no_mangle)]
pub static mut _PyWeakref_CallableProxyType: PyTypeObject =
    weakref_type(c"weakref.CallableProxyType", Some(proxy_call));

fn ref_type() -> *mut PyTypeObject {
    &raw mut _PyWeakref_RefType
}

fn proxy_type() -> *mut PyTypeObject {
    &raw mut _PyWeakref_ProxyType
}

fn callable_proxy_type() -> *mut PyTypeObject {
    &raw mut _PyWeakref_CallableProxyType
}

/// True iff `op` is a reference or a proxy.
///
/// # Safety
/// `op` is a live object.
pub unsafe fn is_weakref(op: *mut PyObject) -> bool {
    // SAFETY: caller's contract.
    let tp = unsafe { (*op).ob_type };
    tp == ref_type() || is_proxy_type(tp)
}

fn is_proxy_type(tp: *mut PyTypeObject) -> bool {
    tp == proxy_type() || tp == callable_proxy_type()
}

/// True iff instances of `tp` can be weakly referenced.
///
/// # Safety
/// `tp` is a valid type.
pub unsafe fn supports(tp: *const PyTypeObject) -> bool {
    // SAFETY: caller's contract.
    unsafe {
        let off = (*tp).tp_weaklistoffset;
        off > 0 || (off < 0 && (*tp).tp_flags & Py_TPFLAGS_MANAGED_WEAKREF != 0)
    }
}

/// The address of `op`'s list head, or NULL if its type has no weak
/// reference support, or (managed lists) if it has no head yet and
/// `create` is false.
///
/// # Safety
/// `op` is a live object (or one being deallocated).
unsafe fn list_ptr(op: *mut PyObject, create: bool) -> *mut *mut PyWeakReference {
    // SAFETY: caller's contract; the runtime borrow ends before returning
    // and the boxed head stays put until its entry is removed.
    unsafe {
        let tp = (*op).ob_type;
        let off = (*tp).tp_weaklistoffset;
        if off > 0 {
            return op.cast::<u8>().add(off as usize).cast();
        }
        if !supports(tp) {
            return ptr::null_mut();
        }
        let managed = &mut runtime().weakrefs.managed;
        if create {
            &mut **managed
                .entry(op as usize)
                .or_insert_with(|| Box::new(ptr::null_mut()))
        } else {
            managed
                .get_mut(&(op as usize))
                .map_or(ptr::null_mut(), |b| &mut **b as *mut _)
        }
    }
}

/// Forgets `op`'s managed list head once its list is empty. [`detach`]
/// never does this, so a head pointer stays valid across detaching.
///
/// # Safety
/// `op` is an object (live or dying); no pointer to its head is in use.
unsafe fn release_managed_head(op: *mut PyObject) {
    // SAFETY: caller's contract.
    unsafe {
        let managed = &mut runtime().weakrefs.managed;
        if managed.get(&(op as usize)).is_some_and(|h| h.is_null()) {
            managed.remove(&(op as usize));
        }
    }
}

/// The first weak reference of `op`'s list, or NULL.
///
/// # Safety
/// `op` is a live object (or one being deallocated).
unsafe fn list_head(op: *mut PyObject) -> *mut PyWeakReference {
    // SAFETY: caller's contract.
    unsafe {
        let l = list_ptr(op, false);
        if l.is_null() { ptr::null_mut() } else { *l }
    }
}

/// The referent of `wr`, or `None` if it is dead or being deallocated.
///
/// # Safety
/// `wr` is a live weak reference.
unsafe fn referent(wr: *mut PyWeakReference) -> *mut PyObject {
    // SAFETY: caller's contract; a referent that is not None is alive or in
    // its deallocator (count 0, or negative while the trashcan defers it).
    unsafe {
        let obj = (*wr).wr_object;
        if obj == none() || (*obj).ob_refcnt <= 0 {
            none()
        } else {
            obj
        }
    }
}

/// The basic reference and basic proxy at the start of a list.
///
/// # Safety
/// `head` is NULL or the live head of a list.
unsafe fn basic_refs(head: *mut PyWeakReference) -> (*mut PyWeakReference, *mut PyWeakReference) {
    let mut r = ptr::null_mut();
    let mut p = ptr::null_mut();
    let mut h = head;
    // SAFETY: caller's contract; list members are live weak references.
    unsafe {
        if !h.is_null() && (*h).wr_callback.is_null() {
            if (*h).ob_base.ob_type == ref_type() {
                r = h;
                h = (*h).wr_next;
            }
            if !h.is_null() && (*h).wr_callback.is_null() && is_proxy_type((*h).ob_base.ob_type) {
                p = h;
            }
        }
    }
    (r, p)
}

/// # Safety
/// `wr` is unlinked; `list` is a live list head.
unsafe fn insert_head(wr: *mut PyWeakReference, list: *mut *mut PyWeakReference) {
    // SAFETY: caller's contract.
    unsafe {
        let next = *list;
        (*wr).wr_prev = ptr::null_mut();
        (*wr).wr_next = next;
        if !next.is_null() {
            (*next).wr_prev = wr;
        }
        *list = wr;
    }
}

/// # Safety
/// `wr` is unlinked; `prev` is in a live list.
unsafe fn insert_after(wr: *mut PyWeakReference, prev: *mut PyWeakReference) {
    // SAFETY: caller's contract.
    unsafe {
        (*wr).wr_prev = prev;
        (*wr).wr_next = (*prev).wr_next;
        if !(*prev).wr_next.is_null() {
            (*(*prev).wr_next).wr_prev = wr;
        }
        (*prev).wr_next = wr;
    }
}

/// Detaches `wr` from its referent (which then reads as `None`), keeping
/// its callback (CPython's `_PyWeakref_ClearRef`).
///
/// # Safety
/// `wr` is a live weak reference; its referent, if not `None`, is an
/// object (live or being deallocated) whose list holds `wr`.
pub unsafe fn detach(wr: *mut PyWeakReference) {
    // SAFETY: caller's contract.
    unsafe {
        let obj = (*wr).wr_object;
        if obj.is_null() || obj == none() {
            return;
        }
        let list = list_ptr(obj, false);
        if !list.is_null() && *list == wr {
            *list = (*wr).wr_next;
        }
        if !(*wr).wr_prev.is_null() {
            (*(*wr).wr_prev).wr_next = (*wr).wr_next;
        }
        if !(*wr).wr_next.is_null() {
            (*(*wr).wr_next).wr_prev = (*wr).wr_prev;
        }
        (*wr).wr_prev = ptr::null_mut();
        (*wr).wr_next = ptr::null_mut();
        (*wr).wr_object = none();
    }
}

/// Detaches `wr` and drops its callback (CPython's `clear_weakref`).
///
/// # Safety
/// As [`detach`].
unsafe fn clear_weakref(wr: *mut PyWeakReference) {
    // SAFETY: caller's contract; the callback is released last, when `wr`
    // is consistent, since releasing it may run arbitrary code.
    unsafe {
        let obj = (*wr).wr_object;
        detach(wr);
        if !obj.is_null() && obj != none() && (*(*obj).ob_type).tp_weaklistoffset < 0 {
            release_managed_head(obj);
        }
        let cb = (*wr).wr_callback;
        if !cb.is_null() {
            (*wr).wr_callback = ptr::null_mut();
            decref(cb);
        }
    }
}

/// A new, tracked weak reference of type `tp` to `ob`, not yet listed.
///
/// # Safety
/// `tp` is one of the weak reference types; `ob` a live object; `callback`
/// NULL or a live object.
unsafe fn new_weakref(
    tp: *mut PyTypeObject,
    ob: *mut PyObject,
    callback: *mut PyObject,
) -> *mut PyWeakReference {
    // SAFETY: caller's contract; the fields are set before the object is
    // tracked or seen by anyone.
    unsafe {
        let wr = gc_new(tp).cast::<PyWeakReference>();
        if wr.is_null() {
            return wr;
        }
        runtime().weakrefs.live += 1;
        (*wr).wr_object = ob;
        (*wr).wr_callback = callback;
        if !callback.is_null() {
            incref(callback);
        }
        (*wr).hash = -1;
        (*wr).wr_prev = ptr::null_mut();
        (*wr).wr_next = ptr::null_mut();
        (*wr).vectorcall = None;
        wr
    }
}

/// Checks that `ob` can be weakly referenced; NULL callback for `None`.
///
/// # Safety
/// `ob` is a live object; `callback` NULL or live.
unsafe fn prepare(ob: *mut PyObject, callback: *mut PyObject) -> Result<*mut PyObject, Error> {
    // SAFETY: caller's contract.
    unsafe {
        if !supports((*ob).ob_type) {
            return Err(Error::Type(format!(
                "cannot create weak reference to '{}' object",
                type_name((*ob).ob_type)
            )));
        }
    }
    Ok(if callback == none() {
        ptr::null_mut()
    } else {
        callback
    })
}

/// `PyWeakref_NewRef`: a new reference; the basic reference of `ob` is
/// shared when there is no callback.
///
/// # Safety
/// `ob` is a live object; `callback` NULL or a live object.
pub unsafe fn new_ref(ob: *mut PyObject, callback: *mut PyObject) -> *mut PyObject {
    // SAFETY: caller's contract; the list is re-read after the allocation,
    // which may have run a collection that changed it.
    unsafe {
        let callback = match prepare(ob, callback) {
            Ok(c) => c,
            Err(e) => return error::null(e),
        };
        if callback.is_null() {
            let (r, _) = basic_refs(list_head(ob));
            if !r.is_null() {
                incref(r.cast());
                return r.cast();
            }
        }
        let wr = new_weakref(ref_type(), ob, callback);
        if wr.is_null() {
            return ptr::null_mut();
        }
        let list = list_ptr(ob, true);
        let (r, p) = basic_refs(*list);
        if callback.is_null() {
            if !r.is_null() {
                // Another basic reference appeared meanwhile: share it.
                decref(wr.cast());
                incref(r.cast());
                return r.cast();
            }
            insert_head(wr, list);
        } else {
            let prev = if p.is_null() { r } else { p };
            if prev.is_null() {
                insert_head(wr, list);
            } else {
                insert_after(wr, prev);
            }
        }
        gc_track(wr.cast(), "PyWeakref_NewRef");
        wr.cast()
    }
}

/// `PyWeakref_NewProxy`: a callable proxy if `ob`'s type is callable, else
/// a plain proxy; the basic proxy is shared when there is no callback.
///
/// # Safety
/// As [`new_ref`].
pub unsafe fn new_proxy(ob: *mut PyObject, callback: *mut PyObject) -> *mut PyObject {
    // SAFETY: as in new_ref.
    unsafe {
        let callback = match prepare(ob, callback) {
            Ok(c) => c,
            Err(e) => return error::null(e),
        };
        if callback.is_null() {
            let (_, p) = basic_refs(list_head(ob));
            if !p.is_null() {
                incref(p.cast());
                return p.cast();
            }
        }
        let tp = if (*(*ob).ob_type).tp_call.is_some() {
            callable_proxy_type()
        } else {
            proxy_type()
        };
        let wr = new_weakref(tp, ob, callback);
        if wr.is_null() {
            return ptr::null_mut();
        }
        let list = list_ptr(ob, true);
        let (r, p) = basic_refs(*list);
        if callback.is_null() && !p.is_null() {
            decref(wr.cast());
            incref(p.cast());
            return p.cast();
        }
        let prev = if callback.is_null() || p.is_null() {
            r
        } else {
            p
        };
        if prev.is_null() {
            insert_head(wr, list);
        } else {
            insert_after(wr, prev);
        }
        gc_track(wr.cast(), "PyWeakref_NewProxy");
        wr.cast()
    }
}

/// `PyWeakref_GetObject`: the referent (borrowed) or `None`; NULL with a
/// `SystemError` if `r` is NULL or not a weak reference.
///
/// # Safety
/// `r` is NULL or a live object.
pub unsafe fn get_object(r: *mut PyObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        if r.is_null() || !is_weakref(r) {
            return error::null(Error::bad_internal_call());
        }
        referent(r.cast())
    }
}

/// `PyWeakref_GetRef`: 1 and a new reference to the referent, 0 and NULL
/// if it is dead, -1 and NULL on error.
///
/// # Safety
/// `r` is NULL or a live object; `pobj` is writable.
pub unsafe fn get_ref(r: *mut PyObject, pobj: *mut *mut PyObject) -> c_int {
    // SAFETY: caller's contract.
    unsafe {
        *pobj = ptr::null_mut();
        if r.is_null() {
            error::set(Error::bad_internal_call());
            return -1;
        }
        if !is_weakref(r) {
            error::set(Error::Type("expected a weakref".into()));
            return -1;
        }
        let obj = referent(r.cast());
        if obj == none() {
            return 0;
        }
        incref(obj);
        *pobj = obj;
        1
    }
}

/// Length of the list starting at `head` (`_PyWeakref_GetWeakrefCount`).
///
/// # Safety
/// `head` is NULL or the live head of a list.
pub unsafe fn count(mut head: *mut PyWeakReference) -> Py_ssize_t {
    let mut n = 0;
    while !head.is_null() {
        n += 1;
        // SAFETY: caller's contract.
        head = unsafe { (*head).wr_next };
    }
    n
}

/// Number of weak references to `ob` (0 if its type has no support).
///
/// # Safety
/// `ob` is a live object.
pub unsafe fn count_for(ob: *mut PyObject) -> Py_ssize_t {
    // SAFETY: caller's contract.
    unsafe { count(list_head(ob)) }
}

/// Calls `callback(wr)`; a failure is reported as CPython reports an
/// unraisable exception, and forgotten.
///
/// # Safety
/// `callback` and `wr` are live objects.
unsafe fn handle_callback(wr: *mut PyObject, callback: *mut PyObject) {
    // SAFETY: caller's contract; the callback is held across the call.
    unsafe {
        incref(callback);
        let r = call::call_one_arg(callback, wr);
        if r.is_null() {
            write_unraisable("a weak reference callback", callback);
        } else {
            decref(r);
        }
        decref(callback);
    }
}

/// CPython's `PyErr_WriteUnraisable`: reports the error recorded on this
/// thread (or that there is none) on stderr and clears it.
///
/// # Safety
/// `obj` is a live object.
unsafe fn write_unraisable(context: &str, obj: *mut PyObject) {
    let msg = error::last().map_or_else(|| "(no error recorded)".to_string(), |e| e.to_string());
    // SAFETY: caller's contract.
    let name = unsafe { type_name((*obj).ob_type) };
    let mut line = fatal::StackBuf::<512>::new();
    let _ = writeln!(
        line,
        "pyheap: exception ignored in: <{name} object at {obj:p}> ({context})\n  {msg}"
    );
    fatal::write_report(line.as_bytes());
    error::clear();
}

/// `PyObject_ClearWeakRefs`: called by the deallocator of an object whose
/// type supports weak references. Detaches every weak reference first,
/// then calls the callbacks of the ones still alive, newest first; the
/// error recorded on this thread before the call is kept.
///
/// # Safety
/// `op` is NULL or an object whose count is zero.
pub unsafe fn clear_weakrefs(op: *mut PyObject) {
    // SAFETY: caller's contract; list members are live weak references
    // until detached, and each one is held while its callback runs.
    unsafe {
        if op.is_null() || !supports((*op).ob_type) || (*op).ob_refcnt != 0 {
            error::set(Error::bad_internal_call());
            return;
        }
        let list = list_ptr(op, false);
        if list.is_null() || (*list).is_null() {
            release_managed_head(op);
            return;
        }
        let (r, p) = basic_refs(*list);
        if !r.is_null() {
            clear_weakref(r);
        }
        if !p.is_null() {
            clear_weakref(p);
        }
        // Clearing the basic ones may have run code; read the list again.
        let list = list_ptr(op, false);
        if list.is_null() || (*list).is_null() {
            release_managed_head(op);
            return;
        }
        let saved = error::last();
        let mut pending: Vec<(*mut PyObject, *mut PyObject)> =
            Vec::with_capacity(count(*list) as usize);
        loop {
            let list = list_ptr(op, false);
            if list.is_null() || (*list).is_null() {
                break;
            }
            let wr = *list;
            let cb = (*wr).wr_callback;
            (*wr).wr_callback = ptr::null_mut();
            detach(wr);
            if (*wr).ob_base.ob_refcnt > 0 {
                incref(wr.cast());
                pending.push((wr.cast(), cb));
            } else if !cb.is_null() {
                decref(cb);
            }
        }
        release_managed_head(op);
        for (wr, cb) in pending {
            if !cb.is_null() {
                handle_callback(wr, cb);
                decref(cb);
            }
            decref(wr);
        }
        match saved {
            Some(e) => error::set(e),
            None => error::clear(),
        }
    }
}

/// Detaches every weak reference to the dying `op`, dropping callbacks
/// without calling them (CPython's `_PyWeakref_ClearWeakRefsExceptCallbacks`,
/// for references a finalizer made).
///
/// # Safety
/// `op` is an object in its deallocator.
pub unsafe fn clear_weakrefs_no_callbacks(op: *mut PyObject) {
    // SAFETY: caller's contract; the head is re-read after each release,
    // which may run code.
    unsafe {
        loop {
            let list = list_ptr(op, false);
            if list.is_null() || (*list).is_null() {
                break;
            }
            clear_weakref(*list);
        }
        release_managed_head(op);
    }
}

/// Up to this many weak references of a dying object are remembered to
/// check that its deallocator cleared them.
const DANGLING_CHECKS: usize = 4;

/// The first weak references of `op`, taken before its `tp_dealloc` runs
/// (all NULL if it has none).
///
/// # Safety
/// `op` is an object whose count reached zero, type supporting weakrefs.
pub unsafe fn snapshot(op: *mut PyObject) -> [*mut PyWeakReference; DANGLING_CHECKS] {
    let mut out = [ptr::null_mut(); DANGLING_CHECKS];
    // SAFETY: caller's contract.
    unsafe {
        let mut wr = list_head(op);
        for slot in &mut out {
            if wr.is_null() {
                break;
            }
            *slot = wr;
            wr = (*wr).wr_next;
        }
    }
    out
}

/// After `tp_dealloc(op)`: stops with a report if a weak reference taken
/// in [`snapshot`] still points to `op` although `op` was freed (its type
/// supports weak references but its deallocator forgot
/// `PyObject_ClearWeakRefs`). CPython does not check this; the weak
/// reference would later hand out a dangling pointer.
///
/// # Safety
/// `tp` was `op`'s type; `saved` came from [`snapshot`] on `op`.
pub unsafe fn check_dangling(
    op: *mut PyObject,
    tp: *mut PyTypeObject,
    saved: &[*mut PyWeakReference; DANGLING_CHECKS],
) {
    if object_state(op) == ObjectState::Live {
        return; // resurrected (or its memory already holds a new object)
    }
    for &wr in saved.iter().take_while(|w| !w.is_null()) {
        // SAFETY: wr is read only once the heap proves it a live object.
        let dangling = object_state(wr.cast()) == ObjectState::Live
            && unsafe { is_weakref(wr.cast()) && (*wr).wr_object == op };
        if !dangling {
            continue;
        }
        fatal::misuse(
            Misuse::DanglingWeakref,
            op as usize,
            "_Py_Dealloc",
            &|out| {
                let name = if object_state(tp.cast()) == ObjectState::Dead {
                    "?".to_string()
                } else {
                    // SAFETY: the type is not known-freed memory; best effort.
                    unsafe { type_name(tp) }
                };
                writeln!(
                    out,
                    "  an object of type '{name}' was freed while weak references still point to it:"
                )?;
                writeln!(
                    out,
                    "  its type supports weak references, but its tp_dealloc did not call"
                )?;
                writeln!(out, "  PyObject_ClearWeakRefs before freeing it")?;
                writeln!(out, "  weak reference still attached: {wr:p}")
            },
        );
    }
}

/// Step 10 of a collection (SPEC.md §6.5): clears every weak reference to
/// an object in `unreachable` before any finalizer or `tp_clear` runs,
/// then calls the callbacks of those weak references that are not trash
/// themselves. Returns how many weak references the callbacks freed and
/// whether any callback ran.
///
/// # Safety
/// `unreachable` and `old` are live GC lists during a collection, the
/// objects of `unreachable` flagged as collecting.
pub unsafe fn handle_gc_weakrefs(
    unreachable: *mut PyGC_Head,
    old: *mut PyGC_Head,
) -> (isize, bool) {
    let mut to_call_head = PyGC_Head {
        _gc_next: 0,
        _gc_prev: 0,
    };
    let to_call: *mut PyGC_Head = &mut to_call_head;
    // SAFETY: caller's contract; nothing below runs user code until the
    // callbacks, and by then every trash object is detached.
    unsafe {
        if runtime().weakrefs.live == 0 {
            return (0, false); // no weak reference anywhere: nothing to clear
        }
        list::init(to_call);
        list::for_each(unreachable, |g| {
            let op = gc::from_gc(g);
            if is_weakref(op) {
                // A weak reference in the trash never calls back.
                let referent = (*op.cast::<PyWeakReference>()).wr_object;
                detach(op.cast());
                if referent != none() && (*(*referent).ob_type).tp_weaklistoffset < 0 {
                    release_managed_head(referent);
                }
            }
            if !supports((*op).ob_type) {
                return;
            }
            let list = list_ptr(op, false);
            if list.is_null() {
                return;
            }
            while !(*list).is_null() {
                let wr = *list;
                detach(wr);
                // No callback, or a reference already being deallocated.
                if (*wr).wr_callback.is_null() || (*wr).ob_base.ob_refcnt <= 0 {
                    continue;
                }
                let wg = gc::as_gc(wr.cast());
                if (*wg)._gc_prev & PREV_MASK_COLLECTING != 0 {
                    continue; // the weak reference is trash too
                }
                incref(wr.cast());
                if gc::is_tracked(wg) {
                    list::move_to(wg, to_call);
                } else {
                    list::append(wg, to_call);
                }
            }
            release_managed_head(op);
        });

        let ran = !list::is_empty(to_call);
        // A failing callback's error is reported and dropped; the error the
        // thread had before the collection is kept, as in clear_weakrefs.
        let saved = if ran { error::last() } else { None };
        let mut freed = 0;
        while !list::is_empty(to_call) {
            let g = list::next(to_call);
            let wr = gc::from_gc(g);
            let cb = (*wr.cast::<PyWeakReference>()).wr_callback;
            if !cb.is_null() {
                handle_callback(wr, cb);
            }
            decref(wr);
            if list::next(to_call) == g {
                list::move_to(g, old);
            } else {
                freed += 1;
            }
        }
        if ran {
            match saved {
                Some(e) => error::set(e),
                None => error::clear(),
            }
        }
        (freed, ran)
    }
}

/// `PyHeap_Weakref_NewRefWithCallback`: a weak reference whose callback is
/// the C function `f`, called as `f(weakref, ctx)`.
///
/// # Safety
/// `ob` is a live object; `f` may be called while the referent dies.
pub unsafe fn new_ref_with_c_callback(
    ob: *mut PyObject,
    f: unsafe extern "C" fn(*mut PyObject, *mut c_void),
    ctx: *mut c_void,
) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        if let Err(e) = prepare(ob, ptr::null_mut()) {
            return error::null(e);
        }
        let cb = call::new_ccallback(f, ctx);
        if cb.is_null() {
            return cb;
        }
        let r = new_ref(ob, cb);
        decref(cb);
        r
    }
}

/// Checks every weak reference list (for `PyHeap_CheckHeap`): the list of
/// each live object whose type keeps one in its instances, and each
/// managed list, is null-terminated and doubly linked from a head whose
/// `wr_prev` is NULL, no longer than the number of weak references alive,
/// and holds only allocated weak references to that object; each managed
/// list belongs to an allocated object. `kind(op)` is `Some(is_gc)` for an
/// allocated object, None for anything else.
pub fn check_lists(
    rt: &crate::domains::Runtime,
    kind: impl Fn(*mut PyObject) -> Option<bool>,
) -> Result<(), String> {
    let mut heads: Vec<(*mut PyObject, *mut PyWeakReference)> = Vec::new();
    crate::object::live::for_each(rt, |op| {
        // SAFETY: a live object has a valid type; a positive weak list
        // offset is inside the instance.
        unsafe {
            let off = (*(*op).ob_type).tp_weaklistoffset;
            if off > 0 {
                heads.push((op, *op.cast::<u8>().add(off as usize).cast()));
            }
        }
    });
    for (&op, head) in &rt.weakrefs.managed {
        if kind(op as *mut PyObject).is_none() {
            return Err(format!(
                "weakref: a managed list belongs to {op:#x}, not an allocated object"
            ));
        }
        heads.push((op as *mut PyObject, **head));
    }
    let bound = rt.weakrefs.live;
    for (op, head) in heads {
        let mut prev: *mut PyWeakReference = ptr::null_mut();
        let mut wr = head;
        let mut n = 0usize;
        while !wr.is_null() {
            n += 1;
            if n > bound {
                return Err(format!(
                    "weakref: the list of {op:p} is longer than the {bound} weak \
                     references alive (a cycle?)"
                ));
            }
            if kind(wr.cast()) != Some(true) {
                return Err(format!(
                    "weakref: {wr:p} on the list of {op:p} is not an allocated object"
                ));
            }
            // SAFETY: wr is an allocated (GC) object.
            unsafe {
                if !is_weakref(wr.cast()) {
                    return Err(format!(
                        "weakref: {wr:p} on the list of {op:p} is a '{}', not a weak \
                         reference",
                        type_name((*wr).ob_base.ob_type)
                    ));
                }
                if (*wr).wr_object != op {
                    return Err(format!(
                        "weakref: {wr:p} on the list of {op:p} refers to {:p}",
                        (*wr).wr_object
                    ));
                }
                if (*wr).wr_prev != prev {
                    return Err(format!(
                        "weakref: {wr:p} on the list of {op:p} links back to {:p}, not {prev:p}",
                        (*wr).wr_prev
                    ));
                }
                prev = wr;
                wr = (*wr).wr_next;
            }
        }
    }
    Ok(())
}
