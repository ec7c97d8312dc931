//! `PyHeap_CheckHeap`: every structure of the heap checked against its
//! invariants, for tests and for users hunting memory corruption.
//!
//! - the pool heap: arenas, pools, free lists, used lists, the address map
//!   ([`SmallHeap::check_invariants`](crate::alloc::SmallHeap::check_invariants));
//! - the collector: the generation lists and `gc.garbage`
//!   ([`GcState::check_lists`](crate::gc::GcState::check_lists));
//! - weak references: every object's list
//!   ([`check_lists`](crate::weakref::check_lists)).
//!
//! The walk reads every live object's header (and its weak reference list
//! head, if its type has one), so it must not run while an object is half
//! built.

use std::collections::BTreeMap;

use crate::alloc::SmallHeap;
use crate::domains::Runtime;
use crate::object::layout::{GC_HEADER_SIZE, PyObject};

/// Where objects are recorded: the pools' block states, and the registry of
/// unpooled object blocks (which also has the objects the debug allocator
/// places inside pooled blocks).
#[derive(Clone, Copy)]
struct Objects<'a> {
    heap: &'a SmallHeap,
    raw: &'a BTreeMap<usize, bool>,
}

impl Objects<'_> {
    /// True iff `block` is an allocated block holding an object (a GC
    /// object, its header first, iff `gc`).
    fn is_block(self, block: usize, gc: bool) -> bool {
        match self.heap.object_kind(block as *mut u8) {
            Some(Some(g)) => g == gc,
            _ => self.raw.get(&block) == Some(&gc),
        }
    }

    /// `Some(is_gc)` if `op` is an allocated object, else None.
    fn kind(self, op: *mut PyObject) -> Option<bool> {
        let a = op as usize;
        if self.is_block(a, false) {
            Some(false)
        } else if a >= GC_HEADER_SIZE && self.is_block(a - GC_HEADER_SIZE, true) {
            Some(true)
        } else {
            None
        }
    }
}

/// Checks every structure; the error names the first broken invariant.
pub fn check_heap(rt: &mut Runtime) -> Result<(), String> {
    rt.heap.check_invariants()?;
    let mut gc_objects = rt.objects.raw.values().filter(|&&gc| gc).count();
    rt.heap
        .for_each_object(|_, gc| gc_objects += usize::from(gc));
    let objects = Objects {
        heap: &rt.heap,
        raw: &rt.objects.raw,
    };
    rt.gc.check_lists(
        gc_objects,
        |g| objects.is_block(g, true),
        |op| objects.kind(op).is_some(),
    )?;
    crate::weakref::check_lists(rt, |op| objects.kind(op))
}
