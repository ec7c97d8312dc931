//! Leak reports and leak scopes from C.

use crate::domains::Py_ssize_t;
use crate::error::{self, Error};
use crate::leaks::{self, PyHeap_LeakScope};

fn write_to(out: *mut libc::FILE, text: &str) -> bool {
    // SAFETY: out is an open stream (the callers' contract).
    unsafe { super::write_stream(out, text) }
}

/// Writes the leak report of the objects alive now (by type, with
/// allocation sites when tracing; type objects left out) to `out`.
/// Returns the number of objects, or -1 if `out` is NULL or the write
/// fails.
///
/// # Safety
/// `out` is NULL or an open stream; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_WriteLeakReport(out: *mut libc::FILE) -> Py_ssize_t {
    if out.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_WriteLeakReport", || {
        // SAFETY: the caller holds the runtime lock.
        let l = unsafe { leaks::gather(|_| true) };
        let mut text = String::new();
        leaks::write(&mut text, &l, "now");
        if !write_to(out, &text) {
            return -1;
        }
        l.iter().map(|t| t.count).sum::<usize>() as Py_ssize_t
    })
}

/// Begins a leak scope: remembers which objects are alive now. End it with
/// `PyHeap_LeakScopeEnd`.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_LeakScopeBegin() -> *mut PyHeap_LeakScope {
    super::boundary("PyHeap_LeakScopeBegin", || {
        // SAFETY: the caller holds the runtime lock (the MEM/OBJ rule).
        let scope = unsafe { leaks::scope_begin() };
        Box::into_raw(Box::new(scope))
    })
}

/// Ends a leak scope and frees it: returns how many objects were made
/// since it began and are still alive (type objects left out), and writes
/// them to `out` as a leak report if `out` is not NULL. -1 if `scope` is
/// NULL. An object freed in the scope whose address a new one took is not
/// seen.
///
/// # Safety
/// `scope` came from `PyHeap_LeakScopeBegin` and is not used afterwards;
/// `out` is NULL or an open stream; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_LeakScopeEnd(
    scope: *mut PyHeap_LeakScope,
    out: *mut libc::FILE,
) -> Py_ssize_t {
    if scope.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_LeakScopeEnd", || {
        // SAFETY: caller's contract: from Box::into_raw, used once.
        let scope = unsafe { Box::from_raw(scope) };
        // SAFETY: the caller holds the runtime lock.
        let l = unsafe { leaks::scope_end(&scope) };
        if !out.is_null() {
            let mut text = String::new();
            leaks::write(&mut text, &l, "made in this scope");
            write_to(out, &text);
        }
        l.iter().map(|t| t.count).sum::<usize>() as Py_ssize_t
    })
}

/// Writes the live objects (type objects left out) to `path` as a snapshot
/// the `pyheap` report tool reads: each object's traceback is its type, as
/// a frame `<type name>:0`, above its allocation frames when tracing
/// (`pyheap stats -k lineno` groups by type; `-k traceback` by type and
/// allocation site). Returns the number of objects, or -1 with an error.
///
/// # Safety
/// `path` is a NUL-terminated string; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_DumpLiveObjects(path: *const core::ffi::c_char) -> Py_ssize_t {
    if path.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    // SAFETY: caller's contract.
    let path = unsafe { core::ffi::CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    super::boundary("PyHeap_DumpLiveObjects", || {
        // SAFETY: the caller holds the runtime lock.
        let snap = unsafe { leaks::live_snapshot() };
        match std::fs::write(&path, snap.dump()) {
            Ok(()) => snap.traces.len() as Py_ssize_t,
            Err(e) => {
                error::set(Error::System(format!("cannot write {path:?}: {e}")));
                -1
            }
        }
    })
}
