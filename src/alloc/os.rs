//! The operating-system layer: anonymous mappings for arenas and leaves of the
//! address map, and giving pages back.

use core::ffi::c_void;
use core::ptr;

use super::size_class::ARENA_SIZE;

/// Maps `size` bytes of zeroed, read-write memory aligned to `align` (a power
/// of two, at least the page size). Returns null on failure.
#[unsafe(link_section = ".text.hot.pyheap")]
pub fn map_aligned(size: usize, align: usize) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    let Some(span) = size.checked_add(align) else {
        return ptr::null_mut();
    };
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = span - head - size;
    // SAFETY: both ranges lie inside the mapping just made and outside the
    // part we keep; unmapping them cannot affect any other memory.
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap((aligned + size) as *mut c_void, tail);
        }
    }
    aligned as *mut u8
}

/// Unmaps memory obtained from [`map_aligned`].
///
/// # Safety
/// `p` and `size` must describe a mapping made by [`map_aligned`] that no one
/// uses any more.
pub unsafe fn unmap(p: *mut u8, size: usize) {
    if !p.is_null() {
        // SAFETY: the caller gives us a mapping of ours that is no longer used.
        unsafe { libc::munmap(p.cast(), size) };
    }
}

/// Tells the kernel the pages of `[p, p + len)` may be dropped; they read as
/// zero afterwards. False if the kernel refused (locked pages, for one):
/// then the contents are unchanged.
///
/// # Safety
/// The range must be inside a private anonymous mapping of ours whose
/// contents nobody needs any more.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe fn discard(p: *mut u8, len: usize) -> bool {
    #[cfg(test)]
    if REFUSE_DISCARD.with(core::cell::Cell::get) {
        return false;
    }
    // SAFETY: the caller vouches that the range is ours and dead. MADV_DONTNEED
    // on private anonymous memory only replaces pages with zero pages.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) == 0 }
}

#[cfg(test)]
thread_local! {
    /// Unit tests: `discard` fails on this thread, as `madvise` does for
    /// locked pages, and leaves the memory as it was.
    pub(crate) static REFUSE_DISCARD: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Asks the kernel not to back `[p, p + len)` with huge pages (a mostly
/// untouched table, where one huge page would make 2 MiB resident for a
/// few bytes written). Advice only: a refusal changes nothing we rely on.
///
/// # Safety
/// The range must be inside a private anonymous mapping of ours.
pub unsafe fn no_huge_pages(p: *mut u8, len: usize) {
    // SAFETY: the caller vouches that the range is ours; the advice does
    // not change its contents.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_NOHUGEPAGE) };
}

/// The default arena allocator's `alloc`: an `ARENA_SIZE`-aligned mapping,
/// so every arena holds the full 64 pools.
///
/// # Safety
/// Callable from C with any arguments.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn default_arena_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    map_aligned(size, ARENA_SIZE).cast()
}

/// The default arena allocator's `free`. Ignores NULL (unlike `munmap`).
///
/// # Safety
/// `p` must come from [`default_arena_alloc`] with the same `size`.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn default_arena_free(_ctx: *mut c_void, p: *mut c_void, size: usize) {
    // SAFETY: forwarded contract.
    unsafe { unmap(p.cast(), size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_aligned_and_zeroed() {
        for _ in 0..8 {
            let p = map_aligned(ARENA_SIZE, ARENA_SIZE);
            assert!(!p.is_null());
            assert_eq!(p as usize % ARENA_SIZE, 0);
            // SAFETY: p is a fresh mapping of ARENA_SIZE bytes.
            let bytes = unsafe { core::slice::from_raw_parts_mut(p, ARENA_SIZE) };
            assert!(bytes.iter().step_by(4096).all(|&b| b == 0));
            bytes[100] = 7;
            // SAFETY: the mapping is ours and the slice is no longer used after this.
            unsafe {
                assert!(discard(p, 4096));
                assert_eq!(*p.add(100), 0);
                unmap(p, ARENA_SIZE);
            }
        }
    }
}
