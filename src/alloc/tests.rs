//! Random operation sequences on a private `SmallHeap`, checked against a
//! model after every step: contents intact, no overlap, counts right, and
//! every structure's `check_invariants`.

use core::ffi::c_void;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::SmallHeap;
use crate::domains::PyObjectArenaAllocator;

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..=512).prop_map(Op::Alloc),
        2 => (1usize..=64).prop_map(Op::Alloc),
        5 => any::<usize>().prop_map(Op::Free),
        1 => Just(Op::Purge),
    ]
}

/// An arena allocator handing out plain malloc memory: unaligned arenas,
/// which exercise the address map's split chunks and the 63-pool case.
unsafe extern "C" fn malloc_arena(_ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: plain libc malloc; the offset keeps the block unaligned.
    unsafe { libc::malloc(size) }
}

unsafe extern "C" fn malloc_arena_free(_ctx: *mut c_void, p: *mut c_void, _size: usize) {
    // SAFETY: p came from malloc_arena.
    unsafe { libc::free(p) }
}

struct Live {
    size: usize,
    tag: u8,
}

fn fill(p: *mut u8, size: usize, tag: u8) {
    // SAFETY: p is a live block of at least `size` bytes.
    unsafe { core::ptr::write_bytes(p, tag, size) }
}

fn intact(p: *mut u8, size: usize, tag: u8) -> bool {
    // SAFETY: p is a live block of at least `size` bytes.
    let s = unsafe { core::slice::from_raw_parts(p, size) };
    s.iter().all(|&b| b == tag)
}

fn run(
    ops: &[Op],
    custom_arenas: bool,
    purge_threshold: usize,
    purge_ratio: usize,
) -> Result<(), TestCaseError> {
    let mut heap = Box::new(SmallHeap::new());
    heap.purge_threshold = purge_threshold;
    heap.purge_ratio = purge_ratio;
    if custom_arenas {
        heap.set_arena_allocator(PyObjectArenaAllocator {
            ctx: core::ptr::null_mut(),
            alloc: Some(malloc_arena),
            free: Some(malloc_arena_free),
        });
    }
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc(size) => {
                let p = heap.alloc(size);
                prop_assert!(!p.is_null(), "step {step}: alloc({size}) failed");
                prop_assert_eq!(p as usize % 16, 0);
                prop_assert!(heap.owns(p));
                // No overlap with the neighbours in address order.
                if let Some((&q, l)) = live.range(..p as usize).next_back() {
                    prop_assert!(
                        q + l.size <= p as usize,
                        "step {step}: overlaps block below"
                    );
                }
                if let Some((&q, _)) = live.range(p as usize..).next() {
                    prop_assert!(p as usize + size <= q, "step {step}: overlaps block above");
                }
                let tag = (step % 251) as u8 + 1;
                fill(p, size, tag);
                live.insert(p as usize, Live { size, tag });
            }
            Op::Free(k) => {
                if live.is_empty() {
                    continue;
                }
                let addr = *live.keys().nth(k % live.len()).unwrap();
                let l = live.remove(&addr).unwrap();
                prop_assert!(
                    intact(addr as *mut u8, l.size, l.tag),
                    "step {step}: block corrupted"
                );
                prop_assert_eq!(
                    heap.block_size(addr as *mut u8, "test"),
                    Some(l.size.next_multiple_of(16))
                );
                // SAFETY: addr is a live block of this heap, freed once.
                let ours = unsafe { heap.free(addr as *mut u8, "test") };
                prop_assert!(ours);
            }
            Op::Purge => heap.purge(),
        }
        if let Err(e) = heap.check_invariants() {
            return Err(TestCaseError::fail(format!("step {step} ({op:?}): {e}")));
        }
        prop_assert_eq!(heap.allocated_blocks(), live.len());
    }
    for (&addr, l) in &live {
        prop_assert!(intact(addr as *mut u8, l.size, l.tag));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..3000)) {
        run(&ops, false, 64, 2)?;
    }

    #[test]
    fn eager_purging(ops in prop::collection::vec(op(), 1..3000)) {
        run(&ops, false, 1, 0)?;
    }

    #[test]
    fn unaligned_arenas_and_eager_purging(ops in prop::collection::vec(op(), 1..3000)) {
        run(&ops, true, 1, 0)?;
    }

    /// A purge the kernel refuses (locked pages) leaves the pools' memory
    /// as it was: the heap forgets their free lists itself, so a clean pool
    /// still reads as one (invariant 6), and the pools serve again.
    #[test]
    fn refused_purges_keep_every_invariant(ops in prop::collection::vec(op(), 1..3000)) {
        super::os::REFUSE_DISCARD.with(|r| r.set(true));
        let result = run(&ops, false, 1, 0);
        super::os::REFUSE_DISCARD.with(|r| r.set(false));
        result?;
    }
}

/// Phases of growth and shrinkage of large blocks: heaps of several arenas
/// that shrink by a random part, so partial give-back, arenas kept wholly
/// free beside the spare, and the spare's exemption are all reached.
fn phases() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((any::<bool>(), 1usize..4000, 257usize..=512), 1..8).prop_map(|ps| {
        let mut ops = Vec::new();
        for (grow, n, size) in ps {
            if grow {
                ops.extend((0..n).map(|i| Op::Alloc(size - i % 64)));
            } else {
                ops.extend((0..n).map(|i| Op::Free(i.wrapping_mul(2_654_435_761))));
            }
        }
        ops
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Any budget (threshold 0 to 199 pools, ratio 0 to 3), default or
    /// unaligned arenas.
    #[test]
    fn any_budget_keeps_every_invariant(
        threshold in 0usize..200,
        ratio in 0usize..4,
        custom in any::<bool>(),
        ops in phases(),
    ) {
        run(&ops, custom, threshold, ratio)?;
    }
}

#[test]
fn many_pools_fill_arenas_and_give_them_back() {
    let mut heap = Box::new(SmallHeap::new());
    let blocks: Vec<*mut u8> = (0..300_000)
        .map(|i| heap.alloc(16 + (i % 4) * 16))
        .collect();
    assert!(heap.arenas.live().count() > 4);
    heap.check_invariants().unwrap();
    for &b in blocks.iter().rev() {
        // SAFETY: every block is live and freed once.
        unsafe { assert!(heap.free(b, "test")) };
    }
    heap.check_invariants().unwrap();
    assert_eq!(
        heap.arenas.live().count(),
        1,
        "only the spare arena is kept"
    );
    assert_eq!(heap.allocated_blocks(), 0);
    assert!(heap.counters.arenas_reclaimed > 3);
}

#[test]
fn a_class_with_a_partly_used_pool_gets_no_second_list() {
    // The new-pool paths replace the class's used list: asked for a class
    // that has a partly used pool, they must refuse (null) and leave it.
    let mut heap = Box::new(SmallHeap::new());
    let a = heap.alloc(16);
    let b = heap.alloc(16);
    assert!(heap.alloc_from_new_arena(0).is_null());
    assert!(heap.alloc_from_new_pool(0).is_null());
    heap.check_invariants().unwrap();
    // SAFETY: a and b are live and freed once.
    unsafe {
        assert!(heap.free(a, "test"));
        assert!(heap.free(b, "test"));
    }
    heap.check_invariants().unwrap();
    assert_eq!(heap.allocated_blocks(), 0);
}

#[test]
fn foreign_pointers_are_never_owned() {
    let mut heap = Box::new(SmallHeap::new());
    let mine = heap.alloc(32);
    for n in [1usize, 16, 100, 1000, 1 << 20] {
        // SAFETY: plain malloc/free of a fresh block.
        unsafe {
            let p = libc::malloc(n).cast::<u8>();
            assert!(!heap.owns(p));
            libc::free(p.cast());
        }
    }
    let stack_var = 0u64;
    assert!(!heap.owns((&stack_var as *const u64).cast()));
    assert!(!heap.owns(core::ptr::null()));
    assert!(heap.owns(mine));
    // SAFETY: mine is live.
    unsafe { assert!(heap.free(mine, "test")) };
}

#[test]
fn fullest_arena_is_preferred() {
    let mut heap = Box::new(SmallHeap::new());
    // Fill three arenas with one-pool-per-block allocations of class 31.
    let per_pool = crate::alloc::pool::blocks_per_pool(31);
    let blocks: Vec<*mut u8> = (0..per_pool * 64 * 3).map(|_| heap.alloc(512)).collect();
    let arena_of = |h: &SmallHeap, p: *mut u8| {
        h.arenas
            .live()
            .find(|(_, a)| a.first_pool <= p as usize && (p as usize) < a.pools_end())
            .unwrap()
            .0
    };
    let (a0, a1) = (
        arena_of(&heap, blocks[0]),
        arena_of(&heap, blocks[per_pool * 64 + 1]),
    );
    assert_ne!(a0, a1);
    // Free 10 pools' worth in arena a0 and 2 in arena a1.
    let mut freed = Vec::new();
    for (i, &b) in blocks.iter().enumerate() {
        let pool = i / per_pool;
        if pool < 10 || (64..66).contains(&pool) {
            // SAFETY: live block, freed once.
            unsafe { heap.free(b, "test") };
            freed.push(i);
        }
    }
    heap.check_invariants().unwrap();
    assert_eq!(freed.len(), per_pool * 12);
    // The next new pool must come from a1, the fuller of the two arenas
    // with free pools (2 free against 10).
    let p = heap.alloc(16);
    assert_eq!(arena_of(&heap, p), a1);
}

#[test]
fn bad_pointers_are_diagnosed() {
    use super::bad_pointer::BadPointer;
    use super::pool::{self, POOL_OVERHEAD, pool_of};
    use super::size_class::POOL_SIZE;

    let diag = |h: &SmallHeap, q: *mut u8| h.diagnose(q).expect("a bad pooled address");
    let mut heap = Box::new(SmallHeap::new());
    // A block of another class keeps the arena from becoming the spare
    // (whose free pools are never purged) when p's pool empties.
    let pin = heap.alloc(16);
    let keep = heap.alloc(64);
    let p = heap.alloc(64);
    let at = |k: usize| p.wrapping_add(k);
    assert!(heap.is_live_block(p));
    assert_eq!(heap.diagnose(p), None, "an allocated block is not bad");
    // An address inside a block's first 16 bytes shares its state's
    // granule but is not a block: free must not take it.
    for k in 1..16 {
        assert!(!heap.is_live_block(at(k)), "p + {k} taken for a block");
    }
    // SAFETY: p's pool is a live pool of this heap.
    assert!(!unsafe { pool::take_live(pool_of(p), at(8)) });
    assert!(
        heap.is_live_block(p),
        "a rejected take_live changed nothing"
    );
    let interior = |offset| BadPointer::Interior {
        size: 64,
        start: p as usize,
        offset,
    };
    assert_eq!(diag(&heap, at(8)), interior(8));
    assert_eq!(diag(&heap, at(16)), interior(16));
    assert_eq!(
        diag(&heap, at(5 * 64)),
        BadPointer::NeverAllocated { size: 64 }
    );
    assert_eq!(
        diag(&heap, pool_of(p).cast::<u8>().wrapping_add(16)),
        BadPointer::Header
    );

    // SAFETY: p is live and freed once.
    unsafe { assert!(heap.free(p, "test")) };
    let freed = |pool_free| BadPointer::Freed {
        size: 64,
        pool_free,
    };
    assert_eq!(diag(&heap, p), freed(false));
    // SAFETY: keep is live and freed once.
    unsafe { assert!(heap.free(keep, "test")) };
    // The pool is free now; its header still describes its last use, so a
    // second free of either block is still a double free.
    assert_eq!(diag(&heap, p), freed(true));
    assert_eq!(diag(&heap, keep), freed(true));
    assert_eq!(diag(&heap, at(8)), BadPointer::FreePool);
    // A pool never used, and a purged pool (its header reads zero).
    let unused = (pool_of(p) as usize + POOL_SIZE + POOL_OVERHEAD) as *mut u8;
    assert!(heap.owns(unused));
    assert_eq!(diag(&heap, unused), BadPointer::FreePool);
    heap.purge();
    assert_eq!(diag(&heap, p), BadPointer::FreePool);
    heap.check_invariants().unwrap();
    // SAFETY: pin is live and freed once.
    unsafe { assert!(heap.free(pin, "test")) };
    heap.check_invariants().unwrap();
}

#[test]
fn the_spare_arena_is_a_cache_not_purged() {
    use super::size_class::POOL_SIZE;
    let mut heap = Box::new(SmallHeap::new());
    heap.purge_threshold = 0; // a budget of nothing: purge at every emptied pool
    heap.purge_ratio = 0;
    // A little over one arena of 512-byte blocks: two arenas.
    let per_pool = (POOL_SIZE - super::pool::POOL_OVERHEAD) / 512;
    let blocks: Vec<*mut u8> = (0..per_pool * 70).map(|_| heap.alloc(512)).collect();
    assert_eq!(heap.arenas.live().count(), 2);
    for &b in &blocks {
        // SAFETY: each block is live and freed once.
        let freed = unsafe { heap.free(b, "test") };
        assert!(freed);
        heap.check_invariants().unwrap();
    }
    // One arena was released, the other stays as the spare: its dirty
    // pools (with a budget of nothing, the last one emptied) are counted
    // but not purged.
    assert_eq!(heap.arenas.live().count(), 1);
    let dirty = heap.dirty_pools();
    assert!(dirty > 0);
    let purged = heap.counters.pools_purged;
    heap.purge();
    assert_eq!(heap.counters.pools_purged, purged, "the spare was purged");
    assert_eq!(heap.dirty_pools(), dirty);
    // Once a pool is taken from it, it is an arena like any other: its
    // dirty pools are over the budget and purged.
    let b = heap.alloc(512);
    heap.check_invariants().unwrap();
    assert_eq!(heap.dirty_pools(), 0);
    assert_eq!(heap.counters.pools_purged, purged + dirty);
    // SAFETY: b is live and freed once.
    let freed = unsafe { heap.free(b, "test") };
    assert!(freed);
    heap.check_invariants().unwrap();
    assert_eq!(heap.arenas.live().count(), 1);
}

#[test]
fn bursts_of_frees_reuse_resident_pools() {
    use super::size_class::POOL_SIZE;
    // A live set of 8 arenas' worth of 512-byte blocks; each round frees
    // half of it (every other pool, so no arena empties) and allocates it
    // again, as a tracing collector's sweep and the program after it do.
    let mut heap = Box::new(SmallHeap::new());
    let per_pool = (POOL_SIZE - super::pool::POOL_OVERHEAD) / 512;
    let mut blocks: Vec<*mut u8> = (0..per_pool * 64 * 8).map(|_| heap.alloc(512)).collect();
    for _ in 0..20 {
        for (i, b) in blocks.iter_mut().enumerate() {
            if (i / per_pool) % 2 == 1 {
                // SAFETY: each block is live and freed once.
                unsafe { assert!(heap.free(*b, "test")) };
                *b = core::ptr::null_mut();
            }
        }
        heap.check_invariants().unwrap();
        assert_eq!(heap.dirty_pools(), 64 * 4, "freed pools stay resident");
        for b in blocks.iter_mut().filter(|b| b.is_null()) {
            *b = heap.alloc(512);
        }
        heap.check_invariants().unwrap();
    }
    assert_eq!(heap.counters.pools_purged, 0);
    // Free everything: the budget shrinks with the pools in use, so all
    // but the spare is given back.
    for &b in &blocks {
        // SAFETY: each block is live and freed once.
        unsafe { assert!(heap.free(b, "test")) };
    }
    heap.check_invariants().unwrap();
    assert_eq!(heap.arenas.live().count(), 1);
    assert!(heap.dirty_pools() <= 64);
}

#[test]
fn a_small_heap_beside_a_dirty_spare_purges_nothing() {
    use super::size_class::POOL_SIZE;
    // A large phase leaves the first arena wholly free as the spare, with
    // every pool dirty, beside a small heap; then one block of a class
    // with no partly used pool is allocated and freed again and again, so
    // a pool empties each time. The spare's dirty pools are outside the
    // budget: nothing may be purged (counted, they put the heap over the
    // budget at every emptied pool, and a pool was purged and faulted in
    // again each time).
    let mut heap = Box::new(SmallHeap::new());
    let per_pool = (POOL_SIZE - super::pool::POOL_OVERHEAD) / 512;
    let blocks: Vec<*mut u8> = (0..per_pool * (64 + 10)).map(|_| heap.alloc(512)).collect();
    let first = blocks[0] as usize & !(super::size_class::ARENA_SIZE - 1);
    for &b in blocks
        .iter()
        .filter(|&&b| b as usize & !(super::size_class::ARENA_SIZE - 1) == first)
    {
        // SAFETY: each block is live and freed once.
        unsafe { assert!(heap.free(b, "test")) };
    }
    heap.check_invariants().unwrap();
    assert_eq!(heap.arenas.live().count(), 2);
    assert!(heap.dirty_pools() >= 60, "the spare's pools are dirty");
    let purged = heap.counters.pools_purged;
    for _ in 0..1000 {
        let p = heap.alloc(16);
        // SAFETY: p is live and freed once.
        unsafe { assert!(heap.free(p, "test")) };
    }
    heap.check_invariants().unwrap();
    assert_eq!(
        heap.counters.pools_purged, purged,
        "pools purged in a steady small heap"
    );
    for &b in blocks
        .iter()
        .filter(|&&b| b as usize & !(super::size_class::ARENA_SIZE - 1) != first)
    {
        // SAFETY: the rest, each live and freed once.
        unsafe { assert!(heap.free(b, "test")) };
    }
    heap.check_invariants().unwrap();
}

/// Blocks of several classes marked as objects (a third of them GC
/// objects, a fifth of all blocks left unmarked) are exactly what
/// `for_each_object` and `object_kind` report, through frees and new
/// allocations, with every invariant kept: the block-state pairs and their
/// readers agree.
#[test]
fn object_marks_follow_their_blocks() {
    let mut heap = Box::new(SmallHeap::new());
    let mut marked: BTreeMap<usize, bool> = BTreeMap::new();
    let mut plain = Vec::new();
    for size in [16, 32, 48, 128, 256, 496, 512] {
        for i in 0..300 {
            let p = heap.alloc(size);
            assert!(!p.is_null());
            if i % 5 == 4 {
                plain.push(p as usize);
            } else {
                let gc = i % 3 == 0;
                assert!(heap.set_object(p, gc));
                marked.insert(p as usize, gc);
            }
        }
    }
    let check = |heap: &SmallHeap, marked: &BTreeMap<usize, bool>, plain: &[usize]| {
        let mut seen = BTreeMap::new();
        heap.for_each_object(|b, gc| {
            seen.insert(b as usize, gc);
        });
        // The first disagreement, not two maps of a thousand blocks.
        let diff = seen
            .iter()
            .find(|(b, gc)| marked.get(b) != Some(gc))
            .or_else(|| marked.iter().find(|(b, gc)| seen.get(b) != Some(gc)));
        assert!(diff.is_none(), "for_each_object disagrees at {diff:x?}");
        assert_eq!(seen.len(), marked.len());
        for &p in plain {
            assert_eq!(heap.object_kind(p as *mut u8), Some(None));
        }
        for (&p, &gc) in marked {
            assert_eq!(heap.object_kind(p as *mut u8), Some(Some(gc)));
        }
        heap.check_invariants().unwrap();
    };
    check(&heap, &marked, &plain);
    // A freed block is no object.
    let freed: Vec<usize> = marked.keys().copied().step_by(2).collect();
    for p in &freed {
        // SAFETY: an allocated block of this heap.
        assert!(unsafe { heap.free(*p as *mut u8, "test") });
        marked.remove(p);
        assert_eq!(heap.object_kind(*p as *mut u8), Some(None));
    }
    for p in plain.drain(..) {
        // SAFETY: as above.
        assert!(unsafe { heap.free(p as *mut u8, "test") });
    }
    check(&heap, &marked, &plain);
    // New blocks, some where freed objects were, come back unmarked.
    for _ in 0..freed.len() {
        plain.push(heap.alloc(48) as usize);
    }
    check(&heap, &marked, &plain);
}

/// `clear_object` turns an object back into a plain allocated block, of
/// either kind, and leaves a free block free: an "allocated" state written
/// over a free block would hand it out twice.
#[test]
fn clearing_an_object_mark_keeps_the_block_allocated_and_a_free_one_free() {
    let mut heap = Box::new(SmallHeap::new());
    let blocks: Vec<*mut u8> = (0..6).map(|_| heap.alloc(32)).collect();
    for (i, &p) in blocks.iter().enumerate() {
        assert!(heap.set_object(p, i % 2 == 0));
    }
    for &p in &blocks[..3] {
        assert!(heap.clear_object(p));
        assert_eq!(heap.object_kind(p), Some(None));
        assert!(heap.is_live_block(p));
    }
    heap.check_invariants().unwrap();
    for &p in &blocks[3..] {
        // SAFETY: an allocated block of this heap.
        assert!(unsafe { heap.free(p, "test") });
        assert!(!heap.clear_object(p), "a free block is not cleared");
        assert!(!heap.is_live_block(p), "a free block became allocated");
        assert_eq!(heap.object_kind(p), Some(None));
    }
    heap.check_invariants().unwrap();
    // The free blocks come back once each, and the cleared ones stay out.
    let again: Vec<*mut u8> = (0..3).map(|_| heap.alloc(32)).collect();
    for p in &again {
        assert!(!blocks[..3].contains(p));
    }
    let mut sorted = again.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3);
    heap.check_invariants().unwrap();
}
