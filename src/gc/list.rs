//! Circular doubly linked lists of GC headers with a sentinel head.
//!
//! Links are addresses stored in `usize`; `_gc_prev` carries flag bits in
//! its low two bits and `_gc_next` may carry the unreachable mark in bit 0,
//! so every read masks them and every write of a neighbour's `_gc_prev`
//! keeps its flags.

use super::{NEXT_MASK_UNREACHABLE, PREV_FLAGS, PyGC_Head};

/// The previous header (flags masked off).
///
/// # Safety
/// `g` is a live header whose `_gc_prev` holds a link.
#[inline(always)]
pub unsafe fn prev(g: *mut PyGC_Head) -> *mut PyGC_Head {
    // SAFETY: caller's contract.
    unsafe { ((*g)._gc_prev & !PREV_FLAGS) as *mut PyGC_Head }
}

/// The next header (unreachable mark masked off).
///
/// # Safety
/// `g` is a live header on a list.
#[inline(always)]
pub unsafe fn next(g: *mut PyGC_Head) -> *mut PyGC_Head {
    // SAFETY: caller's contract.
    unsafe { ((*g)._gc_next & !NEXT_MASK_UNREACHABLE) as *mut PyGC_Head }
}

/// Sets the previous link of `g`, keeping its flags.
///
/// # Safety
/// `g` is a live header.
#[inline(always)]
pub unsafe fn set_prev(g: *mut PyGC_Head, p: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe { (*g)._gc_prev = (p as usize) | ((*g)._gc_prev & PREV_FLAGS) }
}

/// Makes `head` an empty list.
///
/// # Safety
/// `head` is writable.
pub unsafe fn init(head: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        (*head)._gc_next = head as usize;
        (*head)._gc_prev = head as usize;
    }
}

/// True iff the list is empty.
///
/// # Safety
/// `head` is a live list head.
#[inline]
pub unsafe fn is_empty(head: *mut PyGC_Head) -> bool {
    // SAFETY: caller's contract.
    unsafe { next(head) == head }
}

/// Appends `g` (not on any list) at the tail of `head`'s list; `g`'s flags
/// are cleared.
///
/// # Safety
/// `head` is a live, doubly linked list; `g` is a live header on no list.
#[inline]
pub unsafe fn append(g: *mut PyGC_Head, head: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        let last = prev(head);
        (*last)._gc_next = g as usize;
        (*g)._gc_prev = last as usize;
        (*g)._gc_next = head as usize;
        (*head)._gc_prev = g as usize;
    }
}

/// Unlinks `g` from its doubly linked list (its own links are left stale).
///
/// # Safety
/// `g` is on a doubly linked list.
#[inline]
pub unsafe fn remove(g: *mut PyGC_Head) {
    // SAFETY: caller's contract; the neighbours are live headers.
    unsafe {
        let p = prev(g);
        let n = next(g);
        (*p)._gc_next = (*g)._gc_next;
        set_prev(n, p);
    }
}

/// Moves `g` from its list to the tail of `head`'s list, keeping its flags.
///
/// # Safety
/// `g` is on a doubly linked list; `head` is a live, doubly linked list.
#[inline]
pub unsafe fn move_to(g: *mut PyGC_Head, head: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        remove(g);
        let flags = (*g)._gc_prev & PREV_FLAGS;
        append(g, head);
        (*g)._gc_prev |= flags;
    }
}

/// Moves every element of `from` to the tail of `to`; `from` becomes empty.
///
/// # Safety
/// Both are live, doubly linked lists, and distinct.
pub unsafe fn merge(from: *mut PyGC_Head, to: *mut PyGC_Head) {
    // SAFETY: caller's contract.
    unsafe {
        if is_empty(from) {
            return;
        }
        let to_tail = prev(to);
        let first = next(from);
        let last = prev(from);
        (*to_tail)._gc_next = first as usize;
        set_prev(first, to_tail);
        (*last)._gc_next = to as usize;
        (*to)._gc_prev = last as usize;
        init(from);
    }
}

/// Number of elements.
///
/// # Safety
/// `head` is a live list (singly linked through `_gc_next` suffices).
pub unsafe fn len(head: *mut PyGC_Head) -> usize {
    let mut n = 0;
    // SAFETY: walking a well-formed circular list back to its head.
    unsafe {
        let mut g = next(head);
        while g != head {
            n += 1;
            g = next(g);
        }
    }
    n
}

/// Calls `f` on each element; `f` may unlink the element it is given, but
/// must not otherwise change the list.
///
/// # Safety
/// `head` is a live list.
pub unsafe fn for_each(head: *mut PyGC_Head, mut f: impl FnMut(*mut PyGC_Head)) {
    // SAFETY: caller's contract.
    unsafe {
        let mut g = next(head);
        while g != head {
            let n = next(g);
            f(g);
            g = n;
        }
    }
}
