//! Builds every program in `examples/` the way its comment says a user
//! builds it (against `libpyheap.a`, and `extension_type.c` also against
//! CPython 3.11), runs it, and checks what it prints.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::*;

/// Compiles `examples/<name>.c` against pyheap, or against CPython with
/// `-DUSE_CPYTHON` (None when CPython is not installed).
fn build(name: &str, against_cpython: bool) -> Option<PathBuf> {
    let src = root().join("examples").join(format!("{name}.c"));
    let dir = out_dir().join("examples");
    std::fs::create_dir_all(&dir).expect("create examples dir");
    let exe = dir.join(if against_cpython {
        format!("{name}_cpython")
    } else {
        name.to_string()
    });
    let mut cc = c_compiler(false);
    cc.args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror"]);
    if against_cpython {
        let (inc, lib) = cpython()?;
        cc.arg("-DUSE_CPYTHON")
            .arg("-I")
            .arg(inc)
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lpython3.11");
    } else {
        cc.arg("-I")
            .arg(root().join("include"))
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(lib_dir().join("libpyheap.a"))
            .args(NATIVE_STATIC_LIBS);
    }
    run_ok(&mut cc, &format!("compiling examples/{name}.c"));
    Some(exe)
}

/// Runs a built example with `env` set (and every `PYHEAP_*` variable of
/// the caller's environment removed), returning its output.
fn run(exe: &PathBuf, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe);
    for (k, _) in std::env::vars() {
        if k.starts_with("PYHEAP_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run example")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the example with `env`, expecting exit status `status` and every
/// piece of `stdout_has` in its standard output; returns the output.
fn check(name: &str, env: &[(&str, &str)], status: i32, stdout_has: &[&str]) -> Output {
    let exe = build(name, false).expect("pyheap build");
    let out = run(&exe, env);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(status),
        "examples/{name}.c with {env:?}: status\n--- stdout\n{so}--- stderr\n{se}"
    );
    for want in stdout_has {
        assert!(
            so.contains(want),
            "examples/{name}.c with {env:?}: stdout lacks {want:?}\n--- stdout\n{so}--- stderr\n{se}"
        );
    }
    out
}

/// The allocator modes every example runs in: the pool heap and CPython's
/// debug hooks.
const MODES: &[&[(&str, &str)]] = &[&[], &[("PYHEAP_MALLOC", "debug")]];

#[test]
fn example_demo() {
    for env in MODES {
        check(
            "demo",
            env,
            0,
            &[
                "PyGC_Collect() found 2 unreachable objects",
                "weakref callback: pair 1 died",
                "demo.c:",
                "after freeing all: 0 live blocks",
            ],
        );
    }
}

#[test]
fn example_minimal() {
    check(
        "minimal",
        &[],
        0,
        &["item 999; 1001 blocks live", "\n0 blocks live"],
    );
    check(
        "minimal",
        &[("PYHEAP_MALLOC", "debug")],
        0,
        &["item 999;", "\n0 blocks live"],
    );
}

#[test]
fn example_gc_cycle() {
    for env in MODES {
        // The program checks its own counts and exits 1 if they are wrong.
        check(
            "gc_cycle",
            env,
            0,
            &[
                "chain of 3: 3 freed by reference counting",
                "in all 1000 finalized, 1000 freed",
            ],
        );
    }
}

#[test]
fn example_extension_type() {
    let mut outputs = Vec::new();
    for env in MODES {
        let out = check(
            "extension_type",
            env,
            0,
            &[
                "a tree of 40 nodes; the root's count is 4",
                "root dropped: 0 nodes freed, the weak reference is alive",
                "after a collection: 40 nodes freed, the weak reference is dead",
            ],
        );
        outputs.push(text(&out.stdout));
    }
    // The same file, unchanged, on CPython 3.11 prints the same lines.
    let Some(exe) = build("extension_type", true) else {
        eprintln!("CPython part skipped: CPython 3.11 headers or libpython3.11.so not found");
        return;
    };
    let out = run(&exe, &[]);
    assert!(out.status.success(), "CPython build: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), outputs[0], "CPython and pyheap differ");
}

#[test]
fn example_weakrefs() {
    for env in MODES {
        check(
            "weakrefs",
            env,
            0,
            &[
                "resource 1: from the cache",
                "same object: yes; weak references to it: 1; cached: 2",
                "callback: entry 2 is dead, dropping it from the cache\n  resource 2 freed\n\
                 plain weak reference now gives None; cached: 1",
                "cached: 0\nresource 1: made",
            ],
        );
    }
}

#[test]
fn example_leak_report() {
    // The scope's own report: 3 sessions and the 3 tuples they hold.
    check(
        "leak_report",
        &[],
        0,
        &[
            "3 objects (72 bytes): example.Session",
            "3 objects (",
            "): tuple",
            "6 objects leaked",
        ],
    );
    // At exit, with allocation sites.
    let out = check(
        "leak_report",
        &[("PYHEAP_TRACEMALLOC", "4"), ("PYHEAP_LEAK_REPORT", "1")],
        0,
        &["6 objects leaked"],
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("example.Session") && err.contains("leak_report.c\", line"),
        "exit report without sessions or sites:\n{err}"
    );
    // For CI: leaks make the exit status 1.
    check(
        "leak_report",
        &[("PYHEAP_LEAK_REPORT", "1"), ("PYHEAP_ABORT_ON_LEAK", "1")],
        1,
        &[],
    );
}

#[test]
fn example_trace_snapshot() {
    for env in MODES {
        let out = check(
            "trace_snapshot",
            env,
            0,
            &[
                "traced: 200000 bytes now",
                "top allocation sites:\n",
                "trace_snapshot.c:",
                "size=156 KiB (+125 KiB), count=500 (+0)",
                "\"function\": \"load_vectors\"",
            ],
        );
        // The vectors' line comes first in both listings.
        let so = text(&out.stdout);
        let first_site = |after: &str| {
            so.split(after)
                .nth(1)
                .and_then(|rest| rest.lines().find(|l| l.contains("trace_snapshot.c:")))
                .map(|l| l.contains("size=156 KiB"))
        };
        assert_eq!(first_site("top allocation sites:"), Some(true), "{so}");
        assert_eq!(first_site("what grew"), Some(true), "{so}");
    }
}
