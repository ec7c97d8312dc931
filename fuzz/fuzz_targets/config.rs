//! The configuration parser: arbitrary text as `PYHEAP_CONF` and as the
//! value of every setting. Parsing must never panic, and what it accepts
//! must mean what it says: thresholds print and parse back the same, a
//! rejected value names its setting. Then the settings whose effect stays
//! inside the process (thresholds and debug flags) go through
//! `PyHeap_SetOption` itself, and are put back.

#![no_main]

use std::ffi::CString;

use libfuzzer_sys::fuzz_target;
use pyheap::config::{self, KEYS, Value};
use pyheap::ffi::config::PyHeap_SetOption;

fn check(key: &str, value: &str) {
    match config::parse_value(key, value) {
        Ok(Value::GcThreshold(t)) => {
            assert!(
                t.iter().all(|&x| x >= 0),
                "negative threshold from {value:?}"
            );
            let again = format!("{}/{}/{}", t[0], t[1], t[2]);
            assert_eq!(
                config::parse_value(key, &again),
                Ok(Value::GcThreshold(t)),
                "{value:?}"
            );
        }
        Ok(Value::GcDebug(f)) => assert!(f >= 0),
        Ok(Value::Tracemalloc(n)) => assert!(n <= 65535),
        Ok(Value::LogFile(Some(p))) => assert!(!p.is_empty() && !p.contains('\0')),
        Ok(_) => {}
        Err(e) => {
            let text = e.to_string();
            assert!(
                KEYS.iter().all(|(k, _)| *k != key) || text.contains(key),
                "error for {key} does not name it: {text}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| pyheap::ffi::threads::Py_Initialize());
    let text = String::from_utf8_lossy(data);
    for (key, value) in config::parse_conf(&text) {
        assert_eq!(key, key.trim());
        assert_eq!(value, value.trim());
        check(&key, &value);
    }
    for (key, _) in KEYS {
        check(key, &text);
    }
    let Ok(value) = CString::new(data) else {
        return;
    };
    for key in [c"gc_threshold", c"gc_debug"] {
        // SAFETY: two NUL-terminated strings; the runtime lock is held.
        let r = unsafe { PyHeap_SetOption(key.as_ptr(), value.as_ptr()) };
        if r != 0 {
            pyheap::ffi::object::PyHeap_ClearError();
        }
    }
    // SAFETY: as above.
    unsafe {
        PyHeap_SetOption(c"gc_threshold".as_ptr(), c"700/10/10".as_ptr());
        PyHeap_SetOption(c"gc_debug".as_ptr(), c"0".as_ptr());
    }
});
