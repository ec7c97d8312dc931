//! Arenas and the table that chooses among them.
//!
//! Each arena keeps its pools in two 64-bit masks. Arenas with at least one
//! free pool sit in buckets by their number of free pools, and a new pool is
//! taken from the non-empty bucket with the fewest free pools: the fullest
//! arenas fill up first, so the emptiest ones drain and can be given back
//! (CPython gets the same order from a sorted list, SPEC.md §2.7).
//!
//! Invariants (checked by `ArenaTable::check_invariants`):
//! 1. A slot is live iff `base != 0`; `unused` lists exactly the dead slots.
//! 2. `nfree == free_mask.count_ones()` and `dirty_mask ⊆ free_mask`.
//! 3. A live arena is in bucket `nfree` iff `nfree > 0`; bit `nfree - 1` of
//!    `nonempty` is set iff that bucket's list is non-empty.

use crate::cvec::CVec;
use crate::domains::PyObjectArenaAllocator;

/// "No arena" in the u32 links.
pub(crate) const NONE: u32 = u32::MAX;

/// One arena: a region from the arena allocator carved into pools.
#[derive(Clone, Copy)]
pub struct Arena {
    /// Address the arena allocator returned; 0 for a dead slot.
    pub base: usize,
    /// Address of the first pool (`base` rounded up to the pool size).
    pub first_pool: usize,
    /// Pools in this arena (64, or 63 when `base` is not pool-aligned).
    pub npools: u32,
    /// Pools not in use.
    pub nfree: u32,
    /// Bit `i` set iff pool `i` is not in use.
    pub free_mask: u64,
    /// Bit `i` set iff pool `i` is free but its pages may still be resident.
    pub dirty_mask: u64,
    /// Links in the bucket list for `nfree` (stale while `nfree` is 0).
    pub next: u32,
    /// See `next`.
    pub prev: u32,
    /// The allocator that made this arena and must free it.
    pub allocator: PyObjectArenaAllocator,
    /// True when the memory is a private anonymous mapping we may `madvise`.
    pub purgeable: bool,
}

impl Arena {
    /// Address of pool `i`.
    pub fn pool_addr(&self, i: u32) -> usize {
        self.first_pool + ((i as usize) << super::size_class::POOL_BITS)
    }

    /// End of the pooled range.
    pub fn pools_end(&self) -> usize {
        self.pool_addr(self.npools)
    }

    /// Index of the pool at `addr`.
    pub fn pool_index(&self, addr: usize) -> u32 {
        ((addr - self.first_pool) >> super::size_class::POOL_BITS) as u32
    }

    /// True if no pool is in use.
    pub fn is_wholly_free(&self) -> bool {
        self.nfree == self.npools
    }

    fn dead(allocator: PyObjectArenaAllocator) -> Self {
        Arena {
            base: 0,
            first_pool: 0,
            npools: 0,
            nfree: 0,
            free_mask: 0,
            dirty_mask: 0,
            next: NONE,
            prev: NONE,
            allocator,
            purgeable: false,
        }
    }
}

/// All arenas, live and dead, plus the buckets.
pub struct ArenaTable {
    /// Every slot ever used; indices are stable (pool headers store them).
    pub slots: CVec<Arena>,
    unused: CVec<u32>,
    bucket: [u32; 65],
    nonempty: u64,
}

impl ArenaTable {
    /// An empty table.
    pub const fn new() -> Self {
        ArenaTable {
            slots: CVec::new(),
            unused: CVec::new(),
            bucket: [NONE; 65],
            nonempty: 0,
        }
    }

    /// Adds a live arena and files it in its bucket. Returns its index, or
    /// None if the table cannot grow.
    #[unsafe(link_section = ".text.hot.pyheap")]
    pub fn insert(&mut self, arena: Arena) -> Option<u32> {
        let idx = match self.unused.pop() {
            Some(i) => {
                self.slots[i as usize] = arena;
                i
            }
            None => {
                // `unused` is empty here; room for every slot in it now
                // means remove() never needs memory (invariant 1).
                if self.slots.len() >= NONE as usize
                    || self.unused.try_reserve(self.slots.len() + 1).is_err()
                    || self.slots.try_push(arena).is_err()
                {
                    return None;
                }
                (self.slots.len() - 1) as u32
            }
        };
        self.link(idx);
        Some(idx)
    }

    /// Removes a live arena from its bucket and marks its slot dead.
    pub fn remove(&mut self, idx: u32) {
        self.unlink(idx);
        let allocator = self.slots[idx as usize].allocator;
        self.slots[idx as usize] = Arena::dead(allocator);
        // Cannot fail: insert() keeps room in `unused` for every slot.
        let listed = self.unused.try_push(idx);
        debug_assert!(listed.is_ok());
    }

    /// The arena with the fewest free pools among those with any, or NONE.
    #[inline]
    pub fn fullest_with_room(&self) -> u32 {
        self.fullest_with_room_if_any().unwrap_or(NONE)
    }

    /// [`fullest_with_room`](Self::fullest_with_room) as an option, trusting
    /// invariant 3 (a non-empty bucket's head is a live arena) instead of
    /// testing the head for NONE.
    #[inline(always)]
    pub fn fullest_with_room_if_any(&self) -> Option<u32> {
        if self.nonempty == 0 {
            return None;
        }
        let idx = self.bucket[self.nonempty.trailing_zeros() as usize + 1];
        debug_assert_ne!(idx, NONE);
        Some(idx)
    }

    /// The live slot `idx`, without a bounds check: the pool paths pass
    /// indices read from live pool headers or from the buckets, which name
    /// live slots only (invariants 1 and 3).
    ///
    /// # Safety
    /// `idx < slots.len()`.
    #[inline(always)]
    pub unsafe fn slot_mut(&mut self, idx: u32) -> &mut Arena {
        debug_assert!((idx as usize) < self.slots.len(), "arena index {idx}");
        // SAFETY: caller's contract.
        unsafe { self.slots.get_unchecked_mut(idx as usize) }
    }

    /// Call after changing `nfree` of a live arena from `old_nfree`: moves
    /// it from bucket `old_nfree` to bucket `nfree` (bucket 0 is no bucket).
    ///
    /// # Safety
    /// `idx` is a live slot, filed in bucket `old_nfree` (invariant 3 held
    /// before its `nfree` changed).
    #[inline(always)]
    pub unsafe fn refile(&mut self, idx: u32, old_nfree: u32) {
        // SAFETY: caller's contract.
        let new_nfree = unsafe { self.slot_mut(idx) }.nfree;
        if new_nfree == old_nfree {
            return;
        }
        // SAFETY: caller's contract; both counts are <= 64.
        unsafe {
            self.unlink_from(idx, old_nfree as usize);
            self.link_into(idx, new_nfree as usize);
        }
    }

    /// [`refile`](Self::refile) for the arena that
    /// [`fullest_with_room`](Self::fullest_with_room) named, after one of
    /// its pools was taken (`nfree` went down from `old_nfree`). It heads
    /// the lowest non-empty bucket, so it moves to the head of an empty one:
    /// no list to search and no neighbour there to relink.
    ///
    /// # Safety
    /// `idx` is what `fullest_with_room` returned, and only its `nfree` has
    /// changed since, by one.
    #[inline(always)]
    pub unsafe fn refile_fullest(&mut self, idx: u32, old_nfree: u32) {
        debug_assert_eq!(self.fullest_with_room(), idx);
        let k = old_nfree as usize;
        debug_assert!((1..self.bucket.len()).contains(&k));
        // SAFETY: caller's contract: idx is a live slot heading bucket k
        // (so its prev is NONE), 1 <= k <= 64, and bucket k - 1 is empty
        // (k is the lowest non-empty bucket).
        unsafe {
            let next = self.slot_mut(idx).next;
            *self.bucket.get_unchecked_mut(k) = next;
            if next == NONE {
                self.nonempty &= !(1 << (k - 1));
            } else {
                self.slot_mut(next).prev = NONE;
            }
            if k > 1 {
                *self.bucket.get_unchecked_mut(k - 1) = idx;
                self.slot_mut(idx).next = NONE;
                self.nonempty |= 1 << (k - 2);
            }
        }
    }

    fn link(&mut self, idx: u32) {
        let nfree = self.slots[idx as usize].nfree as usize;
        // SAFETY: idx was just checked; nfree <= npools <= 64.
        unsafe { self.link_into(idx, nfree) }
    }

    fn unlink(&mut self, idx: u32) {
        let nfree = self.slots[idx as usize].nfree as usize;
        // SAFETY: as in link; the arena is in bucket nfree (invariant 3).
        unsafe { self.unlink_from(idx, nfree) }
    }

    /// Puts arena `idx` first in bucket `nfree` (nothing for 0).
    ///
    /// # Safety
    /// `idx` is a live slot in no bucket; `nfree <= 64`.
    #[inline(always)]
    unsafe fn link_into(&mut self, idx: u32, nfree: usize) {
        if nfree == 0 {
            return;
        }
        debug_assert!(nfree < self.bucket.len());
        // SAFETY: caller's contract: nfree indexes the buckets, idx and the
        // bucket's head (a live arena or NONE) index slots.
        unsafe {
            let slot = self.bucket.get_unchecked_mut(nfree);
            let head = *slot;
            *slot = idx;
            let a = self.slot_mut(idx);
            a.next = head;
            a.prev = NONE;
            if head != NONE {
                self.slot_mut(head).prev = idx;
            }
        }
        self.nonempty |= 1 << (nfree - 1);
    }

    /// Takes arena `idx` out of bucket `nfree` (nothing for 0).
    ///
    /// # Safety
    /// `idx` is a live slot in bucket `nfree`; `nfree <= 64`.
    #[inline(always)]
    unsafe fn unlink_from(&mut self, idx: u32, nfree: usize) {
        if nfree == 0 {
            return;
        }
        debug_assert!(nfree < self.bucket.len());
        // SAFETY: caller's contract; the neighbours are live arenas of the
        // same bucket (invariant 3).
        unsafe {
            // The arena's own links go stale: link_into rewrites them, and
            // an arena in no bucket has none that are read.
            let (next, prev) = {
                let a = self.slot_mut(idx);
                (a.next, a.prev)
            };
            if prev != NONE {
                self.slot_mut(prev).next = next;
            } else {
                *self.bucket.get_unchecked_mut(nfree) = next;
                if next == NONE {
                    self.nonempty &= !(1 << (nfree - 1));
                }
            }
            if next != NONE {
                self.slot_mut(next).prev = prev;
            }
        }
    }

    /// The first arena of bucket `nfree` (`1..=64`), or NONE; the others
    /// follow through `next`.
    pub fn first_in_bucket(&self, nfree: usize) -> u32 {
        self.bucket[nfree]
    }

    /// Bit `nfree - 1` set iff bucket `nfree` is non-empty.
    pub fn nonempty_buckets(&self) -> u64 {
        self.nonempty
    }

    /// Live arenas with their indices.
    pub fn live(&self) -> impl Iterator<Item = (u32, &Arena)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, a)| a.base != 0)
            .map(|(i, a)| (i as u32, a))
    }

    /// Checks the numbered invariants of the module docs.
    pub fn check_invariants(&self) -> Result<(), String> {
        // (1)
        for (i, a) in self.slots.iter().enumerate() {
            let listed = self.unused.contains(&(i as u32));
            if (a.base == 0) != listed {
                return Err(format!(
                    "(1) slot {i}: base {:#x}, listed unused {listed}",
                    a.base
                ));
            }
        }
        for (i, a) in self.live() {
            // (2)
            if a.nfree != a.free_mask.count_ones() {
                return Err(format!(
                    "(2) arena {i}: nfree {} vs mask {:#x}",
                    a.nfree, a.free_mask
                ));
            }
            if a.dirty_mask & !a.free_mask != 0 {
                return Err(format!("(2) arena {i}: dirty pools in use"));
            }
            if a.npools < 64 && a.free_mask >> a.npools != 0 {
                return Err(format!("(2) arena {i}: free bits beyond npools"));
            }
        }
        // (3)
        let mut seen = 0usize;
        for nfree in 1..=64usize {
            let mut idx = self.bucket[nfree];
            let mut prev = NONE;
            if (idx != NONE) != (self.nonempty >> (nfree - 1) & 1 == 1) {
                return Err(format!("(3) bucket {nfree}: nonempty bit wrong"));
            }
            while idx != NONE {
                let a = &self.slots[idx as usize];
                if a.base == 0 || a.nfree as usize != nfree || a.prev != prev {
                    return Err(format!("(3) arena {idx} misfiled in bucket {nfree}"));
                }
                seen += 1;
                prev = idx;
                idx = a.next;
            }
        }
        let want = self.live().filter(|(_, a)| a.nfree > 0).count();
        if seen != want {
            return Err(format!(
                "(3) {seen} arenas in buckets, {want} with free pools"
            ));
        }
        Ok(())
    }
}

impl Default for ArenaTable {
    fn default() -> Self {
        Self::new()
    }
}
