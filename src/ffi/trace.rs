//! Tracing from C: CPython's `PyTraceMalloc_Track/Untrack`, the
//! `tracemalloc` module as `PyHeap_TraceMalloc_*`, frame providers, and
//! snapshots (`PyHeap_Snapshot_*`).

use core::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::collections::HashSet;
use std::ffi::CString;
use std::sync::Mutex;

use crate::domains::Py_ssize_t;
use crate::error::{self, Error};
use crate::object::layout::PyObject;
use crate::trace::frames::{self, NamedFrame, PyHeap_FrameProviderFn};
use crate::trace::snapshot::{self, Format, KeyType, Snapshot, Statistic};
use crate::trace::{self};

/// Starts tracing every allocation of the three domains, recording up to
/// `nframe` frames (1 to 65535) per block; if tracing, changes the limit.
/// Returns 0, or -1 with a `ValueError` for a bad `nframe`. Runtime lock
/// held; like `PyMem_SetAllocator`, not while other threads allocate.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_Start(nframe: c_int) -> c_int {
    super::boundary("PyHeap_TraceMalloc_Start", || {
        let n = usize::try_from(nframe).unwrap_or(0);
        // SAFETY: the caller's contract (runtime lock held).
        match unsafe { trace::start(n) } {
            Ok(()) => 0,
            Err(e) => {
                error::set(e);
                -1
            }
        }
    })
}

/// Stops tracing: the domains get back the tables tracing wrapped, and
/// every trace is dropped.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_Stop() {
    // SAFETY: the caller's contract, as for Start.
    super::boundary("PyHeap_TraceMalloc_Stop", || unsafe { trace::stop() })
}

/// 1 while tracing.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_IsTracing() -> c_int {
    trace::is_tracing() as c_int
}

/// Bytes traced now and at the peak (both 0 when not tracing); either
/// pointer may be NULL.
///
/// # Safety
/// Each pointer is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_TraceMalloc_GetTracedMemory(current: *mut usize, peak: *mut usize) {
    let (c, p) = super::boundary("PyHeap_TraceMalloc_GetTracedMemory", trace::traced_memory);
    // SAFETY: caller's contract.
    unsafe {
        if !current.is_null() {
            *current = c;
        }
        if !peak.is_null() {
            *peak = p;
        }
    }
}

/// Sets the peak to the current traced size (nothing when not tracing).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_ResetPeak() {
    super::boundary("PyHeap_TraceMalloc_ResetPeak", trace::reset_peak)
}

/// Forgets every trace (tracing goes on).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_ClearTraces() {
    super::boundary("PyHeap_TraceMalloc_ClearTraces", trace::clear_traces)
}

/// Frames recorded per traceback (0 when not tracing).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_GetTracebackLimit() -> c_int {
    trace::traceback_limit() as c_int
}

/// Bytes the tracer's own tables use (not traced themselves).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_GetTracemallocMemory() -> usize {
    super::boundary(
        "PyHeap_TraceMalloc_GetTracemallocMemory",
        trace::tracemalloc_memory,
    )
}

/// Records a block that pyheap did not allocate, in trace domain `domain`
/// (0 is pyheap's own), with the current traceback; a trace already at
/// `ptr` in that domain is replaced. Returns 0, or -2 when not tracing.
#[unsafe(no_mangle)]
pub extern "C" fn PyTraceMalloc_Track(domain: c_uint, ptr: usize, size: usize) -> c_int {
    super::boundary("PyTraceMalloc_Track", || trace::track(domain, ptr, size))
}

/// Forgets the trace of `ptr` in `domain` (an unknown one is fine). Returns
/// 0, or -2 when not tracing.
#[unsafe(no_mangle)]
pub extern "C" fn PyTraceMalloc_Untrack(domain: c_uint, ptr: usize) -> c_int {
    super::boundary("PyTraceMalloc_Untrack", || trace::untrack(domain, ptr))
}

/// Makes tracing record frames from `provider` (an interpreter's own
/// file:line) instead of native frames, or above them if `with_native` is
/// non-zero; NULL goes back to native frames only. The provider is called
/// on every traced allocation; its own allocations are not traced. Set it
/// while no other thread allocates.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_SetFrameProvider(
    provider: PyHeap_FrameProviderFn,
    ctx: *mut c_void,
    with_native: c_int,
) {
    trace::set_frame_provider(provider, ctx, with_native != 0);
}

/// A frame with names. The strings stay valid for the life of the process
/// (from `PyHeap_TraceMalloc_GetObjectTraceback`) or of the callback (in a
/// `PyHeap_Statistic`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyHeap_FrameInfo {
    /// Source file ("??" or "<unknown>" if not known).
    pub filename: *const c_char,
    /// Line (0 if not known).
    pub lineno: c_uint,
    /// Function ("" for a provider's frame, "??" if not known).
    pub function: *const c_char,
}

/// Strings handed out for good (function and file names: a bounded set).
static FOREVER: Mutex<Option<HashSet<&'static CStr>>> = Mutex::new(None);

fn forever(s: &str) -> *const c_char {
    let c = CString::new(s.replace('\0', "?")).unwrap_or_default();
    let mut g = FOREVER.lock().unwrap_or_else(|e| e.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if let Some(&k) = set.get(c.as_c_str()) {
        return k.as_ptr();
    }
    let leaked: &'static CStr = Box::leak(c.into_boxed_c_str());
    set.insert(leaked);
    leaked.as_ptr()
}

/// Fills `frames` (room for `max`) with the traceback of the block holding
/// `obj`, most recent call first; returns how many frames it has (more
/// than `max` means some were left out), 0 if the block is not traced, or
/// -1 if `obj` is NULL or `frames` is NULL with `max` > 0.
///
/// # Safety
/// `obj` is a live object; `frames` has room for `max` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_TraceMalloc_GetObjectTraceback(
    obj: *mut PyObject,
    frames: *mut PyHeap_FrameInfo,
    max: Py_ssize_t,
) -> Py_ssize_t {
    if obj.is_null() || (frames.is_null() && max > 0) {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_TraceMalloc_GetObjectTraceback", || {
        // SAFETY: obj is a live object (caller); a GC object's block
        // starts at its GC header.
        let block = unsafe {
            if crate::object::alloc::is_gc(obj) {
                crate::gc::as_gc(obj) as usize
            } else {
                obj as usize
            }
        };
        let Some(tb) = trace::traceback_of(block) else {
            return 0;
        };
        let named = name_one(&tb);
        for (i, f) in named.iter().take(max.max(0) as usize).enumerate() {
            // SAFETY: frames has room for max entries (caller).
            unsafe {
                *frames.add(i) = PyHeap_FrameInfo {
                    filename: forever(&f.filename),
                    lineno: f.lineno,
                    function: forever(&f.function),
                }
            };
        }
        named.len() as Py_ssize_t
    })
}

/// Names one recorded traceback.
fn name_one(tb: &[frames::Frame]) -> Vec<NamedFrame> {
    snapshot::name_all(&[tb], None).remove(0)
}

/// A snapshot of the traces, opaque to C.
pub struct PyHeap_Snapshot(Snapshot);

/// Takes a snapshot of the traces, with every frame named (this runs
/// `addr2line`; tracing goes on). NULL with a `RuntimeError` when not
/// tracing. Free it with `PyHeap_Snapshot_Free`.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_TraceMalloc_TakeSnapshot() -> *mut PyHeap_Snapshot {
    super::boundary("PyHeap_TraceMalloc_TakeSnapshot", || {
        match snapshot::take() {
            Ok(s) => Box::into_raw(Box::new(PyHeap_Snapshot(s))),
            Err(e) => error::null(e),
        }
    })
}

/// Frees a snapshot (NULL does nothing).
///
/// # Safety
/// `s` is NULL or a snapshot not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_Free(s: *mut PyHeap_Snapshot) {
    if !s.is_null() {
        // SAFETY: caller's contract: from Box::into_raw.
        drop(unsafe { Box::from_raw(s) });
    }
}

/// Bytes and blocks the snapshot holds; either pointer may be NULL.
///
/// # Safety
/// `s` is a snapshot; the pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_GetTotals(
    s: *const PyHeap_Snapshot,
    size: *mut usize,
    count: *mut usize,
) {
    // SAFETY: caller's contract.
    let (sz, n) = unsafe { (*s).0.totals() };
    // SAFETY: caller's contract.
    unsafe {
        if !size.is_null() {
            *size = sz;
        }
        if !count.is_null() {
            *count = n;
        }
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn text<'a>(p: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    // SAFETY: caller's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy())
}

/// Writes the snapshot to `path` (a text format that
/// `PyHeap_Snapshot_Load` and the `pyheap` tool read). Returns 0, or -1
/// with an `OSError`-like `SystemError`.
///
/// # Safety
/// `s` is a snapshot; `path` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_Dump(
    s: *const PyHeap_Snapshot,
    path: *const c_char,
) -> c_int {
    // SAFETY: caller's contract.
    let (Some(path), false) = (unsafe { text(path) }, s.is_null()) else {
        error::set(Error::bad_internal_call());
        return -1;
    };
    super::boundary("PyHeap_Snapshot_Dump", || {
        // SAFETY: caller's contract.
        let body = unsafe { (*s).0.dump() };
        match std::fs::write(&*path, body) {
            Ok(()) => 0,
            Err(e) => {
                error::set(Error::System(format!("cannot write {path:?}: {e}")));
                -1
            }
        }
    })
}

/// Reads a snapshot `PyHeap_Snapshot_Dump` wrote; NULL with an error if the
/// file cannot be read or is not a snapshot.
///
/// # Safety
/// `path` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_Load(path: *const c_char) -> *mut PyHeap_Snapshot {
    // SAFETY: caller's contract.
    let Some(path) = (unsafe { text(path) }) else {
        return error::null(Error::bad_internal_call());
    };
    super::boundary("PyHeap_Snapshot_Load", || {
        let body = match std::fs::read_to_string(&*path) {
            Ok(b) => b,
            Err(e) => return error::null(Error::System(format!("cannot read {path:?}: {e}"))),
        };
        match Snapshot::parse(&body) {
            Ok(s) => Box::into_raw(Box::new(PyHeap_Snapshot(s))),
            Err(e) => error::null(e),
        }
    })
}

/// One statistic, for a `PyHeap_StatisticFn`: the group's frames (one
/// unless grouped by traceback), size and count, and for a comparison the
/// changes since the older snapshot.
#[repr(C)]
#[derive(Debug)]
pub struct PyHeap_Statistic {
    /// The frames, most recent first.
    pub frames: *const PyHeap_FrameInfo,
    /// How many.
    pub nframe: usize,
    /// Bytes.
    pub size: usize,
    /// Blocks.
    pub count: usize,
    /// Bytes more than in the older snapshot (comparisons only).
    pub size_diff: Py_ssize_t,
    /// Blocks more than in the older snapshot (comparisons only).
    pub count_diff: Py_ssize_t,
}

/// Receives statistics one by one; return non-zero to stop.
pub type PyHeap_StatisticFn =
    Option<unsafe extern "C" fn(stat: *const PyHeap_Statistic, ctx: *mut c_void) -> c_int>;

fn deliver(stats: &[Statistic], cb: PyHeap_StatisticFn, ctx: *mut c_void) -> Py_ssize_t {
    let Some(cb) = cb else {
        return stats.len() as Py_ssize_t;
    };
    for s in stats {
        let strings: Vec<(CString, CString)> = s
            .traceback
            .iter()
            .map(|f| {
                (
                    CString::new(f.filename.replace('\0', "?")).unwrap_or_default(),
                    CString::new(f.function.replace('\0', "?")).unwrap_or_default(),
                )
            })
            .collect();
        let infos: Vec<PyHeap_FrameInfo> = s
            .traceback
            .iter()
            .zip(&strings)
            .map(|(f, (file, func))| PyHeap_FrameInfo {
                filename: file.as_ptr(),
                lineno: f.lineno,
                function: func.as_ptr(),
            })
            .collect();
        let st = PyHeap_Statistic {
            frames: infos.as_ptr(),
            nframe: infos.len(),
            size: s.size,
            count: s.count,
            size_diff: s.size_diff,
            count_diff: s.count_diff,
        };
        // SAFETY: the program's callback, with data valid for the call.
        if unsafe { cb(&st, ctx) } != 0 {
            break;
        }
    }
    stats.len() as Py_ssize_t
}

/// Parses a key type; NULL means "lineno".
///
/// # Safety
/// `key` is NULL or a NUL-terminated string.
unsafe fn parse_key(key: *const c_char) -> Result<KeyType, Error> {
    // SAFETY: caller's contract.
    match unsafe { text(key) } {
        None => Ok(KeyType::Lineno),
        Some(k) => KeyType::parse(&k),
    }
}

/// `Snapshot.statistics(key_type, cumulative)`: calls `cb` for each group,
/// biggest first (`key_type` "filename", "lineno" or "traceback"; NULL is
/// "lineno"). Returns the number of groups, or -1 with a `ValueError`.
///
/// # Safety
/// `s` is a snapshot; `key_type` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_Statistics(
    s: *const PyHeap_Snapshot,
    key_type: *const c_char,
    cumulative: c_int,
    cb: PyHeap_StatisticFn,
    ctx: *mut c_void,
) -> Py_ssize_t {
    super::boundary("PyHeap_Snapshot_Statistics", || {
        // SAFETY: caller's contract.
        let r = unsafe { parse_key(key_type) }
            .and_then(|k| unsafe { (*s).0.statistics(k, cumulative != 0) });
        match r {
            Ok(stats) => deliver(&stats, cb, ctx),
            Err(e) => {
                error::set(e);
                -1
            }
        }
    })
}

/// `Snapshot.compare_to(old, key_type, cumulative)`: calls `cb` for each
/// group, biggest change first. Returns the number of groups, or -1.
///
/// # Safety
/// `s` and `old` are snapshots; `key_type` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_CompareTo(
    s: *const PyHeap_Snapshot,
    old: *const PyHeap_Snapshot,
    key_type: *const c_char,
    cumulative: c_int,
    cb: PyHeap_StatisticFn,
    ctx: *mut c_void,
) -> Py_ssize_t {
    super::boundary("PyHeap_Snapshot_CompareTo", || {
        // SAFETY: caller's contract.
        let r = unsafe { parse_key(key_type) }
            .and_then(|k| unsafe { (*s).0.compare_to(&(*old).0, k, cumulative != 0) });
        match r {
            Ok(stats) => deliver(&stats, cb, ctx),
            Err(e) => {
                error::set(e);
                -1
            }
        }
    })
}

/// `PyHeap_Snapshot_Write` formats: tracemalloc's text lines.
pub const PYHEAP_FORMAT_TEXT: c_int = 0;
/// One JSON object with a `statistics` array.
pub const PYHEAP_FORMAT_JSON: c_int = 1;
/// Collapsed stacks (`outer;...;inner bytes`) for flame-graph tools
/// (grouped by traceback whatever `key_type` says).
pub const PYHEAP_FORMAT_COLLAPSED: c_int = 2;

/// Writes the statistics of `s` (or, if `old` is not NULL, its comparison
/// with `old`) to `out` in `format`, the first `limit` groups (0: all).
/// Returns 0, or -1 with an error.
///
/// # Safety
/// `s` is a snapshot, `old` NULL or a snapshot, `key_type` NULL or a
/// NUL-terminated string, `out` an open stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_Snapshot_Write(
    s: *const PyHeap_Snapshot,
    old: *const PyHeap_Snapshot,
    key_type: *const c_char,
    cumulative: c_int,
    format: c_int,
    limit: Py_ssize_t,
    out: *mut libc::FILE,
) -> c_int {
    if s.is_null() || out.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_Snapshot_Write", || {
        let fmt = match format {
            PYHEAP_FORMAT_TEXT => Format::Text,
            PYHEAP_FORMAT_JSON => Format::Json,
            PYHEAP_FORMAT_COLLAPSED => Format::Collapsed,
            _ => {
                error::set(Error::Value(format!("unknown format {format}")));
                return -1;
            }
        };
        // SAFETY: caller's contract: snapshots, a key string or NULL.
        let r = unsafe { parse_key(key_type) }.and_then(|key| unsafe {
            snapshot::report(
                &(*s).0,
                (!old.is_null()).then(|| &(*old).0),
                key,
                cumulative != 0,
                fmt,
                limit.max(0) as usize,
            )
        });
        let body = match r {
            Ok(b) => b,
            Err(e) => {
                error::set(e);
                return -1;
            }
        };
        // SAFETY: out is an open stream (caller).
        if unsafe { super::write_stream(out, &body) } {
            0
        } else {
            -1
        }
    })
}
