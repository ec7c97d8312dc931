//! The runtime's life cycle: `Py_Initialize`, `Py_FinalizeEx`, and the
//! lazy initialisation that lets a program skip both.
//!
//! The runtime starts `Fresh`. `Py_Initialize`, or the first MEM or OBJ
//! allocation of a program that never called it, makes it `Initialized`:
//! the calling thread gets a thread state and holds the runtime lock, as
//! CPython's main thread does after `Py_Initialize`. A program that never
//! starts threads never notices. `Py_FinalizeEx` runs the shutdown
//! collections, writes the reports asked for, gives free memory back and
//! releases the lock: the runtime is `Finalized`, still usable from one
//! thread, and `Py_Initialize` may start it again (no lazy initialisation
//! then: a program that finalised knows how to initialise).

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::domains::runtime;
use crate::{fatal, gc, threads};

const FRESH: u8 = 0;
const INITIALIZED: u8 = 1;
const FINALIZED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(FRESH);

/// Serialises the initialisations (a lazy one and an explicit one may race
/// in a program that starts threads before either).
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `Py_IsInitialized`.
pub fn is_initialized() -> bool {
    STATE.load(Ordering::Acquire) == INITIALIZED
}

/// `PyGILState_Check`: true if this thread holds the runtime lock, or the
/// runtime is not initialised (no lock rules yet, or none any more).
pub fn lock_check() -> bool {
    !is_initialized() || threads::holds()
}

/// An initial thread is bound (by `Py_Initialize`, `PyHeap_Initialize`,
/// lazy initialisation, or a first `PyGILState_Ensure` on the main thread).
static BOUND: AtomicBool = AtomicBool::new(false);

/// `Py_Initialize`: binds a thread state to the calling thread, which then
/// holds the runtime lock. Nothing happens if the runtime is initialised
/// and bound to a thread already (CPython's second call). A runtime that a
/// `PyGILState_Ensure` on another thread initialised without binding is
/// bound now.
pub fn initialize() {
    let bind = {
        let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
        if STATE.load(Ordering::Acquire) == INITIALIZED {
            !BOUND.swap(true, Ordering::AcqRel)
        } else {
            crate::config::stats_printed(false);
            crate::leaks::rearm();
            BOUND.store(true, Ordering::Release);
            STATE.store(INITIALIZED, Ordering::Release);
            true
        }
    };
    // Outside INIT: taking the lock may wait, and a fork meanwhile must not
    // find INIT held.
    if bind {
        threads::bind_initial_thread();
    }
    // Tracing started at load (PYHEAP_TRACEMALLOC) measures pyheap's own
    // frames now that this thread holds the lock.
    if threads::holds() {
        crate::trace::calibrate_if_postponed();
    }
}

/// Called on the slow paths of the MEM and OBJ domains: the first use
/// initialises a runtime that was never initialised.
#[inline(always)]
pub fn lazy_initialize() {
    if needs_initialize() {
        lazy_initialize_slow();
    }
}

/// True until the runtime's first initialisation: what [`lazy_initialize`]
/// tests, for a slow path that branches to a function of its own instead of
/// making room for the call.
#[inline(always)]
pub fn needs_initialize() -> bool {
    STATE.load(Ordering::Relaxed) == FRESH
}

#[cold]
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
fn lazy_initialize_slow() {
    let bind = {
        let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = STATE.load(Ordering::Acquire) == FRESH;
        if fresh {
            BOUND.store(true, Ordering::Release);
            STATE.store(INITIALIZED, Ordering::Release);
        }
        fresh
    };
    if bind {
        threads::bind_initial_thread();
    }
}

/// True on the process's main thread.
fn on_main_thread() -> bool {
    // SAFETY: plain system calls without arguments.
    unsafe { libc::gettid() == libc::getpid() }
}

/// Before a thread takes the lock through `PyGILState_Ensure`, in a runtime
/// never initialised: on the main thread this is `Py_Initialize` (a
/// single-threaded program may start with `PyGILState_Ensure`); on another
/// thread the runtime is initialised without binding a thread (the first
/// thread to use the lock must not keep it for good). After finalisation
/// nothing changes: the lock works, its rules are off until
/// `Py_Initialize`.
pub fn initialize_for_threads() {
    if STATE.load(Ordering::Acquire) != FRESH {
        return;
    }
    if on_main_thread() {
        initialize();
        return;
    }
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if STATE.load(Ordering::Acquire) == FRESH {
        STATE.store(INITIALIZED, Ordering::Release);
    }
}

/// How many shutdown collections may run: each may free objects whose
/// finalizers make new garbage.
const MAX_SHUTDOWN_COLLECTIONS: usize = 8;

/// `Py_FinalizeEx`. Returns 0 (or 0 at once if not initialised).
///
/// # Safety
/// The calling thread holds the runtime lock (checked) and is the last one
/// using the MEM and OBJ domains.
pub unsafe fn finalize() -> i32 {
    const API: &str = "Py_FinalizeEx";
    if !is_initialized() {
        return 0;
    }
    if !threads::holds() {
        fatal::error(API, "the calling thread does not hold the runtime lock");
    }
    for _ in 0..MAX_SHUTDOWN_COLLECTIONS {
        // SAFETY: the lock is held (checked above).
        if unsafe { gc::collect::collect_no_fail() } == 0 {
            break;
        }
    }
    // SAFETY: the lock is held.
    unsafe { report_uncollectable() };
    // SAFETY: the lock is held.
    unsafe { crate::leaks::report("at finalization") };
    // SAFETY: the lock is held.
    unsafe { crate::config::print_stats_if_configured() };
    // SAFETY: the lock is held; no block of ours is in a freed arena.
    unsafe { runtime() }.heap.trim();
    {
        let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
        STATE.store(FINALIZED, Ordering::Release);
        BOUND.store(false, Ordering::Release);
    }
    // Outside INIT: the release may wait for a waiting thread to take over.
    threads::unbind_initial_thread();
    0
}

/// CPython's shutdown warning about a non-empty `gc.garbage`.
///
/// # Safety
/// Runtime lock held.
unsafe fn report_uncollectable() {
    // SAFETY: caller's contract; read only.
    let st = unsafe { &runtime().gc };
    let n = st.garbage.len();
    if n == 0 {
        return;
    }
    let mut out = String::new();
    if st.debug & gc::PyHeap_GC_DEBUG_UNCOLLECTABLE != 0 {
        let _ = writeln!(
            out,
            "pyheap: ResourceWarning: gc: {n} uncollectable objects at shutdown"
        );
        for &op in &st.garbage {
            // SAFETY: the garbage list holds strong references.
            let name = unsafe { crate::object::types::type_name((*op).ob_type) };
            let _ = writeln!(out, "    <{name} {op:p}>");
        }
    } else {
        let _ = writeln!(
            out,
            "pyheap: ResourceWarning: gc: {n} uncollectable objects at shutdown; use \
             PyHeap_GC_SetDebug(PyHeap_GC_DEBUG_UNCOLLECTABLE) to list them"
        );
    }
    fatal::write_report(out.as_bytes());
}

/// Runs the handler `at_exit` registered, passed as the argument.
#[cfg(target_env = "gnu")]
#[unsafe(link_section = ".text.hot.pyheap")]
extern "C" fn run_exit_handler(f: *mut core::ffi::c_void) {
    // SAFETY: at_exit passes an `extern "C" fn()` as the argument, and a
    // function pointer survives the round trip through a data pointer on
    // every target glibc supports.
    let f = unsafe { core::mem::transmute::<*mut core::ffi::c_void, extern "C" fn()>(f) };
    f()
}

/// Runs `f` at exit (`atexit`). On glibc this calls `__cxa_atexit` in
/// libc.so, as the `atexit` of libc_nonshared.a would: that small stub
/// lands at the end of the program's code, and the load-time call to it
/// would fault in that code's last 64 KiB (allocator.md, "Code
/// placement").
#[unsafe(link_section = ".text.hot.pyheap")]
pub fn at_exit(f: extern "C" fn()) {
    // (Declared in here, where cbindgen does not look.)
    #[cfg(target_env = "gnu")]
    unsafe extern "C" {
        /// This object's handle (from the compiler's `crtbegin`), which
        /// names the library whose handlers `dlclose` must drop.
        static __dso_handle: u8;
        /// glibc's registration behind `atexit`.
        fn __cxa_atexit(
            f: extern "C" fn(*mut core::ffi::c_void),
            arg: *mut core::ffi::c_void,
            dso: *const u8,
        ) -> core::ffi::c_int;
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: a plain function as the argument of run_exit_handler, and
    // this object's own handle (for libpyheap.so, glibc runs the handler
    // at dlclose, as it would one registered with atexit).
    unsafe {
        __cxa_atexit(
            run_exit_handler,
            f as *mut core::ffi::c_void,
            &raw const __dso_handle,
        )
    };
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: registering a plain function.
    unsafe {
        libc::atexit(f)
    };
}

/// Registers fork handlers (`pthread_atfork`); on glibc through
/// `__register_atfork`, for the reason [`at_exit`] gives.
#[unsafe(link_section = ".text.hot.pyheap")]
pub fn at_fork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) {
    #[cfg(target_env = "gnu")]
    unsafe extern "C" {
        /// As in at_exit.
        static __dso_handle: u8;
        /// glibc's registration behind `pthread_atfork`.
        fn __register_atfork(
            prepare: Option<extern "C" fn()>,
            parent: Option<extern "C" fn()>,
            child: Option<extern "C" fn()>,
            dso: *const u8,
        ) -> core::ffi::c_int;
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: three plain functions, and this object's handle (for
    // libpyheap.so, glibc drops the handlers at dlclose).
    unsafe {
        __register_atfork(
            Some(prepare),
            Some(parent),
            Some(child),
            &raw const __dso_handle,
        )
    };
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: three plain functions, valid for the life of the process.
    unsafe {
        libc::pthread_atfork(Some(prepare), Some(parent), Some(child))
    };
}
