//! The Lua 5.4 host of `examples/lua/` on pyheap's allocator, built against
//! this test run's `libpyheap.a` with its accounting checks compiled in,
//! runs the programs of `bench/lua/` (at small sizes) in the default
//! allocator mode, under the debug hooks and while tracing.
//!
//! Each run must print what the program computed, equal to the expected
//! text below (every program also checks its own sums and fails if one is
//! wrong), and must pass the host's accounting checks: after each phase of
//! a program, Lua's own count (`collectgarbage("count")`) equals the bytes
//! that went through the host's `lua_Alloc`, pyheap's
//! `PyHeap_GetAllocatedBlocks` counts exactly the blocks Lua holds, and
//! while tracing, pyheap's traced bytes equal Lua's count; after
//! `lua_close`, nothing is left. Needs liblua5.4-dev (CI installs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::*;

const LUA_INCLUDE: &str = "/usr/include/lua5.4";

/// Builds the host once per test process.
fn host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        assert!(
            Path::new(LUA_INCLUDE).join("lua.h").exists(),
            "the Lua tests need Lua 5.4's headers and library: apt-get install -y liblua5.4-dev"
        );
        let exe = out_dir().join("luahost");
        let mut cc = c_compiler(false);
        cc.args(["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror"])
            .arg("-DALLOC_PYHEAP")
            .arg("-DLUAHOST_ACCOUNTING")
            .arg("-I")
            .arg(root().join("include"))
            .arg("-I")
            .arg(LUA_INCLUDE)
            .arg(root().join("examples/lua/luahost.c"))
            .arg("-o")
            .arg(&exe)
            .arg(lib_dir().join("libpyheap.a"))
            .arg("-llua5.4")
            .args(NATIVE_STATIC_LIBS);
        run_ok(&mut cc, "compiling examples/lua/luahost.c");
        exe
    })
}

/// How a run is made: `PYHEAP_*` environment variables.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Default,
    Debug,
    Tracing,
}

/// Runs `bench/lua/<program>.lua <size>` in `mode`; checks the exit status,
/// stdout against `expected`, and the accounting lines on stderr.
fn run(program: &str, size: u32, mode: Mode, expected: &str) {
    let mut cmd = Command::new(host());
    cmd.arg(root().join("bench/lua").join(format!("{program}.lua")))
        .arg(size.to_string())
        .env_remove("PYHEAP_MALLOC")
        .env_remove("PYHEAP_TRACEMALLOC");
    match mode {
        Mode::Default => {}
        Mode::Debug => {
            cmd.env("PYHEAP_MALLOC", "debug");
        }
        Mode::Tracing => {
            cmd.env("PYHEAP_TRACEMALLOC", "1");
        }
    }
    let out = cmd.output().expect("run the Lua host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = || format!("{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    assert!(
        out.status.success(),
        "{program} {size} failed: {}",
        report()
    );
    assert_eq!(stdout, expected, "{program} {size}: {}", report());

    // The program checked the accounting after each phase and at its end;
    // each check printed what it compared.
    let checks: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("accounting "))
        .collect();
    assert!(
        checks.len() >= 3 && checks.last().unwrap().starts_with("accounting end: bytes="),
        "{program}: too few accounting checks\n{}",
        report()
    );
    for line in &checks {
        let blocks = field(line, "blocks").expect("blocks=");
        assert_eq!(
            field(line, "pyheap_blocks"),
            Some(blocks),
            "{program}: pyheap's block count was not compared: {line}"
        );
        if mode == Mode::Tracing {
            assert_eq!(
                field(line, "traced"),
                field(line, "bytes"),
                "{program}: traced bytes were not compared: {line}"
            );
        }
    }
    // The host's summary: the fast resize path only over the plain pool
    // allocator, and nothing left after lua_close.
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("luahost: alloc=pyheap "))
        .unwrap_or_else(|| panic!("no summary line\n{}", report()));
    let plain = if mode == Mode::Default { "1" } else { "0" };
    assert_eq!(field(summary, "plain_pool"), Some(plain), "{summary}");
    assert_eq!(
        field(summary, "pyheap_blocks_after_close"),
        Some("0"),
        "{summary}"
    );
    assert_eq!(field(summary, "new"), field(summary, "free"), "{summary}");
}

/// The value of `key=value` in a line of space-separated words.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

const BINARY_TREES_10: &str = "\
stretch tree of depth 11\t check: 4095
1024\t trees of depth 4\t check: 31744
256\t trees of depth 6\t check: 32512
64\t trees of depth 8\t check: 32704
16\t trees of depth 10\t check: 32752
long lived tree of depth 10\t check: 2047
binary_trees 10 checksum 135854
";

const BINARY_TREES_6: &str = "\
stretch tree of depth 7\t check: 255
64\t trees of depth 4\t check: 1984
16\t trees of depth 6\t check: 2032
long lived tree of depth 6\t check: 127
binary_trees 6 checksum 4398
";

#[test]
fn binary_trees() {
    run("binary_trees", 10, Mode::Default, BINARY_TREES_10);
}

#[test]
fn binary_trees_debug() {
    run("binary_trees", 10, Mode::Debug, BINARY_TREES_10);
}

#[test]
fn binary_trees_tracing() {
    run("binary_trees", 6, Mode::Tracing, BINARY_TREES_6);
}

const STRINGS_5000: &str = "strings 5000 kept 204 checksum 1706444\n";

#[test]
fn strings() {
    run("strings", 5000, Mode::Default, STRINGS_5000);
}

#[test]
fn strings_debug() {
    run("strings", 5000, Mode::Debug, STRINGS_5000);
}

#[test]
fn strings_tracing() {
    run(
        "strings",
        500,
        Mode::Tracing,
        "strings 500 kept 20 checksum 80484\n",
    );
}

const TABLE_CHURN_5000: &str = "table_churn 5000 live 64 checksum 402170592\n";

#[test]
fn table_churn() {
    run("table_churn", 5000, Mode::Default, TABLE_CHURN_5000);
}

#[test]
fn table_churn_debug() {
    run("table_churn", 5000, Mode::Debug, TABLE_CHURN_5000);
}

#[test]
fn table_churn_tracing() {
    run(
        "table_churn",
        500,
        Mode::Tracing,
        "table_churn 500 live 64 checksum 4167232\n",
    );
}

const CLOSURES_5000: &str = "closures 5000 kept 16 checksum 72386400\n";

#[test]
fn closures() {
    run("closures", 5000, Mode::Default, CLOSURES_5000);
}

#[test]
fn closures_debug() {
    run("closures", 5000, Mode::Debug, CLOSURES_5000);
}

#[test]
fn closures_tracing() {
    run(
        "closures",
        500,
        Mode::Tracing,
        "closures 500 kept 0 checksum 752644\n",
    );
}
