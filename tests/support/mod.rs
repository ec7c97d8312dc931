//! Builds C programs against the built library, the way a user would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Directory with this test run's `libpyheap.a` and `libpyheap.so`
/// (`target/<profile>/deps`, next to the test executable).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    for dir in [
        deps.clone(),
        deps.parent().expect("profile dir").to_path_buf(),
    ] {
        if dir.join("libpyheap.a").exists() {
            return dir;
        }
    }
    panic!("libpyheap.a not found next to {}", exe.display());
}

/// Libraries a static link of a Rust staticlib needs on Linux
/// (`rustc --print native-static-libs`).
pub const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The C compiler the `cc` crate picks for this target, as a Command.
pub fn c_compiler(cplusplus: bool) -> Command {
    let target = env!("PYHEAP_TARGET");
    cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(1)
        .cargo_metadata(false)
        .cpp(cplusplus)
        .get_compiler()
        .to_command()
}

/// Where build products of the C tests go.
pub fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_tests");
    std::fs::create_dir_all(&d).expect("create c test dir");
    d
}

/// Where CPython 3.11's headers and shared library are, if installed.
pub fn cpython() -> Option<(PathBuf, PathBuf)> {
    let inc = PathBuf::from("/usr/include/python3.11");
    let libs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ];
    let lib = libs
        .iter()
        .map(Path::new)
        .find(|d| d.join("libpython3.11.so").exists())?;
    inc.join("Python.h")
        .exists()
        .then(|| (inc, lib.to_path_buf()))
}

/// Runs `cmd`, panicking with its output if it cannot start or fails.
pub fn run_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
