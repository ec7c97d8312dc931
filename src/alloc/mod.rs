//! The small-object allocator: size classes, pools, arenas, the address map
//! and the OS layer beneath them.
//!
//! ```text
//! arena (1 MiB, from the arena allocator)
//! ├── pool 0 (16 KiB)  [PoolHeader | block | block | ...]   one size class
//! ├── pool 1
//! └── ... up to 64 pools
//! ```
//! `SmallHeap` ties them together; `docs/design/allocator.md` gives the
//! invariants in prose.

pub mod arena;
pub mod bad_pointer;
pub mod heap;
pub mod os;
pub mod pool;
pub mod radix;
pub mod size_class;
pub mod valgrind;

pub use heap::SmallHeap;

#[cfg(test)]
mod tests;
