//! The report tool on snapshots written the way `PyHeap_Snapshot_Dump`
//! writes them.

use std::path::PathBuf;
use std::process::Command;

use pyheap::trace::frames::NamedFrame;
use pyheap::trace::snapshot::{SnapTrace, Snapshot};

fn frame(function: &str, file: &str, line: u32) -> NamedFrame {
    NamedFrame {
        filename: file.into(),
        lineno: line,
        function: function.into(),
    }
}

/// Two tracebacks: `make_node` (node.c:10) and `make_buf` (buf.c:20), both
/// called from `main` (main.c:5 and main.c:6).
fn snapshot(nodes: usize, bufs: usize) -> Snapshot {
    let mut s = Snapshot {
        traceback_limit: 2,
        tracebacks: vec![
            vec![frame("make_node", "node.c", 10), frame("main", "main.c", 5)],
            vec![frame("make_buf", "buf.c", 20), frame("main", "main.c", 6)],
        ],
        traces: Vec::new(),
    };
    for _ in 0..nodes {
        s.traces.push(SnapTrace {
            domain: 0,
            size: 48,
            traceback: 0,
        });
    }
    for _ in 0..bufs {
        s.traces.push(SnapTrace {
            domain: 0,
            size: 1000,
            traceback: 1,
        });
    }
    s
}

fn write(name: &str, s: &Snapshot) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    std::fs::write(&path, s.dump()).expect("write a snapshot");
    path
}

fn pyheap(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pyheap"))
        .args(args)
        .output()
        .expect("run pyheap");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stats_prints_tracemalloc_lines_biggest_first() {
    let p = write("stats.snap", &snapshot(100, 3));
    let (ok, out, err) = pyheap(&["stats", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "node.c:10: size=4800 B, count=100, average=48 B",
            "buf.c:20: size=3000 B, count=3, average=1000 B",
        ]
    );
    let (_, by_file, _) = pyheap(&["stats", "-k", "filename", "-c", p.to_str().unwrap()]);
    assert!(
        by_file.contains("main.c:0: size=7800 B, count=103"),
        "{by_file}"
    );
    let (_, json, _) = pyheap(&["stats", "-f", "json", "-n", "1", p.to_str().unwrap()]);
    assert!(
        json.starts_with("{\"statistics\": [{\"size\": 4800, \"count\": 100"),
        "{json}"
    );
    assert!(!json.contains("buf.c"), "limit 1: {json}");
}

#[test]
fn diff_shows_growth() {
    let old = write("old.snap", &snapshot(100, 3));
    let new = write("new.snap", &snapshot(100, 8));
    let (ok, out, err) = pyheap(&["diff", new.to_str().unwrap(), old.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().next(),
        Some("buf.c:20: size=8000 B (+5000 B), count=8 (+5), average=1000 B")
    );
    assert!(out.contains("node.c:10: size=4800 B (+0 B), count=100 (+0), average=48 B"));
}

#[test]
fn collapsed_stacks_and_dot() {
    let p = write("graph.snap", &snapshot(10, 1));
    let (ok, out, _) = pyheap(&["collapsed", p.to_str().unwrap()]);
    assert!(ok);
    assert!(
        out.contains("main (main.c:5);make_node (node.c:10) 480\n"),
        "{out}"
    );
    assert!(
        out.contains("main (main.c:6);make_buf (buf.c:20) 1000\n"),
        "{out}"
    );
    let (ok, dot, _) = pyheap(&["dot", p.to_str().unwrap()]);
    assert!(ok);
    assert!(dot.starts_with("digraph allocations {"), "{dot}");
    // A node per frame, with the bytes allocated under it.
    assert!(dot.contains("main\\nmain.c:5\\n480 B"), "{dot}");
    assert!(dot.contains("make_buf\\nbuf.c:20\\n1000 B"), "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 2, "{dot}");
    if Command::new("dot").arg("-V").output().is_ok() {
        let dot_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("graph.dot");
        std::fs::write(&dot_file, &dot).unwrap();
        let svg = Command::new("dot")
            .args(["-Tsvg", dot_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(svg.status.success());
        assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
    }
}

#[test]
fn bad_input_is_an_error_with_a_message() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let junk = dir.join("junk.snap");
    std::fs::write(&junk, "not a snapshot\n").unwrap();
    let (ok, _, err) = pyheap(&["stats", junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a pyheap snapshot"), "{err}");
    let (ok, _, err) = pyheap(&["stats", "/nonexistent.snap"]);
    assert!(!ok && err.contains("/nonexistent.snap"), "{err}");
    let (ok, _, _) = pyheap(&["stats", "-k", "colour", junk.to_str().unwrap()]);
    assert!(!ok);
}
