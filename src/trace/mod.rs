//! Allocation tracing, tracemalloc's model (SPEC.md §7).
//!
//! Starting the tracer wraps the current tables of the three domains with
//! hooks, as CPython's tracemalloc does; the pooled fast paths, which run
//! only while a domain has its default table, are untouched, so tracing off
//! costs nothing there. Each hook calls the allocator it wraps, then
//! records a trace: the block's address and size and an interned
//! traceback. All of pyheap's blocks are traced in domain 0 (CPython's
//! `DEFAULT_DOMAIN`); `PyTraceMalloc_Track` adds blocks of other domains.
//!
//! The tables live under a mutex of their own, since the RAW domain is
//! used without the runtime lock. A thread-local guard keeps the tracer
//! from tracing itself: allocations made while a hook runs (the allocator
//! underneath falling back to RAW, a frame provider allocating) are not
//! traced. The tracer's own memory comes from Rust's allocator (libc), not
//! from pyheap's domains.

pub mod frames;
pub mod snapshot;

use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::{PGuard, PMutex};

use crate::domains::{PyMemAllocatorDomain, PyMemAllocatorEx, runtime};
use crate::error::Error;
use frames::{Frame, Names, PyHeap_Frame, PyHeap_FrameProviderFn};

/// CPython's limit on frames per traceback.
pub(crate) const MAX_NFRAME: usize = 65535;

/// The domain of pyheap's own blocks in traces (CPython's `DEFAULT_DOMAIN`).
pub(crate) const DEFAULT_DOMAIN: u32 = 0;

/// One traced block.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Bytes requested.
    pub size: usize,
    /// Index into the tracer's tracebacks.
    pub traceback: u32,
}

/// The tracer's tables.
pub struct Tables {
    /// Frames recorded per traceback (after pyheap's own are cut).
    pub nframe: usize,
    /// (domain, address) → trace.
    pub traces: HashMap<(u32, usize), Trace>,
    /// Interned tracebacks: frames, most recent first, with pyheap's own
    /// frames still at the front (they are cut when named).
    pub tracebacks: Vec<Arc<[Frame]>>,
    ids: HashMap<Arc<[Frame]>, u32>,
    /// Provider file names.
    pub names: Names,
    /// Bytes traced now, and the most since start or `reset_peak`.
    pub current: usize,
    pub peak: usize,
}

impl Tables {
    fn new(nframe: usize) -> Tables {
        Tables {
            nframe,
            traces: HashMap::new(),
            tracebacks: Vec::new(),
            ids: HashMap::new(),
            names: Names::default(),
            current: 0,
            peak: 0,
        }
    }

    fn intern(&mut self, frames: &[Frame]) -> u32 {
        if let Some(&id) = self.ids.get(frames) {
            return id;
        }
        let id = self.tracebacks.len() as u32;
        let tb: Arc<[Frame]> = frames.into();
        self.tracebacks.push(tb.clone());
        self.ids.insert(tb, id);
        id
    }

    /// Records (or replaces) the trace of `(domain, addr)`.
    fn add(&mut self, domain: u32, addr: usize, size: usize, frames: &[Frame]) {
        let tb = self.intern(frames);
        if let Some(old) = self.traces.insert(
            (domain, addr),
            Trace {
                size,
                traceback: tb,
            },
        ) {
            self.current -= old.size;
        }
        self.current += size;
        self.peak = self.peak.max(self.current);
    }

    fn remove(&mut self, domain: u32, addr: usize) {
        if let Some(old) = self.traces.remove(&(domain, addr)) {
            self.current -= old.size;
        }
    }

    /// An estimate of the bytes the tables hold.
    fn memory(&self) -> usize {
        let entry = core::mem::size_of::<((u32, usize), Trace)>() + 8;
        let frames: usize = self
            .tracebacks
            .iter()
            .map(|t| t.len() * core::mem::size_of::<Frame>() + 64)
            .sum();
        self.traces.capacity() * entry + frames + self.names.memory()
    }
}

static TABLES: PMutex<Option<Tables>> = PMutex::new(None);
static TRACING: AtomicBool = AtomicBool::new(false);

/// The tables, locked.
pub fn tables() -> PGuard<'static, Option<Tables>> {
    TABLES.lock()
}

/// Before `fork()`: the tables locked, so the child gets them whole.
pub(crate) fn lock_for_fork() {
    // SAFETY: paired with unlock_after_fork on this thread.
    unsafe { TABLES.force_lock() }
}

/// After `fork()`, in parent and child.
pub(crate) fn unlock_after_fork() {
    // SAFETY: locked by lock_for_fork on this thread (the child's only
    // thread is the one that forked).
    unsafe { TABLES.force_unlock() }
}

std::thread_local! {
    /// Set while this thread runs a tracer hook.
    static GUARD: Cell<bool> = const { Cell::new(false) };
}

/// The provider and how its frames combine with native ones.
struct Provider {
    f: PyHeap_FrameProviderFn,
    ctx: *mut c_void,
    /// Keep native frames below the provider's.
    with_native: bool,
}

struct ProviderCell(UnsafeCell<Provider>);
// SAFETY: written only by `set_frame_provider`, under the runtime lock and
// before or between traced allocations (the documented contract); read by
// the hooks.
unsafe impl Sync for ProviderCell {}

static PROVIDER: ProviderCell = ProviderCell(UnsafeCell::new(Provider {
    f: None,
    ctx: ptr::null_mut(),
    with_native: false,
}));

/// Sets the frame provider (None: native frames only). With `with_native`
/// the provider's frames come first and native frames follow.
pub fn set_frame_provider(f: PyHeap_FrameProviderFn, ctx: *mut c_void, with_native: bool) {
    // SAFETY: see ProviderCell.
    unsafe {
        *PROVIDER.0.get() = Provider {
            f,
            ctx,
            with_native,
        }
    };
}

/// The hook of each domain wraps this table (set when tracing starts).
struct Wrapped(UnsafeCell<[PyMemAllocatorEx; 3]>);
// SAFETY: written by `start` before the hooks are installed (and by `stop`
// after they are removed); the hooks only read it.
unsafe impl Sync for Wrapped {}
static WRAPPED: Wrapped = Wrapped(UnsafeCell::new([PyMemAllocatorEx::NULL; 3]));

/// The hook contexts: which domain a hook serves.
static DOMAIN_IDS: [u8; 3] = [0, 1, 2];

fn wrapped(ctx: *mut c_void) -> PyMemAllocatorEx {
    // SAFETY: ctx points into DOMAIN_IDS (the hooks' tables say so).
    let d = unsafe { *ctx.cast::<u8>() } as usize;
    // SAFETY: see Wrapped; a plain copy.
    unsafe { (*WRAPPED.0.get())[d] }
}

fn hook_table(d: usize) -> PyMemAllocatorEx {
    PyMemAllocatorEx {
        ctx: ptr::addr_of!(DOMAIN_IDS[d]) as *mut c_void,
        malloc: Some(trace_malloc),
        calloc: Some(trace_calloc),
        realloc: Some(trace_realloc),
        free: Some(trace_free),
    }
}

/// Domain `d`'s table as the allocator sees it below tracing: the table
/// the tracer's hook wraps, if `t` (the domain's current table) is that
/// hook, else `t`.
pub fn below_tracer(d: PyMemAllocatorDomain, t: PyMemAllocatorEx) -> PyMemAllocatorEx {
    if t.same_as(&hook_table(d as usize)) {
        // SAFETY: see Wrapped; a plain copy.
        unsafe { (*WRAPPED.0.get())[d as usize] }
    } else {
        t
    }
}

/// True while tracing.
#[inline]
pub fn is_tracing() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Runs `f` with the guard set; false (and `f` not run) if it was set.
fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    if GUARD.with(|g| g.replace(true)) {
        return None;
    }
    let r = f();
    GUARD.with(|g| g.set(false));
    Some(r)
}

/// The current traceback: the provider's frames and/or native ones.
fn current_frames(nframe: usize, names: &mut Names, out: &mut Vec<Frame>) {
    out.clear();
    // SAFETY: see ProviderCell; a short read.
    let (f, ctx, with_native) = unsafe {
        let p = &*PROVIDER.0.get();
        (p.f, p.ctx, p.with_native)
    };
    if let Some(f) = f {
        let mut buf = vec![
            PyHeap_Frame {
                filename: ptr::null(),
                lineno: 0
            };
            nframe
        ];
        // SAFETY: calling the program's provider as documented, with room
        // for nframe frames.
        let n = unsafe { f(buf.as_mut_ptr(), nframe as c_int, ctx) };
        let n = (n.max(0) as usize).min(nframe);
        // SAFETY: the provider filled n frames.
        unsafe { frames::script_frames(&buf[..n], names, out) };
        if !with_native {
            return;
        }
    }
    NATIVE.with(|n| {
        let mut native = n.borrow_mut();
        frames::capture_native(&mut native, nframe + OWN_DEPTH.load(Ordering::Relaxed));
        out.extend(native.iter().map(|&a| Frame::Native(a)));
    });
}

std::thread_local! {
    /// Scratch buffers of the capture, reused (a traced allocation then
    /// allocates nothing for its frames unless its traceback is new).
    static NATIVE: core::cell::RefCell<Vec<usize>> = const { core::cell::RefCell::new(Vec::new()) };
    static FRAMES: core::cell::RefCell<Vec<Frame>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// Native frames captured beyond the ones asked for, to make room for
/// pyheap's own frames at the top (cut when named): measured by
/// [`calibrate`] when tracing starts, at most `OWN_FRAMES_MAX`.
static OWN_DEPTH: AtomicUsize = AtomicUsize::new(frames::OWN_FRAMES_MAX);

/// Extra frames allowed over the deepest path measured.
const OWN_MARGIN: usize = 3;

macro_rules! probe {
    ($name:ident, $body:expr) => {
        /// A calibration probe: allocates through one entry path, and does
        /// something after the call so that it stays a frame of its own.
        #[inline(never)]
        extern "C" fn $name() -> usize {
            let p: usize = $body;
            core::hint::black_box(p)
        }
    };
}

probe!(probe_obj, crate::ffi::mem::PyObject_Malloc(16) as usize);
probe!(probe_mem, crate::ffi::mem::PyMem_Malloc(16) as usize);
probe!(probe_raw, crate::ffi::mem::PyMem_RawMalloc(16) as usize);
probe!(probe_gc, crate::ffi::weakref::PyTuple_New(1) as usize);

/// Measures how many of pyheap's own frames sit above the caller on the
/// main allocation paths (plain blocks of each domain, a GC object), by
/// allocating from probes whose code addresses are known and finding
/// their frames in the captured traceback; sets [`OWN_DEPTH`] to the
/// deepest plus a margin. Leaves it at the maximum if a probe's frame is
/// not found.
///
/// # Safety
/// Runtime lock held; tracing on with the hooks installed.
unsafe fn calibrate() {
    #[derive(Clone, Copy)]
    enum Kind {
        Obj,
        Mem,
        Raw,
        GcObject,
    }
    let probes: [(extern "C" fn() -> usize, Kind); 4] = [
        (probe_obj, Kind::Obj),
        (probe_mem, Kind::Mem),
        (probe_raw, Kind::Raw),
        (probe_gc, Kind::GcObject),
    ];
    let mut deepest = 0;
    for (probe, kind) in probes {
        let start = probe as *const () as usize;
        let p = probe();
        if p == 0 {
            return;
        }
        let block = match kind {
            Kind::GcObject => p - crate::object::layout::GC_HEADER_SIZE,
            _ => p,
        };
        let found = traceback_of(block).and_then(|tb| {
            tb.iter()
                .filter_map(|f| match f {
                    Frame::Native(a) => Some(*a),
                    Frame::Script(..) => None,
                })
                .position(|a| a > start && a < start + 256)
        });
        // SAFETY: each probe's block, freed through its own domain.
        unsafe {
            match kind {
                Kind::GcObject => {
                    crate::object::dealloc::decref(p as *mut crate::object::layout::PyObject)
                }
                Kind::Mem => crate::ffi::mem::PyMem_Free(p as *mut c_void),
                Kind::Raw => crate::ffi::mem::PyMem_RawFree(p as *mut c_void),
                Kind::Obj => crate::ffi::mem::PyObject_Free(p as *mut c_void),
            }
        }
        match found {
            Some(i) => deepest = deepest.max(i),
            None => return,
        }
    }
    OWN_DEPTH.store(
        (deepest + OWN_MARGIN).min(frames::OWN_FRAMES_MAX),
        Ordering::Relaxed,
    );
}

/// The number of own frames the capture makes room for (after
/// calibration).
pub fn own_depth() -> usize {
    OWN_DEPTH.load(Ordering::Relaxed)
}

/// Records a trace for a block just allocated. CPython fails the
/// allocation when tracemalloc cannot record it, and the callers keep that
/// contract (on false they free the block and fail), but today this is
/// always true: the tables grow in Rust's heap, whose exhaustion aborts.
fn add_trace(domain: u32, addr: usize, size: usize) -> bool {
    let nframe = match tables().as_ref() {
        Some(t) => t.nframe,
        None => return true, // stopped meanwhile
    };
    // Frames are captured without the tables' lock (the provider may take
    // its own locks).
    let mut names = Names::default();
    FRAMES.with(|cell| {
        let mut fr = cell.borrow_mut();
        current_frames(nframe, &mut names, &mut fr);
        let mut guard = tables();
        let Some(t) = guard.as_mut() else {
            return;
        };
        // Re-intern provider names into the tables' own name table.
        for f in fr.iter_mut() {
            if let Frame::Script(id, line) = *f {
                *f = Frame::Script(t.names.intern(names.get(id)), line);
            }
        }
        t.add(domain, addr, size, &fr);
    });
    true
}

/// Removes and returns the trace of `(domain, addr)`.
fn take_trace(domain: u32, addr: usize) -> Option<Trace> {
    let mut g = tables();
    let t = g.as_mut()?;
    let old = t.traces.remove(&(domain, addr))?;
    t.current -= old.size;
    Some(old)
}

/// Puts back a trace [`take_trace`] took.
fn restore_trace(domain: u32, addr: usize, tr: Trace) {
    if let Some(t) = tables().as_mut() {
        if (tr.traceback as usize) < t.tracebacks.len() {
            t.current += tr.size;
            t.peak = t.peak.max(t.current);
            t.traces.insert((domain, addr), tr);
        }
    }
}

fn remove_trace(domain: u32, addr: usize) {
    if let Some(t) = tables().as_mut() {
        t.remove(domain, addr);
    }
}

unsafe extern "C" fn trace_malloc(ctx: *mut c_void, n: usize) -> *mut c_void {
    let w = wrapped(ctx);
    let Some(m) = w.malloc else {
        return ptr::null_mut();
    };
    let traced = guarded(|| {
        // SAFETY: the wrapped allocator's contract.
        let p = unsafe { m(w.ctx, n) };
        if !p.is_null() && !add_trace(DEFAULT_DOMAIN, p as usize, n) {
            if let Some(f) = w.free {
                // SAFETY: the wrapped allocator's contract.
                unsafe { f(w.ctx, p) };
            }
            return ptr::null_mut();
        }
        p
    });
    // SAFETY: as above (nested: not traced).
    traced.unwrap_or_else(|| unsafe { m(w.ctx, n) })
}

unsafe extern "C" fn trace_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    let w = wrapped(ctx);
    let Some(c) = w.calloc else {
        return ptr::null_mut();
    };
    let traced = guarded(|| {
        // SAFETY: the wrapped allocator's contract.
        let p = unsafe { c(w.ctx, nelem, elsize) };
        if !p.is_null() && !add_trace(DEFAULT_DOMAIN, p as usize, nelem * elsize) {
            if let Some(f) = w.free {
                // SAFETY: the wrapped allocator's contract.
                unsafe { f(w.ctx, p) };
            }
            return ptr::null_mut();
        }
        p
    });
    // SAFETY: as above.
    traced.unwrap_or_else(|| unsafe { c(w.ctx, nelem, elsize) })
}

unsafe extern "C" fn trace_realloc(ctx: *mut c_void, p: *mut c_void, n: usize) -> *mut c_void {
    let w = wrapped(ctx);
    let Some(r) = w.realloc else {
        return ptr::null_mut();
    };
    let traced = guarded(|| {
        // The old trace comes out before the block can be freed: once it
        // is, another thread may get the address back and trace it.
        let old = (!p.is_null())
            .then(|| take_trace(DEFAULT_DOMAIN, p as usize))
            .flatten();
        // SAFETY: the wrapped allocator's contract.
        let q = unsafe { r(w.ctx, p, n) };
        if q.is_null() {
            // Failed: the block is unchanged, and its trace goes back.
            if let Some(old) = old {
                restore_trace(DEFAULT_DOMAIN, p as usize, old);
            }
        } else {
            // A failed trace of a resized block cannot undo the resize;
            // the block stays untraced, as in CPython.
            add_trace(DEFAULT_DOMAIN, q as usize, n);
        }
        q
    });
    // SAFETY: as above.
    traced.unwrap_or_else(|| unsafe { r(w.ctx, p, n) })
}

unsafe extern "C" fn trace_free(ctx: *mut c_void, p: *mut c_void) {
    if p.is_null() {
        return;
    }
    let w = wrapped(ctx);
    // SAFETY: ctx points into DOMAIN_IDS.
    let raw = unsafe { *ctx.cast::<u8>() } == PyMemAllocatorDomain::PYMEM_DOMAIN_RAW as u8;
    if raw {
        // The trace goes first: once freed, another thread may get the
        // block back and trace it (the RAW domain needs no lock).
        remove_trace(DEFAULT_DOMAIN, p as usize);
    }
    if let Some(f) = w.free {
        // SAFETY: the wrapped allocator's contract.
        unsafe { f(w.ctx, p) };
    }
    if !raw {
        // MEM and OBJ run under the runtime lock, so no other thread can
        // take the block back in between; removing the trace afterwards
        // lets a misuse report of the debug hooks below (an overflow found
        // at free) show where the block was allocated, as CPython does.
        remove_trace(DEFAULT_DOMAIN, p as usize);
    }
}

/// `tracemalloc.start(nframe)`.
///
/// # Safety
/// Runtime lock held; no other thread allocates from RAW meanwhile (as for
/// `PyMem_SetAllocator`).
pub unsafe fn start(nframe: usize) -> Result<(), Error> {
    if !(1..=MAX_NFRAME).contains(&nframe) {
        return Err(Error::Value(
            "the number of frames must be in range [1; 65535]".into(),
        ));
    }
    if is_tracing() {
        // CPython: the hooks are installed already, nothing changes (the
        // frame limit included).
        return Ok(());
    }
    LAST_LIMIT.store(nframe, Ordering::Relaxed);
    frames::warm_up();
    *tables() = Some(Tables::new(nframe));
    // SAFETY: caller's contract; the hooks are installed after WRAPPED is
    // written.
    unsafe {
        let rt = runtime();
        *WRAPPED.0.get() = rt.tables;
        for d in [
            PyMemAllocatorDomain::PYMEM_DOMAIN_RAW,
            PyMemAllocatorDomain::PYMEM_DOMAIN_MEM,
            PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ,
        ] {
            rt.set_allocator(d, hook_table(d as usize));
        }
    }
    TRACING.store(true, Ordering::Release);
    // The probes allocate, which in a runtime never initialised would
    // initialise it and give this thread the lock (wrong at load time, from
    // PYHEAP_TRACEMALLOC): then the measurement waits for `Py_Initialize`.
    if crate::lifecycle::is_initialized() {
        // SAFETY: caller's contract; the hooks are in place.
        unsafe { calibrate_now() };
    } else {
        NEED_CALIBRATION.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Calibration postponed from a start in a runtime not yet initialised.
static NEED_CALIBRATION: AtomicBool = AtomicBool::new(false);

/// The last frame limit tracing started with (CPython keeps reporting it
/// after `stop`).
static LAST_LIMIT: AtomicUsize = AtomicUsize::new(1);

/// Measures pyheap's own frame depth now, and forgets the probes' traces.
///
/// # Safety
/// Runtime lock held; tracing on; not inside a tracer hook.
unsafe fn calibrate_now() {
    NEED_CALIBRATION.store(false, Ordering::Relaxed);
    // SAFETY: caller's contract.
    unsafe { calibrate() };
    // The probes' traces and peak are not the program's.
    clear_traces();
}

/// Runs a calibration that `start` postponed (called by `Py_Initialize`,
/// outside any hook, with the lock held).
pub fn calibrate_if_postponed() {
    if is_tracing() && NEED_CALIBRATION.load(Ordering::Relaxed) {
        // SAFETY: the initialising thread holds the lock, outside hooks.
        unsafe { calibrate_now() };
    }
}

/// `tracemalloc.stop()`: the wrapped tables back, every trace dropped.
///
/// # Safety
/// As for [`start`].
pub unsafe fn stop() {
    if !is_tracing() {
        return;
    }
    TRACING.store(false, Ordering::Release);
    // SAFETY: caller's contract. As CPython's tracemalloc: the tables
    // tracing wrapped go back whatever was installed over its hooks (a
    // hook left calling the tracer's would recurse into a later start).
    unsafe {
        let rt = runtime();
        let w = *WRAPPED.0.get();
        for d in [
            PyMemAllocatorDomain::PYMEM_DOMAIN_RAW,
            PyMemAllocatorDomain::PYMEM_DOMAIN_MEM,
            PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ,
        ] {
            rt.set_allocator(d, w[d as usize]);
        }
    }
    *tables() = None;
}

/// `(current, peak)` bytes traced; (0, 0) when not tracing.
pub fn traced_memory() -> (usize, usize) {
    tables().as_ref().map_or((0, 0), |t| (t.current, t.peak))
}

/// `tracemalloc.reset_peak()`.
pub fn reset_peak() {
    if let Some(t) = tables().as_mut() {
        t.peak = t.current;
    }
}

/// `tracemalloc.clear_traces()`.
pub fn clear_traces() {
    if let Some(t) = tables().as_mut() {
        let nframe = t.nframe;
        *t = Tables::new(nframe);
    }
}

/// `tracemalloc.get_traceback_limit()` (the last limit tracing started
/// with, as CPython; 1 before any).
pub fn traceback_limit() -> usize {
    tables()
        .as_ref()
        .map_or(LAST_LIMIT.load(Ordering::Relaxed), |t| t.nframe)
}

/// `tracemalloc.get_tracemalloc_memory()`.
pub fn tracemalloc_memory() -> usize {
    tables().as_ref().map_or(0, Tables::memory)
}

/// `PyTraceMalloc_Track`: -2 if not tracing, else records the block with
/// the current traceback (replacing a trace at the same address) and 0.
pub fn track(domain: u32, addr: usize, size: usize) -> c_int {
    if !is_tracing() {
        return -2;
    }
    guarded(|| add_trace(domain, addr, size));
    0
}

/// `PyTraceMalloc_Untrack`: -2 if not tracing, else 0 (an unknown block
/// is fine).
pub fn untrack(domain: u32, addr: usize) -> c_int {
    if !is_tracing() {
        return -2;
    }
    remove_trace(domain, addr);
    0
}

/// Writes where the block at `addr` (domain 0) was allocated, most recent
/// call first, in CPython's words, for a misuse report; or that the site
/// is unknown, if the block is not traced or this thread is inside the
/// tracer.
pub fn write_block_traceback(addr: usize, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let named =
        guarded(|| traceback_of(addr).map(|tb| snapshot::name_all(&[&tb], None).swap_remove(0)))
            .flatten();
    match named {
        Some(frames) => {
            writeln!(out, "Memory block allocated at (most recent call first):")?;
            for f in &frames {
                writeln!(out, "  File \"{}\", line {}", f.filename, f.lineno)?;
            }
            Ok(())
        }
        None => writeln!(
            out,
            "  (the allocation site is unknown: the block is not traced)"
        ),
    }
}

/// The traceback (frames as recorded) of the block at `addr` of domain 0.
pub fn traceback_of(addr: usize) -> Option<Arc<[Frame]>> {
    let g = tables();
    let t = g.as_ref()?;
    let tr = t.traces.get(&(DEFAULT_DOMAIN, addr))?;
    Some(t.tracebacks[tr.traceback as usize].clone())
}
