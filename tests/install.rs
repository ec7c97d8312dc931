//! `make install` into a temporary prefix, then a program built against the
//! installed files the usual ways: pkg-config (shared, and `-static`), and
//! CMake's `find_package(pyheap)` when cmake is installed.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const PROGRAM: &str = r#"#include <pyheap.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    void *p = PyObject_Malloc(24);
    int ok = p != NULL && strcmp(PyHeap_Version(), "0.0.0") != 0;
    PyObject_Free(p);
    printf("pyheap %s %s\n", PyHeap_Version(), ok ? "works" : "fails");
    return ok ? 0 : 1;
}
"#;

/// The report tool `cargo test` built, if it did (bins are copied up to
/// the profile directory; the libraries of this run are in `lib_dir()`).
fn tool() -> PathBuf {
    let libs = lib_dir();
    let profile = if libs.ends_with("deps") {
        libs.parent().expect("profile dir").to_path_buf()
    } else {
        libs
    };
    profile.join("pyheap")
}

fn install(prefix: &Path) {
    let _ = fs::remove_dir_all(prefix);
    let mut make = Command::new("make");
    make.current_dir(root())
        .arg("install")
        .arg("NO_BUILD=1")
        .arg(format!("OUT={}", lib_dir().display()))
        .arg(format!("TOOL={}", tool().display()))
        .arg(format!("PREFIX={}", prefix.display()));
    run_ok(&mut make, "make install");
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = run_ok(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .args(args)
            .arg("pyheap"),
        "pkg-config",
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn run_program(exe: &Path) -> String {
    let out = run_ok(&mut Command::new(exe), "the installed-library program");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn make_install_then_pkg_config_and_cmake() {
    if Command::new("make").arg("--version").output().is_err()
        || Command::new("pkg-config")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("skipped: make or pkg-config not installed");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install");
    let prefix = dir.join("prefix");
    install(&prefix);

    // The files, and the shared library's links.
    let version = env!("CARGO_PKG_VERSION");
    for f in [
        format!("lib/libpyheap.so.{version}"),
        "lib/libpyheap.so.0".into(),
        "lib/libpyheap.so".into(),
        "lib/libpyheap.a".into(),
        "include/pyheap/pyheap.h".into(),
        "include/pyheap/pyheap_inline.h".into(),
        "include/pyheap/structmember.h".into(),
        "lib/pkgconfig/pyheap.pc".into(),
        "lib/cmake/pyheap/pyheapConfig.cmake".into(),
        "lib/cmake/pyheap/pyheapConfigVersion.cmake".into(),
    ] {
        assert!(prefix.join(&f).exists(), "{f} not installed");
    }
    assert_eq!(
        fs::read_link(prefix.join("lib/libpyheap.so.0")).unwrap(),
        PathBuf::from(format!("libpyheap.so.{version}"))
    );
    if tool().exists() {
        let tool = prefix.join("bin/pyheap");
        let help = run_ok(Command::new(&tool).arg("--help"), "pyheap --help");
        assert!(String::from_utf8_lossy(&help.stdout).contains("snapshot"));
    }
    assert_eq!(pkg_config(&prefix, &["--modversion"]), [version]);

    let src = dir.join("main.c");
    fs::write(&src, PROGRAM).unwrap();

    // Shared, with pkg-config's flags.
    let exe = dir.join("with_pkg_config");
    let mut cc = c_compiler(false);
    cc.arg(&src)
        .args(pkg_config(&prefix, &["--cflags", "--libs"]))
        .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
        .arg("-o")
        .arg(&exe);
    run_ok(&mut cc, "cc $(pkg-config --cflags --libs pyheap)");
    assert_eq!(run_program(&exe), format!("pyheap {version} works\n"));

    // Wholly static, with --static's private libraries.
    let exe = dir.join("static");
    let mut cc = c_compiler(false);
    cc.arg("-static")
        .arg(&src)
        .args(pkg_config(&prefix, &["--static", "--cflags", "--libs"]))
        .arg("-o")
        .arg(&exe);
    run_ok(
        &mut cc,
        "cc -static $(pkg-config --static --cflags --libs pyheap)",
    );
    assert_eq!(run_program(&exe), format!("pyheap {version} works\n"));

    // CMake.
    if Command::new("cmake").arg("--version").output().is_err() {
        eprintln!("cmake not installed: find_package(pyheap) not tried");
        return;
    }
    let project = dir.join("cmake_project");
    let build = dir.join("cmake_build");
    let _ = fs::remove_dir_all(&build);
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("main.c"), PROGRAM).unwrap();
    fs::write(
        project.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.13)\nproject(uses_pyheap C)\n\
             find_package(pyheap {version} REQUIRED)\n\
             add_executable(shared main.c)\ntarget_link_libraries(shared pyheap::pyheap)\n\
             add_executable(static main.c)\ntarget_link_libraries(static pyheap::pyheap_static)\n"
        ),
    )
    .unwrap();
    run_ok(
        Command::new("cmake")
            .arg("-S")
            .arg(&project)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())),
        "cmake configure",
    );
    run_ok(
        Command::new("cmake").arg("--build").arg(&build),
        "cmake --build",
    );
    for exe in ["shared", "static"] {
        assert_eq!(
            run_program(&build.join(exe)),
            format!("pyheap {version} works\n")
        );
    }
}
