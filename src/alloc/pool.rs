//! A pool: 16 KiB, aligned to its size, holding blocks of one size class
//! after a header.
//!
//! ```text
//! pool base                                                 base + POOL_SIZE
//! | PoolHeader (304 B) | block 0 | block 1 | ... | virgin ... |
//!                                                 ^ nextoffset
//! ```
//!
//! Invariants of a pool in use (not on its arena's free mask):
//! 1. `count` blocks are allocated, and exactly their start granules have
//!    a non-zero state in `state` (two bits per 16-byte granule of the pool:
//!    `00` free, `01` allocated, `11` holds an object, `10` holds a GC
//!    object). Nothing else is live.
//! 2. `freeblock` heads a list, linked through the first word of each free
//!    block, of the blocks below `nextoffset` that are not allocated.
//! 3. Blocks at `nextoffset` and above have never been handed out.
//! 4. `freeblock` is null iff the pool is full, and the pool is on its size
//!    class's used list iff it is neither full nor free (allocation refills
//!    `freeblock` from the virgin blocks eagerly, as CPython does).
//! 5. A block is marked as holding an object only while it is allocated:
//!    the mark is one of its non-zero states, and free clears both bits in
//!    one store.
//!
//! And of every pool of an arena, in use or not:
//! 6. When the pool is not in use, `state` is all zero (its last
//!    block's free cleared them; a new arena's memory is zero or its headers
//!    are zeroed; a purge gives back zero pages). So `init_pool` does not
//!    clear them.
//!
//! The state bitmap is what lets `free` reject a double free, or a pointer
//! into the middle of a block, in a few instructions and in every mode. A
//! pair of bits stands for a 16-byte granule, so an address that is not
//! 16-byte aligned is never live (it would share the granule of the block
//! it points into).

use core::ptr;

use super::size_class::{ALIGNMENT, ALIGNMENT_SHIFT, POOL_MASK, POOL_SIZE, class_size};

/// Words of `state`: two bits per granule.
pub(crate) const STATE_WORDS: usize = POOL_SIZE / 16 / 32;
/// The low bits of the granules' pairs in a `state` word whose granules
/// have an even `g / 16`.
const LOW_BITS: u64 = 0x5555_5555_5555_5555;

/// A granule's two `state` bits, low bit first: an allocated block starts
/// there and holds no object. Free is `00`.
pub(crate) const STATE_ALLOCATED: u64 = 0b01;
/// An allocated block that holds an object (`PyObject` at the block).
pub(crate) const STATE_OBJECT: u64 = 0b11;
/// An allocated block that holds a GC object (`PyObject` after a 16-byte
/// GC header). The high bit alone, so "holds an object" is the high bit and
/// "is a GC object" the high bit without the low one.
pub(crate) const STATE_GC_OBJECT: u64 = 0b10;

/// The header at the start of every pool in use.
#[repr(C)]
pub struct PoolHeader {
    /// Head of the free list (invariant 2), or null when the pool is full.
    pub freeblock: *mut u8,
    /// Blocks allocated.
    pub count: u32,
    /// Size class.
    pub szidx: u32,
    /// Next pool on the used list of this size class, or the sentinel that
    /// ends it (`heap.rs`, invariant 1).
    pub nextpool: *mut PoolHeader,
    /// Previous pool on the used list; stale at the head.
    pub prevpool: *mut PoolHeader,
    /// Index of the arena in the arena table.
    pub arena: u32,
    /// Offset of the first virgin block.
    pub nextoffset: u32,
    /// Largest offset a block may start at: `POOL_SIZE - block size`.
    pub maxnextoffset: u32,
    /// Block size in bytes.
    pub size: u32,
    /// Two bits per granule `g`, in word `(g + STATE_ROTATION) % 32` at
    /// bit `g / 16` (the low bit) and the next bit, mod 64: the granule's
    /// state, `STATE_ALLOCATED`, `STATE_OBJECT`, `STATE_GC_OBJECT`, or zero
    /// where no allocated block starts. Sharing a word, a free tests and
    /// clears both with one load and one store, on one cache line. The
    /// words are transposed (granule g's neighbours in a word are g ± 32,
    /// not g ± 1) so that blocks of 512 bytes all use word 0, in the header's first cache
    /// line, and blocks of 256 bytes words 0 and 16: a pool of large blocks
    /// touches one or two lines of its header, not five.
    pub state: [u64; STATE_WORDS],
}

/// Bytes before the first block: the header rounded up to the alignment.
pub(crate) const POOL_OVERHEAD: usize = core::mem::size_of::<PoolHeader>().next_multiple_of(16);

/// Number of blocks of class `c` a pool holds.
pub(crate) const fn blocks_per_pool(c: usize) -> usize {
    (POOL_SIZE - POOL_OVERHEAD) / class_size(c)
}

/// The header of the pool containing `p`.
#[inline(always)]
pub fn pool_of(p: *mut u8) -> *mut PoolHeader {
    ((p as usize) & !POOL_MASK) as *mut PoolHeader
}

/// Added to a granule's index before it is taken mod 32 to choose its
/// `state` word: the first block starts at granule `POOL_OVERHEAD / 16`
/// (19), so with this rotation it falls in word 0, and so does every block
/// 32 granules (512 bytes) after it; blocks 16 granules apart use words 0
/// and 16. Word 0 shares the header's first cache line with the fields
/// every malloc and free read, so a pool of 512-byte blocks keeps all its
/// block states there (see `PoolHeader::state`).
pub(crate) const STATE_ROTATION: usize = (32 - (POOL_OVERHEAD >> ALIGNMENT_SHIFT) % 32) % 32;

/// The `state` word of granule `g` of a pool (`g < POOL_SIZE / 16`).
#[inline(always)]
pub(crate) const fn state_word(g: usize) -> usize {
    (g + STATE_ROTATION) % STATE_WORDS
}

/// The position of granule `g`'s low state bit in its `state` word; its
/// high bit is the next one, mod 64. Bits of `g` above the pool's are taken
/// mod 64 by the shifts and rotations that use it.
#[inline(always)]
pub(crate) const fn state_position(g: usize) -> u32 {
    (g >> 4) as u32
}

/// The low state bits of `state` word `w`: the granules of a word are `g`,
/// `g + 32`, `g + 64` ..., so their positions `g / 16` all have the parity
/// of bit 4 of `g`. The high bits are the others.
#[inline(always)]
pub(crate) const fn low_mask(w: usize) -> u64 {
    LOW_BITS.rotate_left(((w.wrapping_sub(STATE_ROTATION) >> 4) & 1) as u32)
}

/// The granule whose low state bit is at position `pos` of `state` word `w`
/// (the inverse of [`state_word`] and [`state_position`]).
#[inline(always)]
pub(crate) const fn granule_at(w: usize, pos: u32) -> usize {
    ((pos as usize) << 4) | (w.wrapping_sub(STATE_ROTATION) & 15)
}

/// The `state` word describing a block starting at the 16-byte aligned
/// `p`, and the position of its low state bit there (the high bit is next,
/// mod 64; the position is meaningless for an unaligned `p`, which callers
/// reject).
#[inline(always)]
fn state_slot(pool: *mut PoolHeader, p: *mut u8) -> (*mut u64, u32) {
    // Granule g of the pool is bits 4..13 of p; state_word needs only g
    // mod 32 (bits 4..8), so the pool mask is not applied, and the rotation
    // is added before the shift (one `lea`, where adding it after would
    // take a `mov` and an `add`).
    let index = ((p as usize).wrapping_add(STATE_ROTATION << ALIGNMENT_SHIFT) >> ALIGNMENT_SHIFT)
        % STATE_WORDS;
    debug_assert_eq!(
        index,
        state_word(((p as usize) & POOL_MASK) >> ALIGNMENT_SHIFT)
    );
    // SAFETY: only an address computation inside the header: the index is
    // below STATE_WORDS.
    let word = unsafe { ptr::addr_of_mut!((*pool).state).cast::<u64>().add(index) };
    // g / 16 is bits 8..13 of p. The callers shift and rotate with
    // `wrapping_shl`/`wrapping_shr`/`rotate_left`, which take the count mod
    // 64 as x86's shift and bit-test instructions do, so no mask is spent.
    (word, state_position((p as usize) >> ALIGNMENT_SHIFT))
}

/// True iff `p` is 16-byte aligned, as the start of every block is.
#[inline(always)]
fn granule_aligned(p: *mut u8) -> bool {
    (p as usize) & (ALIGNMENT - 1) == 0
}

/// The state of the granule at `p`: its two bits.
///
/// # Safety
/// `pool` must be the header of the pool containing the 16-byte aligned
/// `p`, readable memory.
#[inline(always)]
unsafe fn granule_state(pool: *mut PoolHeader, p: *mut u8) -> u64 {
    let (word, shift) = state_slot(pool, p);
    // SAFETY: caller's contract.
    unsafe { (*word).rotate_right(shift) & 3 }
}

/// Marks the block at `p` allocated (its state was zero: invariant 1).
///
/// # Safety
/// `pool` must be the live header of the pool containing `p`.
#[inline(always)]
pub unsafe fn mark_live(pool: *mut PoolHeader, p: *mut u8) {
    let (word, shift) = state_slot(pool, p);
    // SAFETY: word points into the live header (caller's contract).
    unsafe { *word |= STATE_ALLOCATED.wrapping_shl(shift) };
}

/// Clears the state of the block at `p`; returns false if it was not live
/// (a double free, or `p` is not the start of an allocated block,
/// unaligned addresses included), in which case nothing is changed.
///
/// # Safety
/// `pool` must be the header of the pool containing `p`, readable memory.
#[inline(always)]
pub unsafe fn take_live(pool: *mut PoolHeader, p: *mut u8) -> bool {
    if !granule_aligned(p) {
        return false;
    }
    let (word, shift) = state_slot(pool, p);
    // SAFETY: word points into the pool header's state array (caller's
    // contract).
    unsafe {
        // Rotating the block's two bits down to bits 0 and 1 tests them and
        // clears both without a mask of the count (rotates take it mod 64,
        // as the compiler knows; it masks for a bit test).
        let r = (*word).rotate_right(shift);
        if r & 3 == 0 {
            return false;
        }
        *word = (r & !3).rotate_left(shift);
        true
    }
}

/// Clears the state of the allocated block at `p` (known allocated: no
/// test).
///
/// # Safety
/// `pool` must be the live header of the pool containing the allocated
/// block `p`.
#[inline(always)]
pub unsafe fn clear_live(pool: *mut PoolHeader, p: *mut u8) {
    let (word, shift) = state_slot(pool, p);
    debug_assert!(granule_aligned(p));
    // SAFETY: word points into the live header (caller's contract).
    unsafe { *word &= (!3u64).rotate_left(shift) };
}

/// Marks the live block at `p` as holding an object (`gc`: after a GC header).
///
/// # Safety
/// `pool` must be the live header of the pool containing the live block `p`.
#[inline(always)]
pub unsafe fn mark_object(pool: *mut PoolHeader, p: *mut u8, gc: bool) {
    let state = if gc { STATE_GC_OBJECT } else { STATE_OBJECT };
    // SAFETY: caller's contract.
    unsafe { set_state(pool, p, state) };
}

/// Replaces the state of the granule at `p` with `state`.
///
/// # Safety
/// `pool` must be the header of the pool containing the 16-byte aligned
/// `p`.
#[inline(always)]
unsafe fn set_state(pool: *mut PoolHeader, p: *mut u8, state: u64) {
    let (word, shift) = state_slot(pool, p);
    // SAFETY: the word lies in the header (caller's contract).
    unsafe { *word = (*word & (!3u64).rotate_left(shift)) | state.rotate_left(shift) };
}

/// Forgets that the block at `p` holds an object: an object's state
/// becomes plain allocated; any other state, free included, is left alone
/// (writing "allocated" over a free block would put it on the free list and
/// in use at once).
///
/// # Safety
/// `pool` must be the header of the pool containing the 16-byte aligned
/// `p`, in use or not.
#[inline(always)]
pub unsafe fn unmark_object(pool: *mut PoolHeader, p: *mut u8) {
    // SAFETY: caller's contract.
    unsafe {
        if granule_state(pool, p) & 2 != 0 {
            set_state(pool, p, STATE_ALLOCATED);
        }
    }
}

/// `None` if the block at `p` holds no object, else `Some(is_gc)`.
///
/// # Safety
/// As for [`mark_object`].
#[inline(always)]
pub unsafe fn object_kind(pool: *mut PoolHeader, p: *mut u8) -> Option<bool> {
    if !granule_aligned(p) {
        return None;
    }
    // SAFETY: as in mark_object; p is aligned.
    match unsafe { granule_state(pool, p) } {
        STATE_OBJECT => Some(false),
        STATE_GC_OBJECT => Some(true),
        _ => None,
    }
}

/// For an allocated block starting at `p`: whether it holds an object (and
/// a GC one); None if no allocated block starts at `p`. One read of the
/// state word.
///
/// # Safety
/// As for [`take_live`].
#[inline(always)]
pub unsafe fn live_kind(pool: *mut PoolHeader, p: *mut u8) -> Option<Option<bool>> {
    if !granule_aligned(p) {
        return None;
    }
    // SAFETY: caller's contract; p is aligned.
    let state = unsafe { granule_state(pool, p) };
    // Tests in this order, not a `match`: a plain block (realloc's usual
    // case) is one compare, where a match becomes a jump table.
    if state == STATE_ALLOCATED {
        Some(None)
    } else if state == 0 {
        None
    } else {
        Some(Some(state == STATE_GC_OBJECT))
    }
}

/// True iff an allocated block starts at `p`: `p` is 16-byte aligned and
/// its state is not zero.
///
/// # Safety
/// As for [`take_live`].
pub unsafe fn is_live(pool: *mut PoolHeader, p: *mut u8) -> bool {
    if !granule_aligned(p) {
        return false;
    }
    // SAFETY: caller's contract; p is aligned.
    unsafe { granule_state(pool, p) != 0 }
}

/// Sets up `pool` for class `c` in arena `arena` and hands out its first block.
/// The second block becomes the free list; the rest stay virgin.
///
/// # Safety
/// `pool` must be a `POOL_SIZE`-aligned pool of an arena of ours, not in use.
pub unsafe fn init_pool(pool: *mut PoolHeader, arena: u32, c: usize) -> *mut u8 {
    let size = class_size(c);
    let base = pool.cast::<u8>();
    // SAFETY: the pool is ours and unused, so writing its header and first
    // two blocks is writing our own memory; every block fits in the pool
    // because blocks_per_pool(c) >= 2 for every class.
    unsafe {
        let first = base.add(POOL_OVERHEAD);
        let second = first.add(size);
        // The bitmaps are already clear (invariant 6): only the scalar
        // fields are written.
        let h = &mut *pool;
        h.freeblock = second;
        h.count = 1;
        h.szidx = c as u32;
        h.arena = arena;
        h.nextoffset = (POOL_OVERHEAD + 2 * size) as u32;
        h.maxnextoffset = (POOL_SIZE - size) as u32;
        h.size = size as u32;
        second.cast::<*mut u8>().write(ptr::null_mut());
        mark_live(pool, first);
        first
    }
}

/// Takes a pool back into use for class `c` without setting it up again,
/// when its header still describes its last use by class `c` in arena
/// `arena` (it was emptied and not purged since, as CPython does): its free
/// list then holds every block it carved, and its bitmaps are clear
/// (invariant 6). Hands out the first free block; None if the header does
/// not qualify (then [`init_pool`] it).
///
/// # Safety
/// `pool` must be a `POOL_SIZE`-aligned pool of an arena of ours, not in use.
pub unsafe fn reuse_pool(pool: *mut PoolHeader, arena: u32, c: usize) -> Option<*mut u8> {
    // SAFETY: the pool is ours and unused; its header is either zeroes (new
    // or purged), or what its last use left, with a valid free list: every
    // block below nextoffset, at least two (init_pool carves two).
    unsafe {
        // A zeroed header (new or purged) has no free list, so it fails the
        // last test whatever its class and arena read as.
        let h = &mut *pool;
        if h.szidx as usize != c || h.arena != arena || h.count != 0 || h.freeblock.is_null() {
            return None;
        }
        let block = h.freeblock;
        let next = block.cast::<*mut u8>().read();
        if next.is_null() {
            return None;
        }
        h.freeblock = next;
        h.count = 1;
        mark_live(pool, block);
        Some(block)
    }
}

/// Gives `pool` a one-block free list from its virgin blocks, or returns false
/// if it has none left (the pool is full).
///
/// # Safety
/// `pool` must be a live pool header whose free list is empty.
#[inline]
pub unsafe fn extend_from_virgin(pool: *mut PoolHeader) -> bool {
    // SAFETY: the header is live (caller), and nextoffset <= maxnextoffset
    // means a whole block fits at nextoffset inside the pool.
    unsafe {
        let h = &mut *pool;
        if h.nextoffset > h.maxnextoffset {
            return false;
        }
        let block = pool.cast::<u8>().add(h.nextoffset as usize);
        block.cast::<*mut u8>().write(ptr::null_mut());
        h.freeblock = block;
        h.nextoffset += h.size;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::size_class::NB_SMALL_SIZE_CLASSES;

    #[test]
    fn header_leaves_blocks_aligned_and_bitmap_covers_pool() {
        assert_eq!(POOL_OVERHEAD % 16, 0);
        assert_eq!(POOL_OVERHEAD, 304);
        assert_eq!(STATE_WORDS * 32 * 16, POOL_SIZE);
        assert_eq!(blocks_per_pool(0), 1005);
        assert_eq!(blocks_per_pool(15), 62);
        assert_eq!(blocks_per_pool(31), 31);
        for c in 0..NB_SMALL_SIZE_CLASSES {
            assert!(blocks_per_pool(c) >= 2);
        }
    }

    #[test]
    fn state_bits_are_one_pair_per_granule_and_large_blocks_share_word_0() {
        // Every granule has its own low bit, and its high bit (the next
        // position, mod 64) is nobody's low bit.
        let mut seen = [0u64; STATE_WORDS];
        for g in 0..POOL_SIZE / ALIGNMENT {
            let (w, pos) = (state_word(g), state_position(g));
            assert!(w < STATE_WORDS && pos < 64);
            let live = 1u64 << pos;
            assert_eq!(live & low_mask(w), live, "granule {g}");
            assert_eq!(live.rotate_left(1) & low_mask(w), 0, "granule {g}");
            assert_eq!(seen[w] & live, 0, "granule {g} shares a bit");
            seen[w] |= live;
            assert_eq!(granule_at(w, pos), g);
        }
        assert!(seen.iter().enumerate().all(|(w, &s)| s == low_mask(w)));
        // The words the blocks of a class use, from the pool's first block.
        let words = |size: usize| {
            let mut ws: Vec<usize> = (POOL_OVERHEAD..=POOL_SIZE - size)
                .step_by(size)
                .map(|off| state_word(off / ALIGNMENT))
                .collect();
            ws.sort_unstable();
            ws.dedup();
            ws
        };
        assert_eq!(words(512), [0]);
        assert_eq!(words(256), [0, 16]);
        assert_eq!(words(16).len(), STATE_WORDS);
        // Word 0 lies in the header's first cache line, beside the fields
        // every call reads.
        assert!(core::mem::offset_of!(PoolHeader, state) + 8 <= 64);
    }
}
