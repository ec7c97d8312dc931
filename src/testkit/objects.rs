//! The object types the model tests use, and the log of what their hooks
//! saw (deallocations, finalizations, resurrections, weak reference
//! callbacks), which the executor compares with the model after each step.
//!
//! Every test object has the same layout ([`TestObject`]); the kinds differ
//! in their type: GC or not, weak reference support, finalizer, static or
//! heap type.

use core::ffi::c_void;
use core::ptr;
use std::sync::{Mutex, OnceLock};

use super::ops::{Kind, NSLOTS};
use crate::domains::Py_ssize_t;
use crate::ffi;
use crate::object::layout::*;
use crate::object::spec::{Py_tp_free, Py_tp_members};
use crate::object::types::{PyType_Type, none};

/// The layout of every test object.
#[repr(C)]
pub struct TestObject {
    /// Header.
    pub ob_base: PyObject,
    /// References owned by the object (NULL or a strong reference).
    pub slots: [*mut PyObject; NSLOTS],
    /// The model's id of the object.
    pub id: u64,
    /// Weak reference list head (`WeakNode`, `Plain`).
    pub weaklist: *mut PyObject,
    /// Non-zero: the finalizer resurrects the object (`FinNode`).
    pub resurrect: u64,
}

/// What the hooks saw since the last [`take_events`].
#[derive(Default, Debug)]
pub struct Events {
    /// Ids of test objects deallocated (freed), in order.
    pub died: Vec<u64>,
    /// Ids of objects whose finalizer ran.
    pub finalized: Vec<u64>,
    /// Objects a finalizer resurrected: (id, address); each holds one new
    /// strong reference, which the driver now owns.
    pub lazarus: Vec<(u64, usize)>,
    /// Weak reference callbacks called: the model id of the weak reference.
    pub calls: Vec<u64>,
    /// Things a hook found wrong (a callback whose weak reference still
    /// pointed to a live object, ...).
    pub wrong: Vec<String>,
}

static EVENTS: Mutex<Events> = Mutex::new(Events {
    died: Vec::new(),
    finalized: Vec::new(),
    lazarus: Vec::new(),
    calls: Vec::new(),
    wrong: Vec::new(),
});

fn record(f: impl FnOnce(&mut Events)) {
    f(&mut EVENTS.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Takes the events recorded since the last call.
pub fn take_events() -> Events {
    core::mem::take(&mut *EVENTS.lock().unwrap_or_else(|e| e.into_inner()))
}

const fn static_type(
    name: &'static core::ffi::CStr,
    flags: core::ffi::c_ulong,
    dealloc: destructor,
) -> PyTypeObject {
    PyTypeObject {
        ob_base: PyVarObject {
            ob_base: PyObject {
                ob_refcnt: _Py_IMMORTAL_REFCNT,
                ob_type: &raw mut PyType_Type,
            },
            ob_size: 0,
        },
        tp_name: name.as_ptr(),
        tp_basicsize: core::mem::size_of::<TestObject>() as Py_ssize_t,
        tp_dealloc: dealloc,
        tp_flags: flags,
        ..ZEROED_TYPE
    }
}

static mut NODE_TYPE: PyTypeObject = PyTypeObject {
    tp_traverse: Some(node_traverse),
    tp_clear: Some(node_clear),
    ..static_type(c"testkit.Node", Py_TPFLAGS_HAVE_GC, Some(node_dealloc))
};

static mut WEAK_NODE_TYPE: PyTypeObject = PyTypeObject {
    tp_traverse: Some(node_traverse),
    tp_clear: Some(node_clear),
    tp_weaklistoffset: core::mem::offset_of!(TestObject, weaklist) as Py_ssize_t,
    ..static_type(c"testkit.WeakNode", Py_TPFLAGS_HAVE_GC, Some(node_dealloc))
};

static mut FIN_NODE_TYPE: PyTypeObject = PyTypeObject {
    tp_traverse: Some(node_traverse),
    tp_clear: Some(node_clear),
    tp_finalize: Some(node_finalize),
    ..static_type(
        c"testkit.FinNode",
        Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_MANAGED_WEAKREF,
        Some(node_dealloc),
    )
};

static mut LEAF_TYPE: PyTypeObject = static_type(c"testkit.Leaf", 0, Some(leaf_dealloc));

/// The types, ready.
pub struct Types {
    plain: usize,
    plain_refs: isize,
}

static TYPES: OnceLock<Types> = OnceLock::new();

impl Types {
    /// The type object of `kind`.
    pub fn of(&self, kind: Kind) -> *mut PyTypeObject {
        match kind {
            Kind::Node => &raw mut NODE_TYPE,
            Kind::WeakNode => &raw mut WEAK_NODE_TYPE,
            Kind::FinNode => &raw mut FIN_NODE_TYPE,
            Kind::Plain => self.plain as *mut PyTypeObject,
            Kind::Leaf => &raw mut LEAF_TYPE,
        }
    }

    /// The kind whose type is `tp`.
    pub fn kind_of(&self, tp: *mut PyTypeObject) -> Option<Kind> {
        Kind::ALL.into_iter().find(|&k| self.of(k) == tp)
    }

    /// The reference count of the `Plain` heap type with no instance alive.
    pub fn plain_refs(&self) -> isize {
        self.plain_refs
    }
}

/// Readies the static types and creates the heap type (once per process).
/// Call with the runtime lock held.
pub fn types() -> &'static Types {
    TYPES.get_or_init(|| {
        // SAFETY: the runtime lock is held (caller); each type is a static
        // readied once, here.
        unsafe {
            for tp in [
                &raw mut NODE_TYPE,
                &raw mut WEAK_NODE_TYPE,
                &raw mut FIN_NODE_TYPE,
                &raw mut LEAF_TYPE,
            ] {
                assert_eq!(ffi::object::PyType_Ready(tp), 0, "PyType_Ready");
            }
        }
        let plain = make_plain_type();
        // SAFETY: a live heap type.
        let plain_refs = unsafe { (*plain).ob_base.ob_base.ob_refcnt };
        Types {
            plain: plain as usize,
            plain_refs,
        }
    })
}

fn make_plain_type() -> *mut PyTypeObject {
    let member = |name: &'static core::ffi::CStr, offset: usize, ty, flags| PyMemberDef {
        name: name.as_ptr(),
        r#type: ty,
        offset: offset as Py_ssize_t,
        flags,
        doc: ptr::null(),
    };
    let slot_offset = |i: usize| {
        core::mem::offset_of!(TestObject, slots) + i * core::mem::size_of::<*mut PyObject>()
    };
    // The members live as long as the type (for ever).
    let members: &'static mut [PyMemberDef] = Box::leak(Box::new([
        member(c"a", slot_offset(0), T_OBJECT_EX, 0),
        member(c"b", slot_offset(1), T_OBJECT_EX, 0),
        member(c"c", slot_offset(2), T_OBJECT_EX, 0),
        member(
            c"__weaklistoffset__",
            core::mem::offset_of!(TestObject, weaklist),
            Py_T_PYSSIZET,
            Py_READONLY,
        ),
        PyMemberDef {
            name: ptr::null(),
            r#type: 0,
            offset: 0,
            flags: 0,
            doc: ptr::null(),
        },
    ]));
    let free_fn: unsafe extern "C" fn(*mut c_void) = plain_free;
    let mut slots = [
        PyType_Slot {
            slot: Py_tp_members,
            pfunc: members.as_mut_ptr().cast(),
        },
        PyType_Slot {
            slot: Py_tp_free,
            pfunc: free_fn as *mut c_void,
        },
        PyType_Slot {
            slot: 0,
            pfunc: ptr::null_mut(),
        },
    ];
    let mut spec = PyType_Spec {
        name: c"testkit.Plain".as_ptr(),
        basicsize: core::mem::size_of::<TestObject>() as core::ffi::c_int,
        itemsize: 0,
        flags: 0,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: a valid spec whose slot array ends with {0, NULL}; the
    // runtime lock is held (caller of `types`).
    let tp = unsafe { ffi::object::PyType_FromSpec(&mut spec) };
    assert!(!tp.is_null(), "PyType_FromSpec failed");
    tp.cast()
}

/// Creates an object of `kind` with model id `id`: a new reference, or
/// NULL with an error set.
///
/// # Safety
/// The runtime lock is held.
pub unsafe fn new_object(kind: Kind, id: u64, resurrect: bool) -> *mut PyObject {
    let tp = types().of(kind);
    // SAFETY: tp is a ready type whose instances are TestObjects; each
    // field is set before anything can see the object (a GC object is
    // tracked last).
    unsafe {
        let op = match kind {
            Kind::Node | Kind::WeakNode | Kind::FinNode => ffi::object::_PyObject_GC_New(tp),
            Kind::Plain => match (*tp).tp_alloc {
                Some(alloc) => alloc(tp, 0),
                None => ptr::null_mut(),
            },
            Kind::Leaf => ffi::object::_PyObject_New(tp),
        };
        if op.is_null() {
            return op;
        }
        let t = op.cast::<TestObject>();
        (*t).slots = [ptr::null_mut(); NSLOTS];
        (*t).id = id;
        (*t).weaklist = ptr::null_mut();
        (*t).resurrect = u64::from(resurrect);
        if kind.is_gc() {
            ffi::object::PyObject_GC_Track(op.cast());
        }
        op
    }
}

/// The object at `op` as a test object.
pub fn as_test(op: *mut PyObject) -> *mut TestObject {
    op.cast()
}

unsafe extern "C" fn node_traverse(op: *mut PyObject, visit: visitproc, arg: *mut c_void) -> i32 {
    let Some(visit) = visit else { return 0 };
    // SAFETY: op is a live test object; its slots are NULL or live objects.
    unsafe {
        for &s in &(*as_test(op)).slots {
            if !s.is_null() {
                let r = visit(s, arg);
                if r != 0 {
                    return r;
                }
            }
        }
    }
    0
}

/// `Py_CLEAR` of each slot, in order.
///
/// # Safety
/// `op` is a test object (live or being deallocated).
unsafe fn clear_slots(op: *mut PyObject) {
    for i in 0..NSLOTS {
        // SAFETY: caller's contract; the slot is emptied before the
        // reference is dropped (which may run code that reads it).
        unsafe {
            let s = (*as_test(op)).slots[i];
            if !s.is_null() {
                (*as_test(op)).slots[i] = ptr::null_mut();
                ffi::object::Py_DecRef(s);
            }
        }
    }
}

unsafe extern "C" fn node_clear(op: *mut PyObject) -> i32 {
    // SAFETY: op is a live test object.
    unsafe { clear_slots(op) };
    0
}

/// The deallocator of the GC kinds, as CPython asks of types with a
/// finalizer: finalizer first (it may resurrect), untrack, weak
/// references, then the references, then the memory.
unsafe extern "C" fn node_dealloc(op: *mut PyObject) {
    // SAFETY: op is a test object whose count reached zero.
    unsafe {
        let tp = (*op).ob_type;
        if (*tp).tp_finalize.is_some() && ffi::object::PyObject_CallFinalizerFromDealloc(op) < 0 {
            return; // resurrected
        }
        ffi::object::PyObject_GC_UnTrack(op.cast());
        let id = (*as_test(op)).id;
        record(|e| e.died.push(id));
        if crate::weakref::supports(tp) {
            ffi::weakref::PyObject_ClearWeakRefs(op);
        }
        clear_slots(op);
        ffi::object::PyObject_GC_Del(op.cast());
    }
}

/// The finalizer of `FinNode`: logs, and resurrects the object if asked
/// (the driver gets the new reference).
unsafe extern "C" fn node_finalize(op: *mut PyObject) {
    // SAFETY: op is a live FinNode (the collector or the deallocator holds
    // it during the call).
    unsafe {
        let t = as_test(op);
        let id = (*t).id;
        record(|e| e.finalized.push(id));
        if (*t).resurrect != 0 {
            ffi::object::Py_IncRef(op);
            record(|e| e.lazarus.push((id, op as usize)));
        }
    }
}

unsafe extern "C" fn leaf_dealloc(op: *mut PyObject) {
    // SAFETY: op is a Leaf whose count reached zero.
    unsafe {
        let id = (*as_test(op)).id;
        record(|e| e.died.push(id));
        ffi::mem::PyObject_Free(op.cast());
    }
}

/// `tp_free` of `Plain` (the default deallocator ends with it): logs the
/// death, then frees.
unsafe extern "C" fn plain_free(p: *mut c_void) {
    // SAFETY: p is a Plain instance being freed: its fields are readable.
    unsafe {
        let id = (*p.cast::<TestObject>()).id;
        record(|e| e.died.push(id));
        ffi::mem::PyObject_Free(p);
    }
}

/// The C callback of weak references: `ctx` is the weak reference's model
/// id. The weak reference must already read as dead.
///
/// # Safety
/// Called by pyheap with a live weak reference.
pub unsafe extern "C" fn weak_callback(wr: *mut PyObject, ctx: *mut c_void) {
    let id = ctx as u64;
    // SAFETY: wr is a live weak reference (pyheap holds it for the call).
    let referent = unsafe { ffi::weakref::PyWeakref_GetObject(wr) };
    let wrong = referent != none();
    record(|e| {
        e.calls.push(id);
        if wrong {
            e.wrong.push(format!(
                "callback of weak reference #{id}: referent {referent:p} is not None"
            ));
        }
    });
}
