//! The numbers of the pool allocator. They are CPython 3.11's on 64-bit
//! platforms (SPEC.md §2.1), except the pool header, which is larger because
//! it carries a bitmap of live blocks (see `pool.rs`).

/// Every block is aligned to this many bytes.
pub(crate) const ALIGNMENT: usize = 16;
/// `log2(ALIGNMENT)`.
pub(crate) const ALIGNMENT_SHIFT: u32 = 4;
/// Requests of this many bytes or fewer are served from pools.
pub(crate) const SMALL_REQUEST_THRESHOLD: usize = 512;
/// Number of size classes: 16, 32, ..., 512.
pub(crate) const NB_SMALL_SIZE_CLASSES: usize = SMALL_REQUEST_THRESHOLD / ALIGNMENT;

/// A pool is 16 KiB and aligned to its size.
pub(crate) const POOL_BITS: u32 = 14;
/// Size of one pool in bytes.
pub(crate) const POOL_SIZE: usize = 1 << POOL_BITS;
/// Mask giving the offset of an address inside its pool.
pub(crate) const POOL_MASK: usize = POOL_SIZE - 1;

/// An arena is 1 MiB.
pub(crate) const ARENA_BITS: u32 = 20;
/// Size of one arena in bytes.
pub(crate) const ARENA_SIZE: usize = 1 << ARENA_BITS;
/// Pools in an arena aligned to `ARENA_SIZE` (one fewer otherwise).
#[cfg(test)]
pub(crate) const MAX_POOLS_IN_ARENA: usize = ARENA_SIZE / POOL_SIZE;

/// The size class of a request of `n` bytes, `1 <= n <= 512`.
#[inline(always)]
pub(crate) const fn class_of(n: usize) -> usize {
    (n - 1) >> ALIGNMENT_SHIFT
}

/// The block size of class `c`.
#[inline(always)]
pub(crate) const fn class_size(c: usize) -> usize {
    (c + 1) << ALIGNMENT_SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size_exactly() {
        for n in 1..=SMALL_REQUEST_THRESHOLD {
            let c = class_of(n);
            assert!(c < NB_SMALL_SIZE_CLASSES);
            assert!(class_size(c) >= n);
            assert!(class_size(c) - n < ALIGNMENT);
            assert_eq!(class_size(c) % ALIGNMENT, 0);
        }
        assert_eq!(class_of(1), 0);
        assert_eq!(class_of(512), 31);
        assert_eq!(MAX_POOLS_IN_ARENA, 64);
    }
}
