//! The model tests' operation language from fuzzer bytes: every step of the
//! decoded sequence is run against pyheap and checked against the model
//! (`pyheap::testkit`); a difference, a failed invariant or a crash is a
//! finding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyheap::testkit::{exec, ops};

fuzz_target!(|data: &[u8]| {
    static INIT: std::sync::Once = std::sync::Once::new();
    // The fuzzer's thread holds the runtime lock for good.
    INIT.call_once(|| pyheap::ffi::threads::Py_Initialize());
    let ops = ops::decode(data, 600);
    if let Err(e) = exec::run(&ops, exec::Options::default()) {
        panic!("{e}\nops: {ops:?}");
    }
});
