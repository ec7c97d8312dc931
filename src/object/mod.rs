//! Objects: the header and type layouts, creation and destruction, the
//! static types (`object`, `type`, `NoneType`), `PyType_Ready` and
//! `PyType_FromSpec` (SPEC.md §4).
//!
//! Every object pyheap allocates is recorded, at no cost to the allocation
//! fast path: a pooled block's state in its pool's header says whether it
//! holds an object, and a GC one (`alloc/pool.rs`); an object too large
//! for a pool is kept in [`ObjectState::raw`]. That is what lets pyheap list live objects by
//! type, total their reference counts, and tell a live object from a freed
//! one in debug checks.

pub mod alloc;
pub mod call;
pub mod dealloc;
pub mod layout;
pub mod live;
pub mod ready;
pub mod spec;
pub mod tuple;
pub mod types;

use std::collections::BTreeMap;

use layout::PyObject;

/// Per-runtime object bookkeeping.
pub struct ObjectState {
    /// Object blocks that are not pooled: block address → is a GC object.
    pub raw: BTreeMap<usize, bool>,
    /// Nesting of `_Py_Dealloc` calls (the automatic trashcan).
    pub dealloc_depth: usize,
    /// Objects whose deallocation was deferred, linked through `ob_refcnt`.
    pub deferred: *mut PyObject,
    /// Live tuples (the collector skips its tuple-untracking pass at 0).
    pub tuples: usize,
}

impl ObjectState {
    /// No objects yet.
    pub const fn new() -> Self {
        ObjectState {
            raw: BTreeMap::new(),
            dealloc_depth: 0,
            deferred: core::ptr::null_mut(),
            tuples: 0,
        }
    }

    /// Records an unpooled object block.
    pub fn remember_raw(&mut self, block: *mut u8, gc: bool) {
        self.raw.insert(block as usize, gc);
    }

    /// Forgets `block` if it was an unpooled object block (called on every
    /// free that reaches the RAW domain; cheap when there are none).
    #[inline]
    pub fn forget_raw(&mut self, block: *mut u8) {
        if !self.raw.is_empty() {
            self.raw.remove(&(block as usize));
        }
    }

    /// An unpooled object block moved from `from` to `to` (realloc).
    pub fn move_raw(&mut self, from: *mut u8, to: *mut u8) {
        if self.raw.is_empty() {
            return;
        }
        if let Some(gc) = self.raw.remove(&(from as usize)) {
            self.raw.insert(to as usize, gc);
        }
    }
}

impl Default for ObjectState {
    fn default() -> Self {
        Self::new()
    }
}
