//! Diagnosing a pooled address that `free` or `realloc` found not to be the
//! start of an allocated block, and the fatal report that names it.
//!
//! The state bitmap of `pool.rs` says only that no block starts at the
//! address; the pool header says why: the block was freed (a double free or
//! a use after free), never handed out, or the address is inside a block,
//! inside the header, or in a free pool. A free pool's header is zeroes
//! (never used, purged, or zeroed with a custom arena) or still describes
//! the pool's last use, so a second free of the last block of a pool is
//! still recognised as a double free.

use core::fmt::{self, Write};

use super::SmallHeap;
use super::arena::Arena;
use super::pool::{self, POOL_OVERHEAD, pool_of};
use super::size_class::{ALIGNMENT, SMALL_REQUEST_THRESHOLD};
use crate::fatal::{self, Misuse, StackBuf};

/// What a pooled address that is not the start of an allocated block
/// points at ([`SmallHeap::diagnose`], for misuse reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPointer {
    /// The start of a `size`-byte block that was carved and is free now: a
    /// double free or a use after free. `pool_free`: the pool has held no
    /// block since (its header still describes its last use).
    Freed {
        /// Block size.
        size: usize,
        /// The pool is free.
        pool_free: bool,
    },
    /// The start of a `size`-byte block the pool has never handed out.
    NeverAllocated {
        /// Block size.
        size: usize,
    },
    /// Inside the header of a pool in use.
    Header,
    /// `offset` bytes into the `size`-byte block at `start`.
    Interior {
        /// Block size.
        size: usize,
        /// Address of the block.
        start: usize,
        /// Bytes from the block's start.
        offset: usize,
    },
    /// Inside a free pool, and not a block of its last use.
    FreePool,
}

impl SmallHeap {
    /// What the pooled address `p` points at when no allocated block starts
    /// there (what `free` and `block_size` report); None if `p` is not
    /// pooled or is an allocated block's start.
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "only the header of a pool the address map proves ours is read"
    )]
    pub fn diagnose(&self, p: *mut u8) -> Option<BadPointer> {
        if !self.owns(p) {
            return None;
        }
        let pool = pool_of(p);
        // SAFETY: p is pooled, so its pool's header is our readable memory.
        if unsafe { pool::is_live(pool, p) } {
            return None;
        }
        let addr = p as usize;
        let off = addr - pool as usize;
        let pool_free = self
            .arena_containing(addr)
            .is_some_and(|a| a.free_mask >> a.pool_index(pool as usize) & 1 == 1);
        // SAFETY: as above. A pool in use has valid fields; a free pool's
        // header is zeroes (never used, purged, or zeroed with its arena) or
        // still describes the pool's last use, so its size is 0 or a class
        // size (checked again below before it is used).
        let (size, nextoffset) = unsafe { ((*pool).size as usize, (*pool).nextoffset as usize) };
        let size_ok = size != 0 && size <= SMALL_REQUEST_THRESHOLD && size % ALIGNMENT == 0;
        let in_blocks = size_ok && off >= POOL_OVERHEAD;
        let on_block_start = in_blocks && (off - POOL_OVERHEAD) % size == 0;
        Some(if on_block_start && off < nextoffset {
            BadPointer::Freed { size, pool_free }
        } else if pool_free {
            BadPointer::FreePool
        } else if on_block_start {
            BadPointer::NeverAllocated { size }
        } else if !in_blocks {
            BadPointer::Header
        } else {
            let start = pool as usize + POOL_OVERHEAD + (off - POOL_OVERHEAD) / size * size;
            BadPointer::Interior {
                size,
                start,
                offset: addr - start,
            }
        })
    }

    /// The live arena whose pools contain `addr`.
    fn arena_containing(&self, addr: usize) -> Option<&Arena> {
        self.arenas
            .live()
            .map(|(_, a)| a)
            .find(|a| a.first_pool <= addr && addr < a.pools_end())
    }

    /// Reports a pooled pointer that is not an allocated block, and aborts.
    #[cold]
    #[inline(never)]
    pub(super) fn bad_pointer(&self, p: *mut u8, api: &'static str) -> ! {
        let pool = pool_of(p) as usize;
        let addr = p as usize;
        let Some(what) = self.diagnose(p) else {
            fatal::internal(api, "bad_pointer called on a valid block")
        };
        let kind = match what {
            BadPointer::Freed { .. } => Misuse::DoubleFree,
            _ => Misuse::InvalidFree,
        };
        let arena = self.arena_containing(addr);
        let detail = |out: &mut StackBuf<2048>| -> fmt::Result {
            match what {
                BadPointer::Freed { size, pool_free } => writeln!(
                    out,
                    "  the block ({size} bytes, pool {pool:#x}) was already freed{}",
                    if pool_free {
                        "; its pool holds no block now"
                    } else {
                        ""
                    }
                )?,
                BadPointer::NeverAllocated { size } => writeln!(
                    out,
                    "  the block ({size} bytes, pool {pool:#x}) was never allocated"
                )?,
                BadPointer::Header => writeln!(
                    out,
                    "  the address lies in the header of the pool at {pool:#x}"
                )?,
                BadPointer::Interior {
                    size,
                    start,
                    offset,
                } => writeln!(
                    out,
                    "  the address is {offset} bytes into the {size}-byte block at {start:#x}"
                )?,
                BadPointer::FreePool => writeln!(
                    out,
                    "  the address lies in a free pool at {pool:#x}: no block there is allocated"
                )?,
            }
            if let Some(a) = arena {
                writeln!(
                    out,
                    "  arena {:#x}, {} of {} pools free",
                    a.base, a.nfree, a.npools
                )?;
            }
            Ok(())
        };
        fatal::misuse(kind, addr, api, &detail)
    }
}
