//! Frames: captured as native return addresses (cheap, no allocation
//! through pyheap, no lock of ours), or given by a frame provider (an
//! interpreter's own file:line); symbolised only when a report needs names,
//! by `addr2line` from binutils, batched per module.

use core::ffi::{CStr, c_char, c_int, c_void};
use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// One frame of a traceback, as recorded at allocation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A native return address.
    Native(usize),
    /// A frame from the provider: an interned file name and a line.
    Script(u32, u32),
}

/// A frame with names: what reports print.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedFrame {
    /// Source file ("??" if unknown).
    pub filename: String,
    /// Line (0 if unknown).
    pub lineno: u32,
    /// Function ("??" if unknown; empty for provider frames).
    pub function: String,
}

/// A frame provider's frame, filled in by the provider (CPython's
/// `frame_t`, with a C string for the file name).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyHeap_Frame {
    /// The file name (copied by pyheap; may be NULL for "<unknown>").
    pub filename: *const c_char,
    /// The line number.
    pub lineno: u32,
}

/// A frame provider: fills up to `max` frames, most recent first, and
/// returns how many it filled (0 or less: none). Called on every traced
/// allocation, with the tracer's re-entrancy guard set (allocations it
/// makes are not traced).
pub type PyHeap_FrameProviderFn =
    Option<unsafe extern "C" fn(frames: *mut PyHeap_Frame, max: c_int, ctx: *mut c_void) -> c_int>;

/// Native frames captured beyond the ones asked for, so that pyheap's own
/// frames (the API function, the tracer's hook, the unwinder) can be cut
/// from the front when the traceback is named.
pub(crate) const OWN_FRAMES_MAX: usize = 32;

/// Captures up to `n` native return addresses of the calling thread, most
/// recent first, into `out` (cleared first).
pub fn capture_native(out: &mut Vec<usize>, n: usize) {
    out.clear();
    out.resize(n, 0);
    // SAFETY: `out` has room for n pointers; glibc's backtrace writes at
    // most that many and allocates only through libc's malloc (on its first
    // call, which `warm_up` makes before tracing starts).
    let got = unsafe { libc::backtrace(out.as_mut_ptr().cast(), n as c_int) };
    out.truncate(got.max(0) as usize);
}

/// Makes glibc load its unwinder now, not inside the first traced
/// allocation.
pub fn warm_up() {
    let mut v = Vec::new();
    capture_native(&mut v, 4);
}

/// Interned provider file names.
#[derive(Default)]
pub struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    /// The id of `name`, interning it.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// Every name, by id.
    pub fn all(&self) -> &[String] {
        &self.names
    }

    /// The name of `id`.
    pub fn get(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map_or("<unknown>", String::as_str)
    }

    /// Bytes these tables hold (for `GetTracemallocMemory`).
    pub fn memory(&self) -> usize {
        self.names.iter().map(|n| 2 * n.len() + 48).sum()
    }
}

/// The provider's frames as `Frame::Script`, interning their names.
///
/// # Safety
/// `frames[..n]` were filled by the provider.
pub unsafe fn script_frames(frames: &[PyHeap_Frame], names: &mut Names, out: &mut Vec<Frame>) {
    for f in frames {
        let name = if f.filename.is_null() {
            "<unknown>".into()
        } else {
            // SAFETY: the provider's contract: a NUL-terminated string.
            unsafe { CStr::from_ptr(f.filename) }.to_string_lossy()
        };
        out.push(Frame::Script(names.intern(&name), f.lineno));
    }
}

/// Where a return address lies: the module's path and whether addresses
/// in it are relative to its load address (a shared object or a PIE).
fn module_of(addr: usize) -> Option<(String, usize, bool)> {
    // SAFETY: dladdr only reads the loader's tables; Dl_info is plain data.
    let info = unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(addr as *const c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        info
    };
    let base = info.dli_fbase as usize;
    // SAFETY: a loaded module's ELF header is mapped at its base address.
    let e_type = unsafe { (base as *const u8).add(16).cast::<u16>().read_unaligned() };
    // SAFETY: dli_fname is the loader's NUL-terminated path.
    let mut path = unsafe { CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned();
    if path.is_empty() || !path.contains('/') {
        // The main program: the loader may give its name as run.
        path = std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(path);
    }
    Some((path, base, e_type == 3 /* ET_DYN */))
}

/// Names every address of `addrs` (return addresses: the call is one byte
/// before). Inlined calls give several frames, outermost last.
pub fn symbolize(addrs: &[usize]) -> HashMap<usize, Vec<NamedFrame>> {
    let mut by_module: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    let mut out: HashMap<usize, Vec<NamedFrame>> = HashMap::new();
    for &a in addrs {
        if out.contains_key(&a) {
            continue;
        }
        match module_of(a) {
            Some((path, base, relative)) => {
                let pc = a.saturating_sub(1);
                let key = if relative { pc - base } else { pc };
                by_module.entry(path).or_default().push((a, key));
                out.insert(a, vec![unknown(a)]);
            }
            None => {
                out.insert(a, vec![unknown(a)]);
            }
        }
    }
    for (path, list) in by_module {
        if let Some(named) = addr2line(&path, &list) {
            out.extend(named);
        } else {
            for &(a, _) in &list {
                out.insert(a, vec![dladdr_name(a, &path)]);
            }
        }
    }
    out
}

fn unknown(a: usize) -> NamedFrame {
    NamedFrame {
        filename: "??".into(),
        lineno: 0,
        function: format!("{a:#x}"),
    }
}

/// Without addr2line: the dynamic symbol, if any, and the module.
fn dladdr_name(a: usize, path: &str) -> NamedFrame {
    // SAFETY: as in module_of.
    let sym = unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(a as *const c_void, &mut info) != 0 && !info.dli_sname.is_null() {
            Some(
                CStr::from_ptr(info.dli_sname)
                    .to_string_lossy()
                    .into_owned(),
            )
        } else {
            None
        }
    };
    NamedFrame {
        filename: path.to_string(),
        lineno: 0,
        function: sym.unwrap_or_else(|| format!("{a:#x}")),
    }
}

/// Runs `addr2line -a -f -C -i -e <module>` over the offsets; None if it
/// cannot be run.
fn addr2line(path: &str, list: &[(usize, usize)]) -> Option<HashMap<usize, Vec<NamedFrame>>> {
    let mut child = Command::new("addr2line")
        .args(["-a", "-f", "-C", "-i", "-e", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    {
        let mut stdin = child.stdin.take()?;
        let mut text = String::new();
        for &(_, key) in list {
            text.push_str(&format!("{key:#x}\n"));
        }
        stdin.write_all(text.as_bytes()).ok()?;
    }
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // Groups: an address line ("0x..."), then (function, file:line) pairs.
    let mut groups: Vec<Vec<NamedFrame>> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("0x") {
            groups.push(Vec::new());
            continue;
        }
        let function = line.to_string();
        let location = lines.next().unwrap_or("??:0");
        let (file, lineno) = location.rsplit_once(':').unwrap_or((location, "0"));
        let lineno = lineno
            .split_whitespace()
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if let Some(g) = groups.last_mut() {
            g.push(NamedFrame {
                filename: file.to_string(),
                lineno,
                function: if function == "??" {
                    String::from("??")
                } else {
                    function
                },
            });
        }
    }
    if groups.len() != list.len() {
        return None;
    }
    Some(list.iter().zip(groups).map(|(&(a, _), g)| (a, g)).collect())
}

/// True for a frame of pyheap itself, of Rust's runtime or of the
/// unwinder: the frames cut from the front of a native traceback. A
/// program built with a sanitizer has its runtime's wrapper of
/// `backtrace` on top (GCC's `__interceptor_backtrace`, LLVM's
/// `___interceptor_backtrace`), which is the unwinder's too.
pub fn is_own_frame(f: &NamedFrame, exported: &[&str]) -> bool {
    let n = f.function.as_str();
    n.starts_with("pyheap::")
        || n.starts_with("<pyheap::")
        || n.contains(" as pyheap::")
        || n.starts_with("core::")
        || n.starts_with("<core::")
        || n.starts_with("std::")
        || n.starts_with("<std::")
        || n.starts_with("alloc::")
        || n.starts_with("__rust")
        || n.starts_with("_Unwind_")
        || n.starts_with("__GI_")
        || n == "backtrace"
        || n == "__backtrace"
        || n.starts_with("__interceptor_backtrace")
        || n.starts_with("___interceptor_backtrace")
        || f.filename.ends_with("pyheap_inline.h")
        || exported.binary_search(&n).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn here() -> Vec<usize> {
        let mut v = Vec::new();
        capture_native(&mut v, 8);
        v
    }

    #[test]
    fn captures_and_names_this_test() {
        let addrs = here();
        assert!(addrs.len() >= 2, "{addrs:?}");
        let named = symbolize(&addrs);
        let names: Vec<String> = addrs
            .iter()
            .flat_map(|a| named[a].iter().map(|f| f.function.clone()))
            .collect();
        // addr2line is part of binutils; without it only the module is
        // known, which this test does not cover.
        if names.iter().all(|n| n.starts_with("0x")) {
            eprintln!("addr2line unavailable: {names:?}");
            return;
        }
        assert!(
            names
                .iter()
                .any(|n| n.contains("captures_and_names_this_test")),
            "{names:?}"
        );
    }

    #[test]
    fn sanitizer_wrappers_of_backtrace_are_own_frames() {
        let frame = |function: &str| NamedFrame {
            filename: "sanitizer_common_interceptors.inc".into(),
            lineno: 4277,
            function: function.into(),
        };
        // What GCC 12's AddressSanitizer puts on top (found by
        // scripts/check-tools.sh asan: every traceback began there).
        assert!(is_own_frame(&frame("__interceptor_backtrace.part.0"), &[]));
        assert!(is_own_frame(&frame("__interceptor_backtrace"), &[]));
        assert!(is_own_frame(&frame("___interceptor_backtrace"), &[]));
        assert!(!is_own_frame(&frame("make_thing"), &[]));
    }

    #[test]
    fn names_intern() {
        let mut n = Names::default();
        let a = n.intern("a.lua");
        assert_eq!(n.intern("b.lua"), a + 1);
        assert_eq!(n.intern("a.lua"), a);
        assert_eq!(n.get(a), "a.lua");
    }
}
