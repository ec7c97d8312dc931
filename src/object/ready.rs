//! `PyType_Ready`: checks a type, fills CPython's defaults and inherits
//! from its base chain (SPEC.md §4.9, 3.11's order where it matters).
//!
//! pyheap has no type dictionaries, MROs or tuples of bases: a type has one
//! base chain through `tp_base`, and "inheriting a slot" means copying it
//! from the nearest base that has it.

use super::dealloc::incref;
use super::layout::*;
use super::types::{is_heap_type, object_type, type_name, type_type};
use crate::error::{self, Error};
use crate::ffi::mem::PyObject_Free;

/// `PyType_Ready`. 0 on success; -1 with the last error set otherwise (the
/// type is left not ready, so a corrected type can be readied again).
///
/// # Safety
/// `tp` is a valid, writable type object; its base chain likewise.
pub unsafe fn ready(tp: *mut PyTypeObject) -> Result<(), Error> {
    // SAFETY: caller's contract.
    unsafe {
        let t = &mut *tp;
        if t.tp_flags & Py_TPFLAGS_READY != 0 {
            return Ok(());
        }
        if t.tp_flags & Py_TPFLAGS_READYING != 0 {
            return Err(Error::System(format!(
                "type '{}' is already being readied (a base cycle?)",
                type_name(tp)
            )));
        }
        t.tp_flags |= Py_TPFLAGS_READYING;
        let r = ready_steps(tp);
        let t = &mut *tp;
        t.tp_flags &= !Py_TPFLAGS_READYING;
        if r.is_ok() {
            t.tp_flags |= Py_TPFLAGS_READY;
        }
        r
    }
}

/// # Safety
/// As for [`ready`].
unsafe fn ready_steps(tp: *mut PyTypeObject) -> Result<(), Error> {
    // SAFETY: caller's contract; base pointers are valid type objects.
    unsafe {
        let t = &mut *tp;
        if !is_heap_type(tp) {
            t.tp_flags |= Py_TPFLAGS_IMMUTABLETYPE;
        }
        if t.tp_name.is_null() {
            return Err(Error::System(
                "Type does not define the tp_name field.".into(),
            ));
        }
        let name = type_name(tp);
        if t.tp_flags & Py_TPFLAGS_METHOD_DESCRIPTOR != 0 && t.tp_descr_get.is_none() {
            return Err(Error::System(format!(
                "type {name} has Py_TPFLAGS_METHOD_DESCRIPTOR but no tp_descr_get"
            )));
        }
        if t.tp_flags & Py_TPFLAGS_HAVE_VECTORCALL != 0
            && (t.tp_vectorcall_offset <= 0 || t.tp_call.is_none())
        {
            return Err(Error::System(format!(
                "type {name} has Py_TPFLAGS_HAVE_VECTORCALL but no tp_vectorcall_offset or tp_call"
            )));
        }
        if t.tp_flags & Py_TPFLAGS_SEQUENCE != 0 && t.tp_flags & Py_TPFLAGS_MAPPING != 0 {
            return Err(Error::System(format!(
                "type {name} has both Py_TPFLAGS_SEQUENCE and Py_TPFLAGS_MAPPING"
            )));
        }

        // The base: `object` by default; heap types own a reference to it.
        if t.tp_base.is_null() && tp != object_type() {
            t.tp_base = object_type();
            if is_heap_type(tp) {
                incref(object_type().cast());
            }
        }
        let base = t.tp_base;
        if !base.is_null() && (*base).tp_flags & Py_TPFLAGS_READY == 0 {
            ready(base)?;
        }
        if t.ob_base.ob_base.ob_type.is_null() {
            t.ob_base.ob_base.ob_type = if base.is_null() {
                type_type()
            } else {
                (*base).ob_base.ob_base.ob_type
            };
        }

        // tp_new: a static type without one, directly under object, cannot
        // be instantiated; otherwise it is inherited.
        if t.tp_new.is_none() {
            if !is_heap_type(tp) && base == object_type() {
                t.tp_flags |= Py_TPFLAGS_DISALLOW_INSTANTIATION;
            } else if t.tp_flags & Py_TPFLAGS_DISALLOW_INSTANTIATION == 0 && !base.is_null() {
                t.tp_new = (*base).tp_new;
            }
        }

        // CPython 3.12's managed weak-reference list: inherited with the
        // offset, and marked by a negative offset.
        if !base.is_null()
            && (*base).tp_flags & Py_TPFLAGS_MANAGED_WEAKREF != 0
            && t.tp_weaklistoffset == 0
        {
            t.tp_flags |= Py_TPFLAGS_MANAGED_WEAKREF;
        }
        if t.tp_flags & Py_TPFLAGS_MANAGED_WEAKREF != 0 {
            t.tp_weaklistoffset = crate::weakref::MANAGED_WEAKREF_OFFSET;
        }
        if !base.is_null() {
            inherit_special(t, &*base);
            let mut b = base;
            while !b.is_null() {
                inherit_slots(t, &*b);
                b = (*b).tp_base;
            }
        }

        let free_is_plain = t.tp_free.is_none()
            || t.tp_free.map(|f| f as usize)
                == Some(PyObject_Free as unsafe extern "C" fn(_) as usize);
        if t.tp_flags & Py_TPFLAGS_HAVE_GC != 0
            && t.tp_flags & Py_TPFLAGS_BASETYPE != 0
            && free_is_plain
        {
            return Err(Error::Type(format!(
                "type '{name:.100}' participates in gc and is a base type but has inappropriate tp_free slot"
            )));
        }
        if t.tp_flags & Py_TPFLAGS_MANAGED_DICT != 0 && !is_heap_type(tp) {
            return Err(Error::System(format!(
                "type {name} has the Py_TPFLAGS_MANAGED_DICT flag but is not a heap type"
            )));
        }
        if t.tp_flags & Py_TPFLAGS_HAVE_GC != 0 && t.tp_traverse.is_none() {
            return Err(Error::System(format!(
                "type {name} has the Py_TPFLAGS_HAVE_GC flag but has no traverse function"
            )));
        }
        Ok(())
    }
}

/// CPython's `inherit_special`: the GC flag with traverse/clear, sizes and
/// the weak-list offset.
fn inherit_special(t: &mut PyTypeObject, base: &PyTypeObject) {
    if t.tp_flags & Py_TPFLAGS_HAVE_GC == 0
        && base.tp_flags & Py_TPFLAGS_HAVE_GC != 0
        && t.tp_traverse.is_none()
        && t.tp_clear.is_none()
    {
        t.tp_flags |= Py_TPFLAGS_HAVE_GC;
        t.tp_traverse = base.tp_traverse;
        t.tp_clear = base.tp_clear;
    }
    if t.tp_basicsize == 0 {
        t.tp_basicsize = base.tp_basicsize;
    }
    if t.tp_itemsize == 0 {
        t.tp_itemsize = base.tp_itemsize;
    }
    if t.tp_weaklistoffset == 0 {
        t.tp_weaklistoffset = base.tp_weaklistoffset;
    }
    if t.tp_dictoffset == 0 {
        t.tp_dictoffset = base.tp_dictoffset;
    }
}

/// CPython's `inherit_slots`, for one base: every slot still NULL is copied.
fn inherit_slots(t: &mut PyTypeObject, b: &PyTypeObject) {
    macro_rules! copy {
        ($($f:ident),*) => { $( if t.$f.is_none() { t.$f = b.$f; } )* };
    }
    copy!(
        tp_dealloc,
        tp_getattr,
        tp_setattr,
        tp_repr,
        tp_hash,
        tp_call,
        tp_str,
        tp_getattro,
        tp_setattro,
        tp_richcompare,
        tp_iter,
        tp_iternext,
        tp_descr_get,
        tp_descr_set,
        tp_init,
        tp_alloc,
        tp_is_gc,
        tp_finalize,
        tp_vectorcall
    );
    macro_rules! copy_ptr {
        ($($f:ident),*) => { $( if t.$f.is_null() { t.$f = b.$f; } )* };
    }
    copy_ptr!(
        tp_as_async,
        tp_as_number,
        tp_as_sequence,
        tp_as_mapping,
        tp_as_buffer
    );
    // tp_free: copied when both or neither are GC; a GC type under a non-GC
    // base whose tp_free is PyObject_Free gets PyObject_GC_Del.
    let gc = Py_TPFLAGS_HAVE_GC;
    if t.tp_free.is_none() {
        if t.tp_flags & gc == b.tp_flags & gc {
            t.tp_free = b.tp_free;
        } else if t.tp_flags & gc != 0
            && b.tp_free.map(|f| f as usize)
                == Some(PyObject_Free as unsafe extern "C" fn(_) as usize)
        {
            t.tp_free = Some(crate::ffi::object::PyObject_GC_Del);
        }
    }
}

/// Runs [`ready`] and turns its result into CPython's return value.
///
/// # Safety
/// As for [`ready`].
pub unsafe fn ready_c(tp: *mut PyTypeObject) -> core::ffi::c_int {
    // SAFETY: caller's contract.
    match unsafe { ready(tp) } {
        Ok(()) => 0,
        Err(e) => {
            error::set(e);
            -1
        }
    }
}
