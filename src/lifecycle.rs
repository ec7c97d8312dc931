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
use core::sync::atomic::{AtomicU8, Ordering};

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

/// `Py_Initialize`: binds a thread state to the calling thread, which then
/// holds the runtime lock. Nothing happens if the runtime is initialised.
pub fn initialize() {
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if STATE.load(Ordering::Acquire) == INITIALIZED {
        return;
    }
    threads::bind_initial_thread();
    crate::config::stats_printed(false);
    STATE.store(INITIALIZED, Ordering::Release);
}

/// Called on the slow paths of the MEM and OBJ domains: the first use
/// initialises a runtime that was never initialised.
#[inline(always)]
pub fn lazy_initialize() {
    if STATE.load(Ordering::Relaxed) == FRESH {
        lazy_initialize_slow();
    }
}

#[cold]
#[inline(never)]
fn lazy_initialize_slow() {
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if STATE.load(Ordering::Acquire) == FRESH {
        threads::bind_initial_thread();
        STATE.store(INITIALIZED, Ordering::Release);
    }
}

/// Before a thread takes the lock through `PyGILState_Ensure`: a runtime
/// not yet initialised is initialised without binding a thread to it (the
/// first thread to use the lock is not necessarily the main one).
pub fn initialize_for_threads() {
    if is_initialized() {
        return;
    }
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if STATE.load(Ordering::Acquire) != INITIALIZED {
        crate::config::stats_printed(false);
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
    unsafe { crate::config::print_stats_if_configured() };
    // SAFETY: the lock is held; no block of ours is in a freed arena.
    unsafe { runtime() }.heap.trim();
    {
        let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
        STATE.store(FINALIZED, Ordering::Release);
        threads::unbind_initial_thread();
    }
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
