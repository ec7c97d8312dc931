//! The life cycle and the runtime lock from C: `Py_Initialize`,
//! `Py_FinalizeEx`, the `PyGILState_*` and `PyEval_*Thread` functions
//! (`Py_BEGIN_ALLOW_THREADS` and friends are macros in the header over
//! these), and pyheap's `PyHeap_GIL_*`.

use core::ffi::{c_double, c_int};

use crate::error::{self};
use crate::lifecycle;
use crate::threads::{self, PyGILState_STATE, PyThreadState};

/// Initialises the runtime: the calling thread gets a thread state and
/// holds the runtime lock. Does nothing if the runtime is initialised. (A
/// program that never calls it is initialised by its first MEM or OBJ
/// allocation, on the thread that makes it.)
#[unsafe(no_mangle)]
pub extern "C" fn Py_Initialize() {
    super::boundary("Py_Initialize", lifecycle::initialize)
}

/// `Py_Initialize`; `initsigs` is accepted and ignored (pyheap installs no
/// signal handlers).
#[unsafe(no_mangle)]
pub extern "C" fn Py_InitializeEx(initsigs: c_int) {
    let _ = initsigs;
    super::boundary("Py_InitializeEx", lifecycle::initialize)
}

/// Finalises the runtime: full collections until nothing more is found
/// (no collector callbacks), the uncollectable-garbage warning, the
/// statistics if configured, free memory given back, then the lock
/// released and the caller's thread state deleted. Returns 0; 0 at once if
/// the runtime is not initialised. The caller must hold the lock (a fatal
/// error otherwise), and no other thread may use MEM or OBJ afterwards.
/// Objects still alive stay valid.
#[unsafe(no_mangle)]
pub extern "C" fn Py_FinalizeEx() -> c_int {
    // SAFETY: the lock is checked inside; the rest is the caller's contract.
    super::boundary("Py_FinalizeEx", || unsafe { lifecycle::finalize() })
}

/// `Py_FinalizeEx` without its result.
#[unsafe(no_mangle)]
pub extern "C" fn Py_Finalize() {
    let _ = Py_FinalizeEx();
}

/// 1 if the runtime is initialised (and not finalised since), else 0.
#[unsafe(no_mangle)]
pub extern "C" fn Py_IsInitialized() -> c_int {
    lifecycle::is_initialized() as c_int
}

/// Makes sure the calling thread holds the runtime lock, creating its
/// thread state if it has none (and initialising the runtime, without
/// binding this thread to it, if nothing has). Returns what to pass to the
/// matching `PyGILState_Release`.
#[unsafe(no_mangle)]
pub extern "C" fn PyGILState_Ensure() -> PyGILState_STATE {
    super::boundary("PyGILState_Ensure", || {
        lifecycle::initialize_for_threads();
        threads::gil_ensure()
    })
}

/// Undoes the matching `PyGILState_Ensure`: releases the lock if that call
/// took it, and deletes the thread state that the outermost call made.
/// Releasing from a thread that does not hold the lock is a fatal error.
#[unsafe(no_mangle)]
pub extern "C" fn PyGILState_Release(state: PyGILState_STATE) {
    super::boundary("PyGILState_Release", || threads::gil_release(state))
}

/// 1 if the calling thread holds the runtime lock, or if the runtime is not
/// initialised (before `Py_Initialize` and after `Py_FinalizeEx`).
#[unsafe(no_mangle)]
pub extern "C" fn PyGILState_Check() -> c_int {
    lifecycle::lock_check() as c_int
}

/// The calling thread's state (held lock or not), or NULL if it has none.
#[unsafe(no_mangle)]
pub extern "C" fn PyGILState_GetThisThreadState() -> *mut PyThreadState {
    threads::this_thread_state()
}

/// The calling thread's state; a fatal error if it does not hold the lock.
#[unsafe(no_mangle)]
pub extern "C" fn PyThreadState_Get() -> *mut PyThreadState {
    let ts = threads::current();
    if ts.is_null() {
        crate::fatal::error(
            "PyThreadState_Get",
            "the calling thread does not hold the runtime lock",
        );
    }
    ts
}

/// The calling thread's state if it holds the lock, else NULL (CPython
/// 3.13's name).
#[unsafe(no_mangle)]
pub extern "C" fn PyThreadState_GetUnchecked() -> *mut PyThreadState {
    threads::current()
}

/// `PyThreadState_GetUnchecked` under CPython 3.11's name.
#[unsafe(no_mangle)]
pub extern "C" fn _PyThreadState_UncheckedGet() -> *mut PyThreadState {
    threads::current()
}

/// Releases the runtime lock and returns the calling thread's state, for
/// `PyEval_RestoreThread`. A fatal error if the thread does not hold it.
#[unsafe(no_mangle)]
pub extern "C" fn PyEval_SaveThread() -> *mut PyThreadState {
    super::boundary("PyEval_SaveThread", threads::save_thread)
}

/// Takes the runtime lock again with the state `PyEval_SaveThread`
/// returned (waiting while another thread holds it).
///
/// # Safety
/// `tstate` is what `PyEval_SaveThread` returned on this thread (checked:
/// NULL or another thread's state is a fatal error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyEval_RestoreThread(tstate: *mut PyThreadState) {
    super::boundary("PyEval_RestoreThread", || threads::restore_thread(tstate))
}

/// Deprecated in CPython 3.9 and a no-op there; the same here.
#[unsafe(no_mangle)]
pub extern "C" fn PyEval_InitThreads() {}

/// Deprecated in CPython 3.9: 1 once the runtime is initialised.
#[unsafe(no_mangle)]
pub extern "C" fn PyEval_ThreadsInitialized() -> c_int {
    lifecycle::is_initialized() as c_int
}

/// If another thread has waited a whole switch interval for the runtime
/// lock, hands it over and takes it back; returns 1 if the lock changed
/// hands, 0 otherwise (one relaxed load when nobody waits). For a thread
/// that holds the lock through a long computation, at points where its
/// objects are consistent: CPython's interpreter does this between
/// bytecodes; pyheap never interrupts C code on its own.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GIL_Yield() -> c_int {
    super::boundary("PyHeap_GIL_Yield", threads::yield_lock) as c_int
}

/// Sets the switch interval (seconds; CPython's `sys.setswitchinterval`,
/// 0.005 by default): how long a thread waits for the lock before asking
/// the holder to hand it over. Returns 0, or -1 with a `ValueError` if
/// `seconds` is not a positive number.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GIL_SetSwitchInterval(seconds: c_double) -> c_int {
    match threads::set_switch_interval(seconds) {
        Ok(()) => 0,
        Err(e) => {
            error::set(e);
            -1
        }
    }
}

/// The switch interval in seconds (`sys.getswitchinterval`).
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_GIL_GetSwitchInterval() -> c_double {
    threads::switch_interval()
}

/// Thread states alive: the initial thread's and one for each thread
/// inside a `PyGILState_Ensure`/`PyGILState_Release` pair.
#[unsafe(no_mangle)]
pub extern "C" fn PyHeap_ThreadStateCount() -> usize {
    threads::thread_state_count()
}
