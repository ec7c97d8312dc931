//! Configuration from C: `PyHeap_Config` with `PyHeap_InitConfig` and
//! `PyHeap_Initialize`, `PyHeap_SetOption`, `PyHeap_PrintConfig`,
//! `PyHeap_GetAllocatorName`, and `PyHeap_SetOutput` for where reports go.

use core::ffi::{CStr, c_char, c_int, c_long, c_void};

use crate::config::{self, Source};
use crate::error::{self, Error};
use crate::fatal::{self, PyHeap_OutputFn};

/// Settings for `PyHeap_Initialize`. Start from `PyHeap_InitConfig`, which
/// marks every field "keep" (NULL or -1), and set the ones to change.
#[repr(C)]
pub struct PyHeap_Config {
    /// Allocator mode: "pymalloc", "pymalloc_debug", "malloc",
    /// "malloc_debug" or "debug" (changeable only before the first MEM or
    /// OBJ allocation); NULL keeps it.
    pub malloc: *const c_char,
    /// Collector thresholds (CPython's 700, 10, 10 by default); -1 keeps one.
    pub gc_threshold: [c_long; 3],
    /// Collector debug flags (`PyHeap_GC_DEBUG_*`); -1 keeps them.
    pub gc_debug: c_int,
    /// File reports are appended to; "" for stderr; NULL keeps it.
    pub log_file: *const c_char,
    /// 1 prints the allocator statistics at exit, 0 does not; -1 keeps it.
    pub malloc_stats: c_int,
    /// Allocation tracing: 0 stops it, 1 to 65535 starts it recording that
    /// many frames per block; -1 keeps it.
    pub tracemalloc: c_int,
    /// The leak report at finalisation or exit: "0" none, "1" where reports
    /// go, anything else a file to append it to; NULL keeps it.
    pub leak_report: *const c_char,
    /// 1: leaks found at exit make the exit status 1; -1 keeps it.
    pub abort_on_leak: c_int,
}

/// Fills `*c` with "keep every setting".
///
/// # Safety
/// `c` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_InitConfig(c: *mut PyHeap_Config) {
    if c.is_null() {
        return;
    }
    // SAFETY: caller's contract.
    unsafe {
        c.write(PyHeap_Config {
            malloc: core::ptr::null(),
            gc_threshold: [-1; 3],
            gc_debug: -1,
            log_file: core::ptr::null(),
            malloc_stats: -1,
            tracemalloc: -1,
            leak_report: core::ptr::null(),
            abort_on_leak: -1,
        })
    }
}

/// Applies one setting; on failure records the error and returns -1.
///
/// # Safety
/// Runtime lock held.
unsafe fn apply(key: &str, value: &str, source: Source) -> c_int {
    // SAFETY: caller's contract.
    match unsafe { config::set(key, value, source) } {
        Ok(()) => 0,
        Err(e) => {
            error::set(e);
            -1
        }
    }
}

/// Applies a configuration, over what the environment set, then
/// initialises the runtime as `Py_Initialize` does (the calling thread holds
/// the runtime lock). Returns 0, or -1 with the last error set at the first
/// bad setting (the ones before it are applied; the runtime is then not
/// initialised by this call).
///
/// # Safety
/// `c` is NULL (nothing to change) or a valid `PyHeap_Config` whose strings
/// are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Initialize(c: *const PyHeap_Config) -> c_int {
    super::boundary("PyHeap_Initialize", || {
        if c.is_null() {
            crate::lifecycle::initialize();
            return 0;
        }
        // SAFETY: caller's contract.
        let c = unsafe { &*c };
        let text = |p: *const c_char| {
            // SAFETY: caller's contract: a NUL-terminated string.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        };
        let mut settings: Vec<(&str, String)> = Vec::new();
        if let Some(m) = text(c.malloc) {
            settings.push(("malloc", m));
        }
        if c.gc_threshold.iter().any(|&t| t >= 0) {
            // SAFETY: runtime lock held; read only.
            let now = unsafe { crate::domains::runtime() }.gc.threshold;
            let t: Vec<String> = (0..3)
                .map(|i| {
                    if c.gc_threshold[i] >= 0 {
                        c.gc_threshold[i] as isize
                    } else {
                        now[i]
                    }
                    .to_string()
                })
                .collect();
            settings.push(("gc_threshold", t.join("/")));
        }
        if c.gc_debug >= 0 {
            settings.push(("gc_debug", c.gc_debug.to_string()));
        }
        if let Some(f) = text(c.log_file) {
            settings.push(("log_file", f));
        }
        if c.malloc_stats >= 0 {
            settings.push(("malloc_stats", c.malloc_stats.to_string()));
        }
        if c.tracemalloc >= 0 {
            settings.push(("tracemalloc", c.tracemalloc.to_string()));
        }
        if let Some(l) = text(c.leak_report) {
            settings.push(("leak_report", l));
        }
        if c.abort_on_leak >= 0 {
            settings.push(("abort_on_leak", c.abort_on_leak.to_string()));
        }
        for (key, value) in settings {
            // SAFETY: runtime lock held.
            if unsafe { apply(key, &value, Source::Init) } != 0 {
                return -1;
            }
        }
        crate::lifecycle::initialize();
        0
    })
}

/// Sets one setting by name at run time: "malloc", "gc_threshold" (like
/// "700/10/10"), "gc_debug", "log_file", "malloc_stats" (0 or 1),
/// "tracemalloc" (frames, 0 stops), "leak_report" (0, 1 or a path) or
/// "abort_on_leak" (0 or 1). Returns 0, or -1 with the last error set (the setting
/// is unchanged).
///
/// # Safety
/// `key` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_SetOption(key: *const c_char, value: *const c_char) -> c_int {
    super::boundary("PyHeap_SetOption", || {
        if key.is_null() || value.is_null() {
            error::set(Error::bad_internal_call());
            return -1;
        }
        // SAFETY: caller's contract.
        let (k, v) = unsafe {
            (
                CStr::from_ptr(key).to_string_lossy(),
                CStr::from_ptr(value).to_string_lossy(),
            )
        };
        // SAFETY: runtime lock held.
        unsafe { apply(&k, &v, Source::Option) }
    })
}

/// Writes the effective configuration to `out`, one `key: value (source)`
/// line per setting. Returns 0, or -1 if `out` is NULL or the write fails.
///
/// # Safety
/// `out` is NULL or an open stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_PrintConfig(out: *mut libc::FILE) -> c_int {
    if out.is_null() {
        return -1;
    }
    let text = super::boundary("PyHeap_PrintConfig", config::describe);
    // SAFETY: out is an open stream (caller); the buffer is our string.
    let n = unsafe { libc::fwrite(text.as_ptr().cast(), 1, text.len(), out) };
    if n == text.len() { 0 } else { -1 }
}

/// The allocator mode in effect, named as `PYHEAP_MALLOC` names it:
/// "pymalloc", "pymalloc_debug", "malloc" or "malloc_debug"; NULL when the
/// RAW, MEM and OBJ tables are not those of one mode (a table installed
/// with `PyMem_SetAllocator`, or debug hooks on some domains only). The
/// answer of CPython's `_PyMem_GetCurrentAllocatorName`, except that
/// tracing (which only records) does not make it NULL. Needs no lock; the
/// string is static.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GetAllocatorName() -> *const c_char {
    super::boundary("PyHeap_GetAllocatorName", config::allocator_name)
        .map_or(core::ptr::null(), CStr::as_ptr)
}

/// Sends every report pyheap writes (misuse reports before it aborts,
/// warnings about settings, statistics at exit) to `fn(text, len, ctx)`;
/// NULL sends them back to the log file or stderr. The callback must not
/// allocate from pyheap: it may run while the heap is corrupt.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_SetOutput(f: PyHeap_OutputFn, ctx: *mut c_void) {
    fatal::set_output(f, ctx);
}
