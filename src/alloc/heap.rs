//! `SmallHeap`: the pool allocator behind the MEM and OBJ domains.
//!
//! Fast paths (25 instructions for `alloc` and 41 for `free` as exported,
//! BENCHMARKS.md; no calls):
//! - `alloc`: pop the free list of the first pool on the size class's used
//!   list, set the block's state to allocated.
//! - `free`: ask the address map whether the pointer is pooled, clear its
//!   state (a zero state, or an address not 16-byte aligned, is a double
//!   or invalid free: fatal report), push it on its pool's free list.
//!
//! Everything else (a pool fills up or empties, new pools and arenas, giving
//! memory back) is in `#[inline(never)]` slow paths.
//!
//! Invariants beyond those of `pool.rs` and `arena.rs` (checked by
//! [`SmallHeap::check_invariants`]):
//! 1. `used[c]` is the sentinel iff no pool of class `c` is partly used;
//!    otherwise it heads a list of exactly the pools of class `c` that are
//!    neither full nor free, linked by `nextpool` and ended by the sentinel,
//!    and linked back by `prevpool` everywhere but at the head (whose
//!    `prevpool` is stale, as are both links of a pool on no list: they are
//!    written before they are read again). The shared sentinel is never
//!    written, so a pool that fills up leaves the head of its list in two
//!    instructions (`used[c] = nextpool`) without a test.
//! 2. `dirty_pools` is the number of dirty bits over all arenas; only
//!    purgeable arenas have dirty bits, and `pools_in_use` is the number of
//!    pools in use over all arenas.
//! 3. `spare` is NONE or a wholly free arena; every other wholly free arena
//!    is purgeable (a custom arena is given back as soon as it is wholly
//!    free and not the spare), so it has 64 pools.
//! 4. After every operation the dirty pools outside the spare
//!    ([`SmallHeap::counted_dirty`]) are at most the budget,
//!    `max(purge_threshold, purge_ratio * pools_in_use)`.
//! 5. If a wholly free arena other than the spare exists, the dirty pools
//!    outside the spare are at most `purge_ratio * pools_in_use`.
//! 6. A free pool of a purgeable arena that is not dirty has a header with
//!    no free list (its pages are fresh, or were given back with `madvise`
//!    and read as zeroes, or the kernel refused and the purge cleared the
//!    free list itself): taking it into use writes its header without
//!    reading it first, since a first read of a fresh page maps the zero
//!    page and the write that follows faults a second time.
//!
//! Giving memory back (`pool_emptied`, `give_back`): free pools keep their
//! pages (dirty) while they are within the budget, which grows with the
//! heap, so a program that frees in bursts and allocates again (a tracing
//! collector's sweep) reuses resident pages instead of faulting them in
//! again. Past the budget the emptiest arenas give back first, down to
//! three quarters of the budget (not less: what is given back must be
//! faulted in again when the heap grows back): a wholly free arena is
//! unmapped, another arena's dirty pools are purged with `madvise`.
//! Allocation takes pools from the fullest arenas, so the emptiest ones are
//! those it would reuse last. Wholly free arenas beyond the spare stay
//! only within the budget's proportional part (invariant 5), so once
//! everything is freed only the spare is left. The spare, one wholly free arena, is given back
//! only by `trim`: a program that frees and reallocates a small heap's
//! worth of blocks in rounds keeps its pages.

use core::ptr;

use super::arena::{Arena, ArenaTable, NONE};
use super::os;
use super::pool::{
    self, POOL_OVERHEAD, PoolHeader, blocks_per_pool, extend_from_virgin, init_pool, pool_of,
};
use super::radix::RadixMap;
use super::size_class::*;
use super::valgrind;
use crate::domains::PyObjectArenaAllocator;

/// The shared empty pool: its free list is always empty, so the allocation
/// fast path needs no null test for an empty used list.
struct Sentinel(PoolHeader);

// SAFETY: the sentinel is never written (every writer checks for it first),
// so sharing it between threads is sharing immutable data.
unsafe impl Sync for Sentinel {}

static EMPTY_POOL: Sentinel = Sentinel(PoolHeader {
    freeblock: ptr::null_mut(),
    count: 0,
    szidx: u32::MAX,
    nextpool: ptr::null_mut(),
    prevpool: ptr::null_mut(),
    arena: NONE,
    nextoffset: u32::MAX,
    maxnextoffset: 0,
    size: 0,
    state: [0; pool::STATE_WORDS],
});

#[inline(always)]
fn sentinel() -> *mut PoolHeader {
    ptr::addr_of!(EMPTY_POOL.0).cast_mut()
}

/// Free pools whose pages may stay resident whatever the heap's size (64
/// pools = 1 MiB): the budget's floor.
pub(crate) const DEFAULT_PURGE_THRESHOLD: usize = 64;

/// Free pools whose pages may stay resident per pool in use: the budget's
/// proportional part. Lua's collector, for one, lets its heap grow to
/// twice what survived the last collection, then frees the difference in
/// a burst and allocates it again: free pools as many as those in use must
/// stay resident, and twice as many leave room (BENCHMARKS.md, "Lua").
pub(crate) const DEFAULT_PURGE_RATIO: usize = 2;

/// Counters kept for the statistics report.
#[derive(Clone, Copy, Default, Debug)]
pub struct HeapCounters {
    /// Arenas obtained from the arena allocator, ever.
    pub arenas_allocated_total: usize,
    /// Arenas given back, ever.
    pub arenas_reclaimed: usize,
    /// Most arenas live at once.
    pub arenas_highwater: usize,
    /// Pools whose pages were given back with `madvise`, ever.
    pub pools_purged: usize,
}

/// The pool allocator's whole state.
pub struct SmallHeap {
    used: [*mut PoolHeader; NB_SMALL_SIZE_CLASSES],
    /// Which addresses are pooled.
    pub map: RadixMap,
    /// Every arena.
    pub arenas: ArenaTable,
    arena_allocator: PyObjectArenaAllocator,
    spare: u32,
    dirty_pools: usize,
    pools_in_use: usize,
    /// Dirty free pools always tolerated (the budget's floor).
    pub purge_threshold: usize,
    /// Dirty free pools tolerated per pool in use.
    pub purge_ratio: usize,
    /// Statistics counters.
    pub counters: HeapCounters,
}

impl SmallHeap {
    /// An empty heap using the default (mmap) arena allocator.
    pub const fn new() -> Self {
        SmallHeap {
            used: [ptr::addr_of!(EMPTY_POOL.0).cast_mut(); NB_SMALL_SIZE_CLASSES],
            map: RadixMap::new(),
            arenas: ArenaTable::new(),
            arena_allocator: PyObjectArenaAllocator::DEFAULT,
            spare: NONE,
            dirty_pools: 0,
            pools_in_use: 0,
            purge_threshold: DEFAULT_PURGE_THRESHOLD,
            purge_ratio: DEFAULT_PURGE_RATIO,
            counters: HeapCounters {
                arenas_allocated_total: 0,
                arenas_reclaimed: 0,
                arenas_highwater: 0,
                pools_purged: 0,
            },
        }
    }

    /// The arena allocator used for new arenas.
    pub fn arena_allocator(&self) -> PyObjectArenaAllocator {
        self.arena_allocator
    }

    /// Sets the arena allocator for new arenas; each existing arena is still
    /// freed by the allocator that made it.
    pub fn set_arena_allocator(&mut self, a: PyObjectArenaAllocator) {
        self.arena_allocator = a;
    }

    /// True iff `p` points into one of this heap's pools.
    #[inline(always)]
    pub fn owns(&self, p: *const u8) -> bool {
        self.map.contains(p as usize)
    }

    /// Allocates `n` bytes, `1 <= n <= 512`, 16-byte aligned. Returns null if
    /// `n` is outside that range or no arena could be had; the caller then
    /// falls back to the raw domain, as CPython does.
    #[inline(always)]
    pub fn alloc(&mut self, n: usize) -> *mut u8 {
        if let Some(p) = self.try_alloc(n) {
            return p;
        }
        if n.wrapping_sub(1) >= SMALL_REQUEST_THRESHOLD {
            return ptr::null_mut();
        }
        self.alloc_from_new_pool(class_of(n))
    }

    /// The fast path of [`alloc`](Self::alloc): a block from the first
    /// partly used pool of `n`'s class, or None when `n` is not a small
    /// request or the class has no partly used pool (then
    /// [`alloc_from_new_pool`](Self::alloc_from_new_pool) is next). The
    /// pool's state changes on this path (its free list runs dry: carve a
    /// virgin block, or it is full: off the used list) are inline, because a
    /// steady random workload meets them on almost every call.
    #[inline(always)]
    pub fn try_alloc(&mut self, n: usize) -> Option<*mut u8> {
        if n.wrapping_sub(1) >= SMALL_REQUEST_THRESHOLD {
            return None;
        }
        let c = class_of(n);
        let pool = self.used[c];
        // SAFETY: used[c] is the sentinel or a live pool header (invariant 1).
        let block = unsafe { (*pool).freeblock };
        if block.is_null() {
            return None;
        }
        // SAFETY: pool is a live pool (the sentinel's free list is empty), and
        // block heads its free list, so its first word holds the next link.
        // The pool heads the used list of class c, so unlinking it is
        // replacing the head by its successor.
        unsafe {
            let next = block.cast::<*mut u8>().read();
            let h = &mut *pool;
            h.freeblock = next;
            h.count += 1;
            pool::mark_live(pool, block);
            if next.is_null() && !extend_from_virgin(pool) {
                // Full: its successor (a pool or the sentinel that ends
                // every list) becomes the head (invariant 1).
                self.used[c] = h.nextpool;
            }
        }
        // Pooled blocks are announced at their class size, so an in-place
        // realloc needs no announcement.
        valgrind::malloclike(block, class_size(c));
        Some(block)
    }

    /// [`try_alloc`](Self::try_alloc) for an object block: the block is also
    /// marked as holding an object (a GC object if `gc`).
    #[inline(always)]
    pub fn try_alloc_object(&mut self, n: usize, gc: bool) -> Option<*mut u8> {
        let p = self.try_alloc(n)?;
        // SAFETY: p was just allocated from its pool.
        unsafe { pool::mark_object(pool_of(p), p, gc) };
        Some(p)
    }

    /// Frees `p` if it is pooled and returns true; returns false (doing
    /// nothing) if `p` is not ours. A pooled `p` that is not an allocated
    /// block's start is a fatal misuse report naming `api`.
    ///
    /// # Safety
    /// `p` must not be used after it is freed.
    #[inline(always)]
    pub unsafe fn free(&mut self, p: *mut u8, api: &'static str) -> bool {
        if !self.owns(p) {
            return false;
        }
        // SAFETY: forwarded contract; p is ours.
        unsafe { self.free_owned(p, api) };
        true
    }

    /// Frees the pooled `p` ([`owns`](Self::owns) is true). A full pool that
    /// gets a block back is put first on its class's used list inline; a
    /// pool that becomes empty goes to the (tail-called) slow path.
    ///
    /// # Safety
    /// `owns(p)`; `p` must not be used after it is freed.
    #[inline(always)]
    pub unsafe fn free_owned(&mut self, p: *mut u8, api: &'static str) {
        let pool = pool_of(p);
        // SAFETY: p is inside one of our pools, so its pool's header is
        // readable memory of ours (zeroes if the pool was never used).
        unsafe {
            if !pool::take_live(pool, p) {
                return Self::report_bad_free(p, api, self);
            }
            self.release(pool, p);
        }
    }

    /// Frees the pooled block `p` that the caller has just found allocated
    /// (with [`owned_block`](Self::owned_block), in the same call, nothing
    /// freed since): as [`free_owned`](Self::free_owned) without testing
    /// its state again. `realloc` moves a block with it.
    ///
    /// # Safety
    /// `p` is an allocated pooled block, not used after it is freed.
    #[inline(always)]
    pub unsafe fn free_live(&mut self, p: *mut u8) {
        let pool = pool_of(p);
        // SAFETY: caller's contract: p starts an allocated block of pool.
        unsafe {
            pool::clear_live(pool, p);
            self.release(pool, p);
        }
    }

    /// What a free does once the block's bits are clear: the block goes on
    /// its pool's free list, a full pool back on its used list, an empty
    /// one to the slow path.
    ///
    /// # Safety
    /// `p` is a block of the live pool `pool` whose state was just
    /// cleared.
    #[inline(always)]
    unsafe fn release(&mut self, pool: *mut PoolHeader, p: *mut u8) {
        // SAFETY: caller's contract.
        unsafe {
            valgrind::freelike(p);
            valgrind::defined(p, core::mem::size_of::<*mut u8>()); // the link
            let h = &mut *pool;
            let old = h.freeblock;
            p.cast::<*mut u8>().write(old);
            h.freeblock = p;
            h.count -= 1;
            if h.count == 0 {
                return self.pool_emptied(pool, old.is_null());
            }
            if old.is_null() {
                // Was full: it has a free block again. Put it first, so the
                // next allocation of its class reuses this block.
                self.push_used(pool);
            }
        }
    }

    /// The block size of the allocated pooled block `p`, or None if `p` is
    /// not ours. A pooled `p` that is not an allocated block is a fatal misuse
    /// report naming `api`.
    #[inline]
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "only the header of a pool the address map proves ours is read"
    )]
    pub fn block_size(&self, p: *mut u8, api: &'static str) -> Option<usize> {
        if !self.owns(p) {
            return None;
        }
        let pool = pool_of(p);
        // SAFETY: as in free: the header of a pooled address is our memory.
        unsafe {
            if !pool::is_live(pool, p) {
                self.bad_pointer(p, api);
            }
            Some((*pool).size as usize)
        }
    }

    /// Slow path of `alloc`: no partly used pool of class `c` exists (the
    /// new pool becomes the only one on its list). Null if no arena could be
    /// had.
    #[inline(never)]
    pub(crate) fn alloc_from_new_pool(&mut self, c: usize) -> *mut u8 {
        match self.pool_source() {
            // SAFETY: pool_source names a live arena with a free pool, and
            // c has no partly used pool.
            Some(idx) if self.wants_new_pool(c) => unsafe { self.alloc_from_arena(idx, c) },
            // It makes the same test.
            _ => self.alloc_from_new_arena(c),
        }
    }

    /// True iff `c` is a size class with no partly used pool: the only
    /// class a new pool may be started for (`start_pool` replaces the
    /// class's list). The callers never ask for another; refused, a request
    /// only goes to the RAW domain.
    #[inline(always)]
    fn wants_new_pool(&self, c: usize) -> bool {
        c < NB_SMALL_SIZE_CLASSES && self.used[c] == sentinel()
    }

    /// The arena the next new pool comes from, the fullest with a free
    /// pool, when that is neither the spare nor a new arena (then
    /// [`alloc_from_new_arena`](Self::alloc_from_new_arena) has work to do).
    #[inline(always)]
    pub fn pool_source(&self) -> Option<u32> {
        // A non-empty bucket's head is never NONE (arena.rs invariant 3).
        let idx = self.arenas.fullest_with_room_if_any()?;
        (idx != self.spare).then_some(idx)
    }

    /// [`alloc_from_new_pool`](Self::alloc_from_new_pool) from arena `idx`,
    /// which [`pool_source`](Self::pool_source) just named: the first block
    /// of a new pool of class `c`, which has no partly used pool. Never
    /// null.
    ///
    /// # Safety
    /// `idx` is what `pool_source` returned (the fullest arena with room),
    /// nothing changed since; `c` is a size class with no partly used pool.
    #[inline(never)]
    #[unsafe(link_section = ".text.hot.pyheap")]
    pub unsafe fn alloc_from_arena(&mut self, idx: u32, c: usize) -> *mut u8 {
        debug_assert!(
            self.used[c] == sentinel(),
            "class {c} still has a partly used pool"
        );
        // SAFETY: caller's contract: idx is the fullest arena with room.
        unsafe {
            let (pool, used_before) = self.take_pool(idx);
            self.start_pool(pool, idx, c, used_before)
        }
    }

    /// [`alloc_from_new_pool`](Self::alloc_from_new_pool) when no arena
    /// but the spare has a free pool: the spare (then its dirty pools count
    /// against the budget), else a new arena. Null if none could be had.
    #[inline(never)]
    #[unsafe(link_section = ".text.hot.pyheap")]
    pub(crate) fn alloc_from_new_arena(&mut self, c: usize) -> *mut u8 {
        if !self.wants_new_pool(c) {
            return ptr::null_mut();
        }
        let mut idx = self.arenas.fullest_with_room();
        if idx == NONE {
            match self.new_arena() {
                Some(i) => idx = i,
                None => return ptr::null_mut(),
            }
        }
        let was_spare = self.spare == idx;
        if was_spare {
            self.spare = NONE;
        }
        debug_assert_eq!(self.arenas.fullest_with_room(), idx);
        // SAFETY: idx is the fullest arena with room: it came from
        // fullest_with_room, or from new_arena when no arena had room (so
        // the new one's bucket is the only non-empty one).
        let (pool, used_before) = unsafe { self.take_pool(idx) };
        if was_spare {
            // The spare's dirty pools are no longer exempt from the budget
            // (invariants 4 and 5).
            self.keep_budget();
        }
        // SAFETY: take_pool gave us the pool, which give_back and
        // release_free_arenas leave alone (it is in use).
        unsafe { self.start_pool(pool, idx, c, used_before) }
    }

    /// Takes the first free pool of arena `idx` into use (not yet set up).
    /// Also says whether the pool's header may describe an earlier use: not
    /// when the pool is in a purgeable arena and not dirty (invariant 6).
    ///
    /// # Safety
    /// `idx` is the arena `fullest_with_room` names (a live arena with a
    /// free pool).
    #[inline(always)]
    unsafe fn take_pool(&mut self, idx: u32) -> (*mut PoolHeader, bool) {
        self.pools_in_use += 1;
        let (pool_addr, old_nfree, used_before) = {
            // SAFETY: caller's contract.
            let a = unsafe { self.arenas.slot_mut(idx) };
            let i = a.free_mask.trailing_zeros();
            let bit = 1u64 << i;
            a.free_mask &= !bit;
            let dirty = a.dirty_mask & bit != 0;
            if dirty {
                a.dirty_mask &= !bit;
                self.dirty_pools -= 1;
            }
            let old = a.nfree;
            a.nfree -= 1;
            (a.pool_addr(i), old, dirty || !a.purgeable)
        };
        // SAFETY: idx is the fullest arena with room, in bucket old_nfree
        // until now.
        unsafe { self.arenas.refile_fullest(idx, old_nfree) };
        (pool_addr as *mut PoolHeader, used_before)
    }

    /// Sets up the pool just taken from arena `idx` for class `c`, makes it
    /// the only member of the class's used list and hands out its first
    /// block. Its header is read (to take it back as it was, `reuse_pool`)
    /// only if `used_before`: a fresh pool's first read would map the
    /// kernel's zero page, and the write that follows fault again.
    ///
    /// # Safety
    /// `pool` was just taken with `take_pool(idx)`, which said
    /// `used_before`; `c` is a size class with no partly used pool.
    #[inline(always)]
    unsafe fn start_pool(
        &mut self,
        pool: *mut PoolHeader,
        idx: u32,
        c: usize,
        used_before: bool,
    ) -> *mut u8 {
        // SAFETY: the pool was free in a live arena and is now ours to set up;
        // the used list of class c is empty, so the pool becomes its only
        // member.
        unsafe {
            let reused = if used_before {
                pool::reuse_pool(pool, idx, c)
            } else {
                None
            };
            let block = match reused {
                Some(b) => b,
                None => {
                    // Blocks of an earlier use may overlap the new ones in
                    // memcheck's eyes: the whole pool is ours again.
                    valgrind::defined(
                        pool.cast::<u8>().add(POOL_OVERHEAD),
                        POOL_SIZE - POOL_OVERHEAD,
                    );
                    init_pool(pool, idx, c)
                }
            };
            valgrind::malloclike(block, class_size(c));
            (*pool).nextpool = sentinel();
            debug_assert!(c < NB_SMALL_SIZE_CLASSES);
            *self.used.get_unchecked_mut(c) = pool;
            block
        }
    }

    /// The misuse report of `free`, reached by a tail jump. It never
    /// returns, but if the compiler knew that, it would call it instead and
    /// make the whole fast path align the stack for the call; the opaque
    /// condition hides it.
    #[cold]
    #[inline(never)]
    fn report_bad_free(p: *mut u8, api: &'static str, heap: &Self) {
        if core::hint::black_box(true) {
            heap.bad_pointer(p, api)
        }
    }

    /// Called by `free` when the pool has become empty (`was_full`: it held
    /// a single block, so it was on no used list).
    ///
    /// # Safety
    /// `pool` is a live pool header just updated by `free`.
    #[inline(never)]
    #[unsafe(link_section = ".text.hot.pyheap")]
    unsafe fn pool_emptied(&mut self, pool: *mut PoolHeader, was_full: bool) {
        // SAFETY: caller's contract; list operations keep invariant 1.
        unsafe {
            if !was_full {
                self.unlink_used(pool);
            }
        }
        // SAFETY: a live header records its arena.
        let idx = unsafe { (*pool).arena };
        let (old_nfree, wholly_free) = {
            // SAFETY: the arena of a live pool is a live slot.
            let a = unsafe { self.arenas.slot_mut(idx) };
            let bit = 1u64 << a.pool_index(pool as usize);
            a.free_mask |= bit;
            if a.purgeable {
                a.dirty_mask |= bit;
                self.dirty_pools += 1;
            }
            let old = a.nfree;
            a.nfree += 1;
            (old, a.is_wholly_free())
        };
        // SAFETY: idx is live, in bucket old_nfree until now.
        unsafe { self.arenas.refile(idx, old_nfree) };
        self.pools_in_use -= 1;
        // Within the proportional part (the usual case in a steady heap),
        // nothing is over the budget and no free arena need go.
        if wholly_free || self.dirty_pools > self.purge_ratio.saturating_mul(self.pools_in_use) {
            self.over_budget_or_wholly_free(idx, wholly_free);
        }
    }

    /// The rest of [`pool_emptied`](Self::pool_emptied) when arena `idx` has
    /// become wholly free or the dirty pools may be over the budget.
    #[inline(never)]
    #[unsafe(link_section = ".text.hot.pyheap")]
    fn over_budget_or_wholly_free(&mut self, idx: u32, wholly_free: bool) {
        if wholly_free {
            if self.spare == NONE {
                self.spare = idx;
            } else if !self.arenas.slots[idx as usize].purgeable {
                // A custom arena's pages are not counted: it goes at once.
                self.release_arena(idx);
            }
        }
        // The spare's dirty pools are a cache of at most one arena, outside
        // the budget: counted, a small heap beside a spare full of dirty
        // pools would be over the budget at every pool that empties, and
        // purge (and fault in again) a pool each time.
        if self.dirty_pools > self.purge_ratio.saturating_mul(self.pools_in_use) {
            self.keep_budget();
        }
    }

    /// Restores invariants 4 and 5: past the budget, gives back down to
    /// three quarters of it, then releases wholly free arenas beyond the
    /// proportional part.
    #[unsafe(link_section = ".text.hot.pyheap")]
    fn keep_budget(&mut self) {
        let budget = self.budget();
        if self.counted_dirty() > budget {
            self.give_back(budget - budget / 4);
        }
        if self.counted_dirty() > self.purge_ratio.saturating_mul(self.pools_in_use) {
            self.release_free_arenas();
        }
    }

    /// Releases wholly free arenas other than the spare while the dirty
    /// pools exceed the budget's proportional part (invariant 5), so that
    /// once everything is freed only the spare is left.
    #[inline(never)]
    #[unsafe(link_section = ".text.hot.pyheap")]
    fn release_free_arenas(&mut self) {
        // Only purgeable arenas, of 64 pools, stay wholly free beside the
        // spare (invariant 3).
        let mut idx = self.arenas.first_in_bucket(64);
        while idx != NONE
            && self.counted_dirty() > self.purge_ratio.saturating_mul(self.pools_in_use)
        {
            let next = self.arenas.slots[idx as usize].next;
            if idx != self.spare {
                self.release_arena(idx);
            }
            idx = next;
        }
    }

    /// The dirty pools outside the spare: what the budget limits.
    pub fn counted_dirty(&self) -> usize {
        if self.spare == NONE {
            return self.dirty_pools;
        }
        let spare = &self.arenas.slots[self.spare as usize];
        self.dirty_pools - spare.dirty_mask.count_ones() as usize
    }

    /// Dirty free pools tolerated now (invariant 4).
    pub fn budget(&self) -> usize {
        self.purge_threshold
            .max(self.pools_in_use.saturating_mul(self.purge_ratio))
    }

    /// # Safety
    /// `pool` is a live header not on any list.
    #[inline(always)]
    unsafe fn push_used(&mut self, pool: *mut PoolHeader) {
        // SAFETY: caller's contract; `head` is the sentinel or a live header.
        unsafe {
            let c = (*pool).szidx as usize;
            // szidx < NB_SMALL_SIZE_CLASSES in every live header; the
            // unchecked access keeps a panic path out of `free`.
            debug_assert!(c < self.used.len());
            let slot = self.used.get_unchecked_mut(c);
            let head = *slot;
            (*pool).nextpool = head;
            // The sentinel is shared and read-only: its links are never
            // written. A head's own `prevpool` is not kept.
            if head != sentinel() {
                (*head).prevpool = pool;
            }
            *slot = pool;
        }
    }

    /// # Safety
    /// `pool` is a live header on its class's used list.
    unsafe fn unlink_used(&mut self, pool: *mut PoolHeader) {
        // SAFETY: caller's contract; its neighbours are live headers.
        unsafe {
            let (next, prev) = ((*pool).nextpool, (*pool).prevpool);
            // szidx < NB_SMALL_SIZE_CLASSES in every live header.
            debug_assert!(((*pool).szidx as usize) < self.used.len());
            let slot = self.used.get_unchecked_mut((*pool).szidx as usize);
            if *slot == pool {
                // The head: its prevpool is stale.
                *slot = next;
            } else {
                (*prev).nextpool = next;
            }
            if next != sentinel() {
                (*next).prevpool = prev;
            }
        }
    }

    /// Gets an arena from the arena allocator, registers its pools in the
    /// address map and files it. None on any failure (nothing leaks).
    #[cold]
    #[unsafe(link_section = ".text.hot.pyheap")]
    fn new_arena(&mut self) -> Option<u32> {
        let alloc = self.arena_allocator;
        let alloc_fn = alloc.alloc?;
        // SAFETY: calling the installed arena allocator as its contract says.
        let base = unsafe { alloc_fn(alloc.ctx, ARENA_SIZE) } as usize;
        if base == 0 {
            return None;
        }
        let release = |base: usize| {
            if let Some(f) = alloc.free {
                // SAFETY: returning the block we just got, unused.
                unsafe { f(alloc.ctx, base as *mut _, ARENA_SIZE) };
            }
        };
        let first_pool = (base + POOL_MASK) & !POOL_MASK;
        let end = (base + ARENA_SIZE) & !POOL_MASK;
        let npools = (end.saturating_sub(first_pool) / POOL_SIZE) as u32;
        if npools == 0 || self.map.register(first_pool, end).is_err() {
            release(base);
            return None;
        }
        let purgeable = alloc.is_default();
        if !purgeable {
            // Memory of unknown contents: zero the headers so a stray free
            // into a pool never used reads a clear state bitmap.
            for i in 0..npools as usize {
                // SAFETY: each header lies inside the arena we were given.
                unsafe {
                    ptr::write_bytes((first_pool + i * POOL_SIZE) as *mut u8, 0, POOL_OVERHEAD)
                };
            }
        }
        let arena = Arena {
            base,
            first_pool,
            npools,
            nfree: npools,
            free_mask: if npools == 64 {
                !0
            } else {
                (1u64 << npools) - 1
            },
            dirty_mask: 0,
            next: NONE,
            prev: NONE,
            allocator: alloc,
            purgeable,
        };
        let Some(idx) = self.arenas.insert(arena) else {
            self.map.unregister(first_pool, end);
            release(base);
            return None;
        };
        let c = &mut self.counters;
        c.arenas_allocated_total += 1;
        let live = c.arenas_allocated_total - c.arenas_reclaimed;
        c.arenas_highwater = c.arenas_highwater.max(live);
        Some(idx)
    }

    /// Gives a wholly free arena back to the allocator that made it.
    #[unsafe(link_section = ".text.hot.pyheap")]
    fn release_arena(&mut self, idx: u32) {
        let a = self.arenas.slots[idx as usize];
        debug_assert!(a.is_wholly_free());
        self.map.unregister(a.first_pool, a.pools_end());
        if self.spare == idx {
            self.spare = NONE;
        }
        self.dirty_pools -= a.dirty_mask.count_ones() as usize;
        self.arenas.remove(idx);
        if let Some(f) = a.allocator.free {
            // SAFETY: the arena is wholly free and unregistered: nothing of
            // ours points into it any more.
            unsafe { f(a.allocator.ctx, a.base as *mut _, ARENA_SIZE) };
        }
        self.counters.arenas_reclaimed += 1;
    }

    /// Gives back all the free memory it can: the spare arena (wholly free)
    /// to its allocator, the pages of every other free pool to the OS.
    pub fn trim(&mut self) {
        if self.spare != NONE {
            self.release_arena(self.spare);
        }
        self.purge();
    }

    /// Gives back the memory of every free pool but the spare's: wholly
    /// free arenas to their allocator, the pages of other dirty pools to
    /// the OS.
    #[cold]
    #[unsafe(link_section = ".text.hot.pyheap")]
    pub fn purge(&mut self) {
        self.give_back(0);
    }

    /// Gives back free memory, the emptiest arenas first, until at most
    /// `low` dirty pools remain or only the spare's do: a wholly free arena
    /// (not the spare) is released, another arena's dirty pools purged
    /// (`madvise`, one call per run of consecutive pools).
    #[cold]
    #[inline(never)]
    #[unsafe(link_section = ".text.hot.pyheap")]
    fn give_back(&mut self, low: usize) {
        // The non-empty buckets, emptiest first. Purging leaves an arena in
        // its bucket and releasing empties bucket 64 only as it is walked,
        // so the mask taken now stays right.
        let mut buckets = self.arenas.nonempty_buckets();
        while buckets != 0 {
            let nfree = 64 - buckets.leading_zeros() as usize;
            buckets &= !(1u64 << (nfree - 1));
            let mut idx = self.arenas.first_in_bucket(nfree);
            while idx != NONE && self.counted_dirty() > low {
                // SAFETY: bucket members are live slots (arena.rs 3).
                let a = unsafe { self.arenas.slot_mut(idx) };
                let next = a.next;
                if idx != self.spare && a.dirty_mask != 0 {
                    if a.is_wholly_free() {
                        self.release_arena(idx);
                    } else {
                        let purged = purge_arena(a);
                        self.counters.pools_purged += purged;
                        self.dirty_pools -= purged;
                    }
                }
                // A released arena leaves its bucket; `next` stays live.
                idx = next;
            }
            if self.counted_dirty() <= low {
                break;
            }
        }
    }

    /// Calls `f(class, pool header)` for every pool in use.
    pub fn for_each_pool(&self, mut f: impl FnMut(&PoolHeader)) {
        for (_, a) in self.arenas.live() {
            for i in 0..a.npools {
                if a.free_mask >> i & 1 == 0 {
                    // SAFETY: a pool in use has a live, initialised header.
                    f(unsafe { &*(a.pool_addr(i) as *const PoolHeader) });
                }
            }
        }
    }

    /// Records that the block at `block` holds an object (`gc`: after a GC
    /// header). Returns false, changing nothing, if `block` is not the start
    /// of a live pooled block (a block from the RAW domain, or an address
    /// inside a pooled block, as the debug allocator hands out).
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "only the header of a pool the address map proves ours is written"
    )]
    pub fn set_object(&mut self, block: *mut u8, gc: bool) -> bool {
        if !self.is_live_block(block) {
            return false;
        }
        // SAFETY: the block is pooled and live; its pool header is ours.
        unsafe { pool::mark_object(pool_of(block), block, gc) };
        true
    }

    /// Forgets that `block` holds an object: it stays allocated. Returns
    /// false, changing nothing, if it is not an allocated pooled block.
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "only the header of a pool the address map proves ours is written"
    )]
    pub fn clear_object(&mut self, block: *mut u8) -> bool {
        if !self.is_live_block(block) {
            return false;
        }
        // SAFETY: as in set_object.
        unsafe { pool::unmark_object(pool_of(block), block) };
        true
    }

    /// For a pooled `block`: `Some(None)` if it is not an allocated block
    /// holding an object, `Some(Some(is_gc))` if it is; `None` if not pooled.
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "only the header of a pool the address map proves ours is read"
    )]
    pub fn object_kind(&self, block: *mut u8) -> Option<Option<bool>> {
        if !self.owns(block) {
            return None;
        }
        // SAFETY: as in set_object.
        Some(unsafe { pool::object_kind(pool_of(block), block) })
    }

    /// The block size of the allocated block `p` of an owned pool
    /// ([`owns`](Self::owns) is true), and whether it holds an object (a GC
    /// object: `Some(true)`). A `p` that is not an allocated block's start
    /// is a fatal misuse report naming `api`.
    ///
    /// # Safety
    /// `owns(p)`.
    #[inline(always)]
    pub unsafe fn owned_block(&self, p: *mut u8, api: &'static str) -> (usize, Option<bool>) {
        let pool = pool_of(p);
        // SAFETY: as in free: the header of a pooled address is our memory.
        unsafe {
            match pool::live_kind(pool, p) {
                Some(kind) => ((*pool).size as usize, kind),
                None => self.bad_pointer(p, api),
            }
        }
    }

    /// True iff `p` is the start of an allocated pooled block.
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "only the header of a pool the address map proves ours is read"
    )]
    pub fn is_live_block(&self, p: *mut u8) -> bool {
        // SAFETY: as in set_object.
        self.owns(p) && unsafe { pool::is_live(pool_of(p), p) }
    }

    /// Calls `f(block, is_gc)` for every pooled block that holds an object.
    pub fn for_each_object(&self, mut f: impl FnMut(*mut u8, bool)) {
        self.for_each_pool(|h| {
            let base = h as *const PoolHeader as usize;
            for w in 0..pool::STATE_WORDS {
                let st = h.state[w];
                // Granules whose high bit is set: objects, GC ones where
                // the low bit is clear.
                let mut bits = st.rotate_right(1) & pool::low_mask(w);
                while bits != 0 {
                    let pos = bits.trailing_zeros();
                    let g = pool::granule_at(w, pos);
                    bits &= bits - 1;
                    let block = (base + (g << ALIGNMENT_SHIFT)) as *mut u8;
                    f(block, st >> pos & 1 == 0);
                }
            }
        });
    }

    /// Pooled blocks allocated now (walks the arenas, like CPython).
    pub fn allocated_blocks(&self) -> usize {
        let mut n = 0;
        self.for_each_pool(|p| n += p.count as usize);
        n
    }

    /// Free pools whose pages may still be resident.
    pub fn dirty_pools(&self) -> usize {
        self.dirty_pools
    }

    /// Pools in use.
    pub fn pools_in_use(&self) -> usize {
        self.pools_in_use
    }

    /// Checks every invariant of the pools, arenas and lists; the message
    /// names the invariant's number and module.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.arenas
            .check_invariants()
            .map_err(|e| format!("arena.rs {e}"))?;
        let mut dirty = 0;
        let mut in_use = 0;
        let mut spare_dirty = 0;
        let mut kept_free = 0;
        for (idx, a) in self.arenas.live() {
            dirty += a.dirty_mask.count_ones() as usize;
            in_use += (a.npools - a.nfree) as usize;
            if !a.purgeable && a.dirty_mask != 0 {
                return Err(format!("heap.rs (2) arena {idx}: dirty but not purgeable"));
            }
            if idx == self.spare {
                spare_dirty = a.dirty_mask.count_ones() as usize;
                if !a.is_wholly_free() {
                    return Err(format!("heap.rs (3) spare arena {idx} in use"));
                }
            } else if a.is_wholly_free() {
                if !a.purgeable || a.npools != 64 {
                    return Err(format!(
                        "heap.rs (3) arena {idx} wholly free but not the spare"
                    ));
                }
                kept_free += 1;
            }
            if !self.map.contains(a.first_pool) || !self.map.contains(a.pools_end() - 1) {
                return Err(format!("radix.rs: arena {idx} not registered"));
            }
            for i in 0..a.npools {
                // SAFETY: every pool of a live arena has readable header
                // memory (a live header, zeroes, or a stale header).
                let h = unsafe { &*(a.pool_addr(i) as *const PoolHeader) };
                if a.free_mask >> i & 1 == 0 {
                    check_pool(h, idx)
                        .map_err(|e| format!("pool.rs {e} (pool {:#x})", a.pool_addr(i)))?;
                } else if h.state.iter().any(|&w| w != 0) {
                    return Err(format!(
                        "pool.rs (6) free pool {:#x} has block states",
                        a.pool_addr(i)
                    ));
                } else if a.purgeable && a.dirty_mask >> i & 1 == 0 && !h.freeblock.is_null() {
                    // (6): take_pool trusts a clean pool of a purgeable
                    // arena to read as zeroes, and does not read it.
                    return Err(format!(
                        "heap.rs (6) clean free pool {:#x} has a free list",
                        a.pool_addr(i)
                    ));
                }
            }
        }
        if dirty != self.dirty_pools {
            return Err(format!(
                "heap.rs (2) dirty_pools {} but {dirty} dirty bits",
                self.dirty_pools
            ));
        }
        if self.spare != NONE
            && self
                .arenas
                .slots
                .get(self.spare as usize)
                .is_none_or(|a| a.base == 0)
        {
            return Err(format!(
                "heap.rs (3) spare {} is not a live arena",
                self.spare
            ));
        }
        if in_use != self.pools_in_use {
            return Err(format!(
                "heap.rs (2) pools_in_use {} but {in_use} pools in use",
                self.pools_in_use
            ));
        }
        let counted = self.dirty_pools - spare_dirty;
        if counted > self.budget() {
            return Err(format!(
                "heap.rs (4) {counted} dirty pools outside the spare, over the budget of {}",
                self.budget()
            ));
        }
        if kept_free > 0 && counted > self.purge_ratio.saturating_mul(in_use) {
            return Err(format!(
                "heap.rs (5) {kept_free} wholly free arenas kept beside the spare with \
                 {counted} dirty pools outside it for {in_use} in use"
            ));
        }
        // (1): the used lists hold exactly the partly used pools.
        let mut listed = 0;
        for c in 0..NB_SMALL_SIZE_CLASSES {
            let mut p = self.used[c];
            let mut prev: *mut PoolHeader = ptr::null_mut();
            while p != sentinel() {
                if p.is_null() || listed > self.pools_in_use {
                    return Err(format!("heap.rs (1) class {c}'s used list is not ended"));
                }
                // SAFETY: list members are live headers (what we check).
                let h = unsafe { &*p };
                let linked_back = prev.is_null() || h.prevpool == prev;
                if h.szidx as usize != c || !linked_back || h.freeblock.is_null() {
                    return Err(format!(
                        "heap.rs (1) pool {:#x} misfiled in class {c}",
                        p as usize
                    ));
                }
                listed += 1;
                prev = p;
                p = h.nextpool;
            }
        }
        let mut partly = 0;
        self.for_each_pool(|h| {
            if !h.freeblock.is_null() {
                partly += 1;
            }
        });
        if listed != partly {
            return Err(format!(
                "heap.rs (1) {listed} pools listed, {partly} partly used"
            ));
        }
        Ok(())
    }
}

/// Purges the dirty pools of a purgeable arena (`madvise`, one call per
/// run of consecutive pools) and clears its dirty mask; returns how many.
fn purge_arena(a: &mut Arena) -> usize {
    let mut mask = a.dirty_mask;
    while mask != 0 {
        let start = mask.trailing_zeros();
        let run = (mask >> start).trailing_ones();
        let first = a.pool_addr(start) as *mut u8;
        // SAFETY: these pools are free (dirty ⊆ free) in a purgeable arena,
        // a private anonymous mapping of ours.
        if !unsafe { os::discard(first, run as usize * POOL_SIZE) } {
            // The kernel kept the pages (they are locked, for one): forget
            // the pools' free lists by hand, so that they read as clean
            // (invariant 6) all the same.
            for i in 0..run as usize {
                // SAFETY: each is the header of a free pool of ours.
                unsafe {
                    (*first.add(i * POOL_SIZE).cast::<PoolHeader>()).freeblock = ptr::null_mut()
                };
            }
        }
        mask &= if start + run >= 64 {
            0
        } else {
            !0u64 << (start + run)
        };
    }
    let n = a.dirty_mask.count_ones() as usize;
    a.dirty_mask = 0;
    n
}

/// Checks the invariants of `pool.rs` for one pool in use.
fn check_pool(h: &PoolHeader, arena: u32) -> Result<(), String> {
    let base = h as *const PoolHeader as usize;
    let c = h.szidx as usize;
    if c >= NB_SMALL_SIZE_CLASSES || h.size as usize != class_size(c) || h.arena != arena {
        return Err(format!(
            "header: class {c}, size {}, arena {}",
            h.size, h.arena
        ));
    }
    let size = h.size as usize;
    let capacity = blocks_per_pool(c);
    let next = h.nextoffset as usize;
    if next < POOL_OVERHEAD || (next - POOL_OVERHEAD) % size != 0 {
        return Err(format!("(3) nextoffset {next}"));
    }
    let carved = (next - POOL_OVERHEAD) / size;
    // (1) non-zero states exactly at allocated block starts (5 holds by
    // construction: an object's mark is one of the non-zero states).
    let live_states: u32 = h
        .state
        .iter()
        .enumerate()
        .map(|(i, w)| ((w | w.rotate_right(1)) & pool::low_mask(i)).count_ones())
        .sum();
    if live_states != h.count {
        return Err(format!(
            "(1) count {} but {live_states} live states",
            h.count
        ));
    }
    for k in carved..capacity.max(carved) {
        let p = (base + POOL_OVERHEAD + k * size) as *mut u8;
        // SAFETY: p is inside this live pool.
        if unsafe { pool::is_live(h as *const _ as *mut _, p) } {
            return Err(format!("(3) virgin block {k} marked live"));
        }
    }
    // (2) the free list.
    let mut free = 0usize;
    let mut b = h.freeblock;
    while !b.is_null() {
        let off = b as usize - base;
        if b as usize <= base
            || off >= next
            || (off - POOL_OVERHEAD) % size != 0
            || off < POOL_OVERHEAD
        {
            return Err(format!("(2) free block at offset {off}"));
        }
        // SAFETY: b is a block of this pool (checked above).
        if unsafe { pool::is_live(h as *const _ as *mut _, b) } {
            return Err(format!("(2) free block at offset {off} is marked live"));
        }
        free += 1;
        if free > capacity {
            return Err("(2) free list has a cycle".into());
        }
        // SAFETY: a free block's first word is its next link.
        b = unsafe { b.cast::<*mut u8>().read() };
    }
    if free + h.count as usize != carved {
        return Err(format!(
            "(2) {free} free + {} used != {carved} carved",
            h.count
        ));
    }
    // (4)
    if h.freeblock.is_null() && carved < capacity {
        return Err("(4) empty free list with virgin blocks left".into());
    }
    if h.count == 0 {
        return Err("(4) pool in use with no block allocated".into());
    }
    Ok(())
}

impl Default for SmallHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SmallHeap {
    fn drop(&mut self) {
        let live: Vec<u32> = self.arenas.live().map(|(i, _)| i).collect();
        for idx in live {
            let a = self.arenas.slots[idx as usize];
            self.map.unregister(a.first_pool, a.pools_end());
            if let Some(f) = a.allocator.free {
                // SAFETY: the heap is going away; nothing may use its blocks.
                unsafe { f(a.allocator.ctx, a.base as *mut _, ARENA_SIZE) };
            }
        }
    }
}
