//! The object header and type object, field for field CPython 3.11's
//! (SPEC.md §4.1, §4.8), so C written for CPython compiles unchanged and a
//! C test can compare `sizeof`/`offsetof` with the installed `Python.h`.
//!
//! Reference counts follow 3.12's immortal scheme on 64-bit (PEP 683): an
//! object whose count has the low 32 bits' sign bit set is immortal; its
//! count never changes and it is never freed. Objects made with
//! `PyObject_HEAD_INIT` start at `_Py_IMMORTAL_REFCNT`.

use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

use crate::domains::Py_ssize_t;

/// CPython's `Py_hash_t`.
pub type Py_hash_t = Py_ssize_t;

/// The header every object starts with (`PyObject_HEAD`).
#[repr(C)]
#[derive(Debug)]
pub struct PyObject {
    /// Reference count.
    pub ob_refcnt: Py_ssize_t,
    /// The object's type.
    pub ob_type: *mut PyTypeObject,
}

/// The header of variable-size objects (`PyObject_VAR_HEAD`).
#[repr(C)]
#[derive(Debug)]
pub struct PyVarObject {
    /// The fixed header.
    pub ob_base: PyObject,
    /// Number of items.
    pub ob_size: Py_ssize_t,
}

/// Count of an immortal object, as `PyObject_HEAD_INIT` writes it.
pub const _Py_IMMORTAL_REFCNT: Py_ssize_t = 0xFFFF_FFFF;

/// True iff an object with count `rc` is immortal (3.12's test on 64-bit).
#[inline(always)]
pub const fn is_immortal_count(rc: Py_ssize_t) -> bool {
    (rc as i32) < 0
}

/// `tp_dealloc`, `tp_del`, `tp_finalize`.
pub type destructor = Option<unsafe extern "C" fn(*mut PyObject)>;
/// `tp_free`.
pub type freefunc = Option<unsafe extern "C" fn(*mut c_void)>;
/// `tp_clear`, `tp_is_gc`.
pub type inquiry = Option<unsafe extern "C" fn(*mut PyObject) -> c_int>;
/// The visitor `tp_traverse` calls on each reference.
pub type visitproc = Option<unsafe extern "C" fn(*mut PyObject, *mut c_void) -> c_int>;
/// `tp_traverse`.
pub type traverseproc =
    Option<unsafe extern "C" fn(*mut PyObject, visitproc, *mut c_void) -> c_int>;
/// `tp_alloc`.
pub type allocfunc = Option<unsafe extern "C" fn(*mut PyTypeObject, Py_ssize_t) -> *mut PyObject>;
/// `tp_new`.
pub type newfunc =
    Option<unsafe extern "C" fn(*mut PyTypeObject, *mut PyObject, *mut PyObject) -> *mut PyObject>;
/// `tp_init`.
pub type initproc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> c_int>;
/// `tp_repr`, `tp_str`.
pub type reprfunc = Option<unsafe extern "C" fn(*mut PyObject) -> *mut PyObject>;
/// `tp_hash`.
pub type hashfunc = Option<unsafe extern "C" fn(*mut PyObject) -> Py_hash_t>;
/// `tp_richcompare`.
pub type richcmpfunc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, c_int) -> *mut PyObject>;
/// `tp_getattr`.
pub type getattrfunc = Option<unsafe extern "C" fn(*mut PyObject, *mut c_char) -> *mut PyObject>;
/// `tp_setattr`.
pub type setattrfunc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut c_char, *mut PyObject) -> c_int>;
/// `tp_getattro`.
pub type getattrofunc = Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> *mut PyObject>;
/// `tp_setattro`.
pub type setattrofunc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> c_int>;
/// `tp_call`.
pub type ternaryfunc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> *mut PyObject>;
/// `tp_iter`.
pub type getiterfunc = Option<unsafe extern "C" fn(*mut PyObject) -> *mut PyObject>;
/// `tp_iternext`.
pub type iternextfunc = Option<unsafe extern "C" fn(*mut PyObject) -> *mut PyObject>;
/// `tp_descr_get`.
pub type descrgetfunc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> *mut PyObject>;
/// `tp_descr_set`.
pub type descrsetfunc =
    Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> c_int>;
/// `tp_vectorcall`.
pub type vectorcallfunc = Option<
    unsafe extern "C" fn(
        *mut PyObject,
        *const *mut PyObject,
        usize,
        *mut PyObject,
    ) -> *mut PyObject,
>;

/// Method tables pyheap does not interpret (opaque: pointers only).
pub struct PyAsyncMethods {
    _opaque: (),
}
/// See [`PyAsyncMethods`].
pub struct PyNumberMethods {
    _opaque: (),
}
/// See [`PyAsyncMethods`].
pub struct PySequenceMethods {
    _opaque: (),
}
/// See [`PyAsyncMethods`].
pub struct PyMappingMethods {
    _opaque: (),
}
/// See [`PyAsyncMethods`].
pub struct PyBufferProcs {
    _opaque: (),
}

/// A C method definition (kept for source compatibility; not called).
#[repr(C)]
pub struct PyMethodDef {
    /// Method name.
    pub ml_name: *const c_char,
    /// The C function.
    pub ml_meth: Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> *mut PyObject>,
    /// `METH_*` flags.
    pub ml_flags: c_int,
    /// Docstring.
    pub ml_doc: *const c_char,
}

/// The object member type that raises when NULL (`T_OBJECT_EX`); the
/// default deallocator of heap types releases such members.
pub(crate) const T_OBJECT_EX: c_int = 16;
/// The read-only member flag (`READONLY`).
pub(crate) const READONLY: c_int = 1;

/// CPython 3.12's name for the `Py_ssize_t` member type (`T_PYSSIZET`).
pub const Py_T_PYSSIZET: c_int = 19;
/// CPython 3.12's name for the read-only member flag (`READONLY`).
pub const Py_READONLY: c_int = 1;

/// A member definition. `PyType_FromSpec` reads the special members
/// `__weaklistoffset__`, `__dictoffset__` and `__vectorcalloffset__`.
#[repr(C)]
pub struct PyMemberDef {
    /// Member name.
    pub name: *const c_char,
    /// `T_*` / `Py_T_*` type code.
    pub r#type: c_int,
    /// Offset in the instance.
    pub offset: Py_ssize_t,
    /// `READONLY` etc.
    pub flags: c_int,
    /// Docstring.
    pub doc: *const c_char,
}

/// A getter/setter definition (kept for source compatibility; not called).
#[repr(C)]
pub struct PyGetSetDef {
    /// Attribute name.
    pub name: *const c_char,
    /// Getter.
    pub get: Option<unsafe extern "C" fn(*mut PyObject, *mut c_void) -> *mut PyObject>,
    /// Setter.
    pub set: Option<unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut c_void) -> c_int>,
    /// Docstring.
    pub doc: *const c_char,
    /// Closure passed to get and set.
    pub closure: *mut c_void,
}

/// A type object, CPython 3.11's layout (408 bytes on 64-bit). Fields pyheap
/// honours: name, sizes, `tp_dealloc`, flags, doc, `tp_traverse`, `tp_clear`,
/// `tp_weaklistoffset`, `tp_base`, `tp_alloc`, `tp_new`, `tp_free`,
/// `tp_is_gc`, `tp_del`, `tp_finalize`, `tp_call`. The others are kept so
/// static types written for CPython compile, and are inherited verbatim.
#[repr(C)]
pub struct PyTypeObject {
    /// The type's own header (its type is `PyType_Type`).
    pub ob_base: PyVarObject,
    /// `"module.Name"`.
    pub tp_name: *const c_char,
    /// Instance size.
    pub tp_basicsize: Py_ssize_t,
    /// Size of each item of a variable-size instance.
    pub tp_itemsize: Py_ssize_t,
    /// Destructor, called when the count reaches zero.
    pub tp_dealloc: destructor,
    /// Unused by pyheap.
    pub tp_vectorcall_offset: Py_ssize_t,
    /// Unused by pyheap.
    pub tp_getattr: getattrfunc,
    /// Unused by pyheap.
    pub tp_setattr: setattrfunc,
    /// Unused by pyheap.
    pub tp_as_async: *mut PyAsyncMethods,
    /// Unused by pyheap.
    pub tp_repr: reprfunc,
    /// Unused by pyheap.
    pub tp_as_number: *mut PyNumberMethods,
    /// Unused by pyheap.
    pub tp_as_sequence: *mut PySequenceMethods,
    /// Unused by pyheap.
    pub tp_as_mapping: *mut PyMappingMethods,
    /// Unused by pyheap.
    pub tp_hash: hashfunc,
    /// Called by `PyObject_Call*`.
    pub tp_call: ternaryfunc,
    /// Unused by pyheap.
    pub tp_str: reprfunc,
    /// Unused by pyheap.
    pub tp_getattro: getattrofunc,
    /// Unused by pyheap.
    pub tp_setattro: setattrofunc,
    /// Unused by pyheap.
    pub tp_as_buffer: *mut PyBufferProcs,
    /// `Py_TPFLAGS_*`.
    pub tp_flags: c_ulong,
    /// Docstring.
    pub tp_doc: *const c_char,
    /// Visits each reference the instance owns (GC types).
    pub tp_traverse: traverseproc,
    /// Drops the instance's references (GC types).
    pub tp_clear: inquiry,
    /// Unused by pyheap.
    pub tp_richcompare: richcmpfunc,
    /// Offset of the weak reference list in instances, or 0.
    pub tp_weaklistoffset: Py_ssize_t,
    /// Unused by pyheap.
    pub tp_iter: getiterfunc,
    /// Unused by pyheap.
    pub tp_iternext: iternextfunc,
    /// Unused by pyheap.
    pub tp_methods: *mut PyMethodDef,
    /// Read by `PyType_FromSpec` for the special offsets.
    pub tp_members: *mut PyMemberDef,
    /// Unused by pyheap.
    pub tp_getset: *mut PyGetSetDef,
    /// Base type (`object` when NULL at `PyType_Ready`).
    pub tp_base: *mut PyTypeObject,
    /// Unused by pyheap (NULL).
    pub tp_dict: *mut PyObject,
    /// Unused by pyheap.
    pub tp_descr_get: descrgetfunc,
    /// Unused by pyheap.
    pub tp_descr_set: descrsetfunc,
    /// Unused by pyheap.
    pub tp_dictoffset: Py_ssize_t,
    /// Unused by pyheap.
    pub tp_init: initproc,
    /// Allocates an instance (`PyType_GenericAlloc` by default).
    pub tp_alloc: allocfunc,
    /// Creates an instance (`PyType_GenericNew` for heap types).
    pub tp_new: newfunc,
    /// Frees an instance's memory (`PyObject_Free`, or `PyObject_GC_Del`).
    pub tp_free: freefunc,
    /// Says whether a given instance of a GC type is GC-managed.
    pub tp_is_gc: inquiry,
    /// Unused by pyheap (NULL).
    pub tp_bases: *mut PyObject,
    /// Unused by pyheap (NULL).
    pub tp_mro: *mut PyObject,
    /// Unused by pyheap.
    pub tp_cache: *mut PyObject,
    /// Unused by pyheap.
    pub tp_subclasses: *mut PyObject,
    /// Unused by pyheap.
    pub tp_weaklist: *mut PyObject,
    /// Legacy finalizer: objects with one in a cycle are uncollectable.
    pub tp_del: destructor,
    /// Unused by pyheap.
    pub tp_version_tag: c_uint,
    /// PEP 442 finalizer, run at most once.
    pub tp_finalize: destructor,
    /// Unused by pyheap.
    pub tp_vectorcall: vectorcallfunc,
}

/// One slot of a `PyType_Spec` (`{0, NULL}` ends the array).
#[repr(C)]
pub struct PyType_Slot {
    /// Slot id (`Py_tp_dealloc`, ...).
    pub slot: c_int,
    /// The function or value.
    pub pfunc: *mut c_void,
}

/// A type described for `PyType_FromSpec`.
#[repr(C)]
pub struct PyType_Spec {
    /// `"module.Name"`.
    pub name: *const c_char,
    /// Instance size (0: inherit).
    pub basicsize: c_int,
    /// Item size.
    pub itemsize: c_int,
    /// `Py_TPFLAGS_*`.
    pub flags: c_uint,
    /// Slots, ending with `{0, NULL}`.
    pub slots: *mut PyType_Slot,
}

// Type flags, CPython's values (SPEC.md §4.7).
/// Legacy; ignored.
pub const Py_TPFLAGS_HAVE_FINALIZE: c_ulong = 1;
/// 3.12: the weak reference list is managed by the runtime (pre-header).
pub const Py_TPFLAGS_MANAGED_WEAKREF: c_ulong = 0x8;
/// The instance dict is managed by the runtime.
pub const Py_TPFLAGS_MANAGED_DICT: c_ulong = 0x10;
/// Instances behave as sequences (pattern matching).
pub const Py_TPFLAGS_SEQUENCE: c_ulong = 0x20;
/// Instances behave as mappings (pattern matching).
pub const Py_TPFLAGS_MAPPING: c_ulong = 0x40;
/// The type cannot be instantiated (`tp_new` stays NULL).
pub const Py_TPFLAGS_DISALLOW_INSTANTIATION: c_ulong = 0x80;
/// The type's attributes cannot be changed.
pub const Py_TPFLAGS_IMMUTABLETYPE: c_ulong = 0x100;
/// The type object is heap-allocated and reference-counted.
pub const Py_TPFLAGS_HEAPTYPE: c_ulong = 0x200;
/// The type can be subclassed.
pub const Py_TPFLAGS_BASETYPE: c_ulong = 0x400;
/// `tp_vectorcall_offset` is used.
pub const Py_TPFLAGS_HAVE_VECTORCALL: c_ulong = 0x800;
/// `PyType_Ready` has completed.
pub const Py_TPFLAGS_READY: c_ulong = 0x1000;
/// `PyType_Ready` is running.
pub const Py_TPFLAGS_READYING: c_ulong = 0x2000;
/// Instances are managed by the cycle collector.
pub const Py_TPFLAGS_HAVE_GC: c_ulong = 0x4000;
/// Methods behave like unbound methods.
pub const Py_TPFLAGS_METHOD_DESCRIPTOR: c_ulong = 0x20000;
/// Legacy.
pub const Py_TPFLAGS_HAVE_VERSION_TAG: c_ulong = 0x40000;
/// The version tag is valid.
pub const Py_TPFLAGS_VALID_VERSION_TAG: c_ulong = 0x80000;
/// The type is abstract.
pub const Py_TPFLAGS_IS_ABSTRACT: c_ulong = 0x100000;
/// Subclass markers (kept for source compatibility).
pub const Py_TPFLAGS_LONG_SUBCLASS: c_ulong = 0x1000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_LIST_SUBCLASS: c_ulong = 0x2000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_TUPLE_SUBCLASS: c_ulong = 0x4000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_BYTES_SUBCLASS: c_ulong = 0x8000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_UNICODE_SUBCLASS: c_ulong = 0x10000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_DICT_SUBCLASS: c_ulong = 0x20000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_BASE_EXC_SUBCLASS: c_ulong = 0x40000000;
/// See [`Py_TPFLAGS_LONG_SUBCLASS`].
pub const Py_TPFLAGS_TYPE_SUBCLASS: c_ulong = 0x80000000;
/// The default flags: none (as in every CPython version).
pub const Py_TPFLAGS_DEFAULT: c_ulong = 0;

/// Size of the GC header before each GC object (CPython's `PyGC_Head`).
pub const GC_HEADER_SIZE: usize = 16;

/// A type object with every field zero, to complete static type
/// initialisers (`..ZEROED_TYPE`).
pub(crate) const ZEROED_TYPE: PyTypeObject = {
    // SAFETY: every field of PyTypeObject accepts all-zero bits (integers,
    // nullable pointers and `Option`s of function pointers).
    unsafe { core::mem::zeroed() }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_cpython_3_11() {
        assert_eq!(core::mem::size_of::<PyObject>(), 16);
        assert_eq!(core::mem::size_of::<PyVarObject>(), 24);
        assert_eq!(core::mem::size_of::<PyTypeObject>(), 408);
        assert_eq!(core::mem::offset_of!(PyTypeObject, tp_flags), 168);
        assert!(is_immortal_count(_Py_IMMORTAL_REFCNT));
        assert!(!is_immortal_count(1));
        assert!(!is_immortal_count(0x7FFF_FFFF));
    }
}
