//! Weak references (their own issue). For now only the collector's hook.

use crate::gc::PyGC_Head;

/// Clears weak references to the objects in `unreachable` before any
/// finalizer runs and calls the callbacks of those still reachable; returns
/// how many weak references their callbacks freed and whether any callback
/// ran. No weak references exist yet, so there is nothing to do.
///
/// # Safety
/// `unreachable` and `old` are live GC lists during a collection.
pub unsafe fn handle_gc_weakrefs(
    _unreachable: *mut PyGC_Head,
    _old: *mut PyGC_Head,
) -> (isize, bool) {
    (0, false)
}
