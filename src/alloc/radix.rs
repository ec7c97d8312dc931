//! The address map: an O(1) answer to "is this pointer inside one of our
//! pools?", right for every pointer, including ones from `malloc` (CPython's
//! `address_in_range`, SPEC.md §2.9).
//!
//! The 48-bit user address space is cut into 1 MiB chunks. A two-level radix
//! tree maps a chunk number to a [`Coverage`] entry: the root (bits 34..48) is
//! an array inside the heap, leaves (bits 20..34) are mapped on demand and
//! kept until the heap is dropped. Addresses at or above 2^48 are never ours
//! (an arena placed there is refused when registered).
//!
//! The pooled range of an arena, `[first pool, end of last pool)`, is at most
//! 1 MiB long and always touches a chunk boundary at each side that lies
//! inside it (its ends are pool-aligned and it spans the arena's whole
//! middle), so each chunk needs two numbers:
//!
//! | number | meaning |
//! |--------|---------|
//! | `low`  | offsets `[0, low)` belong to an arena that began in an earlier chunk |
//! | `high` | offsets `[ARENA_SIZE - high, ARENA_SIZE)` belong to an arena that begins here |
//!
//! The entry stores `low` and the length of the gap between the two,
//! `gap = ARENA_SIZE - low - high`, so that the test is one subtraction and
//! one unsigned compare: an offset is ours iff `offset - low` (wrapping)
//! is at least `gap`. The gap is stored XOR `ARENA_SIZE`, so that a zeroed
//! entry (gap `ARENA_SIZE`) owns nothing and freshly mapped leaves need no
//! set-up.

use core::ptr;

use super::os;
use super::size_class::{ARENA_BITS, ARENA_SIZE};

const ADDRESS_BITS: u32 = 48;
const LEAF_BITS: u32 = 14;
const ROOT_BITS: u32 = ADDRESS_BITS - ARENA_BITS - LEAF_BITS;
const LEAF_LEN: usize = 1 << LEAF_BITS;
const ROOT_LEN: usize = 1 << ROOT_BITS;

/// Which offsets of one 1 MiB chunk lie in pools (see the module table).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Coverage {
    low: u32,
    /// `gap ^ ARENA_SIZE` (see the module docs).
    gap_x: u32,
}

impl Coverage {
    fn high(&self) -> u32 {
        ARENA_SIZE as u32 - self.low - (self.gap_x ^ ARENA_SIZE as u32)
    }

    fn set(&mut self, low: u32, high: u32) {
        debug_assert!(low as usize + high as usize <= ARENA_SIZE);
        self.low = low;
        self.gap_x = (ARENA_SIZE as u32 - low - high) ^ ARENA_SIZE as u32;
    }

    fn set_low(&mut self, low: u32) {
        let high = self.high();
        self.set(low, high);
    }

    fn set_high(&mut self, high: u32) {
        let low = self.low;
        self.set(low, high);
    }
}

type Leaf = [Coverage; LEAF_LEN];

/// The two-level map from chunk to coverage.
pub struct RadixMap {
    root: [*mut Leaf; ROOT_LEN],
    /// Number of leaves mapped (for the statistics).
    pub leaves: usize,
}

/// Why a range could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The range is not below 2^48, or starts in the first chunk.
    OutOfRange,
    /// No memory for a leaf.
    NoMemory,
}

impl RadixMap {
    /// An empty map.
    pub const fn new() -> Self {
        RadixMap {
            root: [ptr::null_mut(); ROOT_LEN],
            leaves: 0,
        }
    }

    /// Bytes of leaf memory mapped.
    pub fn leaf_bytes(&self) -> usize {
        self.leaves * core::mem::size_of::<Leaf>()
    }

    /// Bytes of the root array.
    pub const fn root_bytes() -> usize {
        ROOT_LEN * core::mem::size_of::<*mut Leaf>()
    }

    /// True iff `addr` lies inside a registered range. Costs one compare, two
    /// dependent loads, a subtraction and a compare.
    #[inline(always)]
    pub fn contains(&self, addr: usize) -> bool {
        if addr >> ADDRESS_BITS != 0 {
            return false;
        }
        let leaf = self.root[addr >> (ARENA_BITS + LEAF_BITS)];
        if leaf.is_null() {
            return false;
        }
        // SAFETY: a non-null root slot always points at a live leaf of
        // LEAF_LEN entries (leaves are freed only in Drop), and the index is
        // masked to LEAF_BITS.
        let cov = unsafe { (*leaf)[(addr >> ARENA_BITS) & (LEAF_LEN - 1)] };
        let off = (addr & (ARENA_SIZE - 1)) as u32;
        off.wrapping_sub(cov.low) >= cov.gap_x ^ ARENA_SIZE as u32
    }

    fn entry_mut(&mut self, chunk: usize) -> Result<&mut Coverage, RegisterError> {
        let top = chunk >> LEAF_BITS;
        if top >= ROOT_LEN {
            return Err(RegisterError::OutOfRange);
        }
        if self.root[top].is_null() {
            let leaf = os::map_aligned(core::mem::size_of::<Leaf>(), 4096);
            if leaf.is_null() {
                return Err(RegisterError::NoMemory);
            }
            self.root[top] = leaf.cast();
            self.leaves += 1;
        }
        // SAFETY: the slot now points at a live, zero-initialised leaf, which
        // is a valid array of Coverage (all-zero is a valid Coverage).
        Ok(unsafe { &mut (*self.root[top])[chunk & (LEAF_LEN - 1)] })
    }

    /// Marks `[start, end)` as pooled. The range must be non-empty, at most
    /// `ARENA_SIZE` long, and reach the chunk boundaries it crosses (true of
    /// every arena's pool range; see the module docs).
    pub fn register(&mut self, start: usize, end: usize) -> Result<(), RegisterError> {
        debug_assert!(start < end && end - start <= ARENA_SIZE);
        // The first chunk is never ours, so that NULL is never ours and the
        // free fast path needs no NULL test of its own.
        if end > 1usize << ADDRESS_BITS || start < ARENA_SIZE {
            return Err(RegisterError::OutOfRange);
        }
        let first = start >> ARENA_BITS;
        let last = (end - 1) >> ARENA_BITS;
        // Map both leaves before writing, so a failure leaves no half entry.
        self.entry_mut(first)?;
        self.entry_mut(last)?;
        let start_off = (start & (ARENA_SIZE - 1)) as u32;
        let end_off = (end & (ARENA_SIZE - 1)) as u32;
        if first == last {
            let e = self.entry_mut(first)?;
            if start_off == 0 && end_off != 0 {
                // Starts at the chunk's start and ends inside it.
                e.set_low(end_off);
            } else {
                // Ends at the chunk's end (or is the whole chunk).
                debug_assert!(end_off == 0);
                e.set_high(ARENA_SIZE as u32 - start_off);
            }
        } else {
            debug_assert!(end_off != 0);
            self.entry_mut(first)?
                .set_high(ARENA_SIZE as u32 - start_off);
            self.entry_mut(last)?.set_low(end_off);
        }
        Ok(())
    }

    /// Forgets a range given earlier to [`RadixMap::register`].
    pub fn unregister(&mut self, start: usize, end: usize) {
        let first = start >> ARENA_BITS;
        let last = (end - 1) >> ARENA_BITS;
        let starts_at_boundary = start & (ARENA_SIZE - 1) == 0;
        let ends_inside = end & (ARENA_SIZE - 1) != 0;
        if first == last && starts_at_boundary && ends_inside {
            if let Ok(e) = self.entry_mut(first) {
                e.set_low(0);
            }
            return;
        }
        if let Ok(e) = self.entry_mut(first) {
            e.set_high(0);
        }
        if first != last {
            if let Ok(e) = self.entry_mut(last) {
                e.set_low(0);
            }
        }
    }
}

impl Default for RadixMap {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RadixMap {
    fn drop(&mut self) {
        for slot in self.root.iter_mut() {
            if !slot.is_null() {
                // SAFETY: each non-null slot is a leaf mapped by entry_mut
                // with exactly this size; nothing refers to it after drop.
                unsafe { os::unmap(slot.cast(), core::mem::size_of::<Leaf>()) };
                *slot = ptr::null_mut();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_range_owns_exactly_its_chunk() {
        let mut m = Box::new(RadixMap::new());
        let base = 0x7f12_3450_0000usize & !(ARENA_SIZE - 1);
        m.register(base, base + ARENA_SIZE).unwrap();
        assert!(m.contains(base));
        assert!(m.contains(base + ARENA_SIZE - 1));
        assert!(!m.contains(base - 1));
        assert!(!m.contains(base + ARENA_SIZE));
        m.unregister(base, base + ARENA_SIZE);
        assert!(!m.contains(base));
    }

    #[test]
    fn unaligned_neighbours_share_a_chunk() {
        let mut m = Box::new(RadixMap::new());
        let chunk = 0x5555_0000_0000usize;
        // Arena A's pools end 0x30000 into the chunk, arena B's start 0x80000 in.
        let a = (chunk - ARENA_SIZE + 0x34000, chunk + 0x30000);
        let b = (chunk + 0x80000, chunk + ARENA_SIZE + 0x4000);
        m.register(a.0, a.1).unwrap();
        m.register(b.0, b.1).unwrap();
        for (addr, want) in [
            (a.0 - 1, false),
            (a.0, true),
            (chunk + 0x2ffff, true),
            (chunk + 0x30000, false),
            (chunk + 0x7ffff, false),
            (chunk + 0x80000, true),
            (b.1 - 1, true),
            (b.1, false),
            (usize::MAX, false),
            (1 << 48, false),
            (0, false),
        ] {
            assert_eq!(m.contains(addr), want, "address {addr:#x}");
        }
        m.unregister(a.0, a.1);
        assert!(!m.contains(chunk));
        assert!(m.contains(chunk + 0x80000));
    }

    #[test]
    fn range_from_a_chunk_start_ending_inside_owns_only_its_head() {
        let mut m = Box::new(RadixMap::new());
        let chunk = 0x4444_0000_0000usize;
        m.register(chunk, chunk + 0xfc000).unwrap();
        assert!(m.contains(chunk));
        assert!(m.contains(chunk + 0xfbfff));
        assert!(!m.contains(chunk + 0xfc000));
        assert!(!m.contains(chunk - 1));
        m.unregister(chunk, chunk + 0xfc000);
        assert!(!m.contains(chunk));
    }

    #[test]
    fn ranges_above_the_address_space_are_refused() {
        let mut m = Box::new(RadixMap::new());
        let r = m.register(1 << 48, (1 << 48) + ARENA_SIZE);
        assert_eq!(r, Err(RegisterError::OutOfRange));
    }
}
