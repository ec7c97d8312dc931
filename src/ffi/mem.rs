//! The allocator API: `PyMem_Raw*`, `PyMem_*`, `PyObject_*` (malloc family),
//! `PyMem_Get/SetAllocator`, `PyObject_Get/SetArenaAllocator`.

use core::ffi::{c_char, c_int, c_void};
use core::ptr;

use crate::domains::{
    self, MAX_REQUEST, PyMemAllocatorDomain, PyMemAllocatorEx, PyObjectArenaAllocator, runtime,
};

#[inline(always)]
fn raw_table() -> PyMemAllocatorEx {
    domains::table(PyMemAllocatorDomain::PYMEM_DOMAIN_RAW)
}

/// `nelem * elsize` fits in `Py_ssize_t`.
#[inline(always)]
fn calloc_fits(nelem: usize, elsize: usize) -> bool {
    elsize == 0 || nelem <= MAX_REQUEST / elsize
}

/// Allocates `size` bytes from the RAW domain (libc by default). Thread-safe
/// and usable before initialisation. Size 0 gives a unique non-NULL pointer;
/// sizes above `PY_SSIZE_T_MAX` give NULL.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub extern "C" fn PyMem_RawMalloc(size: usize) -> *mut c_void {
    if size > MAX_REQUEST {
        return ptr::null_mut();
    }
    domains::raw_domain_malloc(&raw_table(), size).cast()
}

/// Allocates `nelem * elsize` zeroed bytes from the RAW domain; NULL if the
/// product exceeds `PY_SSIZE_T_MAX`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub extern "C" fn PyMem_RawCalloc(nelem: usize, elsize: usize) -> *mut c_void {
    if !calloc_fits(nelem, elsize) {
        return ptr::null_mut();
    }
    domains::raw_domain_calloc(&raw_table(), nelem, elsize).cast()
}

/// Resizes a RAW block (NULL acts as malloc; size 0 keeps a non-NULL block).
/// On failure returns NULL and `ptr` stays valid.
///
/// # Safety
/// `ptr` must be NULL or a live block of the RAW domain.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn PyMem_RawRealloc(ptr: *mut c_void, new_size: usize) -> *mut c_void {
    if new_size > MAX_REQUEST {
        return ptr::null_mut();
    }
    // SAFETY: caller's contract.
    unsafe { domains::raw_domain_realloc(&raw_table(), ptr.cast(), new_size).cast() }
}

/// Frees a RAW block; NULL does nothing.
///
/// # Safety
/// `ptr` must be NULL or a live block of the RAW domain.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn PyMem_RawFree(ptr: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { domains::raw_domain_free(&raw_table(), ptr.cast()) }
}

const MEM: PyMemAllocatorDomain = PyMemAllocatorDomain::PYMEM_DOMAIN_MEM;
const OBJ: PyMemAllocatorDomain = PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ;

// The MEM and OBJ families share these bodies: the same contract, a direct
// path into the pool heap while the domain has its default table, the
// installed table otherwise.

#[inline(always)]
fn domain_malloc(d: PyMemAllocatorDomain, size: usize) -> *mut c_void {
    // SAFETY: MEM/OBJ callers hold the runtime lock (CPython's rule).
    let rt = unsafe { runtime() };
    if rt.direct[d as usize] {
        // The size limit is tested on the slow path: a small request is
        // below it.
        return domains::pooled_malloc(rt, size).cast();
    }
    installed_malloc(size, d)
}

/// `malloc` through an installed table (kept out of the fast path, which
/// then needs no stack frame; `size` first, where the entry point has it).
#[inline(never)]
fn installed_malloc(size: usize, d: PyMemAllocatorDomain) -> *mut c_void {
    if size > MAX_REQUEST {
        return ptr::null_mut();
    }
    crate::lifecycle::lazy_initialize();
    let t = domains::table(d);
    // SAFETY: calling the installed allocator per its contract.
    t.malloc
        .map_or(ptr::null_mut(), |f| unsafe { f(t.ctx, size) })
}

#[inline(always)]
fn domain_calloc(d: PyMemAllocatorDomain, nelem: usize, elsize: usize) -> *mut c_void {
    if !calloc_fits(nelem, elsize) {
        return ptr::null_mut();
    }
    // SAFETY: as in domain_malloc.
    let rt = unsafe { runtime() };
    if rt.direct[d as usize] {
        return domains::pooled_calloc(rt, nelem, elsize).cast();
    }
    installed_calloc(d, nelem, elsize)
}

/// `calloc` through an installed table.
#[inline(never)]
fn installed_calloc(d: PyMemAllocatorDomain, nelem: usize, elsize: usize) -> *mut c_void {
    crate::lifecycle::lazy_initialize();
    let t = domains::table(d);
    // SAFETY: calling the installed allocator per its contract.
    t.calloc
        .map_or(ptr::null_mut(), |f| unsafe { f(t.ctx, nelem, elsize) })
}

/// # Safety
/// `p` is NULL or a live block of domain `d`.
#[inline(always)]
unsafe fn domain_realloc(
    d: PyMemAllocatorDomain,
    p: *mut c_void,
    n: usize,
    api: &'static str,
) -> *mut c_void {
    if n > MAX_REQUEST {
        return ptr::null_mut();
    }
    // SAFETY: as in domain_malloc.
    let rt = unsafe { runtime() };
    if rt.direct[d as usize] {
        // SAFETY: caller's contract.
        return unsafe { domains::pooled_realloc(rt, p.cast(), n, api).cast() };
    }
    // SAFETY: forwarded contract.
    unsafe { installed_realloc(d, p, n) }
}

/// `realloc` through an installed table (kept out of the fast path).
///
/// # Safety
/// `p` is NULL or a live block of domain `d`.
#[inline(never)]
unsafe fn installed_realloc(d: PyMemAllocatorDomain, p: *mut c_void, n: usize) -> *mut c_void {
    crate::lifecycle::lazy_initialize();
    // SAFETY: as in domain_malloc.
    let t = unsafe { runtime() }.tables[d as usize];
    // SAFETY: calling the installed allocator per its contract.
    let q = t
        .realloc
        .map_or(ptr::null_mut(), |f| unsafe { f(t.ctx, p, n) });
    if d == OBJ && !q.is_null() && q != p {
        // An object block an installed allocator moved stays registered
        // (a no-op if the allocator forwarded to the defaults, which did).
        // SAFETY: as in domain_malloc; the allocator has returned.
        unsafe { runtime() }.objects.move_raw(p.cast(), q.cast());
    }
    q
}

/// # Safety
/// `p` is NULL or a live block of domain `d`, not used afterwards.
#[inline(always)]
unsafe fn domain_free(d: PyMemAllocatorDomain, p: *mut c_void, api: &'static str) {
    // SAFETY: as in domain_malloc.
    let rt = unsafe { runtime() };
    if rt.direct[d as usize] {
        // SAFETY: caller's contract.
        return unsafe { domains::pooled_free(rt, p.cast(), api) };
    }
    // SAFETY: forwarded contract.
    unsafe { installed_free(p, d) }
}

/// `free` through an installed table (kept out of the fast path).
///
/// # Safety
/// `p` is NULL or a live block of domain `d`, not used afterwards.
#[inline(never)]
unsafe fn installed_free(p: *mut c_void, d: PyMemAllocatorDomain) {
    // SAFETY: as in domain_malloc.
    let rt = unsafe { runtime() };
    let t = rt.tables[d as usize];
    if d == OBJ {
        // An object block freed through an installed allocator leaves the
        // registry of unpooled objects (the defaults do this themselves).
        rt.objects.forget_raw(p.cast());
    }
    if let Some(f) = t.free {
        // SAFETY: calling the installed allocator per its contract.
        unsafe { f(t.ctx, p) }
    }
}

/// Allocates `size` bytes, 16-byte aligned, from the MEM domain (the pool
/// allocator by default). Size 0 gives a unique non-NULL pointer; sizes
/// above `PY_SSIZE_T_MAX` give NULL. Requires the runtime lock.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub extern "C" fn PyMem_Malloc(size: usize) -> *mut c_void {
    domain_malloc(MEM, size)
}

/// Allocates `nelem * elsize` zeroed bytes from the MEM domain; NULL if the
/// product exceeds `PY_SSIZE_T_MAX`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub extern "C" fn PyMem_Calloc(nelem: usize, elsize: usize) -> *mut c_void {
    domain_calloc(MEM, nelem, elsize)
}

/// Resizes a MEM block, keeping its contents up to the smaller size. NULL
/// acts as malloc; size 0 keeps a non-NULL block; on failure returns NULL
/// and `ptr` stays valid.
///
/// # Safety
/// `ptr` must be NULL or a live block of the MEM domain.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn PyMem_Realloc(ptr: *mut c_void, new_size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { domain_realloc(MEM, ptr, new_size, "PyMem_Realloc") }
}

/// Frees a MEM block; NULL does nothing. A second free, or a pointer into
/// the middle of a pooled block, stops the program with a report.
///
/// # Safety
/// `ptr` must be NULL or a live block of the MEM domain.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn PyMem_Free(ptr: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { domain_free(MEM, ptr, "PyMem_Free") }
}

/// Allocates `size` bytes, 16-byte aligned, from the OBJ domain (the pool
/// allocator by default). Size 0 gives a unique non-NULL pointer; sizes
/// above `PY_SSIZE_T_MAX` give NULL. Requires the runtime lock.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub extern "C" fn PyObject_Malloc(size: usize) -> *mut c_void {
    domain_malloc(OBJ, size)
}

/// Allocates `nelem * elsize` zeroed bytes from the OBJ domain; NULL if the
/// product exceeds `PY_SSIZE_T_MAX`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub extern "C" fn PyObject_Calloc(nelem: usize, elsize: usize) -> *mut c_void {
    domain_calloc(OBJ, nelem, elsize)
}

/// Resizes an OBJ block, keeping its contents up to the smaller size. NULL
/// acts as malloc; size 0 keeps a non-NULL block; on failure returns NULL
/// and `ptr` stays valid.
///
/// # Safety
/// `ptr` must be NULL or a live block of the OBJ domain.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn PyObject_Realloc(ptr: *mut c_void, new_size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { domain_realloc(OBJ, ptr, new_size, "PyObject_Realloc") }
}

/// Frees an OBJ block; NULL does nothing. A second free, or a pointer into
/// the middle of a pooled block, stops the program with a report.
///
/// # Safety
/// `ptr` must be NULL or a live block of the OBJ domain.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn PyObject_Free(ptr: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { domain_free(OBJ, ptr, "PyObject_Free") }
}

fn domain_from(d: c_int) -> Option<PyMemAllocatorDomain> {
    match d {
        0 => Some(PyMemAllocatorDomain::PYMEM_DOMAIN_RAW),
        1 => Some(PyMemAllocatorDomain::PYMEM_DOMAIN_MEM),
        2 => Some(PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ),
        _ => None,
    }
}

/// Copies the current table of `domain` (a `PyMemAllocatorDomain`; taken as
/// an int so any value C passes is defined) into `*allocator`; an unknown
/// domain gives all fields NULL.
///
/// # Safety
/// `allocator` must point to writable memory for a `PyMemAllocatorEx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyMem_GetAllocator(domain: c_int, allocator: *mut PyMemAllocatorEx) {
    if allocator.is_null() {
        return;
    }
    let table = match domain_from(domain) {
        Some(d) => domains::table(d),
        None => PyMemAllocatorEx::NULL,
    };
    // SAFETY: caller's contract.
    unsafe { allocator.write(table) }
}

/// Replaces the table of `domain` with a copy of `*allocator`; an unknown
/// domain is ignored. After allocations have been made, the new table must
/// wrap the previous one (get it first, forward to it), as in CPython.
///
/// # Safety
/// `allocator` must point to a valid `PyMemAllocatorEx`; no other thread may
/// be allocating in that domain.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyMem_SetAllocator(domain: c_int, allocator: *mut PyMemAllocatorEx) {
    if allocator.is_null() {
        return;
    }
    let Some(d) = domain_from(domain) else { return };
    // SAFETY: caller's contract: a valid table, and the runtime lock held.
    unsafe {
        let table = allocator.read();
        runtime().set_allocator(d, table);
    }
}

/// Installs CPython's debug hooks on every domain not already hooked (the
/// current allocator of each becomes the one they wrap; calling it again
/// changes nothing). New blocks are filled with 0xCD, freed ones with 0xDD,
/// and guard bytes (0xFD) sit on both sides of each block; `free` and
/// `realloc` check them and the domain, and stop the program with a report
/// on a mismatch. Call it before allocating: a block allocated before the
/// hooks must not be freed through them (as in CPython). The
/// `PYHEAP_MALLOC=debug` environment variable installs them at start-up.
#[unsafe(no_mangle)]
pub extern "C" fn PyMem_SetupDebugHooks() {
    // SAFETY: the caller follows PyMem_SetAllocator's rule (no allocation in
    // progress).
    super::boundary("PyMem_SetupDebugHooks", || unsafe {
        crate::debug::setup_debug_hooks()
    })
}

/// Copies the arena allocator used for new arenas into `*allocator`.
///
/// # Safety
/// `allocator` must point to writable memory for a `PyObjectArenaAllocator`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_GetArenaAllocator(allocator: *mut PyObjectArenaAllocator) {
    if allocator.is_null() {
        return;
    }
    // SAFETY: runtime lock held; caller's contract for the write.
    unsafe { allocator.write(runtime().heap.arena_allocator()) }
}

/// Sets the arena allocator for new arenas. Unlike CPython, each existing
/// arena is still given back through the allocator that made it.
///
/// # Safety
/// `allocator` must point to a valid `PyObjectArenaAllocator` whose functions
/// do not call the MEM or OBJ domains.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyObject_SetArenaAllocator(allocator: *mut PyObjectArenaAllocator) {
    if allocator.is_null() {
        return;
    }
    // SAFETY: caller's contract; runtime lock held.
    unsafe { runtime().heap.set_arena_allocator(allocator.read()) }
}

/// Copies the NUL-terminated `str` into a new RAW block (CPython's
/// `_PyMem_RawStrdup`); NULL if out of memory.
///
/// # Safety
/// `str` must be a valid NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyMem_RawStrdup(str: *const c_char) -> *mut c_char {
    // SAFETY: caller's contract.
    unsafe { dup_with(str.cast(), libc::strlen(str) + 1, PyMem_RawMalloc).cast() }
}

/// Copies the NUL-terminated `str` into a new MEM block (CPython's
/// `_PyMem_Strdup`); NULL if out of memory.
///
/// # Safety
/// `str` must be a valid NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyMem_Strdup(str: *const c_char) -> *mut c_char {
    // SAFETY: caller's contract.
    unsafe { dup_with(str.cast(), libc::strlen(str) + 1, PyMem_Malloc).cast() }
}

/// Copies the NUL-terminated wide string `str` into a new RAW block
/// (CPython's `_PyMem_RawWcsdup`); NULL if out of memory or too long.
///
/// # Safety
/// `str` must be a valid NUL-terminated wide string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _PyMem_RawWcsdup(str: *const libc::wchar_t) -> *mut libc::wchar_t {
    let unit = core::mem::size_of::<libc::wchar_t>();
    // SAFETY: caller's contract.
    let len = unsafe { libc::wcslen(str) };
    if len > MAX_REQUEST / unit - 1 {
        return ptr::null_mut();
    }
    // SAFETY: caller's contract; the length includes the terminator.
    unsafe { dup_with(str.cast(), (len + 1) * unit, PyMem_RawMalloc).cast() }
}

/// Allocates `n` bytes with `alloc` and copies them from `src`.
///
/// # Safety
/// `src` must be readable for `n` bytes.
unsafe fn dup_with(
    src: *const u8,
    n: usize,
    alloc: extern "C" fn(usize) -> *mut c_void,
) -> *mut u8 {
    let dst = alloc(n).cast::<u8>();
    if !dst.is_null() {
        // SAFETY: dst is a fresh block of n bytes; src is readable (caller).
        unsafe { ptr::copy_nonoverlapping(src, dst, n) };
    }
    dst
}
