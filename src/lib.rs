//! pyheap: CPython's memory model (allocator domains, pymalloc-style pools,
//! and later objects, the cycle collector and weak references) as a Rust
//! library exported through a C ABI.
//!
//! The core (`alloc`, `domains`) is ordinary Rust with small, documented
//! `unsafe` islands; `ffi` holds every `extern "C"` function and does nothing
//! but check arguments and call in.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![expect(
    non_camel_case_types,
    non_upper_case_globals,
    reason = "C API names are CPython's"
)]

pub mod alloc;
pub mod check;
pub mod config;
pub mod cvec;
pub mod debug;
pub mod domains;
pub mod error;
pub mod fatal;
pub mod ffi;
pub mod gc;
pub mod heapgraph;
pub mod leaks;
pub mod lifecycle;
pub mod object;
pub mod stats;
pub mod sync;
/// The model-based test kit (tests and fuzzing only; no C API).
///
/// cbindgen:ignore
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod threads;
pub mod trace;
pub mod weakref;
