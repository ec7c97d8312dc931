//! The cyclic garbage collector: the GC header, the generation lists, the
//! collector's state and its entry points (SPEC.md §5;
//! `docs/design/gc-header.md`). The passes of a collection are in
//! `collect.rs`.
//!
//! Every GC object is one OBJ-domain block: a 16-byte [`PyGC_Head`] followed
//! by the object, so the object stays 16-byte aligned.
//!
//! | field      | outside a collection              | inside one (objects being collected) |
//! |------------|-----------------------------------|--------------------------------------|
//! | `_gc_next` | next on the list; 0 = untracked   | next; bit 0 = tentatively unreachable |
//! | `_gc_prev` | previous on the list, bit 0 = finalized | `gc_refs << 2`, bit 1 = collecting, bit 0 = finalized |
//!
//! Invariants outside a collection: a tracked object is on exactly one
//! circular, doubly linked list (generations 0–2 or the permanent one), and
//! its `_gc_prev` has no collecting bit.

pub mod api;
pub mod collect;
pub mod list;

use core::ffi::c_void;

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
pub(crate) const PREV_MASK_FINALIZED: usize = 1;
/// The object is in the set being collected.
pub(crate) const PREV_MASK_COLLECTING: usize = 2;
/// Flag bits of `_gc_prev`.
pub(crate) const PREV_FLAGS: usize = PREV_MASK_FINALIZED | PREV_MASK_COLLECTING;
/// Shift of `gc_refs` inside `_gc_prev` during a collection.
pub(crate) const PREV_SHIFT: u32 = 2;
/// Bit of `_gc_next` marking a tentatively unreachable object.
pub(crate) const NEXT_MASK_UNREACHABLE: usize = 1;

/// Generations: young, middle, old (the permanent one is index 3).
pub(crate) const NUM_GENERATIONS: usize = 3;
/// Index of the permanent generation (`gc.freeze`).
pub(crate) const PERMANENT: usize = 3;

/// `gc.DEBUG_STATS`: print statistics during collection.
pub const PyHeap_GC_DEBUG_STATS: i32 = 1;
/// `gc.DEBUG_COLLECTABLE`: print collectable objects found.
pub const PyHeap_GC_DEBUG_COLLECTABLE: i32 = 2;
/// `gc.DEBUG_UNCOLLECTABLE`: print uncollectable objects found.
pub const PyHeap_GC_DEBUG_UNCOLLECTABLE: i32 = 4;
/// `gc.DEBUG_SAVEALL`: append every unreachable object to the garbage list
/// instead of freeing it.
pub const PyHeap_GC_DEBUG_SAVEALL: i32 = 32;
/// `gc.DEBUG_LEAK`: COLLECTABLE | UNCOLLECTABLE | SAVEALL.
pub const PyHeap_GC_DEBUG_LEAK: i32 = 38;
/// Callback phase: a collection starts.
pub const PyHeap_GC_PHASE_START: i32 = 0;
/// Callback phase: a collection ended.
pub const PyHeap_GC_PHASE_STOP: i32 = 1;

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

/// Per-generation statistics (`gc.get_stats()`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyHeap_GCStats {
    /// Collections of this generation.
    pub collections: isize,
    /// Objects collected.
    pub collected: isize,
    /// Objects found uncollectable.
    pub uncollectable: isize,
}

/// What a collection callback is told (`gc.callbacks`' info dict).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyHeap_GCInfo {
    /// The generation collected.
    pub generation: i32,
    /// Objects collected (0 at "start").
    pub collected: isize,
    /// Objects found uncollectable (0 at "start").
    pub uncollectable: isize,
}

/// Called at the start (phase 0) and stop (phase 1) of each collection.
pub type PyHeap_GCCallback =
    Option<unsafe extern "C" fn(phase: i32, info: *const PyHeap_GCInfo, ctx: *mut c_void)>;

/// A registered callback.
#[derive(Clone, Copy)]
pub struct Callback {
    /// The function.
    pub f: unsafe extern "C" fn(i32, *const PyHeap_GCInfo, *mut c_void),
    /// Its context.
    pub ctx: *mut c_void,
}

/// The collector's state (CPython's `struct _gc_runtime_state`).
pub struct GcState {
    /// Heads: generations 0, 1, 2 and the permanent generation.
    pub heads: [PyGC_Head; NUM_GENERATIONS + 1],
    ready: bool,
    /// Thresholds (700, 10, 10).
    pub threshold: [isize; NUM_GENERATIONS],
    /// count[0]: GC allocations minus deallocations since the last
    /// collection; count[g]: collections of g-1 since the last of g.
    pub count: [isize; NUM_GENERATIONS],
    /// Automatic collection on.
    pub enabled: bool,
    /// A collection is running.
    pub collecting: bool,
    /// `DEBUG_*` flags.
    pub debug: i32,
    /// Per-generation statistics.
    pub stats: [PyHeap_GCStats; NUM_GENERATIONS],
    /// Survivors of the last full collection.
    pub long_lived_total: isize,
    /// Survivors of generation-1 collections since the last full one.
    pub long_lived_pending: isize,
    /// `gc.garbage`: strong references.
    pub garbage: Vec<*mut PyObject>,
    /// `gc.callbacks`.
    pub callbacks: Vec<Callback>,
}

impl GcState {
    /// CPython 3.11's defaults; lists made circular on first use, when their
    /// address is fixed.
    pub const fn new() -> Self {
        const EMPTY: PyGC_Head = PyGC_Head {
            _gc_next: 0,
            _gc_prev: 0,
        };
        const ZERO: PyHeap_GCStats = PyHeap_GCStats {
            collections: 0,
            collected: 0,
            uncollectable: 0,
        };
        GcState {
            heads: [EMPTY; NUM_GENERATIONS + 1],
            ready: false,
            threshold: [700, 10, 10],
            count: [0; NUM_GENERATIONS],
            enabled: true,
            collecting: false,
            debug: 0,
            stats: [ZERO; NUM_GENERATIONS],
            long_lived_total: 0,
            long_lived_pending: 0,
            garbage: Vec::new(),
            callbacks: Vec::new(),
        }
    }

    /// Head of generation `generation` (3: the permanent generation).
    pub fn head(&mut self, generation: usize) -> *mut PyGC_Head {
        if !self.ready {
            for h in self.heads.iter_mut() {
                // SAFETY: h is a live header; an empty list points at itself.
                unsafe { list::init(h) };
            }
            self.ready = true;
        }
        &mut self.heads[generation]
    }

    /// Appends the untracked `g` to the tail of generation 0.
    ///
    /// # Safety
    /// `g` is the live GC header of an untracked object.
    pub unsafe fn track(&mut self, g: *mut PyGC_Head) {
        let head = self.head(0);
        // SAFETY: caller's contract; head is a live list.
        unsafe {
            let finalized = (*g)._gc_prev & PREV_MASK_FINALIZED;
            list::append(g, head);
            (*g)._gc_prev |= finalized;
        }
    }

    /// Number of objects in generation `generation`.
    pub fn len(&mut self, generation: usize) -> usize {
        let head = self.head(generation);
        // SAFETY: a generation head is a live, well-formed list.
        unsafe { list::len(head) }
    }
}

impl GcState {
    /// Checks the lists outside a collection (the invariants of the module
    /// docs): every generation list is circular and doubly linked, holds
    /// at most `gc_objects` elements in all, none with the collecting or
    /// unreachable mark, each one an allocated GC object (`is_gc_block` of
    /// its header's address); every `gc.garbage` entry is an allocated
    /// object (`is_object`).
    pub fn check_lists(
        &mut self,
        gc_objects: usize,
        is_gc_block: impl Fn(usize) -> bool,
        is_object: impl Fn(*mut PyObject) -> bool,
    ) -> Result<(), String> {
        if self.collecting {
            // The lists are being rebuilt; nothing to hold them to.
            return Ok(());
        }
        let mut total = 0usize;
        for generation in 0..=PERMANENT {
            let head = self.head(generation);
            let mut prev = head;
            // SAFETY: each link is checked to be an allocated GC block (or
            // the head) before it is followed.
            let mut g = unsafe { (*head)._gc_next };
            while g != head as usize {
                total += 1;
                if total > gc_objects {
                    return Err(format!(
                        "gc: generation {generation}: more tracked objects than the \
                         {gc_objects} GC objects allocated (a cycle in the list?)"
                    ));
                }
                if g & NEXT_MASK_UNREACHABLE != 0 {
                    return Err(format!(
                        "gc: generation {generation}: header {g:#x} marked unreachable \
                         outside a collection"
                    ));
                }
                if !is_gc_block(g) {
                    return Err(format!(
                        "gc: generation {generation}: {g:#x} after {:#x} is not an \
                         allocated GC object",
                        prev as usize
                    ));
                }
                let h = g as *mut PyGC_Head;
                // SAFETY: h is the header of an allocated GC object.
                let (next, back) = unsafe { ((*h)._gc_next, (*h)._gc_prev) };
                if back & PREV_MASK_COLLECTING != 0 {
                    return Err(format!(
                        "gc: generation {generation}: header {g:#x} marked collecting \
                         outside a collection"
                    ));
                }
                if back & !PREV_FLAGS != prev as usize {
                    return Err(format!(
                        "gc: generation {generation}: header {g:#x} links back to {:#x}, \
                         not {:#x}",
                        back & !PREV_FLAGS,
                        prev as usize
                    ));
                }
                if next == 0 {
                    return Err(format!(
                        "gc: generation {generation}: header {g:#x} is listed but untracked"
                    ));
                }
                prev = h;
                g = next;
            }
            // SAFETY: head is a live list head.
            let back = unsafe { (*head)._gc_prev };
            if back & !PREV_FLAGS != prev as usize {
                return Err(format!(
                    "gc: generation {generation}: the head links back to {:#x}, not the \
                     last element {:#x}",
                    back & !PREV_FLAGS,
                    prev as usize
                ));
            }
        }
        for (i, &op) in self.garbage.iter().enumerate() {
            if !is_object(op) {
                return Err(format!(
                    "gc: garbage[{i}] = {op:p} is not an allocated object"
                ));
            }
        }
        Ok(())
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
/// `g` is the live GC header of a tracked object, on a doubly linked list.
pub unsafe fn untrack(g: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        list::remove(g);
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
        g.write(PyGC_Head {
            _gc_next: 0,
            _gc_prev: 0,
        })
    }
}
