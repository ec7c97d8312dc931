//! Expected failures: CPython would raise an exception; pyheap returns the
//! same error value (NULL or -1) and records the error here, per thread, for
//! `PyHeap_LastError` (SPEC.md, "pyheap's decisions").

use std::cell::RefCell;
use std::ffi::CString;

/// An error CPython would raise, by its exception type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `MemoryError`.
    #[error("MemoryError: out of memory")]
    NoMemory,
    /// `SystemError`: a bad internal call or an inconsistent type.
    #[error("SystemError: {0}")]
    System(String),
    /// `TypeError`.
    #[error("TypeError: {0}")]
    Type(String),
    /// `ValueError`.
    #[error("ValueError: {0}")]
    Value(String),
    /// `RuntimeError`.
    #[error("RuntimeError: {0}")]
    Runtime(String),
    /// `ReferenceError`: a proxy used after its referent died.
    #[error("ReferenceError: {0}")]
    Reference(String),
    /// `IndexError`.
    #[error("IndexError: {0}")]
    Index(String),
}

/// The C-visible kind of the last error (`PyHeap_ErrorKind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PyHeap_ErrorKind {
    /// No error recorded.
    PYHEAP_ERR_NONE = 0,
    /// Out of memory (`MemoryError`).
    PYHEAP_ERR_NO_MEMORY = 1,
    /// `SystemError`.
    PYHEAP_ERR_SYSTEM = 2,
    /// `TypeError`.
    PYHEAP_ERR_TYPE = 3,
    /// `ValueError`.
    PYHEAP_ERR_VALUE = 4,
    /// `RuntimeError`.
    PYHEAP_ERR_RUNTIME = 5,
    /// `ReferenceError`.
    PYHEAP_ERR_REFERENCE = 6,
    /// `IndexError`.
    PYHEAP_ERR_INDEX = 7,
}

impl Error {
    /// CPython's `PyErr_BadInternalCall`: a `SystemError` for a NULL or
    /// wrong-typed argument.
    pub fn bad_internal_call() -> Error {
        Error::System("bad argument to internal function".into())
    }

    /// The kind, for C.
    pub fn kind(&self) -> PyHeap_ErrorKind {
        match self {
            Error::NoMemory => PyHeap_ErrorKind::PYHEAP_ERR_NO_MEMORY,
            Error::System(_) => PyHeap_ErrorKind::PYHEAP_ERR_SYSTEM,
            Error::Type(_) => PyHeap_ErrorKind::PYHEAP_ERR_TYPE,
            Error::Value(_) => PyHeap_ErrorKind::PYHEAP_ERR_VALUE,
            Error::Runtime(_) => PyHeap_ErrorKind::PYHEAP_ERR_RUNTIME,
            Error::Reference(_) => PyHeap_ErrorKind::PYHEAP_ERR_REFERENCE,
            Error::Index(_) => PyHeap_ErrorKind::PYHEAP_ERR_INDEX,
        }
    }
}

thread_local! {
    static LAST: RefCell<Option<(Error, CString)>> = const { RefCell::new(None) };
}

/// Records `e` as this thread's last error.
pub fn set(e: Error) {
    let text = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = Some((e, text)));
}

/// Forgets this thread's last error.
pub fn clear() {
    LAST.with(|l| *l.borrow_mut() = None);
}

/// This thread's last error.
pub fn last() -> Option<Error> {
    LAST.with(|l| l.borrow().as_ref().map(|(e, _)| e.clone()))
}

/// Pointer to the message of this thread's last error (valid until the
/// next error is recorded or cleared on this thread), or null.
pub fn last_message_ptr() -> *const core::ffi::c_char {
    LAST.with(|l| {
        l.borrow()
            .as_ref()
            .map_or(core::ptr::null(), |(_, s)| s.as_ptr())
    })
}

/// Records `e` and returns null: the shape of CPython's error returns.
pub fn null<T>(e: Error) -> *mut T {
    set(e);
    core::ptr::null_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_is_per_thread_and_clearable() {
        set(Error::Type("bad".into()));
        assert_eq!(last(), Some(Error::Type("bad".into())));
        assert!(!last_message_ptr().is_null());
        std::thread::spawn(|| assert_eq!(last(), None))
            .join()
            .unwrap();
        clear();
        assert_eq!(last(), None);
        assert!(last_message_ptr().is_null());
    }
}
