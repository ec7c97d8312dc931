//! Live objects: every object pyheap allocated and has not freed, found
//! through the pools' block states and the registry of unpooled objects.
//! Gives `PyHeap_GetRefTotal` and `PyHeap_GetLiveObjects`.

use std::collections::BTreeMap;

use super::layout::{GC_HEADER_SIZE, PyObject, PyTypeObject, is_immortal_count};
use crate::domains::Runtime;

/// Calls `f(object)` for every live object (objects deferred by the
/// trashcan, whose count reads negative, are skipped).
pub fn for_each(rt: &Runtime, mut f: impl FnMut(*mut PyObject)) {
    let mut visit = |block: *mut u8, gc: bool| {
        let op = if gc {
            block.wrapping_add(GC_HEADER_SIZE)
        } else {
            block
        }
        .cast::<PyObject>();
        // SAFETY: an object block holds an initialised object header.
        if unsafe { (*op).ob_refcnt } >= 0 {
            f(op);
        }
    };
    rt.heap.for_each_object(&mut visit);
    for (&block, &gc) in &rt.objects.raw {
        visit(block as *mut u8, gc);
    }
}

/// The sum of the reference counts of all live, mortal objects (CPython's
/// `_Py_RefTotal`, 3.12's definition: immortal objects excluded).
pub fn ref_total(rt: &Runtime) -> isize {
    let mut total = 0isize;
    for_each(rt, |op| {
        // SAFETY: op is a live object.
        let rc = unsafe { (*op).ob_refcnt };
        if !is_immortal_count(rc) {
            total += rc;
        }
    });
    total
}

/// Per type: number of live objects and bytes of their blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCount {
    /// Live objects.
    pub count: usize,
    /// Bytes they occupy (instance sizes, GC headers included).
    pub bytes: usize,
}

/// The bytes an object occupies: its instance size, items included, and
/// its GC header.
///
/// # Safety
/// `op` is a live object with a valid type.
pub unsafe fn object_size(op: *mut PyObject) -> usize {
    // SAFETY: caller's contract.
    unsafe {
        let tp: *mut PyTypeObject = (*op).ob_type;
        let mut size = (*tp).tp_basicsize.max(0) as usize;
        if (*tp).tp_itemsize != 0 {
            let n = (*op.cast::<super::layout::PyVarObject>()).ob_size.max(0) as usize;
            size += n * (*tp).tp_itemsize.max(0) as usize;
        }
        if super::alloc::is_gc(op) {
            size += GC_HEADER_SIZE;
        }
        size
    }
}

/// Live objects grouped by type, in address order of the types.
pub fn by_type(rt: &Runtime) -> BTreeMap<usize, TypeCount> {
    let mut map: BTreeMap<usize, TypeCount> = BTreeMap::new();
    for_each(rt, |op| {
        // SAFETY: op is a live object with a valid type.
        let (tp, size) = unsafe { ((*op).ob_type, object_size(op)) };
        let e = map.entry(tp as usize).or_default();
        e.count += 1;
        e.bytes += size;
    });
    map
}
