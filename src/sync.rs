//! A mutex over pthreads for the tracer's tables: race detectors (helgrind,
//! ThreadSanitizer) understand pthread mutexes, not Rust's futex-based
//! `std::sync::Mutex`, and the fork handlers need to lock and unlock it as
//! separate calls.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// A value behind a pthread mutex.
pub struct PMutex<T> {
    m: UnsafeCell<libc::pthread_mutex_t>,
    v: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, which holds the mutex.
unsafe impl<T: Send> Sync for PMutex<T> {}

impl<T> PMutex<T> {
    /// A mutex holding `v`.
    pub const fn new(v: T) -> Self {
        PMutex {
            m: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
            v: UnsafeCell::new(v),
        }
    }

    /// Waits for the mutex; the guard releases it.
    pub fn lock(&self) -> PGuard<'_, T> {
        // SAFETY: an initialised mutex; no caller locks it twice on one
        // thread (guards are short-lived and never nested).
        unsafe { libc::pthread_mutex_lock(self.m.get()) };
        PGuard { m: self }
    }

    /// Locks without a guard (the fork handlers).
    ///
    /// # Safety
    /// Paired with [`force_unlock`](Self::force_unlock) on the same thread.
    pub unsafe fn force_lock(&self) {
        // SAFETY: caller's contract.
        unsafe { libc::pthread_mutex_lock(self.m.get()) };
    }

    /// Unlocks what [`force_lock`](Self::force_lock) locked.
    ///
    /// # Safety
    /// This thread locked it with `force_lock`.
    pub unsafe fn force_unlock(&self) {
        // SAFETY: caller's contract.
        unsafe { libc::pthread_mutex_unlock(self.m.get()) };
    }
}

/// The mutex held, and the value reachable.
pub struct PGuard<'a, T> {
    m: &'a PMutex<T>,
}

impl<T> Deref for PGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex.
        unsafe { &*self.m.v.get() }
    }
}

impl<T> DerefMut for PGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the mutex, and is borrowed mutably.
        unsafe { &mut *self.m.v.get() }
    }
}

impl<T> Drop for PGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard's thread locked the mutex in `lock`.
        unsafe { libc::pthread_mutex_unlock(self.m.m.get()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_threads() {
        static M: PMutex<u64> = PMutex::new(0);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..10_000 {
                        *M.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*M.lock(), 40_000);
    }
}
