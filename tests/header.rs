//! The checked-in header equals cbindgen's output, and both headers compile
//! alone, as C11 and as C++, without a warning.

mod support;

use std::fs;

use support::*;

#[test]
fn checked_in_header_is_current() {
    let generated =
        fs::read_to_string(concat!(env!("OUT_DIR"), "/pyheap.h")).expect("generated header");
    let path = root().join("include/pyheap.h");
    if std::env::var("PYHEAP_BLESS").as_deref() == Ok("1") {
        fs::write(&path, &generated).expect("rewrite include/pyheap.h");
    }
    let checked_in = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/pyheap.h is stale: regenerate it with `PYHEAP_BLESS=1 cargo test --test header`"
    );
}

#[test]
fn version_macros_follow_cargo_toml() {
    let header = fs::read_to_string(root().join("include/pyheap.h")).expect("the header");
    let toml = fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let version = toml
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a version line");
    let parts: Vec<&str> = version.split('.').collect();
    for (name, want) in ["MAJOR", "MINOR", "PATCH"].iter().zip(parts) {
        let line = format!("#define PYHEAP_VERSION_{name} {want}\n");
        assert!(header.contains(&line), "pyheap.h lacks {line:?}");
    }
}

fn compile_alone(header: &str, cplusplus: bool) {
    let dir = out_dir().join("headers");
    fs::create_dir_all(&dir).unwrap();
    let ext = if cplusplus { "cc" } else { "c" };
    let src = dir.join(format!("only_{}.{ext}", header.replace('.', "_")));
    fs::write(&src, format!("#include \"{header}\"\nint pyheap_header_probe(void);\nint pyheap_header_probe(void) {{ return 0; }}\n")).unwrap();
    let mut cc = c_compiler(cplusplus);
    cc.arg(if cplusplus { "-std=c++17" } else { "-std=c11" })
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-c"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(dir.join(format!("only_{}_{ext}.o", header.replace('.', "_"))));
    run_ok(
        &mut cc,
        &format!(
            "compiling {header} alone as {}",
            if cplusplus { "C++" } else { "C11" }
        ),
    );
}

#[test]
fn pyheap_h_compiles_alone_as_c11() {
    compile_alone("pyheap.h", false);
}

#[test]
fn pyheap_h_compiles_alone_as_cplusplus() {
    compile_alone("pyheap.h", true);
}

#[test]
fn pyheap_inline_h_compiles_alone_as_c11() {
    compile_alone("pyheap_inline.h", false);
}

#[test]
fn structmember_h_compiles_alone() {
    compile_alone("structmember.h", false);
    compile_alone("structmember.h", true);
}

#[test]
fn pyheap_inline_h_compiles_alone_as_cplusplus() {
    compile_alone("pyheap_inline.h", true);
}

/// Two translation units that both include the headers link into one
/// program (no definitions that clash).
#[test]
fn two_translation_units_link_together() {
    let dir = out_dir().join("headers");
    fs::create_dir_all(&dir).unwrap();
    let a = dir.join("tu_a.c");
    let b = dir.join("tu_b.c");
    fs::write(&a, "#include \"pyheap.h\"\nvoid *tu_b(void);\nint main(void) { void *p = tu_b(); PyMem_Free(p); return p == NULL; }\n").unwrap();
    fs::write(&b, "#include \"pyheap.h\"\nvoid *tu_b(void);\nvoid *tu_b(void) { return PyMem_New(int, 4); }\n").unwrap();
    let exe = dir.join("two_tus");
    let mut cc = c_compiler(false);
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(&a)
        .arg(&b)
        .arg(lib_dir().join("libpyheap.a"))
        .args(NATIVE_STATIC_LIBS)
        .arg("-o")
        .arg(&exe);
    run_ok(&mut cc, "linking two translation units");
    run_ok(
        &mut std::process::Command::new(&exe),
        "running the two-unit program",
    );
}

/// The shared library records the versioned SONAME `libpyheap.so.0`.
#[test]
fn shared_library_has_a_versioned_soname() {
    let so = std::fs::read(lib_dir().join("libpyheap.so")).expect("read libpyheap.so");
    let needle = b"libpyheap.so.0\0";
    assert!(
        so.windows(needle.len()).any(|w| w == needle),
        "libpyheap.so carries no SONAME libpyheap.so.0"
    );
    if let Ok(out) = std::process::Command::new("readelf")
        .args(["-d"])
        .arg(lib_dir().join("libpyheap.so"))
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert!(text.contains("Library soname: [libpyheap.so.0]"), "{text}");
        }
    }
}
