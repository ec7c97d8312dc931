//! Reports of detected misuse, written without allocating, then `abort()`.
//!
//! A misuse report names the kind of error, the address and the API that
//! found it. It is formatted into a fixed buffer on the stack and written with
//! `write(2)`, so it works even when the heap it describes is corrupt.

use core::ffi::{c_char, c_void};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// A fixed-size text buffer that silently truncates.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// A program's receiver of pyheap's reports (`PyHeap_SetOutput`): called
/// with each report's text (not NUL-terminated) and the context given.
pub type PyHeap_OutputFn =
    Option<unsafe extern "C" fn(text: *const c_char, len: usize, ctx: *mut c_void)>;

/// The output callback and its context, as one pair: `set_output` fills
/// the slot not in use, then publishes its number, so a report never pairs
/// one setting's function with another's context (unless two settings race
/// each other during one report).
static OUTPUT: [[AtomicUsize; 2]; 2] = [
    [AtomicUsize::new(0), AtomicUsize::new(0)],
    [AtomicUsize::new(0), AtomicUsize::new(0)],
];
static OUTPUT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Sends reports to `f(text, len, ctx)` from now on (None: back to the log
/// file or stderr).
pub fn set_output(f: PyHeap_OutputFn, ctx: *mut c_void) {
    let next = OUTPUT_SLOT.load(Ordering::Acquire) ^ 1;
    OUTPUT[next][0].store(f.map_or(0, |f| f as usize), Ordering::Relaxed);
    OUTPUT[next][1].store(ctx as usize, Ordering::Relaxed);
    OUTPUT_SLOT.store(next, Ordering::Release);
}

/// Writes a report (a misuse report, a warning, statistics at exit): to the
/// callback set with `PyHeap_SetOutput`, else to `PYHEAP_LOG_FILE`, else to
/// stderr. Never allocates; failures are ignored.
pub fn write_report(bytes: &[u8]) {
    let slot = &OUTPUT[OUTPUT_SLOT.load(Ordering::Acquire)];
    let f = slot[0].load(Ordering::Relaxed);
    if f != 0 {
        let ctx = slot[1].load(Ordering::Relaxed) as *mut c_void;
        // SAFETY: the value was stored from a function pointer of this type
        // by set_output.
        let f: unsafe extern "C" fn(*const c_char, usize, *mut c_void) =
            unsafe { core::mem::transmute(f) };
        // SAFETY: the program's callback, with a live buffer.
        unsafe { f(bytes.as_ptr().cast(), bytes.len(), ctx) };
        return;
    }
    write_fd(crate::config::log_fd(), bytes);
}

/// Writes all of `bytes` to standard error, ignoring failures.
pub fn write_stderr(bytes: &[u8]) {
    write_fd(2, bytes);
}

fn write_fd(fd: core::ffi::c_int, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: the pointer and length describe the live slice `rest`.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// The kinds of misuse pyheap detects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// A pooled block freed twice.
    DoubleFree,
    /// A pointer inside a pool that is not the start of an allocated block.
    InvalidFree,
    /// A reference count went below zero.
    NegativeRefcount,
    /// `Py_INCREF`/`Py_DECREF` on memory that holds no live object.
    FreedObject,
    /// `PyObject_GC_Track` on an object already tracked.
    AlreadyTracked,
    /// An object freed while weak references still point to it.
    DanglingWeakref,
    /// Debug allocator: a block released with another domain's function.
    WrongDomain,
    /// Debug allocator: the guard after the data was overwritten.
    BufferOverflow,
    /// Debug allocator: the guard before the data was overwritten.
    BufferUnderflow,
    /// Debug allocator: freed memory was written to.
    WriteAfterFree,
}

impl Misuse {
    /// The one-line name of the error.
    pub fn title(self) -> &'static str {
        match self {
            Misuse::DoubleFree => "double free",
            Misuse::InvalidFree => "invalid free (not the start of an allocated block)",
            Misuse::NegativeRefcount => "reference count below zero",
            Misuse::FreedObject => "use of a freed object",
            Misuse::AlreadyTracked => "object already tracked by the garbage collector",
            Misuse::DanglingWeakref => "object freed with live weak references",
            Misuse::WrongDomain => "block released with another domain's function",
            Misuse::BufferOverflow => "buffer overflow (bad trailing pad byte)",
            Misuse::BufferUnderflow => "buffer underflow (bad leading pad byte)",
            Misuse::WriteAfterFree => "write to freed memory",
        }
    }
}

/// Prints `pyheap: fatal error in <api>: <kind> at address <p>`, then the
/// details `detail` writes, then aborts.
#[cold]
#[inline(never)]
pub fn misuse(
    kind: Misuse,
    addr: usize,
    api: &str,
    detail: &dyn Fn(&mut StackBuf<2048>) -> fmt::Result,
) -> ! {
    let mut out = StackBuf::<2048>::new();
    let _ = writeln!(
        out,
        "pyheap: fatal error in {api}: {} at address {addr:#x}",
        kind.title()
    );
    let _ = detail(&mut out);
    let _ = writeln!(out, "pyheap: aborting");
    write_report(out.as_bytes());
    std::process::abort()
}

/// Prints a fatal message for an internal failure (a panic stopped at the C
/// boundary, say) and aborts.
#[cold]
pub fn internal(api: &str, message: &str) -> ! {
    error(api, message)
}

/// Prints `pyheap: fatal error in <api>: <message>` and aborts: for a
/// misuse that has no address to name (the runtime lock used wrongly, say).
#[cold]
pub fn error(api: &str, message: &str) -> ! {
    let mut out = StackBuf::<1024>::new();
    let _ = writeln!(out, "pyheap: fatal error in {api}: {message}");
    write_report(out.as_bytes());
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_buffer_truncates_instead_of_failing() {
        let mut b = StackBuf::<8>::new();
        write!(b, "0123456789").unwrap();
        assert_eq!(b.as_bytes(), b"01234567");
    }
}
