//! `PyType_FromSpec` and `PyType_GetSlot` (SPEC.md §4.10), with CPython's
//! stable slot numbers.
//!
//! Slots of the number, sequence, mapping, async and buffer protocols are
//! accepted (so extension code compiles and runs) and ignored: pyheap has no
//! interpreter to call them. `PyType_GetSlot` returns NULL for them.

use core::ffi::{CStr, c_char, c_int, c_void};
use core::ptr;

use super::dealloc::{decref, incref, subtype_dealloc};
use super::layout::*;
use super::types::{HeapType, object_type, type_type};
use crate::domains::Py_ssize_t;
use crate::error::{self, Error};

// Slot ids, CPython's stable numbers (typeslots.h).
/// Slot id of `bf_getbuffer`.
pub const Py_bf_getbuffer: c_int = 1;
/// Slot id of `bf_releasebuffer`.
pub const Py_bf_releasebuffer: c_int = 2;
/// Slot id of `mp_ass_subscript`.
pub const Py_mp_ass_subscript: c_int = 3;
/// Slot id of `mp_length`.
pub const Py_mp_length: c_int = 4;
/// Slot id of `mp_subscript`.
pub const Py_mp_subscript: c_int = 5;
/// Slot id of `nb_absolute`.
pub const Py_nb_absolute: c_int = 6;
/// Slot id of `nb_add`.
pub const Py_nb_add: c_int = 7;
/// Slot id of `nb_and`.
pub const Py_nb_and: c_int = 8;
/// Slot id of `nb_bool`.
pub const Py_nb_bool: c_int = 9;
/// Slot id of `nb_divmod`.
pub const Py_nb_divmod: c_int = 10;
/// Slot id of `nb_float`.
pub const Py_nb_float: c_int = 11;
/// Slot id of `nb_floor_divide`.
pub const Py_nb_floor_divide: c_int = 12;
/// Slot id of `nb_index`.
pub const Py_nb_index: c_int = 13;
/// Slot id of `nb_inplace_add`.
pub const Py_nb_inplace_add: c_int = 14;
/// Slot id of `nb_inplace_and`.
pub const Py_nb_inplace_and: c_int = 15;
/// Slot id of `nb_inplace_floor_divide`.
pub const Py_nb_inplace_floor_divide: c_int = 16;
/// Slot id of `nb_inplace_lshift`.
pub const Py_nb_inplace_lshift: c_int = 17;
/// Slot id of `nb_inplace_multiply`.
pub const Py_nb_inplace_multiply: c_int = 18;
/// Slot id of `nb_inplace_or`.
pub const Py_nb_inplace_or: c_int = 19;
/// Slot id of `nb_inplace_power`.
pub const Py_nb_inplace_power: c_int = 20;
/// Slot id of `nb_inplace_remainder`.
pub const Py_nb_inplace_remainder: c_int = 21;
/// Slot id of `nb_inplace_rshift`.
pub const Py_nb_inplace_rshift: c_int = 22;
/// Slot id of `nb_inplace_subtract`.
pub const Py_nb_inplace_subtract: c_int = 23;
/// Slot id of `nb_inplace_true_divide`.
pub const Py_nb_inplace_true_divide: c_int = 24;
/// Slot id of `nb_inplace_xor`.
pub const Py_nb_inplace_xor: c_int = 25;
/// Slot id of `nb_int`.
pub const Py_nb_int: c_int = 26;
/// Slot id of `nb_invert`.
pub const Py_nb_invert: c_int = 27;
/// Slot id of `nb_lshift`.
pub const Py_nb_lshift: c_int = 28;
/// Slot id of `nb_multiply`.
pub const Py_nb_multiply: c_int = 29;
/// Slot id of `nb_negative`.
pub const Py_nb_negative: c_int = 30;
/// Slot id of `nb_or`.
pub const Py_nb_or: c_int = 31;
/// Slot id of `nb_positive`.
pub const Py_nb_positive: c_int = 32;
/// Slot id of `nb_power`.
pub const Py_nb_power: c_int = 33;
/// Slot id of `nb_remainder`.
pub const Py_nb_remainder: c_int = 34;
/// Slot id of `nb_rshift`.
pub const Py_nb_rshift: c_int = 35;
/// Slot id of `nb_subtract`.
pub const Py_nb_subtract: c_int = 36;
/// Slot id of `nb_true_divide`.
pub const Py_nb_true_divide: c_int = 37;
/// Slot id of `nb_xor`.
pub const Py_nb_xor: c_int = 38;
/// Slot id of `sq_ass_item`.
pub const Py_sq_ass_item: c_int = 39;
/// Slot id of `sq_concat`.
pub const Py_sq_concat: c_int = 40;
/// Slot id of `sq_contains`.
pub const Py_sq_contains: c_int = 41;
/// Slot id of `sq_inplace_concat`.
pub const Py_sq_inplace_concat: c_int = 42;
/// Slot id of `sq_inplace_repeat`.
pub const Py_sq_inplace_repeat: c_int = 43;
/// Slot id of `sq_item`.
pub const Py_sq_item: c_int = 44;
/// Slot id of `sq_length`.
pub const Py_sq_length: c_int = 45;
/// Slot id of `sq_repeat`.
pub const Py_sq_repeat: c_int = 46;
/// Slot id of `tp_alloc`.
pub const Py_tp_alloc: c_int = 47;
/// Slot id of `tp_base`.
pub const Py_tp_base: c_int = 48;
/// Slot id of `tp_bases`.
pub const Py_tp_bases: c_int = 49;
/// Slot id of `tp_call`.
pub const Py_tp_call: c_int = 50;
/// Slot id of `tp_clear`.
pub const Py_tp_clear: c_int = 51;
/// Slot id of `tp_dealloc`.
pub const Py_tp_dealloc: c_int = 52;
/// Slot id of `tp_del`.
pub const Py_tp_del: c_int = 53;
/// Slot id of `tp_descr_get`.
pub const Py_tp_descr_get: c_int = 54;
/// Slot id of `tp_descr_set`.
pub const Py_tp_descr_set: c_int = 55;
/// Slot id of `tp_doc`.
pub const Py_tp_doc: c_int = 56;
/// Slot id of `tp_getattr`.
pub const Py_tp_getattr: c_int = 57;
/// Slot id of `tp_getattro`.
pub const Py_tp_getattro: c_int = 58;
/// Slot id of `tp_hash`.
pub const Py_tp_hash: c_int = 59;
/// Slot id of `tp_init`.
pub const Py_tp_init: c_int = 60;
/// Slot id of `tp_is_gc`.
pub const Py_tp_is_gc: c_int = 61;
/// Slot id of `tp_iter`.
pub const Py_tp_iter: c_int = 62;
/// Slot id of `tp_iternext`.
pub const Py_tp_iternext: c_int = 63;
/// Slot id of `tp_methods`.
pub const Py_tp_methods: c_int = 64;
/// Slot id of `tp_new`.
pub const Py_tp_new: c_int = 65;
/// Slot id of `tp_repr`.
pub const Py_tp_repr: c_int = 66;
/// Slot id of `tp_richcompare`.
pub const Py_tp_richcompare: c_int = 67;
/// Slot id of `tp_setattr`.
pub const Py_tp_setattr: c_int = 68;
/// Slot id of `tp_setattro`.
pub const Py_tp_setattro: c_int = 69;
/// Slot id of `tp_str`.
pub const Py_tp_str: c_int = 70;
/// Slot id of `tp_traverse`.
pub const Py_tp_traverse: c_int = 71;
/// Slot id of `tp_members`.
pub const Py_tp_members: c_int = 72;
/// Slot id of `tp_getset`.
pub const Py_tp_getset: c_int = 73;
/// Slot id of `tp_free`.
pub const Py_tp_free: c_int = 74;
/// Slot id of `nb_matrix_multiply`.
pub const Py_nb_matrix_multiply: c_int = 75;
/// Slot id of `nb_inplace_matrix_multiply`.
pub const Py_nb_inplace_matrix_multiply: c_int = 76;
/// Slot id of `am_await`.
pub const Py_am_await: c_int = 77;
/// Slot id of `am_aiter`.
pub const Py_am_aiter: c_int = 78;
/// Slot id of `am_anext`.
pub const Py_am_anext: c_int = 79;
/// Slot id of `tp_finalize`.
pub const Py_tp_finalize: c_int = 80;
/// Slot id of `am_send`.
pub const Py_am_send: c_int = 81;

/// Highest slot id of CPython 3.11.
const MAX_SLOT: c_int = Py_am_send;

/// A function-pointer field from a slot's `pfunc`.
///
/// # Safety
/// `F` is an `Option` of a function pointer type, which has the size of a
/// data pointer and accepts null as `None`.
unsafe fn as_fn<F: Copy>(p: *mut c_void) -> F {
    debug_assert_eq!(
        core::mem::size_of::<F>(),
        core::mem::size_of::<*mut c_void>()
    );
    // SAFETY: caller's contract (Option<fn> has the null-pointer niche).
    unsafe { core::mem::transmute_copy(&p) }
}

/// A field's value as a slot's `void *`.
fn to_ptr<F: Copy>(f: F) -> *mut c_void {
    debug_assert_eq!(
        core::mem::size_of::<F>(),
        core::mem::size_of::<*mut c_void>()
    );
    // SAFETY: F is an Option of a function pointer or a raw pointer: the same
    // size as a data pointer, any bit pattern of which is a valid pointer.
    unsafe { core::mem::transmute_copy(&f) }
}

/// Stores one slot in `t`. False for an id pyheap does not know.
///
/// # Safety
/// `pfunc` has the type the slot id calls for.
unsafe fn set_slot(t: &mut PyTypeObject, id: c_int, p: *mut c_void) -> bool {
    // SAFETY: caller's contract for each function type.
    unsafe {
        match id {
            Py_tp_alloc => t.tp_alloc = as_fn(p),
            Py_tp_call => t.tp_call = as_fn(p),
            Py_tp_clear => t.tp_clear = as_fn(p),
            Py_tp_dealloc => t.tp_dealloc = as_fn(p),
            Py_tp_del => t.tp_del = as_fn(p),
            Py_tp_descr_get => t.tp_descr_get = as_fn(p),
            Py_tp_descr_set => t.tp_descr_set = as_fn(p),
            Py_tp_getattr => t.tp_getattr = as_fn(p),
            Py_tp_getattro => t.tp_getattro = as_fn(p),
            Py_tp_hash => t.tp_hash = as_fn(p),
            Py_tp_init => t.tp_init = as_fn(p),
            Py_tp_is_gc => t.tp_is_gc = as_fn(p),
            Py_tp_iter => t.tp_iter = as_fn(p),
            Py_tp_iternext => t.tp_iternext = as_fn(p),
            Py_tp_methods => t.tp_methods = p.cast(),
            Py_tp_new => t.tp_new = as_fn(p),
            Py_tp_repr => t.tp_repr = as_fn(p),
            Py_tp_richcompare => t.tp_richcompare = as_fn(p),
            Py_tp_setattr => t.tp_setattr = as_fn(p),
            Py_tp_setattro => t.tp_setattro = as_fn(p),
            Py_tp_str => t.tp_str = as_fn(p),
            Py_tp_traverse => t.tp_traverse = as_fn(p),
            Py_tp_members => t.tp_members = p.cast(),
            Py_tp_getset => t.tp_getset = p.cast(),
            Py_tp_free => t.tp_free = as_fn(p),
            Py_tp_finalize => t.tp_finalize = as_fn(p),
            // Protocol slots (nb_, sq_, mp_, am_, bf_): accepted, not used.
            1..=46 | 75..=79 | 81 => {}
            _ => return false,
        }
    }
    true
}

/// `PyType_GetSlot`: NULL (with `SystemError`) for a bad id; NULL for the
/// protocol slots pyheap does not keep.
///
/// # Safety
/// `tp` is a valid type object.
pub unsafe fn get_slot(tp: *mut PyTypeObject, id: c_int) -> *mut c_void {
    if id <= 0 || id > MAX_SLOT {
        return error::null(Error::System("bad internal call: invalid slot id".into()));
    }
    // SAFETY: caller's contract.
    let t = unsafe { &*tp };
    match id {
        Py_tp_alloc => to_ptr(t.tp_alloc),
        Py_tp_base => t.tp_base.cast(),
        Py_tp_bases => t.tp_bases.cast(),
        Py_tp_call => to_ptr(t.tp_call),
        Py_tp_clear => to_ptr(t.tp_clear),
        Py_tp_dealloc => to_ptr(t.tp_dealloc),
        Py_tp_del => to_ptr(t.tp_del),
        Py_tp_descr_get => to_ptr(t.tp_descr_get),
        Py_tp_descr_set => to_ptr(t.tp_descr_set),
        Py_tp_doc => t.tp_doc.cast_mut().cast(),
        Py_tp_getattr => to_ptr(t.tp_getattr),
        Py_tp_getattro => to_ptr(t.tp_getattro),
        Py_tp_hash => to_ptr(t.tp_hash),
        Py_tp_init => to_ptr(t.tp_init),
        Py_tp_is_gc => to_ptr(t.tp_is_gc),
        Py_tp_iter => to_ptr(t.tp_iter),
        Py_tp_iternext => to_ptr(t.tp_iternext),
        Py_tp_methods => t.tp_methods.cast(),
        Py_tp_new => to_ptr(t.tp_new),
        Py_tp_repr => to_ptr(t.tp_repr),
        Py_tp_richcompare => to_ptr(t.tp_richcompare),
        Py_tp_setattr => to_ptr(t.tp_setattr),
        Py_tp_setattro => to_ptr(t.tp_setattro),
        Py_tp_str => to_ptr(t.tp_str),
        Py_tp_traverse => to_ptr(t.tp_traverse),
        Py_tp_members => t.tp_members.cast(),
        Py_tp_getset => t.tp_getset.cast(),
        Py_tp_free => to_ptr(t.tp_free),
        Py_tp_finalize => to_ptr(t.tp_finalize),
        _ => ptr::null_mut(),
    }
}

/// Copies a C string into the RAW domain (null stays null).
fn raw_strdup(s: *const c_char) -> Result<*mut c_char, Error> {
    if s.is_null() {
        return Ok(ptr::null_mut());
    }
    // SAFETY: s is a NUL-terminated string (from the spec's owner).
    let p = unsafe { crate::ffi::mem::_PyMem_RawStrdup(s) };
    if p.is_null() {
        Err(Error::NoMemory)
    } else {
        Ok(p)
    }
}

/// Reads the special members `__weaklistoffset__`, `__dictoffset__` and
/// `__vectorcalloffset__` into the type.
///
/// # Safety
/// `members` is null or an array of `PyMemberDef` ending with a null name.
unsafe fn read_special_members(t: &mut PyTypeObject, mut members: *const PyMemberDef) {
    if members.is_null() {
        return;
    }
    // SAFETY: caller's contract.
    unsafe {
        while !(*members).name.is_null() {
            let name = CStr::from_ptr((*members).name).to_bytes();
            let off: Py_ssize_t = (*members).offset;
            match name {
                b"__weaklistoffset__" => t.tp_weaklistoffset = off,
                b"__dictoffset__" => t.tp_dictoffset = off,
                b"__vectorcalloffset__" => t.tp_vectorcall_offset = off,
                _ => {}
            }
            members = members.add(1);
        }
    }
}

/// `PyType_FromSpecWithBases`: a new heap type (a new reference), or NULL
/// with the last error set. `bases` may be NULL or a type object.
///
/// # Safety
/// `spec` is a valid spec whose slot array ends with `{0, NULL}`; `bases`
/// is NULL or a live type object.
pub unsafe fn from_spec(spec: *const PyType_Spec, bases: *mut PyObject) -> *mut PyObject {
    // SAFETY: caller's contract.
    unsafe {
        let spec = &*spec;
        if spec.name.is_null() {
            return error::null(Error::System(
                "Type spec does not define the name field.".into(),
            ));
        }
        let ht = super::alloc::alloc_block(core::mem::size_of::<HeapType>(), false, true)
            .cast::<HeapType>();
        if ht.is_null() {
            return ptr::null_mut();
        }
        super::alloc::init(ht.cast(), type_type());
        match fill_from_spec(ht, spec, bases) {
            Ok(()) => ht.cast(),
            Err(e) => {
                // The half-built type is dropped by type_dealloc.
                decref(ht.cast());
                error::null(e)
            }
        }
    }
}

/// The base named by `bases` (a type, or a tuple of one type, as CPython
/// accepts for `PyType_FromSpecWithBases` and `Py_tp_bases`). pyheap has
/// single inheritance only: a tuple of more than one base is an error.
///
/// # Safety
/// `bases` is NULL or a live object.
unsafe fn single_base(bases: *mut PyObject, what: &str) -> Result<*mut PyTypeObject, Error> {
    // SAFETY: caller's contract; a tuple's items are live objects.
    unsafe {
        let b = if !bases.is_null() && (*bases).ob_type == super::tuple::tuple_type() {
            if super::tuple::size(bases) != 1 {
                return Err(Error::System(format!(
                    "{what}: pyheap supports exactly one base (got a tuple of {})",
                    super::tuple::size(bases)
                )));
            }
            *super::tuple::item_slot(bases, 0)
        } else {
            bases
        };
        if b.is_null() || (*b).ob_type != type_type() {
            return Err(Error::System(format!(
                "{what} must be a type or a tuple of one type"
            )));
        }
        Ok(b.cast())
    }
}

/// # Safety
/// `ht` is a fresh, zeroed heap type object with count 1; as for `from_spec`.
unsafe fn fill_from_spec(
    ht: *mut HeapType,
    spec: &PyType_Spec,
    bases: *mut PyObject,
) -> Result<(), Error> {
    // SAFETY: caller's contract.
    unsafe {
        let h = &mut *ht;
        h.name = raw_strdup(spec.name)?;
        let t = &mut h.ty;
        t.tp_name = h.name;
        t.tp_flags = spec.flags as core::ffi::c_ulong | Py_TPFLAGS_HEAPTYPE;
        t.tp_basicsize = spec.basicsize as Py_ssize_t;
        t.tp_itemsize = spec.itemsize as Py_ssize_t;

        let mut base: *mut PyTypeObject = ptr::null_mut();
        if !bases.is_null() {
            base = single_base(bases, "bases")?;
        }
        let mut slot = spec.slots;
        while !slot.is_null() && (*slot).slot != 0 {
            let (id, p) = ((*slot).slot, (*slot).pfunc);
            match id {
                Py_tp_base if base.is_null() => base = p.cast(),
                Py_tp_bases if base.is_null() => base = single_base(p.cast(), "Py_tp_bases")?,
                Py_tp_base | Py_tp_bases => {}
                Py_tp_doc => {
                    h.doc = raw_strdup(p.cast())?;
                    h.ty.tp_doc = h.doc;
                }
                _ if !(0..=MAX_SLOT).contains(&id) || !set_slot(&mut h.ty, id, p) => {
                    return Err(Error::Runtime("invalid slot offset".into()));
                }
                _ => {}
            }
            slot = slot.add(1);
        }
        let t = &mut h.ty;
        read_special_members(t, t.tp_members);
        if base.is_null() {
            base = object_type();
        }
        if (*base).tp_flags & Py_TPFLAGS_BASETYPE == 0 {
            return Err(Error::Type(format!(
                "type '{:.100}' is not an acceptable base type",
                super::types::type_name(base)
            )));
        }
        incref(base.cast());
        t.tp_base = base;
        if t.tp_dealloc.is_none() {
            t.tp_dealloc = Some(subtype_dealloc);
        }
        super::ready::ready(&mut h.ty)
    }
}
