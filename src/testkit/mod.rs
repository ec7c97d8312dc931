//! The model-based test kit: an operation language over the whole heap
//! (allocations in the three domains, objects of GC and non-GC types,
//! references between them, weak references, tracking, collections,
//! freezing), a reference model of what the heap should then hold, and an
//! executor that runs operations against the library and checks it
//! against the model after every step.
//!
//! `tests/model.rs` generates operations with proptest; the fuzz targets in
//! `fuzz/` decode them from bytes ([`ops::decode`]). Compiled for tests and
//! with the `testkit` feature only: a release build carries none of it.
//!
//! The heap is process-global: one case at a time, with the runtime lock
//! held ([`exec::run`]).

pub mod exec;
pub mod model;
pub mod objects;
pub mod ops;
