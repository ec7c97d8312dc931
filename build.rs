//! Build script: generates the C header with cbindgen into `OUT_DIR`, gives the
//! shared library its SONAME, and writes one `#[test]` per `c_tests/*.c` file.
//!
//! The checked-in `include/pyheap.h` is never written here: `tests/header.rs`
//! compares it with the generated one (and rewrites it when `PYHEAP_BLESS=1`),
//! so a stale header is a failing test rather than a silent rewrite.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=c_tests");
    println!("cargo:rerun-if-changed=include/pyheap_inline.h");
    println!("cargo:rerun-if-changed=build.rs");

    // The C test harness asks the cc crate for this target's compiler.
    println!(
        "cargo:rustc-env=PYHEAP_TARGET={}",
        env::var("TARGET").expect("TARGET")
    );

    generate_header(&crate_dir, &out_dir);
    write_c_test_list(&crate_dir, &out_dir);

    // A versioned SONAME, so programs linked against libpyheap.so record
    // libpyheap.so.0 and survive compatible upgrades.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpyheap.so.0");
    }
}

fn generate_header(crate_dir: &Path, out_dir: &Path) {
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml must parse");
    // The version macros come from Cargo.toml, the one place it is written.
    let version = |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("version");
    let mut after = config.after_includes.take().unwrap_or_default();
    after.push_str(&format!(
        "\n/* pyheap's version (Cargo.toml's); PyHeap_Version() gives the library's\n * at run time. */\n#define PYHEAP_VERSION_MAJOR {}\n#define PYHEAP_VERSION_MINOR {}\n#define PYHEAP_VERSION_PATCH {}\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH")
    ));
    config.after_includes = Some(after);
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate the header");
    bindings.write_to_file(out_dir.join("pyheap.h"));
    write_exported_names(crate_dir, out_dir);
}

/// The names of the C API's functions (declared in the generated header or
/// defined inline in `pyheap_inline.h`), sorted: tracebacks leave out
/// frames of these, which are pyheap's own.
fn write_exported_names(crate_dir: &Path, out_dir: &Path) {
    let mut names = std::collections::BTreeSet::new();
    for header in [
        out_dir.join("pyheap.h"),
        crate_dir.join("include/pyheap_inline.h"),
    ] {
        let text = fs::read_to_string(&header).expect("read a header");
        let bytes = text.as_bytes();
        for (i, _) in text.match_indices('(') {
            let start = bytes[..i]
                .iter()
                .rposition(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
                .map_or(0, |p| p + 1);
            let word = &text[start..i];
            if word.starts_with("Py") || word.starts_with("_Py") {
                names.insert(word.to_string());
            }
        }
    }
    let mut code = String::from(
        "/// pyheap's C API function names, sorted.\npub static EXPORTED: &[&str] = &[\n",
    );
    for n in names {
        writeln!(code, "    {n:?},").expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    fs::write(out_dir.join("exported_names.rs"), code).expect("write exported_names.rs");
}

/// One test function per C file and allocator mode, so `cargo test
/// c_alloc_basic` runs one program. By default a file runs in the default
/// mode (`c_<name>`) and under the debug allocator (`c_<name>_debug`, with
/// `PYHEAP_MALLOC=debug`); `// pyheap-test: pool-only` keeps a test of the
/// pool heap itself to the default mode, and `// pyheap-test: modes A B`
/// runs it in exactly the modes listed (`c_<name>_<mode>`; `pymalloc` is
/// the plain `c_<name>`). Files that ask for it (`// pyheap-test: cpython`)
/// get one more test that builds them against CPython 3.11 instead.
fn write_c_test_list(crate_dir: &Path, out_dir: &Path) {
    let dir = crate_dir.join("c_tests");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "c"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut code = String::new();
    for name in &names {
        let ident: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let source = fs::read_to_string(dir.join(format!("{name}.c"))).unwrap_or_default();
        let directive = |word: &str| {
            source.lines().find_map(|l| {
                let rest = l.trim().strip_prefix("// pyheap-test:")?.trim();
                let (w, arg) = rest.split_once(' ').unwrap_or((rest, ""));
                (w == word).then(|| arg.trim().to_string())
            })
        };
        let modes: Vec<String> = match directive("modes") {
            Some(list) => list.split_whitespace().map(String::from).collect(),
            None if directive("pool-only").is_some() => vec!["pymalloc".into()],
            None => vec!["pymalloc".into(), "debug".into()],
        };
        for mode in &modes {
            let (suffix, arg) = if mode == "pymalloc" {
                (String::new(), "None".to_string())
            } else {
                (format!("_{mode}"), format!("Some({mode:?})"))
            };
            writeln!(
                code,
                "#[test]\nfn c_{ident}{suffix}() {{ crate::run_c_test({name:?}, false, {arg}); }}\n"
            )
            .expect("writing to a String cannot fail");
        }
        if directive("cpython").is_some() {
            writeln!(
                code,
                "#[test]\nfn c_{ident}_cpython() {{ crate::run_c_test({name:?}, true, None); }}\n"
            )
            .expect("writing to a String cannot fail");
        }
    }
    fs::write(out_dir.join("c_tests_list.rs"), code).expect("write c_tests_list.rs");
}
