//! The address map: an O(1) answer to "is this pointer inside one of our
//! pools?", right for every pointer, including ones from `malloc` (CPython's
//! `address_in_range`, SPEC.md §2.9).
//!
//! The 48-bit user address space is cut into 1 MiB chunks. A two-level radix
//! tree maps a chunk number to a 64-bit mask with one bit per 16 KiB pool of
//! the chunk: the root (bits 38..48, 1,024 slots) is an array inside the
//! heap, leaves (bits 20..38, 2 MiB of address space each) are mapped on
//! demand and kept until the heap is dropped. A leaf is mostly untouched:
//! only the pages holding the masks of chunks that ever held an arena become
//! resident, one 4 KiB page per 512 MiB of address space. A root slot
//! without a leaf points at one shared, never written leaf of zeroes, so the
//! test has no branch for it. Addresses at or above 2^48 are never ours (an
//! arena placed there is refused when registered), nor is anything in the
//! first chunk, so NULL never is.
//!
//! An arena's pooled range is pool-aligned at both ends, so a mask says
//! exactly which addresses are ours even where an arena from a custom arena
//! allocator starts or ends inside a chunk (two arenas may share one). A
//! zeroed mask owns nothing, so freshly mapped leaves need no set-up, and
//! the test is a range test, two dependent loads and a bit test.

use super::os;
use super::size_class::{ARENA_BITS, ARENA_SIZE, POOL_SIZE};

const ADDRESS_BITS: u32 = 48;
const LEAF_BITS: u32 = 18;
const ROOT_BITS: u32 = ADDRESS_BITS - ARENA_BITS - LEAF_BITS;
const LEAF_LEN: usize = 1 << LEAF_BITS;
const ROOT_LEN: usize = 1 << ROOT_BITS;
const POOL_BITS: u32 = POOL_SIZE.trailing_zeros();
const _: () = assert!(
    ARENA_SIZE / POOL_SIZE == 64,
    "one mask bit per pool of a chunk"
);

/// Per chunk, which of its pools are ours: bit `i` of a chunk's mask is the
/// pool at offset `i * POOL_SIZE`.
type Leaf = [u64; LEAF_LEN];

/// The leaf of every root slot that has none of its own: all zeroes, so it
/// owns nothing. Never written (every writer replaces the slot first); the
/// cell only keeps it out of read-only data, in zero-fill memory that costs
/// nothing until read.
struct EmptyLeaf(core::cell::UnsafeCell<Leaf>);

// SAFETY: the leaf is never written, so threads share it as immutable data.
unsafe impl Sync for EmptyLeaf {}

static EMPTY_LEAF: EmptyLeaf = EmptyLeaf(core::cell::UnsafeCell::new([0; LEAF_LEN]));

#[inline(always)]
const fn empty_leaf() -> *mut Leaf {
    EMPTY_LEAF.0.get()
}

/// Masks per 4 KiB page of a leaf.
const MASKS_PER_PAGE: usize = 4096 / core::mem::size_of::<u64>();
/// Bytes mapped per leaf: its masks, then one page whose first
/// `LEAF_LEN / MASKS_PER_PAGE` bits say which pages of masks were ever
/// written (for the statistics).
const LEAF_MAP_BYTES: usize = core::mem::size_of::<Leaf>() + 4096;
const _: () = assert!(
    LEAF_LEN / MASKS_PER_PAGE <= 4096 * 8,
    "the written-pages bitmap fits its page"
);

/// The two-level map from chunk to pool mask.
pub struct RadixMap {
    /// Every slot points at a leaf: a mapped one, or [`EMPTY_LEAF`].
    root: [*mut Leaf; ROOT_LEN],
    /// Number of leaves mapped (for the statistics).
    pub leaves: usize,
    /// Pages of masks ever written over all leaves: what the leaves hold
    /// resident (the rest of a leaf is address space).
    leaf_pages: usize,
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
            root: [empty_leaf(); ROOT_LEN],
            leaves: 0,
            leaf_pages: 0,
        }
    }

    /// Bytes of leaf memory in use: the pages of masks ever written, and
    /// each leaf's page of bookkeeping (the rest of a leaf is mapped but
    /// never touched, so it costs address space only).
    pub fn leaf_bytes(&self) -> usize {
        (self.leaf_pages + self.leaves) * 4096
    }

    /// Bytes of the root array.
    pub const fn root_bytes() -> usize {
        ROOT_LEN * core::mem::size_of::<*mut Leaf>()
    }

    /// True iff `addr` lies inside a registered range. Costs one compare, two
    /// dependent loads and a bit test.
    #[inline(always)]
    pub fn contains(&self, addr: usize) -> bool {
        if addr >> ADDRESS_BITS != 0 {
            return false;
        }
        let leaf = self.root[addr >> (ARENA_BITS + LEAF_BITS)];
        // SAFETY: every root slot points at a leaf of LEAF_LEN entries, a
        // mapped one (unmapped only in Drop) or EMPTY_LEAF, and the index is
        // masked to LEAF_BITS. The read goes through the raw pointer, so
        // EMPTY_LEAF's cell is never borrowed.
        let mask = unsafe {
            leaf.cast::<u64>()
                .add((addr >> ARENA_BITS) & (LEAF_LEN - 1))
                .read()
        };
        (mask >> ((addr >> POOL_BITS) & 63)) & 1 != 0
    }

    #[unsafe(link_section = ".text.hot.pyheap")]
    fn entry_mut(&mut self, chunk: usize) -> Result<&mut u64, RegisterError> {
        let top = chunk >> LEAF_BITS;
        if top >= ROOT_LEN {
            return Err(RegisterError::OutOfRange);
        }
        if self.root[top] == empty_leaf() {
            let leaf = os::map_aligned(LEAF_MAP_BYTES, 4096);
            if leaf.is_null() {
                return Err(RegisterError::NoMemory);
            }
            // SAFETY: the leaf was just mapped, all of it ours.
            unsafe { os::no_huge_pages(leaf, LEAF_MAP_BYTES) };
            self.root[top] = leaf.cast();
            self.leaves += 1;
        }
        let leaf = self.root[top];
        let entry = chunk & (LEAF_LEN - 1);
        let page = entry / MASKS_PER_PAGE;
        // SAFETY: the slot points at a live leaf mapped by this function,
        // LEAF_MAP_BYTES long and zero-initialised: the masks, a valid array
        // of u64, then the written-pages bitmap, whose bit `page` lies inside
        // its page (the assertion above).
        unsafe {
            let written = leaf
                .cast::<u8>()
                .add(core::mem::size_of::<Leaf>())
                .cast::<u64>();
            let word = written.add(page / 64);
            if *word >> (page % 64) & 1 == 0 {
                *word |= 1 << (page % 64);
                self.leaf_pages += 1;
            }
            Ok(&mut (*leaf)[entry])
        }
    }

    /// The mask bits of chunk `chunk` that `[start, end)` covers.
    fn bits(chunk: usize, start: usize, end: usize) -> u64 {
        let base = chunk << ARENA_BITS;
        let lo = start.max(base) - base;
        let hi = end.min(base + ARENA_SIZE) - base;
        let (first, n) = (lo / POOL_SIZE, (hi - lo) / POOL_SIZE);
        if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << first
        }
    }

    /// Marks `[start, end)` as pooled. The range must be non-empty, at most
    /// `ARENA_SIZE` long and pool-aligned at both ends (true of every
    /// arena's pool range).
    #[unsafe(link_section = ".text.hot.pyheap")]
    pub fn register(&mut self, start: usize, end: usize) -> Result<(), RegisterError> {
        debug_assert!(start < end && end - start <= ARENA_SIZE);
        debug_assert!(start % POOL_SIZE == 0 && end % POOL_SIZE == 0);
        if end > 1usize << ADDRESS_BITS || start < ARENA_SIZE {
            return Err(RegisterError::OutOfRange);
        }
        let first = start >> ARENA_BITS;
        let last = (end - 1) >> ARENA_BITS;
        // Map both leaves before writing, so a failure leaves no half entry.
        self.entry_mut(first)?;
        self.entry_mut(last)?;
        for chunk in first..=last {
            *self.entry_mut(chunk)? |= Self::bits(chunk, start, end);
        }
        Ok(())
    }

    /// Forgets a range given earlier to [`RadixMap::register`].
    #[unsafe(link_section = ".text.hot.pyheap")]
    pub fn unregister(&mut self, start: usize, end: usize) {
        let first = start >> ARENA_BITS;
        let last = (end - 1) >> ARENA_BITS;
        for chunk in first..=last {
            if let Ok(e) = self.entry_mut(chunk) {
                *e &= !Self::bits(chunk, start, end);
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
            if *slot != empty_leaf() {
                // SAFETY: each slot but EMPTY_LEAF's is a leaf mapped by entry_mut
                // with exactly this size; nothing refers to it after drop.
                unsafe { os::unmap(slot.cast(), LEAF_MAP_BYTES) };
                *slot = empty_leaf();
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
    fn slots_without_a_leaf_own_nothing_and_the_empty_leaf_stays_zero() {
        let mut m = Box::new(RadixMap::new());
        // Three root slots: each range gets its own leaf, the slots between
        // keep the shared empty one.
        let bases = [0x0100_0000_0000usize, 0x1100_0000_0000, 0x7f00_0000_0000];
        for &b in &bases {
            m.register(b, b + ARENA_SIZE).unwrap();
        }
        assert_eq!(m.leaves, 3);
        // One page of masks written per leaf, plus each leaf's bookkeeping.
        assert_eq!(m.leaf_bytes(), 6 * 4096);
        for &b in &bases {
            assert!(m.contains(b) && m.contains(b + ARENA_SIZE - 1));
            for other in [b + (1 << 38), b - (1 << 38), b + ARENA_SIZE] {
                assert!(!m.contains(other), "address {other:#x}");
            }
        }
        for &b in &bases {
            m.unregister(b, b + ARENA_SIZE);
        }
        drop(m);
        // SAFETY: nothing writes the empty leaf (what this checks); reading
        // it through the raw pointer borrows nothing.
        let all_zero =
            (0..LEAF_LEN).all(|i| unsafe { empty_leaf().cast::<u64>().add(i).read() } == 0);
        assert!(all_zero, "EMPTY_LEAF was written");
    }

    #[test]
    fn ranges_above_the_address_space_are_refused() {
        let mut m = Box::new(RadixMap::new());
        let r = m.register(1 << 48, (1 << 48) + ARENA_SIZE);
        assert_eq!(r, Err(RegisterError::OutOfRange));
    }
}
