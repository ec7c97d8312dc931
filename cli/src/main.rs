//! `pyheap`: reads heap snapshots (`PyHeap_Snapshot_Dump`) and prints
//! statistics, the difference of two snapshots, collapsed stacks for
//! flame-graph tools, or the allocation call graph as Graphviz DOT.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use pyheap::trace::frames::NamedFrame;
use pyheap::trace::snapshot::{self, Format, KeyType, Snapshot};

fn cli() -> Command {
    let key = Arg::new("key")
        .short('k')
        .long("key")
        .value_parser(["lineno", "filename", "traceback"])
        .default_value("lineno")
        .help("group by the most recent frame's line or file, or by whole traceback");
    let cumulative = Arg::new("cumulative")
        .short('c')
        .long("cumulative")
        .action(ArgAction::SetTrue)
        .help("count each block under every frame of its traceback");
    let limit = Arg::new("limit")
        .short('n')
        .long("limit")
        .value_parser(value_parser!(usize))
        .default_value("0")
        .help("print the first N groups only (0: all)");
    let format = Arg::new("format")
        .short('f')
        .long("format")
        .value_parser(["text", "json", "collapsed"])
        .default_value("text")
        .help("tracemalloc's lines, JSON, or collapsed stacks");
    Command::new("pyheap")
        .about("Reports on pyheap heap snapshots (written by PyHeap_Snapshot_Dump)")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("stats")
                .about("Statistics of one snapshot, biggest first")
                .arg(Arg::new("snapshot").required(true))
                .args([
                    key.clone(),
                    cumulative.clone(),
                    limit.clone(),
                    format.clone(),
                ]),
        )
        .subcommand(
            Command::new("diff")
                .about("What changed from OLD to NEW, biggest change first")
                .arg(Arg::new("new").required(true))
                .arg(Arg::new("old").required(true))
                .args([key, cumulative, limit.clone(), format]),
        )
        .subcommand(
            Command::new("collapsed")
                .about("Collapsed stacks (outermost frame first), for flamegraph.pl or speedscope")
                .arg(Arg::new("snapshot").required(true)),
        )
        .subcommand(
            Command::new("dot")
                .about("The allocation call graph as Graphviz DOT, bytes on every node and edge")
                .arg(Arg::new("snapshot").required(true))
                .arg(limit),
        )
}

fn load(path: &str) -> Result<Snapshot, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Snapshot::parse(&text).map_err(|e| format!("{path}: {e}"))
}

fn key_of(m: &ArgMatches) -> Result<KeyType, String> {
    KeyType::parse(m.get_one::<String>("key").map_or("lineno", String::as_str))
        .map_err(|e| e.to_string())
}

fn format_of(m: &ArgMatches) -> Format {
    match m.get_one::<String>("format").map(String::as_str) {
        Some("json") => Format::Json,
        Some("collapsed") => Format::Collapsed,
        _ => Format::Text,
    }
}

fn frame_name(f: &NamedFrame) -> String {
    if f.function.is_empty() {
        format!("{}:{}", f.filename, f.lineno)
    } else {
        format!("{}\\n{}:{}", f.function, f.filename, f.lineno)
    }
}

/// The call graph: a node per frame, an edge per caller → callee, each
/// with the bytes allocated under it; the `limit` biggest tracebacks.
fn dot(snap: &Snapshot, limit: usize) -> Result<String, String> {
    let stats = snap
        .statistics(KeyType::Traceback, false)
        .map_err(|e| e.to_string())?;
    let n = if limit == 0 {
        stats.len()
    } else {
        limit.min(stats.len())
    };
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut node_bytes: Vec<usize> = Vec::new();
    let mut edges: HashMap<(usize, usize), usize> = HashMap::new();
    for s in &stats[..n] {
        let mut prev: Option<usize> = None;
        // Outermost first: each frame calls the next.
        for f in s.traceback.iter().rev() {
            let name = frame_name(f);
            let next = ids.len();
            let id = *ids.entry(name).or_insert(next);
            if id == node_bytes.len() {
                node_bytes.push(0);
            }
            node_bytes[id] += s.size;
            if let Some(p) = prev {
                *edges.entry((p, id)).or_default() += s.size;
            }
            prev = Some(id);
        }
    }
    let mut names: Vec<(&String, &usize)> = ids.iter().collect();
    names.sort_by_key(|(_, id)| **id);
    let mut out = String::from(
        "digraph allocations {\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
    );
    for (name, &id) in names {
        let _ = writeln!(
            out,
            "  f{id} [label=\"{}\\n{}\"];",
            name.replace('"', "\\\""),
            snapshot::format_size(node_bytes[id] as f64, false)
        );
    }
    let mut e: Vec<((usize, usize), usize)> = edges.into_iter().collect();
    e.sort();
    for ((a, b), bytes) in e {
        let _ = writeln!(
            out,
            "  f{a} -> f{b} [label=\"{}\"];",
            snapshot::format_size(bytes as f64, false)
        );
    }
    out.push_str("}\n");
    Ok(out)
}

fn run(m: &ArgMatches) -> Result<String, String> {
    let out = match m.subcommand() {
        Some((which @ ("stats" | "diff"), m)) => {
            let (new, old) = if which == "stats" {
                (
                    load(m.get_one::<String>("snapshot").expect("required"))?,
                    None,
                )
            } else {
                (
                    load(m.get_one::<String>("new").expect("required"))?,
                    Some(load(m.get_one::<String>("old").expect("required"))?),
                )
            };
            snapshot::report(
                &new,
                old.as_ref(),
                key_of(m)?,
                m.get_flag("cumulative"),
                format_of(m),
                *m.get_one::<usize>("limit").expect("default"),
            )
            .map_err(|e| e.to_string())?
        }
        Some(("collapsed", m)) => {
            let snap = load(m.get_one::<String>("snapshot").expect("required"))?;
            snapshot::report(&snap, None, KeyType::Traceback, false, Format::Collapsed, 0)
                .map_err(|e| e.to_string())?
        }
        Some(("dot", m)) => {
            let snap = load(m.get_one::<String>("snapshot").expect("required"))?;
            dot(&snap, *m.get_one::<usize>("limit").expect("default"))?
        }
        _ => unreachable!("a subcommand is required"),
    };
    Ok(out)
}

fn main() -> ExitCode {
    let m = cli().get_matches();
    match run(&m) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pyheap: {e}");
            ExitCode::from(1)
        }
    }
}
