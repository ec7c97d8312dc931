//! Runs every `c_tests/*.c` program as its own process, linked against the
//! built library exactly as a user links it.
//!
//! Directives, one per comment line at the top of a C file:
//! - `// pyheap-test: shared` links `libpyheap.so` instead of `libpyheap.a`
//!   (found at run time through its SONAME, `libpyheap.so.0`).
//! - `// pyheap-test: cpython` also builds the file with `-DUSE_CPYTHON`
//!   against CPython 3.11's `Python.h` and `libpython3.11.so` (test
//!   `c_<name>_cpython`), to prove our reading of CPython on the real thing.
//! - `// pyheap-test: abort` the program must die of SIGABRT.
//! - `// pyheap-test: exit <status>` the program must exit with this status.
//! - `// pyheap-test: stderr <text>` stderr must contain `<text>`.
//! - `// pyheap-test: stderr-address` stderr must contain the address the
//!   program printed on stdout as `ADDRESS=<%p>`.
//! - `// pyheap-test: env NAME=VALUE` sets an environment variable.
//! - `// pyheap-test: cflags <flags>` adds compiler flags (space-separated).
//! - `// pyheap-test: pool-only` runs only in the default allocator mode
//!   (every other test also runs under `PYHEAP_MALLOC=debug`).
//! - `// pyheap-test: modes <mode>...` runs in exactly these allocator modes
//!   (`PYHEAP_MALLOC` values; `pymalloc` is the default).
//! - `// pyheap-test: no-tools` touches freed memory on purpose: not run
//!   under valgrind or sanitizers (`scripts/check-tools.sh`).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use support::*;

struct Directives {
    shared: bool,
    pool_only: bool,
    moded: bool,
    no_tools: bool,
    abort: bool,
    exit: Option<i32>,
    stderr: Vec<String>,
    stderr_address: bool,
    env: Vec<(String, String)>,
    cflags: Vec<String>,
}

fn directives(source: &str) -> Directives {
    let mut d = Directives {
        shared: false,
        pool_only: false,
        moded: false,
        no_tools: false,
        abort: false,
        exit: None,
        stderr: vec![],
        stderr_address: false,
        env: vec![],
        cflags: vec![],
    };
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("// pyheap-test:") else {
            continue;
        };
        let rest = rest.trim();
        let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        match word {
            "shared" => d.shared = true,
            "cpython" => {}
            "pool-only" => d.pool_only = true,
            "no-tools" => d.no_tools = true,
            "modes" => d.moded = true,
            "abort" => d.abort = true,
            "exit" => d.exit = Some(arg.trim().parse().expect("exit <status>")),
            "stderr" => d.stderr.push(arg.to_string()),
            "stderr-address" => d.stderr_address = true,
            "cflags" => d.cflags.extend(arg.split_whitespace().map(String::from)),
            "env" => {
                let (k, v) = arg.split_once('=').expect("env NAME=VALUE");
                d.env.push((k.into(), v.into()));
            }
            other => panic!("unknown directive {other:?}"),
        }
    }
    d
}

/// Builds and runs `c_tests/<name>.c`: against CPython, or against pyheap
/// in allocator mode `mode` (`PYHEAP_MALLOC`; None for the default).
///
/// For tool runs (`scripts/check-tools.sh`), three variables change this:
/// `PYHEAP_TEST_MODE` runs the default-mode tests in another allocator mode
/// (tests marked `pool-only` and the CPython builds are then skipped),
/// `PYHEAP_TEST_WRAPPER` runs each program under a command (valgrind), and
/// `PYHEAP_TEST_CFLAGS` adds compiler flags (sanitizers).
pub fn run_c_test(name: &str, against_cpython: bool, mode: Option<&str>) {
    let src = root().join("c_tests").join(format!("{name}.c"));
    let source = std::fs::read_to_string(&src).expect("read C test");
    let d = directives(&source);
    let forced = std::env::var("PYHEAP_TEST_MODE")
        .ok()
        .filter(|m| !m.is_empty());
    let wrapper = std::env::var("PYHEAP_TEST_WRAPPER")
        .ok()
        .filter(|w| !w.is_empty());
    let cflags_set = std::env::var("PYHEAP_TEST_CFLAGS").is_ok_and(|c| !c.is_empty());
    if forced.is_some() || wrapper.is_some() || cflags_set {
        // Tool runs check pyheap and the tests for memory errors: programs
        // that misuse memory on purpose (the abort tests, `no-tools`) and
        // CPython's builds are not run.
        if against_cpython || d.abort || d.no_tools || (forced.is_some() && d.pool_only) {
            eprintln!("skipped in a tool run");
            return;
        }
    }
    let mode = match (&forced, mode, d.moded) {
        (Some(f), None, false) => Some(f.as_str()),
        (_, m, _) => m,
    };
    let suffix = match (against_cpython, mode) {
        (true, _) => "_cpython".to_string(),
        (false, Some(m)) => format!("_{m}"),
        (false, None) => String::new(),
    };
    let exe = out_dir().join(format!("{name}{suffix}"));

    let mut cc = c_compiler(false);
    cc.args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror"]);
    // Against CPython, only CPython's headers: pyheap's include directory
    // also has a structmember.h.
    if !against_cpython {
        cc.arg("-I").arg(root().join("include"));
    }
    if let Ok(extra) = std::env::var("PYHEAP_TEST_CFLAGS") {
        cc.args(extra.split_whitespace());
    }
    cc.arg("-I")
        .arg(root().join("c_tests"))
        .args(&d.cflags)
        .arg(&src)
        .arg("-o")
        .arg(&exe);
    if against_cpython {
        let Some((inc, lib)) = cpython() else {
            eprintln!("skipped: CPython 3.11 headers or libpython3.11.so not found");
            return;
        };
        cc.arg("-DUSE_CPYTHON")
            .arg("-I")
            .arg(inc)
            .arg("-L")
            .arg(&lib);
        cc.arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lpython3.11");
    } else if d.shared {
        let lib = shared_lib_dir(&format!("{name}{suffix}"));
        cc.arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lpyheap");
    } else {
        cc.arg(lib_dir().join("libpyheap.a"))
            .args(NATIVE_STATIC_LIBS);
    }
    run_ok(&mut cc, &format!("compiling {name}.c"));

    let mut run = match &wrapper {
        Some(w) => {
            let mut words = w.split_whitespace();
            let mut c = Command::new(words.next().expect("a wrapper command"));
            c.args(words).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    // The mode is the test's, whatever the environment of `cargo test`.
    run.env_remove("PYHEAP_MALLOC");
    if let Some(m) = mode {
        run.env("PYHEAP_MALLOC", m);
    }
    run.envs(d.env.iter().map(|(k, v)| (k, v)));
    let out = run.output().expect("run C test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = || {
        format!(
            "{name}{suffix}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        )
    };

    // The stderr directives apply to programs expected to stop early.
    let check_stderr = || {
        for want in &d.stderr {
            assert!(
                stderr.contains(want.as_str()),
                "stderr lacks {want:?}\n{}",
                report()
            );
        }
        if d.stderr_address {
            let addr = stdout
                .lines()
                .find_map(|l| l.strip_prefix("ADDRESS="))
                .unwrap_or_else(|| panic!("no ADDRESS= line on stdout\n{}", report()));
            assert!(
                stderr.contains(addr.trim()),
                "stderr lacks the address {addr}\n{}",
                report()
            );
        }
    };
    if let Some(code) = d.exit.filter(|_| !against_cpython) {
        assert_eq!(
            out.status.code(),
            Some(code),
            "expected exit status {code}\n{}",
            report()
        );
        check_stderr();
    } else if d.abort && !against_cpython {
        assert_eq!(
            out.status.signal(),
            Some(libc_sigabrt()),
            "expected an abort\n{}",
            report()
        );
        check_stderr();
    } else {
        assert!(out.status.success(), "C test failed\n{}", report());
    }
    print!("{}", report());
}

/// A directory where `libpyheap.so` and its SONAME `libpyheap.so.0` both
/// name this build's shared library, laid out as an installed library is:
/// cargo writes only `libpyheap.so`, and a program linked against it looks
/// for `libpyheap.so.0` when it starts. One directory per test, so tests
/// running in parallel never race on the links.
fn shared_lib_dir(name: &str) -> std::path::PathBuf {
    let dir = out_dir().join(format!("{name}_lib"));
    std::fs::create_dir_all(&dir).expect("create the shared library directory");
    let target = lib_dir().join("libpyheap.so");
    for link in ["libpyheap.so", "libpyheap.so.0"] {
        let path = dir.join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&target, &path).expect("link libpyheap.so");
    }
    dir
}

fn libc_sigabrt() -> i32 {
    6
}

include!(concat!(env!("OUT_DIR"), "/c_tests_list.rs"));
