//! One collection: CPython 3.11's algorithm (SPEC.md §5.3), pass by pass.
//! No pass recurses: transitive reachability is found by appending to the
//! list being walked.
//!
//! The runtime is reached through short borrows only, never held across a
//! call into user code (finalizers, `tp_clear`, callbacks can allocate,
//! free, track, untrack, or ask for a nested collection, which does nothing).

use core::ffi::{c_int, c_void};
use std::time::Instant;

use super::list;
use super::*;
use crate::domains::runtime;
use crate::object::alloc::is_gc;
use crate::object::dealloc::{decref, incref};
use crate::object::types::type_name;

const DEBUG_STATS: i32 = PyHeap_GC_DEBUG_STATS;
const DEBUG_COLLECTABLE: i32 = PyHeap_GC_DEBUG_COLLECTABLE;
const DEBUG_UNCOLLECTABLE: i32 = PyHeap_GC_DEBUG_UNCOLLECTABLE;
const DEBUG_SAVEALL: i32 = PyHeap_GC_DEBUG_SAVEALL;

#[inline(always)]
unsafe fn refs(g: *mut PyGC_Head) -> usize {
    // SAFETY: caller's contract: g is being collected.
    unsafe { (*g)._gc_prev >> PREV_SHIFT }
}

#[inline(always)]
unsafe fn set_refs(g: *mut PyGC_Head, n: usize) {
    // SAFETY: caller's contract: g is being collected.
    unsafe { (*g)._gc_prev = (n << PREV_SHIFT) | ((*g)._gc_prev & PREV_FLAGS) }
}

#[inline(always)]
unsafe fn is_collecting(g: *mut PyGC_Head) -> bool {
    // SAFETY: caller's contract: g is a live header.
    unsafe { (*g)._gc_prev & PREV_MASK_COLLECTING != 0 }
}

/// Calls the type's `tp_traverse` on the object of `g`.
///
/// # Safety
/// `g` is a live, tracked GC object's header.
#[inline]
unsafe fn traverse(
    g: *mut PyGC_Head,
    visit: unsafe extern "C" fn(*mut PyObject, *mut c_void) -> c_int,
    arg: *mut c_void,
) {
    let op = from_gc(g);
    // SAFETY: caller's contract; tp_traverse only reads the object.
    unsafe {
        if let Some(t) = (*(*op).ob_type).tp_traverse {
            t(op, Some(visit), arg);
        }
    }
}

/// The header of `op` if it is a GC object being collected.
///
/// # Safety
/// `op` is a live object.
#[inline(always)]
unsafe fn collecting_header(op: *mut PyObject) -> Option<*mut PyGC_Head> {
    // SAFETY: a GC object has a header before it. (`Py_VISIT` never passes
    // NULL, so, as in CPython, there is no test for it.)
    unsafe {
        if !is_gc(op) {
            return None;
        }
        let g = as_gc(op);
        is_collecting(g).then_some(g)
    }
}

/// update_refs. Pre: `head` is a doubly linked list of tracked objects.
/// Post: each has `gc_refs = ob_refcnt` and the collecting flag; the list
/// is only singly linked (prev links are overwritten).
unsafe fn update_refs(head: *mut PyGC_Head) {
    // SAFETY: caller's contract; every element is a live object.
    unsafe {
        list::for_each(head, |g| {
            let rc = (*from_gc(g)).ob_refcnt.max(0) as usize;
            (*g)._gc_prev =
                (rc << PREV_SHIFT) | ((*g)._gc_prev & PREV_MASK_FINALIZED) | PREV_MASK_COLLECTING;
        });
    }
}

unsafe extern "C" fn visit_decref(op: *mut PyObject, _arg: *mut c_void) -> c_int {
    // SAFETY: tp_traverse hands us live objects.
    unsafe {
        if let Some(g) = collecting_header(op) {
            // gc_refs -= 1, stopping at 0 (more references than the count
            // says is the caller's bug; it must not eat the flag bits).
            if (*g)._gc_prev >= 1 << PREV_SHIFT {
                (*g)._gc_prev -= 1 << PREV_SHIFT;
            }
        }
    }
    0
}

/// subtract_refs. Post: `gc_refs > 0` iff the object is referenced from
/// outside the set.
unsafe fn subtract_refs(head: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe { list::for_each(head, |g| traverse(g, visit_decref, head.cast())) }
}

unsafe extern "C" fn visit_reachable(op: *mut PyObject, arg: *mut c_void) -> c_int {
    let reachable = arg.cast::<PyGC_Head>();
    // SAFETY: tp_traverse hands us live objects; `reachable` is the young
    // list being walked by move_unreachable.
    unsafe {
        let Some(g) = collecting_header(op) else {
            return 0;
        };
        if (*g)._gc_next & NEXT_MASK_UNREACHABLE != 0 {
            // Tentatively unreachable: back to the end of the walk.
            list::remove(g);
            let last = ((*reachable)._gc_prev) as *mut PyGC_Head;
            (*last)._gc_next = g as usize;
            (*g)._gc_next = reachable as usize;
            (*reachable)._gc_prev = g as usize;
            set_refs(g, 1);
        } else if refs(g) == 0 {
            // Not walked yet: make sure the walk treats it as reachable.
            set_refs(g, 1);
        }
    }
    0
}

/// move_unreachable. Pre: `young` after subtract_refs. Post: `young` holds
/// the reachable objects, doubly linked again, collecting flag cleared;
/// `unreachable` holds the rest, doubly linked, each marked in `_gc_next`
/// and still flagged collecting. Returns how many objects are reachable
/// (sparing the caller a pass to count them).
unsafe fn move_unreachable(young: *mut PyGC_Head, unreachable: *mut PyGC_Head) -> usize {
    let mut reachable = 0;
    // SAFETY: caller's contract; see the pre- and post-conditions.
    unsafe {
        let mut prev = young;
        let mut g = list::next(young);
        while g != young {
            if refs(g) > 0 {
                traverse(g, visit_reachable, young.cast());
                (*g)._gc_prev = (prev as usize) | ((*g)._gc_prev & PREV_MASK_FINALIZED);
                prev = g;
                reachable += 1;
            } else {
                (*prev)._gc_next = (*g)._gc_next;
                let last = list::prev(unreachable);
                (*last)._gc_next = NEXT_MASK_UNREACHABLE | g as usize;
                (*g)._gc_prev = (last as usize) | ((*g)._gc_prev & PREV_FLAGS);
                (*g)._gc_next = NEXT_MASK_UNREACHABLE | unreachable as usize;
                (*unreachable)._gc_prev = g as usize;
            }
            g = list::next(prev);
        }
        (*young)._gc_prev = prev as usize;
    }
    reachable
}

/// Removes the unreachable marks from `_gc_next` of a list.
unsafe fn clear_unreachable_mask(head: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        (*head)._gc_next &= !NEXT_MASK_UNREACHABLE;
        let mut g = list::next(head);
        while g != head {
            (*g)._gc_next &= !NEXT_MASK_UNREACHABLE;
            g = list::next(g);
        }
    }
}

/// update_refs + subtract_refs + move_unreachable; returns how many
/// objects stayed in `base`.
unsafe fn deduce_unreachable(base: *mut PyGC_Head, unreachable: *mut PyGC_Head) -> usize {
    // SAFETY: caller's contract.
    unsafe {
        update_refs(base);
        subtract_refs(base);
        move_unreachable(base, unreachable)
    }
}

unsafe extern "C" fn visit_move(op: *mut PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: tp_traverse hands us live objects; arg is the finalizers list.
    unsafe {
        if let Some(g) = collecting_header(op) {
            (*g)._gc_prev &= !PREV_MASK_COLLECTING;
            list::move_to(g, arg.cast());
        }
    }
    0
}

/// Moves objects with a legacy `tp_del`, and everything they reach, from
/// `unreachable` to `finalizers` (they are uncollectable). Returns whether
/// any object left in `unreachable` may have a finalizer to run (so the
/// finalizer and resurrection passes can be skipped when none has).
unsafe fn move_legacy_finalizers(unreachable: *mut PyGC_Head, finalizers: *mut PyGC_Head) -> bool {
    let mut to_finalize = false;
    // SAFETY: caller's contract.
    unsafe {
        let mut g = list::next(unreachable);
        while g != unreachable {
            let n = list::next(g);
            let tp = (*from_gc(g)).ob_type;
            if (*tp).tp_del.is_some() {
                (*g)._gc_prev &= !PREV_MASK_COLLECTING;
                list::move_to(g, finalizers);
            } else if (*tp).tp_finalize.is_some() && (*g)._gc_prev & PREV_MASK_FINALIZED == 0 {
                to_finalize = true;
            }
            g = n;
        }
        // The list grows while we walk it: reachability without recursion.
        let mut g = list::next(finalizers);
        while g != finalizers {
            traverse(g, visit_move, finalizers.cast());
            g = list::next(g);
        }
    }
    to_finalize
}

/// Runs `tp_finalize` once for each unreachable object, the graph intact.
unsafe fn finalize_garbage(unreachable: *mut PyGC_Head) {
    let mut seen = PyGC_Head {
        _gc_next: 0,
        _gc_prev: 0,
    };
    let seen_p: *mut PyGC_Head = &mut seen;
    // SAFETY: objects move one at a time to `seen`, so a finalizer that
    // frees or untracks others leaves both lists well formed.
    unsafe {
        list::init(seen_p);
        while !list::is_empty(unreachable) {
            let g = list::next(unreachable);
            list::move_to(g, seen_p);
            let op = from_gc(g);
            if (*g)._gc_prev & PREV_MASK_FINALIZED == 0 {
                if let Some(fin) = (*(*op).ob_type).tp_finalize {
                    (*g)._gc_prev |= PREV_MASK_FINALIZED;
                    incref(op);
                    fin(op);
                    decref(op);
                }
            }
        }
        list::merge(seen_p, unreachable);
    }
}

/// Breaks the cycles with `tp_clear` (or saves them with DEBUG_SAVEALL).
/// Objects that survive their clear move to `old`.
unsafe fn delete_garbage(collectable: *mut PyGC_Head, old: *mut PyGC_Head) {
    // SAFETY: each object is live while it is on the list; clearing may free
    // it (its deallocator unlinks it) or others.
    unsafe {
        while !list::is_empty(collectable) {
            let g = list::next(collectable);
            let op = from_gc(g);
            if runtime().gc.debug & DEBUG_SAVEALL != 0 {
                incref(op);
                runtime().gc.garbage.push(op);
            } else if let Some(clear) = (*(*op).ob_type).tp_clear {
                incref(op);
                clear(op);
                decref(op);
            }
            if list::next(collectable) == g {
                (*g)._gc_prev &= !PREV_MASK_COLLECTING;
                list::move_to(g, old);
            }
        }
    }
}

/// A debug line of the `PyHeap_GC_DEBUG_*` flags, sent where reports go
/// (stderr, `PYHEAP_LOG_FILE`, or the `PyHeap_SetOutput` callback), as
/// CPython writes them to `sys.stderr`.
macro_rules! gc_debug {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        crate::fatal::write_report(line.as_bytes());
    }};
}
fn debug_print_objects(head: *mut PyGC_Head, what: &str) {
    // SAFETY: a live list of objects.
    unsafe {
        list::for_each(head, |g| {
            let op = from_gc(g);
            gc_debug!("gc: {what} <{} {:p}>", type_name((*op).ob_type), op);
        });
    }
}

fn invoke_callbacks(phase: i32, info: PyHeap_GCInfo) {
    // SAFETY: a short borrow to copy the list; callbacks run unborrowed.
    let cbs: Vec<Callback> = unsafe { runtime() }.gc.callbacks.clone();
    for cb in cbs {
        // SAFETY: the callback was registered by the program for this.
        unsafe { (cb.f)(phase, &info, cb.ctx) };
    }
}

/// Collects `generation` (0–2). Returns `n + m`: unreachable objects found
/// (collected plus uncollectable). 0 at once if a collection is running.
///
/// # Safety
/// Runtime lock held; every tracked object is live and well formed.
pub unsafe fn collect_with_callbacks(generation: usize) -> isize {
    // SAFETY: short borrows of the runtime.
    unsafe {
        if runtime().gc.collecting {
            return 0;
        }
        runtime().gc.collecting = true;
    }
    let start = PyHeap_GCInfo {
        generation: generation as i32,
        ..Default::default()
    };
    // The caller's error survives the collection, and an error that a
    // finalizer, `tp_clear` or callback leaves is reported and forgotten, as
    // CPython's `PyGC_Collect` and `gc_collect_main` do.
    let saved = crate::error::last();
    crate::error::clear();
    invoke_callbacks(0, start);
    // SAFETY: the lock is held and no collection runs.
    let (collected, uncollectable) = unsafe { collect_main(generation) };
    if let Some(e) = crate::error::last() {
        gc_debug!("pyheap: exception ignored in garbage collection\n  {e}");
    }
    match saved {
        Some(e) => crate::error::set(e),
        None => crate::error::clear(),
    }
    invoke_callbacks(
        1,
        PyHeap_GCInfo {
            generation: generation as i32,
            collected,
            uncollectable,
        },
    );
    // SAFETY: short borrow.
    unsafe { runtime().gc.collecting = false };
    collected + uncollectable
}

/// The shutdown collection (CPython's `_PyGC_CollectNoFail`): a full
/// collection without the callbacks, leaving no error pending. 0 at once if
/// a collection is running.
///
/// # Safety
/// Runtime lock held; every tracked object is live and well formed.
pub unsafe fn collect_no_fail() -> isize {
    // SAFETY: short borrows of the runtime.
    unsafe {
        if runtime().gc.collecting {
            return 0;
        }
        runtime().gc.collecting = true;
    }
    // SAFETY: the lock is held and no collection runs.
    let (collected, uncollectable) = unsafe { collect_main(NUM_GENERATIONS - 1) };
    crate::error::clear();
    // SAFETY: short borrow.
    unsafe { runtime().gc.collecting = false };
    collected + uncollectable
}

/// Untracks the surviving tuples that cannot be part of a cycle; returns
/// how many.
///
/// # Safety
/// `young` is a live GC list of reachable objects.
unsafe fn untrack_tuples(young: *mut PyGC_Head) -> usize {
    let mut n = 0;
    // SAFETY: caller's contract; `for_each` reads the next node before the
    // callback, which may unlink the current one. Without tuples, a whole
    // pass over the survivors is saved.
    unsafe {
        if runtime().objects.tuples == 0 {
            return 0;
        }
        list::for_each(young, |g| {
            n += crate::object::tuple::maybe_untrack(from_gc(g)) as usize
        });
    }
    n
}

/// The collection proper; returns (collected, uncollectable).
unsafe fn collect_main(generation: usize) -> (isize, isize) {
    let t0 = Instant::now();
    // SAFETY: runtime lock held; heads are stable addresses in the static
    // runtime; each borrow below is short.
    unsafe {
        let st = &mut runtime().gc;
        let debug = st.debug;
        if debug & DEBUG_STATS != 0 {
            gc_debug!("gc: collecting generation {generation}...");
            let sizes: Vec<usize> = (0..NUM_GENERATIONS).map(|i| st.len(i)).collect();
            gc_debug!(
                "gc: objects in each generation: {} {} {}",
                sizes[0],
                sizes[1],
                sizes[2]
            );
            gc_debug!("gc: objects in permanent generation: {}", st.len(PERMANENT));
        }
        if generation + 1 < NUM_GENERATIONS {
            st.count[generation + 1] += 1;
        }
        for c in st.count.iter_mut().take(generation + 1) {
            *c = 0;
        }
        let young = st.head(generation);
        for i in 0..generation {
            let h = st.head(i);
            list::merge(h, young);
        }
        let old = if generation + 1 < NUM_GENERATIONS {
            st.head(generation + 1)
        } else {
            young
        };

        let mut unreachable_head = PyGC_Head {
            _gc_next: 0,
            _gc_prev: 0,
        };
        let unreachable: *mut PyGC_Head = &mut unreachable_head;
        list::init(unreachable);
        let survivors = deduce_unreachable(young, unreachable) - untrack_tuples(young);

        // Survivors move on.
        if young != old {
            if generation == NUM_GENERATIONS - 2 {
                runtime().gc.long_lived_pending += survivors as isize;
            }
            list::merge(young, old);
        } else {
            let st = &mut runtime().gc;
            st.long_lived_pending = 0;
            st.long_lived_total = survivors as isize;
        }

        clear_unreachable_mask(unreachable);
        let mut finalizers_head = PyGC_Head {
            _gc_next: 0,
            _gc_prev: 0,
        };
        let finalizers: *mut PyGC_Head = &mut finalizers_head;
        list::init(finalizers);
        let to_finalize = move_legacy_finalizers(unreachable, finalizers);

        if debug & DEBUG_COLLECTABLE != 0 {
            debug_print_objects(unreachable, "collectable");
        }

        let (mut m, callbacks_ran) = crate::weakref::handle_gc_weakrefs(unreachable, old);

        // Beyond CPython: when no finalizer and no weakref callback ran, no
        // user code has run since the graph was examined, so nothing can
        // have been resurrected and the second examination is skipped.
        let mut final_head = PyGC_Head {
            _gc_next: 0,
            _gc_prev: 0,
        };
        let final_unreachable: *mut PyGC_Head = &mut final_head;
        list::init(final_unreachable);
        if to_finalize || callbacks_ran {
            finalize_garbage(unreachable);
            // Resurrection: whatever a finalizer made reachable survives.
            list::for_each(unreachable, |g| (*g)._gc_prev &= !PREV_MASK_COLLECTING);
            deduce_unreachable(unreachable, final_unreachable);
            clear_unreachable_mask(final_unreachable);
            list::merge(unreachable, old);
        } else {
            list::merge(unreachable, final_unreachable);
        }

        m += list::len(final_unreachable) as isize;
        delete_garbage(final_unreachable, old);

        let n = list::len(finalizers) as isize;
        if debug & DEBUG_UNCOLLECTABLE != 0 {
            debug_print_objects(finalizers, "uncollectable");
        }
        if debug & DEBUG_STATS != 0 {
            gc_debug!(
                "gc: done, {} unreachable, {} uncollectable, {:.4}s elapsed",
                m + n,
                n,
                t0.elapsed().as_secs_f64()
            );
        }
        // Legacy finalizers: into gc.garbage, and kept alive in `old`.
        list::for_each(finalizers, |g| {
            let op = from_gc(g);
            if debug & DEBUG_SAVEALL != 0 || (*(*op).ob_type).tp_del.is_some() {
                incref(op);
                runtime().gc.garbage.push(op);
            }
        });
        list::merge(finalizers, old);

        let s = &mut runtime().gc.stats[generation];
        s.collections += 1;
        s.collected += m;
        s.uncollectable += n;
        (m, n)
    }
}

/// Picks the generation to collect after an allocation (the oldest whose
/// count passed its threshold, with the 25% rule for full collections) and
/// collects it. Returns the number found unreachable.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn collect_generations() -> isize {
    // SAFETY: short borrow.
    let pick = unsafe {
        let st = &runtime().gc;
        (0..NUM_GENERATIONS).rev().find(|&i| {
            st.count[i] > st.threshold[i]
                && !(i == NUM_GENERATIONS - 1 && st.long_lived_pending < st.long_lived_total / 4)
        })
    };
    match pick {
        // SAFETY: forwarded contract.
        Some(g) => unsafe { collect_with_callbacks(g) },
        None => 0,
    }
}
