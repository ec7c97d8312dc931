//! CPython's debug hooks (`PyMem_SetupDebugHooks`, over the pool heap) fed
//! only legal operations: allocations, reallocations and frees in the three
//! domains, the allocator's edge cases (size 0, NULL, sizes too large,
//! overflowing calloc), data that looks like the hooks' own fill bytes, and
//! (when the first byte is odd) the whole operation language with objects.
//! The hooks stop the program on misuse, so any stop is a false positive;
//! fresh memory must read 0xCD, and the model checks the rest.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyheap::testkit::{exec, ops};

fuzz_target!(|data: &[u8]| {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // Before anything is allocated from MEM or OBJ.
        pyheap::ffi::mem::PyMem_SetupDebugHooks();
        pyheap::ffi::threads::Py_Initialize();
    });
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ops = if mode & 1 == 0 {
        ops::decode_memory(rest, 600)
    } else {
        ops::decode(rest, 600)
    };
    let opts = exec::Options { debug_fill: true };
    if let Err(e) = exec::run(&ops, opts) {
        panic!("{e}\nops: {ops:?}");
    }
});
