//! Snapshots of the traces, with names: statistics grouped by file, line or
//! whole traceback, comparison of two snapshots, dump and load, and output
//! as text (tracemalloc's line format), JSON or collapsed stacks.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::frames::{self, Frame, NamedFrame};
use crate::error::Error;

/// One trace of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapTrace {
    /// Trace domain (0 for pyheap's own blocks).
    pub domain: u32,
    /// Bytes.
    pub size: usize,
    /// Index into the snapshot's tracebacks.
    pub traceback: u32,
}

/// A snapshot: named tracebacks (pyheap's own frames cut, at most
/// `traceback_limit` frames, most recent first) and the traces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Frames per traceback when it was taken.
    pub traceback_limit: usize,
    /// The tracebacks.
    pub tracebacks: Vec<Vec<NamedFrame>>,
    /// The traces.
    pub traces: Vec<SnapTrace>,
}

/// How statistics are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// By the most recent frame's file.
    Filename,
    /// By the most recent frame's file and line.
    Lineno,
    /// By the whole traceback.
    Traceback,
}

impl KeyType {
    /// CPython's key names.
    pub fn parse(s: &str) -> Result<KeyType, Error> {
        match s {
            "filename" => Ok(KeyType::Filename),
            "lineno" => Ok(KeyType::Lineno),
            "traceback" => Ok(KeyType::Traceback),
            _ => Err(Error::Value(format!("unknown key_type: '{s}'"))),
        }
    }
}

/// One line of statistics (or of a comparison, with the differences).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistic {
    /// The group's traceback (one frame unless grouped by traceback).
    pub traceback: Vec<NamedFrame>,
    /// Bytes and blocks.
    pub size: usize,
    pub count: usize,
    /// Change since the older snapshot (0 for plain statistics).
    pub size_diff: isize,
    pub count_diff: isize,
}

fn unknown_frame() -> NamedFrame {
    NamedFrame {
        filename: "<unknown>".into(),
        lineno: 0,
        function: String::new(),
    }
}

/// Takes a snapshot of the tracer's tables (an error if not tracing).
pub fn take() -> Result<Snapshot, Error> {
    let (limit, traces, raw, names) = {
        let g = super::tables();
        let Some(t) = g.as_ref() else {
            return Err(Error::Runtime(
                "the tracemalloc module must be tracing memory allocations to take a snapshot"
                    .into(),
            ));
        };
        let traces: Vec<(u32, usize, u32)> = t
            .traces
            .iter()
            .map(|(&(d, _), tr)| (d, tr.size, tr.traceback))
            .collect();
        let raw: Vec<Arc<[Frame]>> = t.tracebacks.clone();
        let names: Vec<String> = t.names.all().to_vec();
        (t.nframe, traces, raw, names)
    };
    // Only the tracebacks in use are named.
    let mut used = vec![false; raw.len()];
    for &(_, _, tb) in &traces {
        used[tb as usize] = true;
    }
    let addrs: Vec<usize> = raw
        .iter()
        .zip(&used)
        .filter(|(_, u)| **u)
        .flat_map(|(tb, _)| tb.iter())
        .filter_map(|f| match f {
            Frame::Native(a) => Some(*a),
            Frame::Script(..) => None,
        })
        .collect();
    let named_addrs = frames::symbolize(&addrs);
    let mut snap = Snapshot {
        traceback_limit: limit,
        ..Default::default()
    };
    let mut ids: HashMap<Vec<NamedFrame>, u32> = HashMap::new();
    let mut remap: Vec<u32> = vec![u32::MAX; raw.len()];
    for (i, tb) in raw.iter().enumerate() {
        if !used[i] {
            continue;
        }
        let named = name_traceback(tb, &named_addrs, &names, limit);
        let id = *ids.entry(named.clone()).or_insert_with(|| {
            snap.tracebacks.push(named);
            (snap.tracebacks.len() - 1) as u32
        });
        remap[i] = id;
    }
    snap.traces = traces
        .into_iter()
        .map(|(domain, size, tb)| SnapTrace {
            domain,
            size,
            traceback: remap[tb as usize],
        })
        .collect();
    Ok(snap)
}

/// A recorded traceback with names: provider frames as given, native ones
/// symbolised, pyheap's own frames cut from the front, `limit` kept.
pub fn name_traceback(
    tb: &[Frame],
    named: &HashMap<usize, Vec<NamedFrame>>,
    names: &[String],
    limit: usize,
) -> Vec<NamedFrame> {
    let mut out = Vec::new();
    // pyheap's own frames head the native part (provider frames, if any,
    // come before it).
    let mut leading = true;
    for f in tb {
        match *f {
            Frame::Script(id, line) => {
                out.push(NamedFrame {
                    filename: names
                        .get(id as usize)
                        .cloned()
                        .unwrap_or_else(|| "<unknown>".into()),
                    lineno: line,
                    function: String::new(),
                });
            }
            Frame::Native(a) => {
                for nf in named.get(&a).into_iter().flatten() {
                    if leading && frames::is_own_frame(nf, EXPORTED) {
                        continue;
                    }
                    leading = false;
                    out.push(nf.clone());
                }
            }
        }
        if out.len() >= limit {
            break;
        }
    }
    out.truncate(limit);
    if out.is_empty() {
        out.push(unknown_frame());
    }
    out
}

/// Names several recorded tracebacks at once (one `addr2line` run per
/// module for all of them), with the tracer's provider names, at most
/// `limit` frames each (None: the tracer's limit).
pub fn name_all(tbs: &[&[Frame]], limit: Option<usize>) -> Vec<Vec<NamedFrame>> {
    let addrs: Vec<usize> = tbs
        .iter()
        .flat_map(|tb| tb.iter())
        .filter_map(|f| match f {
            Frame::Native(a) => Some(*a),
            Frame::Script(..) => None,
        })
        .collect();
    let named = frames::symbolize(&addrs);
    let (names, tracer_limit) = {
        let g = super::tables();
        g.as_ref()
            .map_or((Vec::new(), 1), |t| (t.names.all().to_vec(), t.nframe))
    };
    let limit = limit.unwrap_or(tracer_limit);
    tbs.iter()
        .map(|tb| name_traceback(tb, &named, &names, limit))
        .collect()
}

include!(concat!(env!("OUT_DIR"), "/exported_names.rs"));

impl Snapshot {
    /// Sum of the traces' sizes and their number.
    pub fn totals(&self) -> (usize, usize) {
        (self.traces.iter().map(|t| t.size).sum(), self.traces.len())
    }

    /// `(size, count)` per group key.
    fn group_by(
        &self,
        key: KeyType,
        cumulative: bool,
    ) -> Result<HashMap<Vec<NamedFrame>, (usize, usize)>, Error> {
        if cumulative && key == KeyType::Traceback {
            return Err(Error::Value(
                "cumulative mode cannot by used with key type 'traceback'".into(),
            ));
        }
        let key_of = |f: &NamedFrame| match key {
            KeyType::Filename => NamedFrame {
                filename: f.filename.clone(),
                lineno: 0,
                function: String::new(),
            },
            _ => f.clone(),
        };
        let mut groups: HashMap<Vec<NamedFrame>, (usize, usize)> = HashMap::new();
        for t in &self.traces {
            let tb = &self.tracebacks[t.traceback as usize];
            if cumulative {
                for f in tb {
                    let e = groups.entry(vec![key_of(f)]).or_default();
                    e.0 += t.size;
                    e.1 += 1;
                }
            } else {
                let k = match key {
                    KeyType::Traceback => tb.clone(),
                    _ => vec![key_of(&tb[0])],
                };
                let e = groups.entry(k).or_default();
                e.0 += t.size;
                e.1 += 1;
            }
        }
        Ok(groups)
    }

    /// `Snapshot.statistics(key_type, cumulative)`: biggest first.
    pub fn statistics(&self, key: KeyType, cumulative: bool) -> Result<Vec<Statistic>, Error> {
        let mut stats: Vec<Statistic> = self
            .group_by(key, cumulative)?
            .into_iter()
            .map(|(traceback, (size, count))| Statistic {
                traceback,
                size,
                count,
                size_diff: 0,
                count_diff: 0,
            })
            .collect();
        stats.sort_by(|a, b| {
            (b.size, b.count)
                .cmp(&(a.size, a.count))
                .then_with(|| oldest_first(b).cmp(oldest_first(a)))
        });
        Ok(stats)
    }

    /// `Snapshot.compare_to(old, key_type, cumulative)`: biggest change
    /// first.
    pub fn compare_to(
        &self,
        old: &Snapshot,
        key: KeyType,
        cumulative: bool,
    ) -> Result<Vec<Statistic>, Error> {
        let new_g = self.group_by(key, cumulative)?;
        let mut old_g = old.group_by(key, cumulative)?;
        let mut stats = Vec::new();
        for (tb, (size, count)) in new_g {
            let (os, oc) = old_g.remove(&tb).unwrap_or((0, 0));
            stats.push(Statistic {
                traceback: tb,
                size,
                count,
                size_diff: size as isize - os as isize,
                count_diff: count as isize - oc as isize,
            });
        }
        for (tb, (os, oc)) in old_g {
            stats.push(Statistic {
                traceback: tb,
                size: 0,
                count: 0,
                size_diff: -(os as isize),
                count_diff: -(oc as isize),
            });
        }
        stats.sort_by(|a, b| {
            (
                b.size_diff.unsigned_abs(),
                b.size,
                b.count_diff.unsigned_abs(),
                b.count,
            )
                .cmp(&(
                    a.size_diff.unsigned_abs(),
                    a.size,
                    a.count_diff.unsigned_abs(),
                    a.count,
                ))
                .then_with(|| oldest_first(b).cmp(oldest_first(a)))
        });
        Ok(stats)
    }

    /// The snapshot as text that [`Snapshot::parse`] reads back.
    pub fn dump(&self) -> String {
        let mut s = String::from("pyheap-snapshot 1\n");
        let _ = writeln!(s, "limit {}", self.traceback_limit);
        for (i, tb) in self.tracebacks.iter().enumerate() {
            let _ = writeln!(s, "tb {i} {}", tb.len());
            for f in tb {
                let _ = writeln!(
                    s,
                    "f {} {}\t{}",
                    f.lineno,
                    escape(&f.filename),
                    escape(&f.function)
                );
            }
        }
        for t in &self.traces {
            let _ = writeln!(s, "t {} {} {}", t.domain, t.size, t.traceback);
        }
        s
    }

    /// Reads what [`Snapshot::dump`] wrote.
    pub fn parse(text: &str) -> Result<Snapshot, Error> {
        let bad = |what: &str| Error::Value(format!("not a pyheap snapshot: {what}"));
        let mut lines = text.lines();
        if lines.next() != Some("pyheap-snapshot 1") {
            return Err(bad("bad first line"));
        }
        let mut snap = Snapshot::default();
        for line in lines {
            let (tag, rest) = line.split_once(' ').ok_or_else(|| bad(line))?;
            match tag {
                "limit" => snap.traceback_limit = rest.parse().map_err(|_| bad(line))?,
                "tb" => snap.tracebacks.push(Vec::new()),
                "f" => {
                    let (lineno, names) = rest.split_once(' ').ok_or_else(|| bad(line))?;
                    let (file, func) = names.split_once('\t').ok_or_else(|| bad(line))?;
                    let tb = snap.tracebacks.last_mut().ok_or_else(|| bad(line))?;
                    tb.push(NamedFrame {
                        filename: unescape(file),
                        lineno: lineno.parse().map_err(|_| bad(line))?,
                        function: unescape(func),
                    });
                }
                "t" => {
                    let v: Vec<&str> = rest.split(' ').collect();
                    if v.len() != 3 {
                        return Err(bad(line));
                    }
                    let t = SnapTrace {
                        domain: v[0].parse().map_err(|_| bad(line))?,
                        size: v[1].parse().map_err(|_| bad(line))?,
                        traceback: v[2].parse().map_err(|_| bad(line))?,
                    };
                    if t.traceback as usize >= snap.tracebacks.len() {
                        return Err(bad(line));
                    }
                    snap.traces.push(t);
                }
                _ => return Err(bad(line)),
            }
        }
        if snap.tracebacks.iter().any(Vec::is_empty) {
            return Err(bad("a traceback without frames"));
        }
        Ok(snap)
    }
}

/// A statistic's frames oldest first: CPython orders ties by its
/// `Traceback`, which holds them that way.
fn oldest_first(s: &Statistic) -> impl Iterator<Item = &NamedFrame> {
    s.traceback.iter().rev()
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// tracemalloc's `_format_size`.
pub fn format_size(size: f64, sign: bool) -> String {
    let mut size = size;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if size.abs() < 100.0 && unit != "B" {
            return if sign {
                format!("{size:+.1} {unit}")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        if size.abs() < 10.0 * 1024.0 || unit == "TiB" {
            return if sign {
                format!("{size:+.0} {unit}")
            } else {
                format!("{size:.0} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("TiB ends the loop")
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// tracemalloc's lines: `file:line: size=1.2 KiB, count=3, average=400 B`.
    Text,
    /// One JSON object.
    Json,
    /// Collapsed stacks (`outer;...;inner bytes`), for flame graphs.
    Collapsed,
}

fn frame_label(f: &NamedFrame) -> String {
    format!("{}:{}", f.filename, f.lineno)
}

/// A statistic as tracemalloc prints it (`diff`: a comparison's line).
/// Like CPython's `Traceback.__str__`, it names the oldest frame (the only
/// one unless grouped by traceback).
pub fn statistic_line(s: &Statistic, diff: bool) -> String {
    let oldest = s.traceback.last().expect("a traceback has a frame");
    let mut line = format!(
        "{}: size={}",
        frame_label(oldest),
        format_size(s.size as f64, false)
    );
    if diff {
        let _ = write!(line, " ({})", format_size(s.size_diff as f64, true));
    }
    let _ = write!(line, ", count={}", s.count);
    if diff {
        let _ = write!(line, " ({:+})", s.count_diff);
    }
    if s.count > 0 {
        let _ = write!(
            line,
            ", average={}",
            format_size(s.size as f64 / s.count as f64, false)
        );
    }
    line
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The report of `new` (or of its comparison with `old`) grouped by `key`,
/// in `format`, the first `limit` groups (0: all). Collapsed stacks are
/// always whole tracebacks, never cumulative, whatever `key` says.
pub fn report(
    new: &Snapshot,
    old: Option<&Snapshot>,
    key: KeyType,
    cumulative: bool,
    format: Format,
    limit: usize,
) -> Result<String, Error> {
    let (key, cumulative) = if format == Format::Collapsed {
        (KeyType::Traceback, false)
    } else {
        (key, cumulative)
    };
    let stats = match old {
        None => new.statistics(key, cumulative)?,
        Some(old) => new.compare_to(old, key, cumulative)?,
    };
    let mut out = String::new();
    write_statistics(&mut out, &stats, old.is_some(), format, limit);
    Ok(out)
}

/// Writes statistics (or a comparison's, with `diff`) in `format`, at
/// most `limit` of them (0: all). Collapsed stacks want whole tracebacks:
/// group by traceback for them.
pub fn write_statistics(
    out: &mut String,
    stats: &[Statistic],
    diff: bool,
    format: Format,
    limit: usize,
) {
    let n = if limit == 0 {
        stats.len()
    } else {
        limit.min(stats.len())
    };
    match format {
        Format::Text => {
            for s in &stats[..n] {
                out.push_str(&statistic_line(s, diff));
                out.push('\n');
                if s.traceback.len() > 1 {
                    // Oldest first, as `Traceback.format()`.
                    for f in s.traceback.iter().rev() {
                        let _ = writeln!(out, "    {}", frame_text(f));
                    }
                }
            }
        }
        Format::Json => {
            out.push_str("{\"statistics\": [");
            for (i, s) in stats[..n].iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{{\"size\": {}, \"count\": {}", s.size, s.count);
                if diff {
                    let _ = write!(
                        out,
                        ", \"size_diff\": {}, \"count_diff\": {}",
                        s.size_diff, s.count_diff
                    );
                }
                out.push_str(", \"traceback\": [");
                for (j, f) in s.traceback.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(
                        out,
                        "{{\"filename\": {}, \"lineno\": {}, \"function\": {}}}",
                        json_str(&f.filename),
                        f.lineno,
                        json_str(&f.function)
                    );
                }
                out.push_str("]}");
            }
            out.push_str("]}\n");
        }
        Format::Collapsed => {
            for s in &stats[..n] {
                let stack: Vec<String> = s
                    .traceback
                    .iter()
                    .rev()
                    .map(|f| {
                        let label = if f.function.is_empty() {
                            frame_label(f)
                        } else {
                            format!("{} ({})", f.function, frame_label(f))
                        };
                        label.replace(';', ":")
                    })
                    .collect();
                let value = if diff {
                    s.size_diff.max(0) as usize
                } else {
                    s.size
                };
                let _ = writeln!(out, "{} {}", stack.join(";"), value);
            }
        }
    }
}

/// `  File "x.c", line 12, in main`-style text of a frame (tracemalloc's
/// traceback format, with the function when known).
pub fn frame_text(f: &NamedFrame) -> String {
    if f.function.is_empty() {
        format!("File \"{}\", line {}", f.filename, f.lineno)
    } else {
        format!(
            "File \"{}\", line {}, in {}",
            f.filename, f.lineno, f.function
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nf(file: &str, line: u32) -> NamedFrame {
        NamedFrame {
            filename: file.into(),
            lineno: line,
            function: "f".into(),
        }
    }

    fn sample() -> Snapshot {
        Snapshot {
            traceback_limit: 2,
            tracebacks: vec![
                vec![nf("a.c", 1), nf("main.c", 9)],
                vec![nf("a.c", 2), nf("main.c", 9)],
                vec![nf("b.c", 5), nf("a.c", 1)],
            ],
            traces: vec![
                SnapTrace {
                    domain: 0,
                    size: 100,
                    traceback: 0,
                },
                SnapTrace {
                    domain: 0,
                    size: 100,
                    traceback: 0,
                },
                SnapTrace {
                    domain: 0,
                    size: 50,
                    traceback: 1,
                },
                SnapTrace {
                    domain: 7,
                    size: 1000,
                    traceback: 2,
                },
            ],
        }
    }

    #[test]
    fn groups_by_line_file_traceback() {
        let s = sample();
        let by_line = s.statistics(KeyType::Lineno, false).unwrap();
        assert_eq!(by_line[0].traceback, vec![nf("b.c", 5)]);
        assert_eq!((by_line[1].size, by_line[1].count), (200, 2));
        let by_file = s.statistics(KeyType::Filename, false).unwrap();
        assert_eq!(by_file.len(), 2);
        assert_eq!((by_file[1].size, by_file[1].count), (250, 3));
        assert_eq!(by_file[1].traceback[0].lineno, 0);
        let cum = s.statistics(KeyType::Filename, true).unwrap();
        let a = cum
            .iter()
            .find(|x| x.traceback[0].filename == "a.c")
            .unwrap();
        assert_eq!((a.size, a.count), (1250, 4));
        assert!(s.statistics(KeyType::Traceback, true).is_err());
        assert_eq!(s.statistics(KeyType::Traceback, false).unwrap().len(), 3);
    }

    #[test]
    fn compare_and_round_trip() {
        let old = sample();
        let mut new = sample();
        new.traces.push(SnapTrace {
            domain: 0,
            size: 300,
            traceback: 1,
        });
        let d = new.compare_to(&old, KeyType::Lineno, false).unwrap();
        // The biggest change first, then the biggest size.
        assert_eq!(d[0].traceback[0], nf("a.c", 2));
        assert_eq!((d[0].size_diff, d[0].count_diff), (300, 1));
        assert_eq!((d[0].size, d[0].count), (350, 2));
        assert_eq!(d[1].traceback[0], nf("b.c", 5));
        assert_eq!(d[1].size_diff, 0);
        let text = new.dump();
        assert_eq!(Snapshot::parse(&text).unwrap(), new);
        assert!(Snapshot::parse("nonsense").is_err());
    }

    #[test]
    fn sizes_format_like_tracemalloc() {
        assert_eq!(format_size(0.0, false), "0 B");
        assert_eq!(format_size(10239.0, false), "10239 B");
        assert_eq!(format_size(10240.0, false), "10.0 KiB");
        assert_eq!(format_size(-2048.0 * 1024.0, true), "-2048 KiB");
        assert_eq!(format_size(141.5, false), "142 B");
        let s = Statistic {
            traceback: vec![nf("x.c", 3)],
            size: 141_312,
            count: 1001,
            size_diff: 0,
            count_diff: 0,
        };
        assert_eq!(
            statistic_line(&s, false),
            "x.c:3: size=138 KiB, count=1001, average=141 B"
        );
    }
}
