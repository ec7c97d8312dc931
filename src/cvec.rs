//! `CVec`: a growable array of plain (`Copy`) values kept in memory from
//! libc's `malloc`, for the tables the first allocation of a program
//! builds (the arena table, the thread list).
//!
//! Why not `Vec`: a `Vec`'s first push goes through Rust's allocator shims
//! (`__rust_alloc` and `__rdl_alloc`), which the linker puts wherever the
//! standard library's code lands, far from pyheap's `.text.hot.pyheap`
//! section. On the first page fault in each, the kernel maps the 64 KiB
//! of code around it (fault-around), so a C program that never otherwise
//! runs Rust's allocator pays up to 128 KiB of resident memory for two
//! calls (docs/design/allocator.md, "Code placement"). `malloc` is in the
//! libc every C program has mapped already. The memory is the same: Rust's
//! default allocator is `malloc` too.
//!
//! Only what the tables need: push (fallible), pop, swap-remove, retain,
//! and a slice view for everything else.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

/// A growable array of `T` in `malloc`ed memory.
pub struct CVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    _owns: PhantomData<T>,
}

// SAFETY: a CVec owns its elements as a Vec does; sending it sends them.
unsafe impl<T: Copy + Send> Send for CVec<T> {}
// SAFETY: shared access only reads the elements, as for a Vec.
unsafe impl<T: Copy + Sync> Sync for CVec<T> {}

/// The array could not grow: the size overflows or `malloc` had no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// The capacity a table starts with (and its minimum growth).
const MIN_CAP: usize = 8;

impl<T: Copy> CVec<T> {
    /// An empty array; allocates nothing.
    pub const fn new() -> Self {
        const { assert!(size_of::<T>() > 0, "CVec does not hold zero-sized values") };
        // malloc aligns for any fundamental type, 16 bytes on the targets
        // pyheap supports.
        const { assert!(align_of::<T>() <= 16, "CVec holds values malloc can align") };
        CVec {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
            _owns: PhantomData,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for `extra` more elements. Err if the size overflows or
    /// `malloc` has no memory; the array is then unchanged.
    pub fn try_reserve(&mut self, extra: usize) -> Result<(), NoRoom> {
        let need = self.len.checked_add(extra).ok_or(NoRoom)?;
        if need <= self.cap {
            return Ok(());
        }
        let cap = need.max(self.cap.saturating_mul(2)).max(MIN_CAP);
        let bytes = cap.checked_mul(size_of::<T>()).ok_or(NoRoom)?;
        if bytes > isize::MAX as usize {
            return Err(NoRoom);
        }
        let old = if self.cap == 0 {
            ptr::null_mut()
        } else {
            self.ptr.as_ptr().cast()
        };
        // SAFETY: `old` is null or the block this array got from malloc or
        // realloc and still owns; realloc keeps its first `len` elements
        // (plain values) and, failing, leaves it as it was.
        let new = unsafe { libc::realloc(old, bytes) }.cast::<T>();
        // malloc's blocks are aligned for any fundamental type; T is one
        // of ours (integers, pointers, small structs of them).
        debug_assert_eq!(new.align_offset(align_of::<T>()), 0);
        self.ptr = NonNull::new(new).ok_or(NoRoom)?;
        self.cap = cap;
        Ok(())
    }

    /// Appends `value`. Err (and the value dropped) if there is no room
    /// and none could be had.
    pub fn try_push(&mut self, value: T) -> Result<(), NoRoom> {
        self.try_reserve(1)?;
        // SAFETY: len < cap after try_reserve, so the slot is inside the
        // block; writing a Copy value needs no drop of the old bits.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the old last slot, initialised (below the old len).
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    /// Removes element `i`, moving the last one into its place.
    ///
    /// # Panics
    /// If `i` is out of bounds.
    pub fn swap_remove(&mut self, i: usize) -> T {
        let last = self.len - 1;
        self.swap(i, last);
        self.len = last;
        // SAFETY: slot `last` is initialised (below the old len).
        unsafe { self.ptr.as_ptr().add(last).read() }
    }

    /// Keeps the elements for which `keep` returns true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            let v = self[i];
            if keep(&v) {
                self[kept] = v;
                kept += 1;
            }
        }
        self.len = kept;
    }
}

impl<T: Copy> Default for CVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Drop for CVec<T> {
    fn drop(&mut self) {
        if self.cap != 0 {
            // SAFETY: the block came from malloc/realloc and is freed once;
            // the elements are Copy, so nothing else needs dropping.
            unsafe { libc::free(self.ptr.as_ptr().cast()) };
        }
    }
}

impl<T: Copy> Deref for CVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` slots are initialised; a dangling, aligned
        // pointer is a valid base for an empty slice.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for CVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, and `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_vec_through_growth_and_removal() {
        let mut c: CVec<u64> = CVec::new();
        let mut v: Vec<u64> = Vec::new();
        assert!(c.is_empty());
        assert_eq!(c.pop(), None);
        for i in 0..1000u64 {
            c.try_push(i * 3).unwrap();
            v.push(i * 3);
            if i % 7 == 0 {
                assert_eq!(c.pop(), v.pop());
            }
            if i % 11 == 0 && !v.is_empty() {
                let k = (i as usize * 13) % v.len();
                assert_eq!(c.swap_remove(k), v.swap_remove(k));
            }
        }
        assert_eq!(&c[..], &v[..]);
        c.retain(|x| x % 2 == 0);
        v.retain(|x| x % 2 == 0);
        assert_eq!(&c[..], &v[..]);
        c[0] = 77;
        assert_eq!(c[0], 77);
        assert_eq!(c.len(), v.len());
    }

    #[test]
    fn an_impossible_reservation_fails_and_changes_nothing() {
        let mut c: CVec<[u64; 4]> = CVec::new();
        c.try_push([1, 2, 3, 4]).unwrap();
        assert!(c.try_reserve(usize::MAX).is_err());
        assert!(c.try_reserve(usize::MAX / 64).is_err());
        assert_eq!(&c[..], &[[1, 2, 3, 4]]);
    }

    #[test]
    #[should_panic]
    fn swap_remove_out_of_bounds_panics() {
        let mut c: CVec<u8> = CVec::new();
        c.try_push(1).unwrap();
        c.swap_remove(1);
    }
}
