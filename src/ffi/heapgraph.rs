//! Why an object is alive, and pictures of the heap, from C.

use core::ffi::{CStr, c_char, c_int};

use crate::domains::Py_ssize_t;
use crate::error::{self, Error};
use crate::heapgraph::{self, DotOptions};
use crate::object::layout::PyObject;

fn write_to(out: *mut libc::FILE, text: &str) -> bool {
    // SAFETY: out is an open stream (the callers' contract).
    unsafe { super::write_stream(out, text) }
}

/// Writes why `obj` is alive to `out`: its count and how much of it the
/// heap's references explain, then each object held from outside the heap
/// (a C variable, or a reference leaked by a missing `Py_DECREF`) that
/// keeps it alive, with the chain of references from it to `obj`, and
/// allocation sites when tracing. Returns how many such objects were found
/// (0 for garbage waiting for the collector), or -1 if `obj` is not a live
/// object pyheap allocated, or an argument is NULL.
///
/// # Safety
/// `obj` is a live object; `out` an open stream; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_WhyAlive(obj: *mut PyObject, out: *mut libc::FILE) -> Py_ssize_t {
    if obj.is_null() || out.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_WhyAlive", || {
        let mut text = String::new();
        // SAFETY: caller's contract.
        match unsafe { heapgraph::why_alive(obj, &mut text) } {
            Some(n) if write_to(out, &text) => n as Py_ssize_t,
            Some(_) => -1,
            None => {
                error::set(Error::Value("not a live object of pyheap's".into()));
                -1
            }
        }
    })
}

/// Writes the reference graph around `obj` as Graphviz DOT: objects up to
/// `depth` references away in either direction, at most `max_fanout`
/// references followed per object and direction, only types whose name
/// contains `type_filter` (NULL: all). Each node shows type, address,
/// count, the references from outside the heap and the allocation site
/// when tracing. Returns the number of nodes, or -1.
///
/// # Safety
/// `obj` is a live object; `type_filter` NULL or a NUL-terminated string;
/// `out` an open stream; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_WriteDot(
    obj: *mut PyObject,
    depth: c_int,
    max_fanout: c_int,
    type_filter: *const c_char,
    out: *mut libc::FILE,
) -> Py_ssize_t {
    if obj.is_null() || out.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_WriteDot", || {
        let filter = (!type_filter.is_null()).then(|| {
            // SAFETY: caller's contract: a NUL-terminated string.
            unsafe { CStr::from_ptr(type_filter) }
                .to_string_lossy()
                .into_owned()
        });
        let opts = DotOptions {
            depth: depth.max(0) as usize,
            max_fanout: max_fanout.max(0) as usize,
            type_filter: filter.as_deref(),
        };
        let mut text = String::new();
        // SAFETY: caller's contract.
        match unsafe { heapgraph::write_dot(obj, &opts, &mut text) } {
            Some(n) if write_to(out, &text) => n as Py_ssize_t,
            Some(_) => -1,
            None => {
                error::set(Error::Value("not a live object of pyheap's".into()));
                -1
            }
        }
    })
}

/// Writes the garbage list (uncollectable cycles, or everything with
/// `PyHeap_GC_DEBUG_SAVEALL`) and the references among its objects as DOT.
/// Returns the number of nodes, or -1.
///
/// # Safety
/// `out` is an open stream; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_GC_WriteGarbageDot(out: *mut libc::FILE) -> Py_ssize_t {
    if out.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_GC_WriteGarbageDot", || {
        let mut text = String::new();
        // SAFETY: caller's contract.
        let n = unsafe { heapgraph::write_garbage_dot(&mut text) };
        if write_to(out, &text) {
            n as Py_ssize_t
        } else {
            -1
        }
    })
}

/// Writes every reference cycle among the live objects as DOT, one
/// cluster per cycle, the `max_cycles` biggest (0: all): called after a
/// collection, the cycles that survived it. Returns the number of cycles,
/// or -1.
///
/// # Safety
/// `out` is an open stream; runtime lock held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_WriteCyclesDot(
    max_cycles: Py_ssize_t,
    out: *mut libc::FILE,
) -> Py_ssize_t {
    if out.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    super::boundary("PyHeap_WriteCyclesDot", || {
        let mut text = String::new();
        // SAFETY: caller's contract.
        let n = unsafe { heapgraph::write_cycles_dot(max_cycles.max(0) as usize, &mut text) };
        if write_to(out, &text) {
            n as Py_ssize_t
        } else {
            -1
        }
    })
}

/// Renders the DOT file `dot_path` as SVG into `svg_path` with Graphviz's
/// `dot`. Returns 0, or -1 with a `SystemError` if `dot` is not installed
/// or fails.
///
/// # Safety
/// Both paths are NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyHeap_RenderSvg(
    dot_path: *const c_char,
    svg_path: *const c_char,
) -> c_int {
    if dot_path.is_null() || svg_path.is_null() {
        error::set(Error::bad_internal_call());
        return -1;
    }
    // SAFETY: caller's contract.
    let (d, s) = unsafe {
        (
            CStr::from_ptr(dot_path).to_string_lossy().into_owned(),
            CStr::from_ptr(svg_path).to_string_lossy().into_owned(),
        )
    };
    super::boundary("PyHeap_RenderSvg", || match heapgraph::render_svg(&d, &s) {
        Ok(()) => 0,
        Err(e) => {
            error::set(Error::System(e));
            -1
        }
    })
}
