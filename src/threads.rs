//! The runtime lock (CPython's GIL), thread states and `fork()`.
//!
//! As in CPython, one lock guards the MEM and OBJ domains, reference counts
//! of shared objects and the collector; the RAW domain needs no lock. A
//! thread holds the lock through its thread state: the initialising thread
//! gets one bound to it for good, `PyGILState_Ensure` makes one for any
//! other thread and its matching `PyGILState_Release` deletes it.
//!
//! The lock is a flag under a pthread mutex with two condition variables,
//! after CPython's `ceval_gil.c`: a thread that has waited a whole switch
//! interval without the holder changing sets a drop request; the holder's
//! next release then waits until another thread has taken the lock, so a
//! thread that releases and takes the lock again in a loop cannot keep a
//! waiting thread out for longer than one interval and one hold. C code is
//! never interrupted: the lock changes hands only at the API calls
//! (`PyGILState_Release`, `PyEval_SaveThread`, `PyHeap_GIL_Yield`).
//!
//! Which thread holds the lock is thread-local knowledge (`CURRENT`): a
//! thread sets it when it takes the lock and clears it when it lets go, so
//! `PyGILState_Check` reads no shared memory.

use core::cell::{Cell, UnsafeCell};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::cvec::CVec;
use crate::fatal;

/// A thread's state, opaque to C. pyheap keeps in it what the lock needs.
pub struct PyThreadState {
    /// Nesting of `PyGILState_Ensure` (CPython's `gilstate_counter`).
    counter: usize,
}

/// `PyGILState_STATE`: what `PyGILState_Ensure` found.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PyGILState_STATE {
    /// The thread already held the lock.
    PyGILState_LOCKED = 0,
    /// The thread had to take the lock.
    PyGILState_UNLOCKED = 1,
}

/// The lock's state, read and written only under `Lock::mutex`.
struct LockState {
    locked: bool,
    /// Threads waiting in `take`.
    waiters: usize,
    /// Times the lock changed hands.
    switch_number: u64,
    /// The state that took the lock last.
    last_holder: *mut PyThreadState,
    /// This process is a child forked while another thread held the lock:
    /// the heap may be half-changed, and the lock is never free again.
    lost_at_fork: bool,
    /// Every thread state not yet deleted.
    threads: CVec<*mut PyThreadState>,
    /// The condition variables have the monotonic clock (`init_conds`).
    conds_ready: bool,
}

struct Lock {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// Signalled when the lock is released.
    cond: UnsafeCell<libc::pthread_cond_t>,
    /// Signalled when the lock changes hands (for a forced switch).
    switch_cond: UnsafeCell<libc::pthread_cond_t>,
    state: UnsafeCell<LockState>,
}

// SAFETY: `state` is only touched with `mutex` held (through `Guard`); the
// pthread objects are made for sharing between threads.
unsafe impl Sync for Lock {}

static LOCK: Lock = Lock {
    mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    cond: UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER),
    switch_cond: UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER),
    state: UnsafeCell::new(LockState {
        locked: false,
        waiters: 0,
        switch_number: 0,
        last_holder: ptr::null_mut(),
        lost_at_fork: false,
        threads: CVec::new(),
        conds_ready: false,
    }),
};

/// Set by a thread that waited a whole interval; read by the holder.
static DROP_REQUEST: AtomicBool = AtomicBool::new(false);

/// The switch interval in microseconds (CPython's 5 ms by default).
static INTERVAL_US: AtomicU64 = AtomicU64::new(5000);

std::thread_local! {
    /// This thread's state, if it has one (CPython's autoTSS key).
    static AUTO: Cell<*mut PyThreadState> = const { Cell::new(ptr::null_mut()) };
    /// This thread's state while it holds the lock, else null.
    static CURRENT: Cell<*mut PyThreadState> = const { Cell::new(ptr::null_mut()) };
}

/// Gives the condition variables the monotonic clock before their first
/// use. (Under the mutex rather than with `std::sync::Once`, whose first
/// call runs code of the standard library's that a program would fault in
/// for nothing: allocator.md, "Code placement".)
///
/// # Safety
/// The caller holds the mutex.
#[inline]
unsafe fn ensure_conds() {
    // SAFETY: caller's contract: the state is ours while the mutex is held.
    let st = unsafe { &mut *LOCK.state.get() };
    if !st.conds_ready {
        init_conds();
        st.conds_ready = true;
    }
}

/// Initialises the two condition variables to time out on the monotonic
/// clock (the wall clock may jump).
fn init_conds() {
    // SAFETY: called before any thread waits on them: by the first holder
    // of the mutex (every wait is made holding it, after `ensure_conds`),
    // or in a fork child, which has one thread; the attribute object lives
    // on this stack for the calls.
    unsafe {
        let mut attr: libc::pthread_condattr_t = core::mem::zeroed();
        libc::pthread_condattr_init(&mut attr);
        libc::pthread_condattr_setclock(&mut attr, libc::CLOCK_MONOTONIC);
        libc::pthread_cond_init(LOCK.cond.get(), &attr);
        libc::pthread_cond_init(LOCK.switch_cond.get(), &attr);
        libc::pthread_condattr_destroy(&mut attr);
    }
}

/// The lock's mutex, held while this lives.
struct Guard(());

impl Guard {
    fn lock() -> Guard {
        // SAFETY: a valid, initialised mutex; this thread does not hold it
        // (no function here locks it twice).
        unsafe { libc::pthread_mutex_lock(LOCK.mutex.get()) };
        // SAFETY: the mutex is held.
        unsafe { ensure_conds() };
        Guard(())
    }

    /// The state; the borrow of the guard keeps it from living across a
    /// wait, during which other threads change it.
    fn state(&mut self) -> &mut LockState {
        // SAFETY: the mutex is held, so no other thread touches the state;
        // the returned borrow ends before the next wait (which needs the
        // guard mutably).
        unsafe { &mut *LOCK.state.get() }
    }

    fn wait(&mut self, cond: *mut libc::pthread_cond_t) {
        // SAFETY: the mutex is held by this thread; cond is initialised.
        unsafe { libc::pthread_cond_wait(cond, LOCK.mutex.get()) };
    }

    /// Waits until signalled or `deadline`; true if the time ran out.
    fn wait_until(&mut self, cond: *mut libc::pthread_cond_t, deadline: &Deadline) -> bool {
        // SAFETY: the mutex is held by this thread; cond is initialised and
        // set to the monotonic clock the deadline was read from.
        let r = unsafe { libc::pthread_cond_timedwait(cond, LOCK.mutex.get(), &deadline.0) };
        r == libc::ETIMEDOUT
    }
}

/// A point in time on the monotonic clock.
struct Deadline(libc::timespec);

impl Deadline {
    fn now() -> libc::timespec {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid clock id and a writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
        t
    }

    /// `us` microseconds from now.
    fn after(us: u64) -> Deadline {
        let mut t = Self::now();
        let ns = t.tv_nsec as u64 + (us % 1_000_000) * 1000;
        t.tv_sec += (us / 1_000_000 + ns / 1_000_000_000) as libc::time_t;
        t.tv_nsec = (ns % 1_000_000_000) as libc::c_long;
        Deadline(t)
    }

    fn passed(&self) -> bool {
        let t = Self::now();
        (t.tv_sec, t.tv_nsec) >= (self.0.tv_sec, self.0.tv_nsec)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: this thread locked the mutex in `lock`.
        unsafe { libc::pthread_mutex_unlock(LOCK.mutex.get()) };
    }
}

/// A stop with a message naming the API: a lock misuse cannot be recovered.
#[cold]
fn misuse(api: &str, message: &str) -> ! {
    fatal::error(api, message)
}

/// True if this thread holds the runtime lock.
#[inline]
pub fn holds() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// This thread's state while it holds the lock (`PyThreadState_Get`
/// without the check), else null.
pub fn current() -> *mut PyThreadState {
    CURRENT.with(Cell::get)
}

/// This thread's state, whether it holds the lock or not, else null.
pub fn this_thread_state() -> *mut PyThreadState {
    AUTO.with(Cell::get)
}

/// Takes the lock for `ts`, this thread's state; waits while another
/// thread holds it.
#[unsafe(link_section = ".text.hot.pyheap")]
fn take(ts: *mut PyThreadState, api: &str) {
    let mut g = Guard::lock();
    if g.state().lost_at_fork {
        drop(g);
        misuse(
            api,
            "another thread held the runtime lock when this process was forked; \
             the child cannot use the heap",
        );
    }
    if g.state().locked {
        g.state().waiters += 1;
        let mut deadline = Deadline::after(INTERVAL_US.load(Ordering::Relaxed));
        while g.state().locked {
            let timed_out = g.wait_until(LOCK.cond.get(), &deadline);
            if g.state().locked && (timed_out || deadline.passed()) {
                // A whole interval of waiting (woken or not: a holder that
                // lets go for an instant and takes the lock back wakes
                // this thread to no avail): ask the holder to hand the lock
                // over at its next release, and ask again an interval on.
                DROP_REQUEST.store(true, Ordering::Relaxed);
                deadline = Deadline::after(INTERVAL_US.load(Ordering::Relaxed));
            }
        }
        g.state().waiters -= 1;
    }
    let st = g.state();
    st.locked = true;
    st.last_holder = ts;
    st.switch_number += 1;
    DROP_REQUEST.store(false, Ordering::Relaxed);
    // SAFETY: an initialised condition variable.
    unsafe { libc::pthread_cond_broadcast(LOCK.switch_cond.get()) };
    drop(g);
    CURRENT.with(|c| c.set(ts));
}

/// Releases the lock `ts` holds; if a waiting thread asked for it, waits
/// until that thread (or another) has taken it.
fn release(ts: *mut PyThreadState) {
    CURRENT.with(|c| c.set(ptr::null_mut()));
    let mut g = Guard::lock();
    g.state().locked = false;
    // SAFETY: an initialised condition variable.
    unsafe { libc::pthread_cond_signal(LOCK.cond.get()) };
    if DROP_REQUEST.load(Ordering::Relaxed) {
        while g.state().last_holder == ts && g.state().waiters > 0 {
            g.wait(LOCK.switch_cond.get());
        }
    }
}

/// A new thread state, registered. Its memory comes from `malloc`, not
/// `Box`, as the thread list's does: the first allocation of a program
/// makes one, and Rust's allocator code is far from the hot section
/// (`crate::cvec`).
#[unsafe(link_section = ".text.hot.pyheap")]
fn new_thread_state() -> *mut PyThreadState {
    // SAFETY: a plain allocation of the state's size.
    let ts = unsafe { libc::malloc(size_of::<PyThreadState>()) }.cast::<PyThreadState>();
    if ts.is_null() {
        fatal::error("the runtime lock", "no memory for a thread state");
    }
    // SAFETY: malloc's block is aligned for any fundamental type and
    // large enough for a PyThreadState, which it now holds.
    unsafe { ts.write(PyThreadState { counter: 0 }) };
    if Guard::lock().state().threads.try_push(ts).is_err() {
        fatal::error("the runtime lock", "no memory for the thread list");
    }
    ts
}

/// Frees a state `new_thread_state` made, already unlisted.
///
/// # Safety
/// `ts` came from `new_thread_state`, is no longer listed and is not used
/// afterwards.
unsafe fn free_thread_state(ts: *mut PyThreadState) {
    // SAFETY: caller's contract; the state has nothing to drop.
    unsafe { libc::free(ts.cast()) };
}

/// Unregisters and frees `ts`, this thread's state (not holding the lock).
///
/// # Safety
/// `ts` came from `new_thread_state` and is not used afterwards.
unsafe fn delete_thread_state(ts: *mut PyThreadState) {
    {
        let mut g = Guard::lock();
        let threads = &mut g.state().threads;
        if let Some(i) = threads.iter().position(|&t| t == ts) {
            threads.swap_remove(i);
        }
    }
    AUTO.with(|a| {
        if a.get() == ts {
            a.set(ptr::null_mut())
        }
    });
    // SAFETY: caller's contract: a state from new_thread_state, now
    // unlisted.
    unsafe { free_thread_state(ts) };
}

/// Thread states not yet deleted.
pub fn thread_state_count() -> usize {
    Guard::lock().state().threads.len()
}

/// Binds a thread state to this thread for good and takes the lock, if
/// this thread does not hold it (what initialisation does).
pub fn bind_initial_thread() {
    let mut ts = this_thread_state();
    if ts.is_null() {
        ts = new_thread_state();
        AUTO.with(|a| a.set(ts));
    }
    // SAFETY: this thread's own state; only this thread reads or writes it.
    unsafe { (*ts).counter += 1 };
    if !holds() {
        take(ts, "Py_Initialize");
    }
}

/// Releases the lock and deletes this thread's state (finalisation).
pub fn unbind_initial_thread() {
    let ts = this_thread_state();
    if ts.is_null() {
        return;
    }
    if holds() {
        release(ts);
    }
    // SAFETY: this thread's state, no longer holding the lock, unused
    // afterwards (the thread-local slot is cleared).
    unsafe { delete_thread_state(ts) };
}

/// `PyGILState_Ensure`.
pub fn gil_ensure() -> PyGILState_STATE {
    let ts = this_thread_state();
    if ts.is_null() {
        let ts = new_thread_state();
        AUTO.with(|a| a.set(ts));
        take(ts, "PyGILState_Ensure");
        // SAFETY: this thread's own state.
        unsafe { (*ts).counter = 1 };
        return PyGILState_STATE::PyGILState_UNLOCKED;
    }
    let held = holds();
    if !held {
        take(ts, "PyGILState_Ensure");
    }
    // SAFETY: this thread's own state.
    unsafe { (*ts).counter += 1 };
    if held {
        PyGILState_STATE::PyGILState_LOCKED
    } else {
        PyGILState_STATE::PyGILState_UNLOCKED
    }
}

/// `PyGILState_Release`.
pub fn gil_release(old: PyGILState_STATE) {
    const API: &str = "PyGILState_Release";
    let ts = this_thread_state();
    if ts.is_null() {
        misuse(
            API,
            "this thread has no thread state (no matching PyGILState_Ensure)",
        );
    }
    if current() != ts {
        misuse(
            API,
            "this thread does not hold the runtime lock (a PyEval_SaveThread \
             without its PyEval_RestoreThread?)",
        );
    }
    // SAFETY: this thread's own state.
    let counter = unsafe {
        (*ts).counter = (*ts).counter.saturating_sub(1);
        (*ts).counter
    };
    if counter == 0 {
        if old != PyGILState_STATE::PyGILState_UNLOCKED {
            misuse(
                API,
                "PyGILState_LOCKED given for the outermost PyGILState_Ensure",
            );
        }
        release(ts);
        // SAFETY: this thread's state, released, not used again.
        unsafe { delete_thread_state(ts) };
    } else if old == PyGILState_STATE::PyGILState_UNLOCKED {
        release(ts);
    }
}

/// `PyEval_SaveThread`: releases the lock, returns the state to restore.
pub fn save_thread() -> *mut PyThreadState {
    let ts = current();
    if ts.is_null() {
        misuse(
            "PyEval_SaveThread",
            "this thread does not hold the runtime lock",
        );
    }
    release(ts);
    ts
}

/// `PyEval_RestoreThread`: takes the lock again for `ts`.
pub fn restore_thread(ts: *mut PyThreadState) {
    const API: &str = "PyEval_RestoreThread";
    if ts.is_null() {
        misuse(API, "NULL thread state");
    }
    if holds() {
        misuse(
            API,
            "this thread already holds the runtime lock (it would wait for itself)",
        );
    }
    if ts != this_thread_state() {
        misuse(API, "the thread state belongs to another thread");
    }
    take(ts, API);
}

/// `PyHeap_GIL_Yield`: if another thread asked for the lock, lets it run
/// and takes the lock back; true if the lock changed hands.
pub fn yield_lock() -> bool {
    if !holds() || !DROP_REQUEST.load(Ordering::Relaxed) {
        return false;
    }
    let ts = save_thread();
    take(ts, "PyHeap_GIL_Yield");
    true
}

/// The switch interval, in seconds.
pub fn switch_interval() -> f64 {
    INTERVAL_US.load(Ordering::Relaxed) as f64 / 1e6
}

/// Sets the switch interval (seconds, > 0; rounded to whole microseconds,
/// at least one).
pub fn set_switch_interval(seconds: f64) -> Result<(), crate::error::Error> {
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(crate::error::Error::Value(
            "switch interval must be strictly positive".into(),
        ));
    }
    let us = (seconds * 1e6).round().clamp(1.0, u64::MAX as f64) as u64;
    INTERVAL_US.store(us, Ordering::Relaxed);
    Ok(())
}

// ---------------------------------------------------------------------------
// fork()

extern "C" fn before_fork() {
    // SAFETY: holds the mutex across the fork, so the child gets the lock's
    // state whole; released by one of the two handlers below.
    unsafe { libc::pthread_mutex_lock(LOCK.mutex.get()) };
    // SAFETY: the mutex is held.
    unsafe { ensure_conds() };
    // The tracer's tables too (nobody takes the lock's mutex while holding
    // them, so this order cannot deadlock).
    crate::trace::lock_for_fork();
}

extern "C" fn after_fork_parent() {
    crate::trace::unlock_after_fork();
    // SAFETY: locked by before_fork on this thread.
    unsafe { libc::pthread_mutex_unlock(LOCK.mutex.get()) };
}

extern "C" fn after_fork_child() {
    // SAFETY: the child has one thread, this one, which locked the mutex
    // in before_fork (the state under it is whole) and unlocks it here, as
    // POSIX intends fork handlers to; the condition variables are made
    // afresh, since the other threads' waits on them did not survive.
    unsafe {
        init_conds();
        let st = &mut *LOCK.state.get();
        let me = AUTO.with(Cell::get);
        let mine = holds();
        st.waiters = 0;
        DROP_REQUEST.store(false, Ordering::Relaxed);
        if st.locked && !mine {
            st.lost_at_fork = true;
        }
        st.last_holder = if mine { me } else { ptr::null_mut() };
        // The other threads are gone: so are their states.
        st.threads.retain(|&t| {
            if t == me {
                return true;
            }
            free_thread_state(t);
            false
        });
        crate::trace::unlock_after_fork();
        crate::leaks::after_fork_child();
        libc::pthread_mutex_unlock(LOCK.mutex.get());
    }
}

/// Registers the fork handlers (once, at load time).
#[unsafe(link_section = ".text.hot.pyheap")]
pub fn register_fork_handlers() {
    crate::lifecycle::at_fork(before_fork, after_fork_parent, after_fork_child);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_round_trips_and_rejects_nonsense() {
        let before = switch_interval();
        set_switch_interval(0.001).unwrap();
        assert_eq!(switch_interval(), 0.001);
        assert!(set_switch_interval(0.0).is_err());
        assert!(set_switch_interval(f64::NAN).is_err());
        assert!(set_switch_interval(-1.0).is_err());
        set_switch_interval(before).unwrap();
    }
}
