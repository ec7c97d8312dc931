//! The GC header and the generation lists (the collection itself comes with
//! the collector issue; see `docs/design/gc-header.md`).
//!
//! Every GC object is one OBJ-domain block: a 16-byte [`PyGC_Head`] followed
//! by the object, so the object stays 16-byte aligned. `_gc_next == 0` means
//! untracked; a tracked object is on one generation's circular doubly linked
//! list, whose sentinel head lives in [`GcState`]. The low two bits of
//! `_gc_prev` are flags (bit 0: finalized, kept across untracking).

use core::ptr;

use crate::object::layout::PyObject;

/// CPython's `PyGC_Head` (internal: not in the C header).
#[repr(C)]
#[derive(Debug)]
pub struct PyGC_Head {
    /// Next on the generation list, or 0 when untracked.
    pub _gc_next: usize,
    /// Previous on the list, with flag bits in the low two bits.
    pub _gc_prev: usize,
}

/// `tp_finalize` has run (kept across untracking).
pub const PREV_MASK_FINALIZED: usize = 1;
/// The object is in the set being collected.
pub const PREV_MASK_COLLECTING: usize = 2;
/// Flag bits of `_gc_prev`.
pub const PREV_FLAGS: usize = PREV_MASK_FINALIZED | PREV_MASK_COLLECTING;

/// Generations: young, middle, old (the permanent one follows them).
pub const NUM_GENERATIONS: usize = 3;

/// The GC header of `op`.
#[inline(always)]
pub fn as_gc(op: *mut PyObject) -> *mut PyGC_Head {
    op.cast::<PyGC_Head>().wrapping_sub(1)
}

/// The object after a GC header.
#[inline(always)]
pub fn from_gc(g: *mut PyGC_Head) -> *mut PyObject {
    g.wrapping_add(1).cast()
}

/// List heads (sentinels) for each generation plus the permanent one.
pub struct GcState {
    /// Heads: generations 0, 1, 2 and the permanent generation.
    pub heads: [PyGC_Head; NUM_GENERATIONS + 1],
    ready: bool,
}

impl GcState {
    /// Empty lists (made circular on first use, when their address is fixed).
    pub const fn new() -> Self {
        const EMPTY: PyGC_Head = PyGC_Head {
            _gc_next: 0,
            _gc_prev: 0,
        };
        GcState {
            heads: [EMPTY; NUM_GENERATIONS + 1],
            ready: false,
        }
    }

    fn ensure_ready(&mut self) {
        if !self.ready {
            for h in self.heads.iter_mut() {
                let a = h as *mut PyGC_Head as usize;
                h._gc_next = a;
                h._gc_prev = a;
            }
            self.ready = true;
        }
    }

    /// Head of generation `generation` (3: the permanent generation).
    pub fn head(&mut self, generation: usize) -> *mut PyGC_Head {
        self.ensure_ready();
        &mut self.heads[generation]
    }

    /// Appends the untracked `g` to the tail of generation 0.
    ///
    /// # Safety
    /// `g` is the live GC header of an untracked object.
    pub unsafe fn track(&mut self, g: *mut PyGC_Head) {
        let head = self.head(0);
        // SAFETY: head and its tail are live headers of the circular list;
        // g is live (caller).
        unsafe {
            let tail = ((*head)._gc_prev & !PREV_FLAGS) as *mut PyGC_Head;
            (*tail)._gc_next = g as usize;
            (*g)._gc_prev = (tail as usize) | ((*g)._gc_prev & PREV_MASK_FINALIZED);
            (*g)._gc_next = head as usize;
            (*head)._gc_prev = g as usize;
        }
    }

    /// Number of objects in generation `generation`.
    pub fn len(&mut self, generation: usize) -> usize {
        let head = self.head(generation);
        let mut n = 0;
        // SAFETY: walking a circular list of live headers back to its head.
        unsafe {
            let mut p = (*head)._gc_next as *mut PyGC_Head;
            while p != head {
                n += 1;
                p = (*p)._gc_next as *mut PyGC_Head;
            }
        }
        n
    }
}

impl Default for GcState {
    fn default() -> Self {
        Self::new()
    }
}

/// Unlinks the tracked `g` from its list; keeps only the finalized flag.
///
/// # Safety
/// `g` is the live GC header of a tracked object (outside a collection).
pub unsafe fn untrack(g: *mut PyGC_Head) {
    // SAFETY: a tracked header's neighbours are live headers of its list.
    unsafe {
        let prev = ((*g)._gc_prev & !PREV_FLAGS) as *mut PyGC_Head;
        let next = (*g)._gc_next as *mut PyGC_Head;
        (*prev)._gc_next = next as usize;
        (*next)._gc_prev = (prev as usize) | ((*next)._gc_prev & PREV_FLAGS);
        (*g)._gc_next = 0;
        (*g)._gc_prev &= PREV_MASK_FINALIZED;
    }
}

/// True iff the object with header `g` is tracked.
///
/// # Safety
/// `g` is a live GC header.
#[inline]
pub unsafe fn is_tracked(g: *mut PyGC_Head) -> bool {
    // SAFETY: caller's contract.
    unsafe { (*g)._gc_next != 0 }
}

/// Writes a zeroed header (untracked, not finalized) at `g`.
///
/// # Safety
/// `g` is writable for a header.
pub unsafe fn init_header(g: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        ptr::write(
            g,
            PyGC_Head {
                _gc_next: 0,
                _gc_prev: 0,
            },
        )
    }
}
