//! Statistics: `PyHeap_GetAllocatedBlocks`, `PyHeap_GetHeapStats` and the
//! per-size-class report.

use core::ffi::{c_char, c_int, c_void};

use crate::domains::{Py_ssize_t, runtime};
use crate::stats::{PyHeap_HeapStats, Report};

/// Receives report text: `len` bytes at `text` (not NUL-terminated).
pub type PyHeap_WriteFn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, text: *const c_char, len: usize)>;

/// Report as CPython's `sys._debugmallocstats()` text.
pub const PYHEAP_STATS_TEXT: c_int = 0;
/// Report as one JSON object.
pub const PYHEAP_STATS_JSON: c_int = 1;

/// Number of MEM/OBJ blocks allocated now: pooled blocks plus those that
/// went to the RAW domain (CPython's `sys.getallocatedblocks()`).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GetAllocatedBlocks() -> Py_ssize_t {
    super::boundary("PyHeap_GetAllocatedBlocks", || {
        // SAFETY: the caller holds the runtime lock; we only read.
        let rt = unsafe { runtime() };
        (rt.heap.allocated_blocks() + rt.raw_allocated_blocks) as Py_ssize_t
    })
}

/// Fills `*out` with the pool heap's statistics. Returns 0, or -1 if `out`
/// is NULL.
///
/// # Safety
/// `out` must be NULL or point to writable memory for a `PyHeap_HeapStats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GetHeapStats(out: *mut PyHeap_HeapStats) -> c_int {
    if out.is_null() {
        return -1;
    }
    let stats = super::boundary("PyHeap_GetHeapStats", || {
        // SAFETY: the caller holds the runtime lock; we only read.
        let rt = unsafe { runtime() };
        Report::gather(&rt.heap, rt.raw_allocated_blocks).totals
    });
    // SAFETY: caller's contract.
    unsafe { out.write(stats) };
    0
}

fn render(format: c_int) -> Option<String> {
    // SAFETY: the caller holds the runtime lock; we only read.
    let rt = unsafe { runtime() };
    let report = Report::gather(&rt.heap, rt.raw_allocated_blocks);
    let mut s = String::new();
    let r = match format {
        PYHEAP_STATS_TEXT => report.write_text(&mut s),
        PYHEAP_STATS_JSON => report.write_json(&mut s),
        _ => return None,
    };
    r.ok().map(|_| s)
}

/// Writes the per-size-class report through `write(ctx, text, len)`.
/// `format` is `PYHEAP_STATS_TEXT` or `PYHEAP_STATS_JSON`. Returns 0, or -1
/// for a NULL `write` or an unknown format.
///
/// # Safety
/// `write` must be callable with `ctx`; it must not free pyheap memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_WriteMallocStats(
    write: PyHeap_WriteFn,
    ctx: *mut c_void,
    format: c_int,
) -> c_int {
    let Some(write) = write else { return -1 };
    let Some(text) = super::boundary("PyHeap_WriteMallocStats", || render(format)) else {
        return -1;
    };
    // SAFETY: the caller's callback gets a pointer and length into our string.
    unsafe { write(ctx, text.as_ptr().cast(), text.len()) };
    0
}

/// Writes the per-size-class report to `out` (a `FILE *`). Returns 0, or -1
/// for a NULL stream, an unknown format or a write error.
///
/// # Safety
/// `out` must be NULL or an open stdio stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_FPrintMallocStats(out: *mut libc::FILE, format: c_int) -> c_int {
    if out.is_null() {
        return -1;
    }
    let Some(text) = super::boundary("PyHeap_FPrintMallocStats", || render(format)) else {
        return -1;
    };
    // SAFETY: out is an open stream (caller); the buffer is our string.
    let n = unsafe { libc::fwrite(text.as_ptr().cast(), 1, text.len(), out) };
    if n == text.len() { 0 } else { -1 }
}

/// CPython's `_PyObject_DebugMallocStats(out)`: the text report; returns 1
/// (the pool allocator is always present).
///
/// # Safety
/// As for [`PyHeap_FPrintMallocStats`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyObject_DebugMallocStats(out: *mut libc::FILE) -> c_int {
    // SAFETY: forwarded contract.
    let r = unsafe { PyHeap_FPrintMallocStats(out, PYHEAP_STATS_TEXT) };
    if r == 0 { 1 } else { 0 }
}

/// The library's version, "MAJOR.MINOR.PATCH" (Cargo.toml's), to compare
/// with the `PYHEAP_VERSION_*` macros the program was compiled with.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_Version() -> *const core::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Checks every structure of the heap: the pool allocator's arenas, pools,
/// free lists and size-class lists, the collector's generation lists and
/// `gc.garbage`, and every object's weak reference list. Returns 0 if all
/// are consistent; otherwise -1, and writes a line naming the first broken
/// invariant to `out` (unless `out` is NULL). A debugging aid: it walks
/// every pool and every live object, so it takes time in proportion to the
/// heap. Call it with the runtime lock held, and not while an object is
/// half built (allocated but its header or weak reference list head not
/// yet set). During a collection (from a finalizer or a weak reference
/// callback) the collector's lists are not checked.
///
/// # Safety
/// `out` must be NULL or an open stdio stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_CheckHeap(out: *mut libc::FILE) -> c_int {
    let result = super::boundary("PyHeap_CheckHeap", || {
        // SAFETY: the caller holds the runtime lock; nothing else runs
        // while the check reads the structures.
        crate::check::check_heap(unsafe { runtime() })
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !out.is_null() {
                let line = format!("pyheap: heap check failed: {e}\n");
                // SAFETY: out is an open stream (caller).
                unsafe { super::write_stream(out, &line) };
            }
            -1
        }
    }
}
