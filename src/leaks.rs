//! Leak reports: the objects still alive at finalisation or exit, by type,
//! with where they were allocated when tracing; and leak scopes, which say
//! what a region of code left alive.
//!
//! Type objects are not counted: a program keeps its heap types until it
//! ends, and reporting them would drown the real leaks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::config::{self, LeakReport};
use crate::domains::runtime;
use crate::object::layout::{GC_HEADER_SIZE, PyObject};
use crate::object::{alloc::is_gc, live, types};
use crate::trace::frames::{Frame, NamedFrame};
use crate::trace::snapshot;

/// One group of a report: a type, its objects, and (when tracing) where
/// they were allocated, biggest site first.
#[derive(Debug)]
pub struct TypeLeaks {
    /// `tp_name`.
    pub name: String,
    /// Objects and bytes.
    pub count: usize,
    pub bytes: usize,
    /// Allocation sites: traceback, objects, bytes.
    pub sites: Vec<(Vec<NamedFrame>, usize, usize)>,
    /// Objects whose allocation was not traced.
    pub untraced: usize,
}

/// The block an object lives in.
///
/// # Safety
/// `op` is a live object.
unsafe fn block_of(op: *mut PyObject) -> usize {
    // SAFETY: caller's contract.
    if unsafe { is_gc(op) } {
        op as usize - GC_HEADER_SIZE
    } else {
        op as usize
    }
}

/// True for a type object (not counted as a leak).
///
/// # Safety
/// `op` is a live object.
unsafe fn is_type(op: *mut PyObject) -> bool {
    // SAFETY: caller's contract.
    unsafe { types::is_type_object(op) }
}

/// The live objects (types left out) that `keep` accepts, grouped by type.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn gather(keep: impl Fn(*mut PyObject) -> bool) -> Vec<TypeLeaks> {
    // SAFETY: caller's contract; read only.
    let rt = unsafe { runtime() };
    let tracing = crate::trace::is_tracing();
    // type -> (count, bytes, traceback -> (count, bytes), untraced)
    type Sites = HashMap<usize, (Arc<[Frame]>, usize, usize)>;
    let mut by_type: BTreeMap<usize, (usize, usize, Sites, usize)> = BTreeMap::new();
    live::for_each(rt, |op| {
        // SAFETY: a live object, under the lock.
        if unsafe { is_type(op) } || !keep(op) {
            return;
        }
        // SAFETY: as above.
        let (tp, size) = unsafe { ((*op).ob_type as usize, live::object_size(op)) };
        let e = by_type.entry(tp).or_default();
        e.0 += 1;
        e.1 += size;
        // SAFETY: as above.
        let tb = tracing
            .then(|| crate::trace::traceback_of(unsafe { block_of(op) }))
            .flatten();
        match tb {
            Some(tb) => {
                let s =
                    e.2.entry(Arc::as_ptr(&tb) as *const Frame as usize)
                        .or_insert((tb, 0, 0));
                s.1 += 1;
                s.2 += size;
            }
            None => e.3 += 1,
        }
    });
    // Name every site's frames in one go.
    let all: Vec<&[Frame]> = by_type
        .values()
        .flat_map(|e| e.2.values())
        .map(|(tb, _, _)| &tb[..])
        .collect();
    let named: HashMap<usize, Vec<NamedFrame>> = all
        .iter()
        .map(|tb| tb.as_ptr() as usize)
        .zip(snapshot::name_all(&all, None))
        .collect();
    let mut out: Vec<TypeLeaks> = by_type
        .into_iter()
        .map(|(tp, (count, bytes, sites, untraced))| {
            let mut merged: HashMap<Vec<NamedFrame>, (usize, usize)> = HashMap::new();
            for (tb, n, b) in sites.into_values() {
                let frames = named
                    .get(&(tb.as_ptr() as usize))
                    .cloned()
                    .unwrap_or_default();
                let e = merged.entry(frames).or_default();
                e.0 += n;
                e.1 += b;
            }
            let mut sites: Vec<(Vec<NamedFrame>, usize, usize)> =
                merged.into_iter().map(|(tb, (n, b))| (tb, n, b)).collect();
            sites.sort_by(|a, b| (b.2, b.1, &b.0).cmp(&(a.2, a.1, &a.0)));
            TypeLeaks {
                // SAFETY: a type with live objects is alive.
                name: unsafe { types::type_name(tp as *const _) },
                count,
                bytes,
                sites,
                untraced,
            }
        })
        .collect();
    out.sort_by(|a, b| (b.bytes, b.count, &b.name).cmp(&(a.bytes, a.count, &a.name)));
    out
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The report's text. `what` says when ("at exit", "in this scope").
pub fn write(out: &mut String, leaks: &[TypeLeaks], what: &str) {
    let count: usize = leaks.iter().map(|l| l.count).sum();
    let bytes: usize = leaks.iter().map(|l| l.bytes).sum();
    if count == 0 {
        let _ = writeln!(out, "pyheap: leak report: no objects alive {what}");
        return;
    }
    let _ = writeln!(
        out,
        "pyheap: leak report: {}, {} still alive {what}",
        plural(count, "object"),
        plural(bytes, "byte")
    );
    for l in leaks {
        let _ = writeln!(
            out,
            "  {} ({}): {}",
            plural(l.count, "object"),
            plural(l.bytes, "byte"),
            l.name
        );
        for (tb, n, b) in &l.sites {
            let _ = writeln!(
                out,
                "    {} ({}) allocated at",
                plural(*n, "object"),
                plural(*b, "byte")
            );
            for f in tb {
                let _ = writeln!(out, "      {}", snapshot::frame_text(f));
            }
        }
        if l.untraced > 0 && !l.sites.is_empty() {
            let _ = writeln!(
                out,
                "    {} allocated while not tracing",
                plural(l.untraced, "object")
            );
        }
    }
    if leaks.iter().all(|l| l.sites.is_empty()) {
        let _ = writeln!(
            out,
            "  (run with PYHEAP_TRACEMALLOC=N to see where they were allocated)"
        );
    }
}

/// Set once the report for this run of the runtime was written (by
/// finalisation); the exit handler then only applies `abort_on_leak`.
static REPORTED: AtomicBool = AtomicBool::new(false);
/// Objects the last report found.
static LEAKED: AtomicUsize = AtomicUsize::new(0);
static EXIT_HANDLER: AtomicBool = AtomicBool::new(false);

/// A new run of the runtime (after `Py_Initialize`): report again.
pub fn rearm() {
    REPORTED.store(false, Ordering::Relaxed);
}

/// Registers the exit handler (once). The load-time constructor registers
/// it before `main`, so that it runs after every handler the program and
/// pyheap register later: its `_exit` for `abort_on_leak` skips none.
#[unsafe(link_section = ".text.hot.pyheap")]
pub fn register_exit_report() {
    if !EXIT_HANDLER.swap(true, Ordering::Relaxed) {
        crate::lifecycle::at_exit(report_at_exit);
    }
}

/// Writes the leak report if one is configured and records how many
/// objects leaked (for `abort_on_leak`); called by `Py_FinalizeEx` after
/// its collections, and at exit.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn report(what: &str) {
    // SAFETY: caller's contract.
    let (dest, abort) = unsafe {
        let c = config::config();
        (c.leak_report.clone(), c.abort_on_leak)
    };
    if dest == LeakReport::Off && !abort {
        return;
    }
    REPORTED.store(true, Ordering::Relaxed);
    // SAFETY: caller's contract.
    let leaks = unsafe { gather(|_| true) };
    LEAKED.store(leaks.iter().map(|l| l.count).sum(), Ordering::Relaxed);
    let mut text = String::new();
    write(&mut text, &leaks, what);
    match dest {
        LeakReport::Off => {}
        LeakReport::Output => crate::fatal::write_report(text.as_bytes()),
        LeakReport::File(path) => {
            use std::io::Write as _;
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if let Err(e) = written {
                let msg = format!("pyheap: cannot write the leak report to {path:?}: {e}\n");
                crate::fatal::write_report(msg.as_bytes());
            }
        }
    }
}

/// Set in the child of a `fork()`: the objects it inherited are the
/// parent's to report, not its own.
static FORKED_CHILD: AtomicBool = AtomicBool::new(false);

/// Called in the child after `fork()`.
pub(crate) fn after_fork_child() {
    FORKED_CHILD.store(true, Ordering::Relaxed);
}

#[unsafe(link_section = ".text.hot.pyheap")]
extern "C" fn report_at_exit() {
    if FORKED_CHILD.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: reading settings written under the lock.
    let configured = unsafe {
        let c = config::config();
        c.leak_report != LeakReport::Off || c.abort_on_leak
    };
    if !configured {
        return;
    }
    if !REPORTED.load(Ordering::Relaxed) && !crate::lifecycle::lock_check() {
        crate::fatal::write_report(
            b"pyheap: leak report skipped: the thread calling exit() does not hold the runtime lock\n",
        );
        return;
    }
    if !REPORTED.load(Ordering::Relaxed) {
        // A program that never finalised: collect first, as finalisation
        // would, so that garbage cycles are not reported.
        // SAFETY: this thread holds the lock (or the lock rules are off).
        unsafe {
            for _ in 0..8 {
                if crate::gc::collect::collect_no_fail() == 0 {
                    break;
                }
            }
            report("at exit");
        }
    }
    // SAFETY: reading a flag written under the lock.
    let abort = unsafe { config::config() }.abort_on_leak;
    if abort && LEAKED.load(Ordering::Relaxed) > 0 {
        // SAFETY: flushing stdio, then ending the process with status 1
        // (exit() may not be called from an exit handler).
        unsafe {
            libc::fflush(core::ptr::null_mut());
            libc::_exit(1);
        }
    }
}

/// The live objects (types left out) as a snapshot the report tool reads:
/// one trace per object, its traceback the object's type (as a frame
/// `<type name>` at line 0) above its allocation frames when tracing. So
/// `pyheap stats -k lineno` groups by type, `-k traceback` by type and site.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn live_snapshot() -> snapshot::Snapshot {
    // SAFETY: caller's contract; read only.
    let rt = unsafe { runtime() };
    let tracing = crate::trace::is_tracing();
    // (type name, bytes, allocation traceback)
    type Obj = (String, usize, Option<Arc<[Frame]>>);
    let mut objs: Vec<Obj> = Vec::new();
    live::for_each(rt, |op| {
        // SAFETY: a live object, under the lock.
        unsafe {
            if is_type(op) {
                return;
            }
            let tb = tracing
                .then(|| crate::trace::traceback_of(block_of(op)))
                .flatten();
            objs.push((types::type_name((*op).ob_type), live::object_size(op), tb));
        }
    });
    let traced: Vec<&[Frame]> = objs.iter().filter_map(|o| o.2.as_deref()).collect();
    let mut named = snapshot::name_all(&traced, None).into_iter();
    let limit = crate::trace::traceback_limit();
    let mut snap = snapshot::Snapshot {
        traceback_limit: limit + 1,
        ..Default::default()
    };
    let mut ids: HashMap<Vec<NamedFrame>, u32> = HashMap::new();
    for (name, size, tb) in objs {
        let mut frames = vec![NamedFrame {
            filename: format!("<{name}>"),
            lineno: 0,
            function: String::new(),
        }];
        if tb.is_some() {
            frames.extend(named.next().unwrap_or_default());
        }
        let id = *ids.entry(frames.clone()).or_insert_with(|| {
            snap.tracebacks.push(frames);
            (snap.tracebacks.len() - 1) as u32
        });
        snap.traces.push(snapshot::SnapTrace {
            domain: 0,
            size,
            traceback: id,
        });
    }
    snap
}

/// The live objects when a scope began.
pub struct PyHeap_LeakScope {
    alive: HashSet<usize>,
}

/// Begins a scope: remembers the objects alive now.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn scope_begin() -> PyHeap_LeakScope {
    let mut alive = HashSet::new();
    // SAFETY: caller's contract.
    live::for_each(unsafe { runtime() }, |op| {
        alive.insert(op as usize);
    });
    PyHeap_LeakScope { alive }
}

/// Ends a scope: the objects alive now that were not when it began
/// (types left out), grouped as in the leak report. An object freed in
/// the scope whose address a new one took is not seen.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn scope_end(scope: &PyHeap_LeakScope) -> Vec<TypeLeaks> {
    // SAFETY: caller's contract.
    unsafe { gather(|op| !scope.alive.contains(&(op as usize))) }
}
