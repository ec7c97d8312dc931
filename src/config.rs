//! Configuration in one place: the allocator mode, the collector's
//! thresholds and debug flags, where reports go, statistics at exit, the
//! number of frames tracing records and the leak report.
//!
//! Sources, each overriding the ones before it: the defaults;
//! `PYHEAP_CONF="key:value,..."`; the individual variables (`PYHEAP_MALLOC`,
//! `PYHEAP_GC_THRESHOLD`, `PYHEAP_GC_DEBUG`, `PYHEAP_LOG_FILE`,
//! `PYHEAP_MALLOCSTATS`, `PYHEAP_TRACEMALLOC`, `PYHEAP_LEAK_REPORT`,
//! `PYHEAP_ABORT_ON_LEAK`: [`KEYS`]), read when the library is loaded; a `PyHeap_Config` given to `PyHeap_Initialize`; and
//! `PyHeap_SetOption(key, value)` at run time. A bad value is a warning and
//! leaves the setting as it was, except the allocator mode, whose bad value
//! read at load time stops the program (as CPython does for
//! `PYTHONMALLOC`). CPython's own `PYTHON*` variables are never read: pyheap
//! may live inside a CPython process.

use core::ffi::c_int;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::debug::{self, Mode};
use crate::domains::runtime;
use crate::error::Error;
use crate::fatal;

/// Where a setting's current value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Built in.
    Default,
    /// `PYHEAP_CONF`.
    Conf,
    /// Its own environment variable.
    Env,
    /// `PyHeap_Initialize`'s `PyHeap_Config`.
    Init,
    /// `PyHeap_SetOption`.
    Option,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Conf => "PYHEAP_CONF",
            Source::Env => "environment",
            Source::Init => "PyHeap_Initialize",
            Source::Option => "PyHeap_SetOption",
        }
    }
}

/// The keys, with their environment variables.
pub const KEYS: [(&str, &str); 8] = [
    ("malloc", "PYHEAP_MALLOC"),
    ("gc_threshold", "PYHEAP_GC_THRESHOLD"),
    ("gc_debug", "PYHEAP_GC_DEBUG"),
    ("log_file", "PYHEAP_LOG_FILE"),
    ("malloc_stats", "PYHEAP_MALLOCSTATS"),
    ("tracemalloc", "PYHEAP_TRACEMALLOC"),
    ("leak_report", "PYHEAP_LEAK_REPORT"),
    ("abort_on_leak", "PYHEAP_ABORT_ON_LEAK"),
];

/// Where the leak report goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeakReport {
    /// No report.
    Off,
    /// Where every report goes (stderr, the log file, the output callback).
    Output,
    /// Appended to this file.
    File(String),
}

/// The effective configuration (what is not kept elsewhere: the collector's
/// thresholds and flags live in its state, the mode in the domain tables).
pub struct Config {
    mode: Mode,
    log_file: Option<String>,
    malloc_stats: bool,
    tracemalloc: usize,
    /// The leak report at finalisation or exit.
    pub leak_report: LeakReport,
    /// Leaks at exit make the exit status 1.
    pub abort_on_leak: bool,
    sources: [Source; 8],
}

struct Global(core::cell::UnsafeCell<Config>);

// SAFETY: written at load time and, later, under the runtime lock (the MEM
// and OBJ rule), like the rest of the runtime.
unsafe impl Sync for Global {}

static CONFIG: Global = Global(core::cell::UnsafeCell::new(Config {
    mode: Mode::Pymalloc,
    log_file: None,
    malloc_stats: false,
    tracemalloc: 0,
    leak_report: LeakReport::Off,
    abort_on_leak: false,
    sources: [Source::Default; 8],
}));

/// Descriptor reports go to, or -1 for stderr.
static LOG_FD: AtomicI32 = AtomicI32::new(-1);
static STATS_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// The configuration.
///
/// # Safety
/// Load time, or the runtime lock held; the reference is not kept.
pub unsafe fn config() -> &'static mut Config {
    // SAFETY: caller's contract.
    unsafe { &mut *CONFIG.0.get() }
}

/// The descriptor reports go to (stderr unless `log_file` is set).
pub fn log_fd() -> c_int {
    match LOG_FD.load(Ordering::Relaxed) {
        -1 => 2,
        fd => fd,
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" | "" => Some(false),
        _ => None,
    }
}

fn parse_thresholds(v: &str) -> Option<[isize; 3]> {
    let parts: Vec<&str> = v.split(['/', ',']).map(str::trim).collect();
    if parts.len() != 3 {
        return None;
    }
    let mut out = [0isize; 3];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = p.parse().ok().filter(|&n: &isize| n >= 0)?;
    }
    Some(out)
}

/// Whether the MEM and OBJ domains have handed out anything yet (the
/// allocator mode can only change before).
fn heap_untouched() -> bool {
    // SAFETY: runtime lock held (or load time); read only.
    let rt = unsafe { runtime() };
    rt.heap.counters.arenas_allocated_total == 0 && rt.raw_allocated_blocks == 0
}

/// A setting's value, parsed: what [`set`] applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `malloc`.
    Malloc(Mode),
    /// `gc_threshold`.
    GcThreshold([isize; 3]),
    /// `gc_debug`.
    GcDebug(i32),
    /// `log_file` (None: back to stderr).
    LogFile(Option<String>),
    /// `malloc_stats`.
    MallocStats(bool),
    /// `tracemalloc` (frames; 0 stops).
    Tracemalloc(usize),
    /// `leak_report`.
    LeakReport(LeakReport),
    /// `abort_on_leak`.
    AbortOnLeak(bool),
}

/// Parses `value` for setting `key`, without applying it (no side effect:
/// the text of `PYHEAP_CONF`, the variables and `PyHeap_SetOption` all go
/// through here first). Errors say what was wrong.
pub fn parse_value(key: &str, value: &str) -> Result<Value, Error> {
    let bad = |what: &str| Err(Error::Value(format!("{key}: {value:?} is not {what}")));
    Ok(match key {
        "malloc" => match Mode::parse(value.as_bytes()) {
            Some(m) => Value::Malloc(m),
            None => {
                return bad(
                    "an allocator mode (pymalloc, pymalloc_debug, malloc, malloc_debug or debug)",
                );
            }
        },
        "gc_threshold" => match parse_thresholds(value) {
            Some(t) => Value::GcThreshold(t),
            None => return bad("three thresholds (like 700/10/10)"),
        },
        "gc_debug" => match value.parse::<i32>().ok().filter(|f| *f >= 0) {
            Some(flags) => Value::GcDebug(flags),
            None => return bad("a set of debug flags (a number)"),
        },
        "log_file" if value.is_empty() => Value::LogFile(None),
        "log_file" if value.contains('\0') => {
            return Err(Error::Value("log_file: a NUL in the path".into()));
        }
        "log_file" => Value::LogFile(Some(value.to_string())),
        "malloc_stats" => match parse_bool(value) {
            Some(on) => Value::MallocStats(on),
            None => return bad("0 or 1"),
        },
        "tracemalloc" => match value
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= crate::trace::MAX_NFRAME)
        {
            Some(n) => Value::Tracemalloc(n),
            None => return bad("a number of frames from 0 (off) to 65535"),
        },
        "leak_report" => Value::LeakReport(match parse_bool(value) {
            Some(false) => LeakReport::Off,
            Some(true) => LeakReport::Output,
            None => LeakReport::File(value.to_string()),
        }),
        "abort_on_leak" => match parse_bool(value) {
            Some(on) => Value::AbortOnLeak(on),
            None => return bad("0 or 1"),
        },
        _ => {
            return Err(Error::Value(format!(
                "{key:?} is not a setting (malloc, gc_threshold, gc_debug, log_file, \
                 malloc_stats, tracemalloc, leak_report, abort_on_leak)"
            )));
        }
    })
}

/// Splits `PYHEAP_CONF` text into `(key, value)` pairs: `key:value`
/// separated by commas, blanks around each trimmed, empty entries skipped,
/// a key without `:` given the empty value.
pub fn parse_conf(conf: &str) -> Vec<(String, String)> {
    conf.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// Sets `key` to `value` from `source`. Errors say what was wrong; the
/// setting is then unchanged.
///
/// # Safety
/// Load time, or the runtime lock held.
pub unsafe fn set(key: &str, value: &str, source: Source) -> Result<(), Error> {
    let parsed = parse_value(key, value)?;
    // SAFETY: caller's contract.
    let c = unsafe { config() };
    let slot = KEYS.iter().position(|(k, _)| *k == key);
    match parsed {
        Value::Malloc(m) => {
            if m != c.mode {
                // At load time nothing was allocated yet. Later, only a heap
                // still in the default mode can tell that nothing was
                // allocated from MEM or OBJ (the RAW domain is the caller's
                // business, as with PyMem_SetAllocator).
                let at_load = matches!(source, Source::Conf | Source::Env);
                if crate::trace::is_tracing() {
                    return Err(Error::Value(
                        "malloc: the allocator mode cannot change while tracing".into(),
                    ));
                }
                if !at_load && (c.mode != Mode::Pymalloc || !heap_untouched()) {
                    return Err(Error::Value(format!(
                        "malloc: the allocator mode cannot change once memory was allocated (it is {})",
                        mode_name(c.mode)
                    )));
                }
                // SAFETY: nothing allocated from MEM or OBJ yet.
                unsafe { debug::set_mode(m) };
                c.mode = m;
            }
        }
        Value::GcThreshold(t) => {
            // SAFETY: caller's contract.
            unsafe { runtime() }.gc.threshold = t;
        }
        Value::GcDebug(flags) => {
            // SAFETY: caller's contract.
            unsafe { runtime() }.gc.debug = flags;
        }
        Value::LogFile(None) => {
            LOG_FD.store(-1, Ordering::Relaxed);
            c.log_file = None;
        }
        Value::LogFile(Some(path)) => {
            let cpath = std::ffi::CString::new(path.as_str())
                .map_err(|_| Error::Value("log_file: a NUL in the path".into()))?;
            // SAFETY: a NUL-terminated path; the flags create or append.
            let fd = unsafe {
                libc::open(
                    cpath.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 {
                return Err(Error::Value(format!(
                    "log_file: cannot open {value:?}: {}",
                    std::io::Error::last_os_error()
                )));
            }
            let old = LOG_FD.swap(fd, Ordering::Relaxed);
            if old >= 0 {
                // SAFETY: a descriptor we opened and no longer use.
                unsafe { libc::close(old) };
            }
            c.log_file = Some(path);
        }
        Value::MallocStats(on) => {
            c.malloc_stats = on;
            if on && !STATS_AT_EXIT.swap(true, Ordering::Relaxed) {
                crate::lifecycle::at_exit(stats_at_exit);
            }
        }
        Value::Tracemalloc(n) => {
            // SAFETY: caller's contract (load time or the runtime lock).
            unsafe {
                if n == 0 {
                    crate::trace::stop();
                } else {
                    crate::trace::start(n)?;
                }
            }
            c.tracemalloc = n;
        }
        Value::LeakReport(r) => {
            c.leak_report = r;
            crate::leaks::register_exit_report();
        }
        Value::AbortOnLeak(on) => {
            c.abort_on_leak = on;
            crate::leaks::register_exit_report();
        }
    }
    if let Some(i) = slot {
        c.sources[i] = source;
    }
    Ok(())
}

/// Set when `Py_FinalizeEx` printed the statistics (then the exit handler
/// does not print them again).
static STATS_PRINTED: AtomicBool = AtomicBool::new(false);

/// Records whether the statistics were printed by finalisation.
pub fn stats_printed(yes: bool) {
    STATS_PRINTED.store(yes, Ordering::Relaxed);
}

extern "C" fn stats_at_exit() {
    if STATS_PRINTED.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: at exit, on the thread that ends the program.
    unsafe { print_stats_if_configured() }
}

/// Prints the allocator statistics if `malloc_stats` is on (at exit, or
/// from `Py_FinalizeEx`).
///
/// # Safety
/// Runtime lock held.
pub unsafe fn print_stats_if_configured() {
    // SAFETY: caller's contract.
    if unsafe { config() }.malloc_stats {
        STATS_PRINTED.store(true, Ordering::Relaxed);
        // SAFETY: as above; read only.
        let rt = unsafe { runtime() };
        let mut text = String::new();
        if crate::stats::Report::gather(&rt.heap, rt.raw_allocated_blocks)
            .write_text(&mut text)
            .is_ok()
        {
            fatal::write_report(text.as_bytes());
        }
    }
}

/// What a domain's table is, seen through the tracer (which only records)
/// and the debug hooks (`debug` set, and what they forward to).
#[derive(Clone, Copy, PartialEq, Eq)]
enum TableKind {
    Pool,
    Raw,
    Custom,
}

#[unsafe(link_section = ".text.hot.pyheap")]
fn table_kind(d: crate::domains::PyMemAllocatorDomain) -> (TableKind, bool) {
    use crate::domains::PyMemAllocatorEx;
    use crate::trace::below_tracer;
    // `domains::table` is a plain copy: no reference to the runtime, so
    // this needs no lock (a concurrent PyMem_SetAllocator is the caller's
    // race, as in CPython).
    let (table, debug) = match debug::wrapped_table(d) {
        // The hooks may wrap the tracer, when tracing started first.
        Some(below) => (below_tracer(d, below), true),
        None => (below_tracer(d, crate::domains::table(d)), false),
    };
    let kind = if table.same_as(&PyMemAllocatorEx::POOLED) {
        TableKind::Pool
    } else if table.same_as(&PyMemAllocatorEx::RAW) {
        TableKind::Raw
    } else {
        TableKind::Custom
    };
    (kind, debug)
}

/// The mode the domain tables are in now (hooks may have been installed
/// by `PyMem_SetupDebugHooks` or replaced by `PyMem_SetAllocator` since).
/// As CPython's `_PyMem_GetCurrentAllocatorName`, all three domains must
/// agree: RAW on libc, MEM and OBJ both on the pools (pymalloc) or both on
/// libc (malloc), and either all three under the debug hooks or none.
/// Unlike CPython, tracing does not make the mode custom: the tracer only
/// records, and is looked through.
#[unsafe(link_section = ".text.hot.pyheap")]
fn effective_mode() -> Option<Mode> {
    use crate::domains::PyMemAllocatorDomain::{
        PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ, PYMEM_DOMAIN_RAW,
    };
    let (raw, mem, obj) = (
        table_kind(PYMEM_DOMAIN_RAW),
        table_kind(PYMEM_DOMAIN_MEM),
        table_kind(PYMEM_DOMAIN_OBJ),
    );
    let debug = raw.1;
    if raw.0 != TableKind::Raw || mem != obj || mem.1 != debug {
        return None;
    }
    match (mem.0, debug) {
        (TableKind::Pool, false) => Some(Mode::Pymalloc),
        (TableKind::Pool, true) => Some(Mode::PymallocDebug),
        (TableKind::Raw, false) => Some(Mode::Malloc),
        (TableKind::Raw, true) => Some(Mode::MallocDebug),
        (TableKind::Custom, _) => None,
    }
}

/// The allocator mode in effect as a C string, or None when the tables
/// are not those of one mode ([`effective_mode`]).
#[unsafe(link_section = ".text.hot.pyheap")]
pub fn allocator_name() -> Option<&'static core::ffi::CStr> {
    effective_mode().map(mode_c_name)
}

/// A mode's name as `PYHEAP_MALLOC` spells it, NUL-terminated for C.
fn mode_c_name(m: Mode) -> &'static core::ffi::CStr {
    match m {
        Mode::Pymalloc => c"pymalloc",
        Mode::PymallocDebug => c"pymalloc_debug",
        Mode::Malloc => c"malloc",
        Mode::MallocDebug => c"malloc_debug",
    }
}

fn mode_name(m: Mode) -> &'static str {
    // The names are ASCII, so the conversion cannot fail.
    mode_c_name(m).to_str().unwrap_or("?")
}

/// Prints a warning about a bad setting to where reports go.
pub fn warn(e: &Error, source: Source) {
    let mut msg = fatal::StackBuf::<512>::new();
    let _ = writeln!(
        msg,
        "pyheap: warning: {} ({}); the setting is unchanged",
        e,
        source.name()
    );
    fatal::write_report(msg.as_bytes());
}

/// The effective configuration as text, one `key: value (source)` line each.
pub fn describe() -> String {
    // SAFETY: runtime lock held; read only.
    let (c, rt) = unsafe { (config(), runtime()) };
    let t = rt.gc.threshold;
    let values = [
        effective_mode()
            .map_or("custom (PyMem_SetAllocator)", mode_name)
            .to_string(),
        format!("{}/{}/{}", t[0], t[1], t[2]),
        rt.gc.debug.to_string(),
        c.log_file.clone().unwrap_or_else(|| "(stderr)".into()),
        (c.malloc_stats as u8).to_string(),
        c.tracemalloc.to_string(),
        match &c.leak_report {
            LeakReport::Off => "0".to_string(),
            LeakReport::Output => "1".to_string(),
            LeakReport::File(p) => p.clone(),
        },
        (c.abort_on_leak as u8).to_string(),
    ];
    let mut out = String::new();
    for ((key, _), (value, source)) in KEYS.iter().zip(values.iter().zip(c.sources)) {
        let _ = writeln!(out, "{key}: {value} ({})", source.name());
    }
    out
}

/// What every variable pyheap reads starts with.
const PREFIX: [u8; 7] = *b"PYHEAP_";

/// True if `name` starts with [`PREFIX`] (a `const fn` for the checks).
const fn has_prefix(name: &str) -> bool {
    let b = name.as_bytes();
    if b.len() < PREFIX.len() {
        return false;
    }
    let mut i = 0;
    while i < PREFIX.len() {
        if b[i] != PREFIX[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = {
    let mut i = 0;
    while i < KEYS.len() {
        assert!(has_prefix(KEYS[i].1));
        i += 1;
    }
    assert!(has_prefix("PYHEAP_CONF"));
};

/// True if the C string `s` starts with [`PREFIX`].
///
/// # Safety
/// `s` is a NUL-terminated string.
#[inline(always)]
unsafe fn starts_with_prefix(s: *const core::ffi::c_char) -> bool {
    for (i, &b) in PREFIX.iter().enumerate() {
        // SAFETY: the bytes before this one matched the prefix, which has
        // no NUL, so this one is at most the string's NUL.
        if unsafe { *s.add(i) } as u8 != b {
            return false;
        }
    }
    true
}

/// True if some environment variable's name starts with `PYHEAP_`. A
/// program that sets none skips the reading: the names pyheap looks for
/// are constants in `.rodata`, and reading them would fault in 64 KiB of
/// it (fault-around, allocator.md "Code placement"); this test compares
/// against the prefix's bytes as immediates.
#[unsafe(link_section = ".text.hot.pyheap")]
fn environment_mentions_pyheap() -> bool {
    // SAFETY: load time, before any thread could change the environment;
    // `environ` is null or a null-terminated array of C strings. (Read
    // through a raw pointer: `setenv` may change it, so it is `static mut`.)
    let mut entry = unsafe { (&raw const libc::environ).read() }.cast_const();
    if entry.is_null() {
        return false;
    }
    loop {
        // SAFETY: `entry` is within the array (the loop stops at its null).
        let var = unsafe { *entry };
        if var.is_null() {
            return false;
        }
        // SAFETY: an environment entry is a NUL-terminated string.
        if unsafe { starts_with_prefix(var) } {
            return true;
        }
        // SAFETY: the entry was not the terminating null.
        entry = unsafe { entry.add(1) };
    }
}

/// An environment variable's value (read only once
/// [`environment_mentions_pyheap`] found one of ours, so a program that
/// sets none never runs the allocation and string code below).
fn getenv(name: &str) -> Option<String> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name; the value is copied at once.
    unsafe {
        let v = libc::getenv(c.as_ptr());
        (!v.is_null()).then(|| core::ffi::CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

/// Reads `PYHEAP_CONF` and the individual variables, when the library is
/// loaded. A bad allocator mode ends the program with status 1.
///
/// # Safety
/// Load time: no other thread, no allocation from MEM or OBJ yet.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe fn load_from_environment() {
    if !environment_mentions_pyheap() {
        return;
    }
    let mut settings: Vec<(String, String, Source)> = Vec::new();
    if let Some(conf) = getenv("PYHEAP_CONF") {
        for (k, v) in parse_conf(&conf) {
            settings.push((k, v, Source::Conf));
        }
    }
    for (key, var) in KEYS {
        if let Some(v) = getenv(var) {
            settings.push((key.to_string(), v, Source::Env));
        }
    }
    if settings.is_empty() {
        return;
    }
    // The allocator mode first, whatever its source: tracing wraps the
    // tables the mode installs, and a mode cannot change while tracing.
    settings.sort_by_key(|(k, _, _)| k != "malloc");
    for (key, value, source) in settings {
        // SAFETY: caller's contract.
        if let Err(e) = unsafe { set(&key, &value, source) } {
            if key == "malloc" && Mode::parse(value.as_bytes()).is_none() {
                let mut msg = fatal::StackBuf::<512>::new();
                let _ = writeln!(
                    msg,
                    "pyheap: PYHEAP_MALLOC={value:?} is not an allocator mode \
                     (pymalloc, pymalloc_debug, malloc, malloc_debug or debug)"
                );
                fatal::write_report(msg.as_bytes());
                // SAFETY: ending the process before main, with an error status.
                unsafe { libc::_exit(1) }
            }
            warn(&e, source);
        }
    }
}

/// Runs [`load_from_environment`] when the library is loaded (ELF
/// constructors), before `main`.
#[unsafe(link_section = ".text.hot.pyheap")]
extern "C" fn load_time_init() {
    crate::threads::register_fork_handlers();
    crate::leaks::register_exit_report();
    // SAFETY: load time.
    unsafe { load_from_environment() }
}

#[used]
#[unsafe(link_section = ".init_array")]
static LOAD_TIME_INIT: extern "C" fn() = load_time_init;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        assert_eq!(parse_thresholds("700/10/10"), Some([700, 10, 10]));
        assert_eq!(parse_thresholds("1, 2, 3"), Some([1, 2, 3]));
        assert_eq!(parse_thresholds("1/2"), None);
        assert_eq!(parse_thresholds("1/-2/3"), None);
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("2"), None);
        assert_eq!(
            parse_value("gc_threshold", "1, 2,3"),
            Ok(Value::GcThreshold([1, 2, 3]))
        );
        assert_eq!(
            parse_value("leak_report", "out.txt"),
            Ok(Value::LeakReport(LeakReport::File("out.txt".into())))
        );
        assert!(parse_value("log_file", "a\0b").is_err());
        assert!(parse_value("nope", "1").is_err());
        assert_eq!(
            parse_conf(" malloc : debug ,, gc_debug,x:y:z"),
            [("malloc", "debug"), ("gc_debug", ""), ("x", "y:z")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
