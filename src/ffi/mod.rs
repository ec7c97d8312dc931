//! Every `extern "C"` function of pyheap. Each checks its arguments, then
//! calls into the core; none holds logic of its own.
//!
//! No panic may cross into C: the non-trivial entry points run inside
//! [`boundary`], which turns a panic into a fatal report naming the function;
//! the allocation fast paths contain no panicking code (and a panic in an
//! `extern "C"` function aborts in any case).

pub mod config;
pub mod gc;
pub mod heapgraph;
pub mod leaks;
pub mod mem;
pub mod object;
pub mod stats;
pub mod threads;
pub mod trace;
pub mod weakref;

/// Writes `text` to the C stream `out`; false if the write falls short.
///
/// # Safety
/// `out` is an open stream.
pub(crate) unsafe fn write_stream(out: *mut libc::FILE, text: &str) -> bool {
    // SAFETY: caller's contract; the buffer is ours.
    let n = unsafe { libc::fwrite(text.as_ptr().cast(), 1, text.len(), out) };
    n == text.len()
}

/// Runs `f`, turning a panic into a fatal report that names `api`.
pub(crate) fn boundary<R>(api: &'static str, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("panic");
            crate::fatal::internal(api, msg)
        }
    }
}
