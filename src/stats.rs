//! Heap statistics: the numbers behind `PyHeap_GetAllocatedBlocks`,
//! `PyHeap_GetHeapStats` and the per-size-class report (CPython's
//! `_PyObject_DebugMallocStats`, SPEC.md §2.10), as text or JSON.

use core::fmt::{self, Write};

use crate::alloc::SmallHeap;
use crate::alloc::pool::{POOL_OVERHEAD, blocks_per_pool};
use crate::alloc::radix::RadixMap;
use crate::alloc::size_class::{
    ARENA_SIZE, NB_SMALL_SIZE_CLASSES, POOL_SIZE, SMALL_REQUEST_THRESHOLD, class_size,
};

/// One size class's line of the report.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct ClassStats {
    /// Pools of this class in use.
    pub pools: usize,
    /// Blocks allocated.
    pub blocks_in_use: usize,
    /// Blocks free in those pools (free lists and never-used blocks).
    pub avail_blocks: usize,
}

/// A snapshot of the pool heap's statistics, in C layout for
/// `PyHeap_GetHeapStats`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PyHeap_HeapStats {
    /// Arenas obtained from the arena allocator since start-up.
    pub arenas_allocated_total: usize,
    /// Arenas given back since start-up.
    pub arenas_reclaimed: usize,
    /// Most arenas live at one time.
    pub arenas_highwater: usize,
    /// Arenas live now.
    pub arenas_current: usize,
    /// Pools holding at least one block.
    pub pools_in_use: usize,
    /// Pools inside live arenas holding no block.
    pub pools_free: usize,
    /// Free pools whose pages may still be resident.
    pub pools_dirty: usize,
    /// Pools whose pages were given back to the OS since start-up.
    pub pools_purged: usize,
    /// Pooled blocks allocated now.
    pub pooled_blocks: usize,
    /// Bytes in those blocks (block sizes, not requested sizes).
    pub pooled_bytes: usize,
    /// MEM/OBJ blocks served by the RAW domain (size 0 or above 512 bytes).
    pub raw_blocks: usize,
}

/// Everything the report prints.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Per size class.
    pub classes: Vec<ClassStats>,
    /// Totals.
    pub totals: PyHeap_HeapStats,
    /// Bytes of address-map leaves.
    pub map_leaf_bytes: usize,
    /// Leaves mapped.
    pub map_leaves: usize,
    /// Bytes lost before the first pool of unaligned arenas.
    pub alignment_loss: usize,
}

impl Report {
    /// Gathers the report by walking every arena (as CPython does).
    pub fn gather(heap: &SmallHeap, raw_blocks: usize) -> Self {
        let mut classes = vec![ClassStats::default(); NB_SMALL_SIZE_CLASSES];
        heap.for_each_pool(|p| {
            let c = &mut classes[p.szidx as usize];
            c.pools += 1;
            c.blocks_in_use += p.count as usize;
            c.avail_blocks += blocks_per_pool(p.szidx as usize) - p.count as usize;
        });
        let mut t = PyHeap_HeapStats {
            arenas_allocated_total: heap.counters.arenas_allocated_total,
            arenas_reclaimed: heap.counters.arenas_reclaimed,
            arenas_highwater: heap.counters.arenas_highwater,
            pools_purged: heap.counters.pools_purged,
            pools_dirty: heap.dirty_pools(),
            raw_blocks,
            ..Default::default()
        };
        let mut alignment_loss = 0;
        for (_, a) in heap.arenas.live() {
            t.arenas_current += 1;
            t.pools_free += a.nfree as usize;
            alignment_loss += ARENA_SIZE - a.npools as usize * POOL_SIZE;
        }
        for (i, c) in classes.iter().enumerate() {
            t.pools_in_use += c.pools;
            t.pooled_blocks += c.blocks_in_use;
            t.pooled_bytes += c.blocks_in_use * class_size(i);
        }
        Report {
            classes,
            totals: t,
            map_leaf_bytes: heap.map.leaf_bytes(),
            map_leaves: heap.map.leaves,
            alignment_loss,
        }
    }

    fn avail_bytes(&self) -> usize {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| c.avail_blocks * class_size(i))
            .sum()
    }

    fn quantization(&self) -> usize {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.pools * (POOL_SIZE - POOL_OVERHEAD - blocks_per_pool(i) * class_size(i))
            })
            .sum()
    }

    /// CPython's text layout, plus pyheap's lines about purged pages.
    pub fn write_text(&self, out: &mut impl Write) -> fmt::Result {
        let t = &self.totals;
        writeln!(
            out,
            "Small block threshold = {SMALL_REQUEST_THRESHOLD}, in {NB_SMALL_SIZE_CLASSES} size classes."
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "class   size   num pools   blocks in use  avail blocks"
        )?;
        writeln!(
            out,
            "-----   ----   ---------   -------------  ------------"
        )?;
        for (i, c) in self.classes.iter().enumerate().filter(|(_, c)| c.pools > 0) {
            writeln!(
                out,
                "{:5} {:6} {:11} {:15} {:13}",
                i,
                class_size(i),
                c.pools,
                c.blocks_in_use,
                c.avail_blocks
            )?;
        }
        writeln!(out)?;
        line(out, "# arenas allocated total", t.arenas_allocated_total)?;
        line(out, "# arenas reclaimed", t.arenas_reclaimed)?;
        line(out, "# arenas highwater mark", t.arenas_highwater)?;
        line(out, "# arenas allocated current", t.arenas_current)?;
        let arena_bytes = t.arenas_current * ARENA_SIZE;
        line(
            out,
            &format!("{} arenas * {ARENA_SIZE} bytes/arena", t.arenas_current),
            arena_bytes,
        )?;
        writeln!(out)?;
        line(out, "# bytes in allocated blocks", t.pooled_bytes)?;
        line(out, "# bytes in available blocks", self.avail_bytes())?;
        line(
            out,
            &format!("{} unused pools * {POOL_SIZE} bytes", t.pools_free),
            t.pools_free * POOL_SIZE,
        )?;
        line(
            out,
            "# bytes lost to pool headers",
            t.pools_in_use * POOL_OVERHEAD,
        )?;
        line(out, "# bytes lost to quantization", self.quantization())?;
        line(out, "# bytes lost to arena alignment", self.alignment_loss)?;
        line(out, "Total", arena_bytes)?;
        writeln!(out)?;
        line(out, "# free pools still resident", t.pools_dirty)?;
        line(out, "# pools given back to the OS", t.pools_purged)?;
        line(out, "# blocks from the raw domain", t.raw_blocks)?;
        line(out, "# arena map leaves", self.map_leaves)?;
        line(
            out,
            "# bytes lost to arena map root",
            RadixMap::root_bytes(),
        )?;
        line(out, "# bytes lost to arena map leaves", self.map_leaf_bytes)?;
        Ok(())
    }

    /// The same numbers as one JSON object.
    pub fn write_json(&self, out: &mut impl Write) -> fmt::Result {
        let t = &self.totals;
        write!(
            out,
            "{{\"small_block_threshold\":{SMALL_REQUEST_THRESHOLD},\"size_classes\":["
        )?;
        let mut first = true;
        for (i, c) in self.classes.iter().enumerate().filter(|(_, c)| c.pools > 0) {
            if !first {
                out.write_char(',')?;
            }
            first = false;
            write!(
                out,
                "{{\"class\":{i},\"size\":{},\"pools\":{},\"blocks_in_use\":{},\"avail_blocks\":{}}}",
                class_size(i),
                c.pools,
                c.blocks_in_use,
                c.avail_blocks
            )?;
        }
        write!(
            out,
            "],\"arenas_allocated_total\":{},\"arenas_reclaimed\":{},\"arenas_highwater\":{},\
             \"arenas_current\":{},\"arena_size\":{ARENA_SIZE},\"pool_size\":{POOL_SIZE},\
             \"pools_in_use\":{},\"pools_free\":{},\"pools_dirty\":{},\"pools_purged\":{},\
             \"bytes_in_allocated_blocks\":{},\"bytes_in_available_blocks\":{},\
             \"bytes_lost_to_pool_headers\":{},\"bytes_lost_to_quantization\":{},\
             \"bytes_lost_to_arena_alignment\":{},\"raw_blocks\":{},\"allocated_blocks\":{},\
             \"arena_map_leaves\":{},\"arena_map_bytes\":{}}}",
            t.arenas_allocated_total,
            t.arenas_reclaimed,
            t.arenas_highwater,
            t.arenas_current,
            t.pools_in_use,
            t.pools_free,
            t.pools_dirty,
            t.pools_purged,
            t.pooled_bytes,
            self.avail_bytes(),
            t.pools_in_use * POOL_OVERHEAD,
            self.quantization(),
            self.alignment_loss,
            t.raw_blocks,
            t.pooled_blocks + t.raw_blocks,
            self.map_leaves,
            RadixMap::root_bytes() + self.map_leaf_bytes,
        )?;
        writeln!(out)
    }
}

/// `label` padded to 35 columns, `=`, then the value with thousands commas
/// right-aligned in 21 columns (CPython's `printone`).
fn line(out: &mut impl Write, label: &str, value: usize) -> fmt::Result {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    writeln!(out, "{label:<35}={grouped:>21}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_group_thousands_like_cpython() {
        let mut s = String::new();
        line(&mut s, "Total", 1_048_576).unwrap();
        assert_eq!(s, format!("{:<35}={:>21}\n", "Total", "1,048,576"));
        s.clear();
        line(&mut s, "x", 999).unwrap();
        assert!(s.ends_with("                  999\n"));
    }

    #[test]
    fn report_counts_what_the_heap_holds() {
        let mut heap = Box::new(SmallHeap::new());
        let blocks: Vec<*mut u8> = (0..100).map(|i| heap.alloc(1 + i % 64)).collect();
        let r = Report::gather(&heap, 3);
        assert_eq!(r.totals.pooled_blocks, 100);
        assert_eq!(r.totals.raw_blocks, 3);
        assert_eq!(r.totals.arenas_current, 1);
        assert_eq!(r.classes[0].blocks_in_use, 32);
        assert_eq!(r.classes[3].blocks_in_use, 16);
        let mut text = String::new();
        r.write_text(&mut text).unwrap();
        assert!(
            text.contains("    0     16           1              32 "),
            "{text}"
        );
        let mut json = String::new();
        r.write_json(&mut json).unwrap();
        assert!(json.contains("\"allocated_blocks\":103"), "{json}");
        for b in blocks {
            // SAFETY: each block was allocated above and is freed once.
            unsafe { assert!(heap.free(b, "test")) };
        }
        assert_eq!(Report::gather(&heap, 0).totals.pooled_blocks, 0);
    }
}
