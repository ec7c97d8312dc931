//! The three allocator domains (RAW, MEM, OBJ), their replaceable tables and
//! the global pool heap behind MEM and OBJ (SPEC.md §1).
//!
//! Each domain has a `PyMemAllocatorEx` table that `PyMem_SetAllocator`
//! replaces. While MEM or OBJ still has the default pool allocator, the
//! public entry points skip the table and call the pool heap directly (one
//! load and one branch instead of an indirect call); the table's functions
//! remain real, callable functions, so a hook that wraps the default works.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;

use crate::alloc::SmallHeap;

/// `Py_ssize_t`: CPython's signed size type.
#[allow(non_camel_case_types)]
pub type Py_ssize_t = isize;

/// Largest request any domain accepts (`PY_SSIZE_T_MAX`).
pub(crate) const MAX_REQUEST: usize = isize::MAX as usize;

/// The allocator domains, with CPython's values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum PyMemAllocatorDomain {
    /// `PyMem_RawMalloc` and friends: libc, thread-safe, usable at any time.
    PYMEM_DOMAIN_RAW = 0,
    /// `PyMem_Malloc` and friends.
    PYMEM_DOMAIN_MEM = 1,
    /// `PyObject_Malloc` and friends.
    PYMEM_DOMAIN_OBJ = 2,
}

/// An allocator table, field for field CPython's (order matters for
/// aggregate initialisation: ctx, malloc, calloc, realloc, free).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyMemAllocatorEx {
    /// Passed as the first argument of each function.
    pub ctx: *mut c_void,
    /// Allocate `size` bytes.
    pub malloc: Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void>,
    /// Allocate `nelem * elsize` zeroed bytes.
    pub calloc:
        Option<unsafe extern "C" fn(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void>,
    /// Resize a block.
    pub realloc: Option<
        unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, new_size: usize) -> *mut c_void,
    >,
    /// Free a block.
    pub free: Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void)>,
}

impl PyMemAllocatorEx {
    /// All fields null (what `PyMem_GetAllocator` gives for an unknown domain).
    pub const NULL: Self = PyMemAllocatorEx {
        ctx: ptr::null_mut(),
        malloc: None,
        calloc: None,
        realloc: None,
        free: None,
    };

    /// libc's malloc family.
    pub const RAW: Self = PyMemAllocatorEx {
        ctx: ptr::null_mut(),
        malloc: Some(raw_malloc),
        calloc: Some(raw_calloc),
        realloc: Some(raw_realloc),
        free: Some(raw_free),
    };

    /// The pool allocator (falling back to the RAW domain above 512 bytes).
    pub const POOLED: Self = PyMemAllocatorEx {
        ctx: ptr::null_mut(),
        malloc: Some(pool_malloc),
        calloc: Some(pool_calloc),
        realloc: Some(pool_realloc),
        free: Some(pool_free),
    };

    pub(crate) fn same_as(&self, other: &Self) -> bool {
        // Function addresses as numbers: the same function has one address
        // within this library, which is all we compare against.
        let addrs = |t: &Self| {
            [
                t.ctx as usize,
                t.malloc.map_or(0, |f| f as usize),
                t.calloc.map_or(0, |f| f as usize),
                t.realloc.map_or(0, |f| f as usize),
                t.free.map_or(0, |f| f as usize),
            ]
        };
        // Differences or'ed together rather than `==` on the arrays, which
        // becomes a call to libc's memcmp: one more page of libc's code
        // to fault in for a program that never calls it otherwise.
        let (a, b) = (addrs(self), addrs(other));
        a.iter().zip(&b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The arena allocator, CPython's `PyObjectArenaAllocator`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyObjectArenaAllocator {
    /// Passed as the first argument of each function.
    pub ctx: *mut c_void,
    /// Allocate an arena of `size` bytes.
    pub alloc: Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void>,
    /// Free an arena.
    pub free: Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, size: usize)>,
}

impl PyObjectArenaAllocator {
    /// Anonymous mappings aligned to the arena size.
    pub const DEFAULT: Self = PyObjectArenaAllocator {
        ctx: ptr::null_mut(),
        alloc: Some(crate::alloc::os::default_arena_alloc),
        free: Some(crate::alloc::os::default_arena_free),
    };

    /// True if this is the default mmap allocator (whose arenas may be
    /// purged with `madvise`).
    pub fn is_default(&self) -> bool {
        match (self.alloc, self.free) {
            (Some(a), Some(f)) => {
                ptr::fn_addr_eq(
                    a,
                    crate::alloc::os::default_arena_alloc as unsafe extern "C" fn(_, _) -> _,
                ) && ptr::fn_addr_eq(
                    f,
                    crate::alloc::os::default_arena_free as unsafe extern "C" fn(_, _, _),
                )
            }
            _ => false,
        }
    }
}

/// Global state: the three tables and the pool heap.
///
/// `repr(C)` with the heap first: the allocation paths hand `&mut
/// rt.heap` to the heap's functions in tail calls, and at offset 0 that
/// pointer is the runtime's own, with no instruction to form it (the
/// order rustc picks moves with the fields' sizes).
#[repr(C)]
pub struct Runtime {
    /// The pool heap shared by MEM and OBJ (as pymalloc is in CPython).
    pub heap: SmallHeap,
    /// Table per domain, indexed by `PyMemAllocatorDomain as usize`.
    pub tables: [PyMemAllocatorEx; 3],
    /// Per domain: it still has the default pool table, so the entry points
    /// may call the pool heap directly (always false for RAW).
    pub direct: [bool; 3],
    /// Blocks the MEM/OBJ defaults handed to the RAW domain and not freed
    /// (CPython's `raw_allocated_blocks`).
    pub raw_allocated_blocks: usize,
    /// Objects: the registry of unpooled object blocks, the trashcan.
    pub objects: crate::object::ObjectState,
    /// The collector's lists.
    pub gc: crate::gc::GcState,
    /// Weak reference list heads kept outside objects.
    pub weakrefs: crate::weakref::WeakrefState,
}

/// The process-wide runtime.
pub struct GlobalRuntime(UnsafeCell<Runtime>);

// SAFETY: as in CPython, the MEM and OBJ domains and PyMem_SetAllocator may
// only be used by the thread holding the runtime lock, so the state is never
// touched by two threads at once. The RAW domain's defaults do not read it
// except for the RAW table, which is only written before threads start.
unsafe impl Sync for GlobalRuntime {}

/// The one runtime of the process.
pub static RUNTIME: GlobalRuntime = GlobalRuntime(UnsafeCell::new(Runtime {
    heap: SmallHeap::new(),
    tables: [
        PyMemAllocatorEx::RAW,
        PyMemAllocatorEx::POOLED,
        PyMemAllocatorEx::POOLED,
    ],
    direct: [false, true, true],
    raw_allocated_blocks: 0,
    objects: crate::object::ObjectState::new(),
    gc: crate::gc::GcState::new(),
    weakrefs: crate::weakref::WeakrefState::new(),
}));

/// The runtime, for a caller that follows the locking rule above.
///
/// # Safety
/// The caller holds the runtime lock (until the threads issue lands: is the
/// only thread using the MEM/OBJ domains), and does not keep the reference
/// across a call that may re-enter the allocator (a hook or arena allocator).
#[inline(always)]
pub unsafe fn runtime() -> &'static mut Runtime {
    // SAFETY: exclusive access per the caller's contract.
    unsafe { &mut *RUNTIME.0.get() }
}

/// A copy of one domain's table, read without forming a reference to the
/// whole runtime (so it is sound while another part holds one).
#[inline(always)]
pub fn table(domain: PyMemAllocatorDomain) -> PyMemAllocatorEx {
    // SAFETY: tables are written only by PyMem_SetAllocator, which callers
    // must not race with allocations (CPython's rule); reading a plain copy
    // through the raw pointer creates no reference.
    unsafe { ptr::addr_of!((*RUNTIME.0.get()).tables[domain as usize]).read() }
}

impl Runtime {
    /// Replaces a domain's table.
    pub fn set_allocator(&mut self, domain: PyMemAllocatorDomain, table: PyMemAllocatorEx) {
        self.tables[domain as usize] = table;
        self.direct[domain as usize] = domain != PyMemAllocatorDomain::PYMEM_DOMAIN_RAW
            && table.same_as(&PyMemAllocatorEx::POOLED);
    }
}

// ---------------------------------------------------------------------------
// The RAW domain's table and the paths through it.

/// Calls the RAW table `t`'s `malloc`.
#[inline]
pub fn raw_domain_malloc(t: &PyMemAllocatorEx, n: usize) -> *mut u8 {
    match t.malloc {
        // SAFETY: calling the installed allocator per its contract.
        Some(f) => unsafe { f(t.ctx, n).cast() },
        None => ptr::null_mut(),
    }
}

/// Calls the RAW table `t`'s `calloc`.
#[inline]
pub fn raw_domain_calloc(t: &PyMemAllocatorEx, nelem: usize, elsize: usize) -> *mut u8 {
    match t.calloc {
        // SAFETY: calling the installed allocator per its contract.
        Some(f) => unsafe { f(t.ctx, nelem, elsize).cast() },
        None => ptr::null_mut(),
    }
}

/// Calls the RAW table `t`'s `realloc`.
///
/// # Safety
/// `p` is null or a live RAW block.
#[inline]
pub unsafe fn raw_domain_realloc(t: &PyMemAllocatorEx, p: *mut u8, n: usize) -> *mut u8 {
    match t.realloc {
        // SAFETY: calling the installed allocator per its contract.
        Some(f) => unsafe { f(t.ctx, p.cast(), n).cast() },
        None => ptr::null_mut(),
    }
}

/// Calls the RAW table `t`'s `free`.
///
/// # Safety
/// `p` is null or a live RAW block, not used afterwards.
#[inline]
pub unsafe fn raw_domain_free(t: &PyMemAllocatorEx, p: *mut u8) {
    if let Some(f) = t.free {
        // SAFETY: calling the installed allocator per its contract.
        unsafe { f(t.ctx, p.cast()) }
    }
}

/// Default RAW `malloc`: libc, with size 0 made 1 so the result is unique.
///
/// # Safety
/// Callable with any arguments.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn raw_malloc(_ctx: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: libc malloc accepts any size.
    unsafe { libc::malloc(n.max(1)) }
}

/// Default RAW `calloc`.
///
/// # Safety
/// Callable with any arguments.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn raw_calloc(_ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    let (nelem, elsize) = if nelem == 0 || elsize == 0 {
        (1, 1)
    } else {
        (nelem, elsize)
    };
    // SAFETY: libc calloc checks the product for overflow itself.
    unsafe { libc::calloc(nelem, elsize) }
}

/// Default RAW `realloc`.
///
/// # Safety
/// `p` is null or a live block from the RAW defaults.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn raw_realloc(_ctx: *mut c_void, p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { libc::realloc(p, n.max(1)) }
}

/// Default RAW `free`.
///
/// # Safety
/// `p` is null or a live block from the RAW defaults.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn raw_free(_ctx: *mut c_void, p: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { libc::free(p) }
}

// ---------------------------------------------------------------------------
// The pooled default (MEM and OBJ).

/// Pooled malloc with the RAW fallback; the fast path of `PyObject_Malloc`.
#[inline(always)]
pub fn pooled_malloc(rt: &mut Runtime, n: usize) -> *mut u8 {
    match rt.heap.try_alloc(n) {
        Some(p) => p,
        None => pooled_malloc_slow(n, rt),
    }
}

/// A new pool for a small request, else (a large request, or no arena) the
/// RAW domain; NULL above `PY_SSIZE_T_MAX`. Kept out of line and
/// tail-called, so the fast path saves no registers; `n` comes first, where
/// the entry points receive it, so the jump needs no move.
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
fn pooled_malloc_slow(n: usize, rt: &mut Runtime) -> *mut u8 {
    if crate::lifecycle::needs_initialize() {
        return pooled_malloc_first(n, rt);
    }
    if n.wrapping_sub(1) < crate::alloc::size_class::SMALL_REQUEST_THRESHOLD {
        let c = crate::alloc::size_class::class_of(n);
        // The usual case, a pool from an arena in use, is a tail call that
        // cannot fail.
        if let Some(idx) = rt.heap.pool_source() {
            // SAFETY: idx is what pool_source just returned.
            return unsafe { rt.heap.alloc_from_arena(idx, c) };
        }
        return pooled_malloc_new_arena(n, rt);
    }
    if n > MAX_REQUEST {
        return ptr::null_mut();
    }
    pooled_malloc_raw(rt, n)
}

/// `pooled_malloc_slow` before the runtime was ever initialised.
#[cold]
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
fn pooled_malloc_first(n: usize, rt: &mut Runtime) -> *mut u8 {
    crate::lifecycle::lazy_initialize();
    pooled_malloc_slow(n, rt)
}

/// A small request when no arena in use has a free pool: the spare or a
/// new arena, else (no arena could be had) the RAW domain.
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
fn pooled_malloc_new_arena(n: usize, rt: &mut Runtime) -> *mut u8 {
    let p = rt
        .heap
        .alloc_from_new_arena(crate::alloc::size_class::class_of(n));
    if !p.is_null() {
        return p;
    }
    pooled_malloc_raw(rt, n)
}

#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
fn pooled_malloc_raw(rt: &mut Runtime, n: usize) -> *mut u8 {
    let p = raw_domain_malloc(&rt.tables[0], n);
    if !p.is_null() {
        rt.raw_allocated_blocks += 1;
    }
    p
}

/// Pooled calloc (`nelem * elsize` already checked not to overflow).
pub fn pooled_calloc(rt: &mut Runtime, nelem: usize, elsize: usize) -> *mut u8 {
    crate::lifecycle::lazy_initialize();
    let n = nelem * elsize;
    let p = rt.heap.alloc(n);
    if !p.is_null() {
        // SAFETY: p is a fresh block of at least n bytes.
        unsafe { ptr::write_bytes(p, 0, n) };
        return p;
    }
    let p = raw_domain_calloc(&rt.tables[0], nelem, elsize);
    if !p.is_null() {
        rt.raw_allocated_blocks += 1;
    }
    p
}

/// Pooled free; foreign pointers go to the RAW domain.
///
/// # Safety
/// `p` is null or a live block of the MEM/OBJ defaults (or of RAW).
#[inline(always)]
pub unsafe fn pooled_free(rt: &mut Runtime, p: *mut u8, api: &'static str) {
    // NULL is never pooled (the address map refuses the first chunk), so
    // its test waits for the slow path.
    if !rt.heap.owns(p) {
        // SAFETY: not pooled, so it came from the RAW domain.
        return unsafe { pooled_free_raw(p, rt) };
    }
    // SAFETY: caller's contract; p is pooled.
    unsafe { rt.heap.free_owned(p, api) }
}

/// The RAW half of [`pooled_free`] (`p` first, as in `pooled_malloc_slow`).
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
unsafe fn pooled_free_raw(p: *mut u8, rt: &mut Runtime) {
    if p.is_null() {
        return;
    }
    rt.raw_allocated_blocks = rt.raw_allocated_blocks.saturating_sub(1);
    rt.objects.forget_raw(p);
    // SAFETY: caller's contract.
    unsafe { raw_domain_free(&rt.tables[0], p) }
}

/// Pooled realloc (CPython's `_PyObject_Realloc`, SPEC.md §2.8). Inline:
/// a block that stays where it is costs the address map, one read of its
/// state and the size test, without saving a register; moves and foreign
/// blocks are tail calls.
///
/// # Safety
/// `p` is null or a live block of the MEM/OBJ defaults (or of RAW).
#[inline(always)]
pub unsafe fn pooled_realloc(rt: &mut Runtime, p: *mut u8, n: usize, api: &'static str) -> *mut u8 {
    if p.is_null() {
        return pooled_malloc(rt, n);
    }
    if !rt.heap.owns(p) {
        // SAFETY: caller's contract; p is a RAW block.
        return unsafe { realloc_foreign(rt, p, n) };
    }
    // SAFETY: p is pooled (one address-map lookup serves the whole call).
    let (size, object) = unsafe { rt.heap.owned_block(p, api) };
    if n > 0 && n <= size && 4 * n > 3 * size {
        return p; // shrinks by less than a quarter: keep it in place
    }
    // SAFETY: owned_block found p allocated, of `size` bytes.
    unsafe { realloc_move(rt, p, n, size, object) }
}

/// `pooled_realloc` of a block that is not pooled: pymalloc never adopts a
/// foreign block, it goes to the RAW domain.
///
/// # Safety
/// `p` is a live RAW block.
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
unsafe fn realloc_foreign(rt: &mut Runtime, p: *mut u8, n: usize) -> *mut u8 {
    // SAFETY: caller's contract.
    let q = unsafe { raw_domain_realloc(&rt.tables[0], p, n) };
    if !q.is_null() {
        rt.objects.move_raw(p, q);
    }
    q
}

/// `pooled_realloc` of the pooled block `p` (`size` bytes, holding an
/// object if `object` is Some) to a new block of `n` bytes.
///
/// # Safety
/// `p` is an allocated pooled block of `size` bytes, as `owned_block` just
/// found it.
#[inline(never)]
#[unsafe(link_section = ".text.hot.pyheap")]
unsafe fn realloc_move(
    rt: &mut Runtime,
    p: *mut u8,
    n: usize,
    size: usize,
    object: Option<bool>,
) -> *mut u8 {
    let q = pooled_malloc(rt, n);
    if q.is_null() {
        return q;
    }
    // An object block keeps its object mark when it moves.
    if let Some(gc) = object {
        if !rt.heap.set_object(q, gc) {
            rt.objects.remember_raw(q, gc);
        }
    }
    // SAFETY: both blocks are live and distinct and hold at least the bytes
    // copied (p is `size` bytes, q at least `n`); p is a pooled block
    // owned_block found allocated (so 16-byte aligned), and allocating q
    // freed nothing.
    unsafe {
        copy_prefix(p, q, size.min(n));
        rt.heap.free_live(p);
    }
    q
}

/// Copies the first `n` bytes of the pooled block `p` to `q`.
///
/// Whole 16-byte granules go through an inline SSE2 loop rather than a
/// call to libc's `memcpy`: on blocks of at most 512 bytes it made the
/// moves of the realloc benchmark about 10% faster (glibc's AVX-512
/// `memcpy`, called from here, cost 1.4 ns more per move than the same
/// function called by pymalloc; BENCHMARKS.md, "Time per call"), for about
/// 15 more instructions per move. The last `n % 16` bytes, if any (a
/// shrink to an odd size), go through `ptr::copy_nonoverlapping`: `q` may
/// be a RAW block of exactly `n` bytes (the pools had no room, or `n` is
/// above 512), with no granule's worth of slack and only the RAW
/// allocator's alignment, so `q` is stored to unaligned.
///
/// # Safety
/// `p` is 16-byte aligned and valid for reads of `n` bytes, `q` valid for
/// writes of `n` bytes, and the two do not overlap.
#[inline(always)]
unsafe fn copy_prefix(p: *const u8, q: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_load_si128, _mm_storeu_si128};
        let whole = n & !15;
        let mut i = 0;
        if whole & 16 != 0 {
            // SAFETY: caller's contract: granule 0 is within n bytes of
            // both, and p is aligned.
            unsafe { _mm_storeu_si128(q.cast(), _mm_load_si128(p.cast())) };
            i = 16;
        }
        while i < whole {
            // SAFETY: caller's contract: bytes i to i + 32 are within
            // `whole` (whole - i is a positive multiple of 32); p + i is
            // aligned.
            unsafe {
                let a = _mm_load_si128(p.add(i).cast());
                let b = _mm_load_si128(p.add(i + 16).cast());
                _mm_storeu_si128(q.add(i).cast(), a);
                _mm_storeu_si128(q.add(i + 16).cast(), b);
            }
            i += 32;
        }
        if whole != n {
            // SAFETY: caller's contract: the last n - whole bytes.
            unsafe { ptr::copy_nonoverlapping(p.add(whole), q.add(whole), n - whole) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: caller's contract.
    unsafe {
        ptr::copy_nonoverlapping(p, q, n)
    };
}

/// Default MEM/OBJ `malloc` as a table function.
///
/// # Safety
/// Callable with any arguments by the thread holding the runtime lock.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn pool_malloc(_ctx: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: caller holds the runtime lock.
    pooled_malloc(unsafe { runtime() }, n).cast()
}

/// Default MEM/OBJ `calloc` as a table function.
///
/// # Safety
/// As for [`pool_malloc`]; the product must not overflow.
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn pool_calloc(
    _ctx: *mut c_void,
    nelem: usize,
    elsize: usize,
) -> *mut c_void {
    if elsize != 0 && nelem > usize::MAX / elsize {
        return ptr::null_mut();
    }
    // SAFETY: caller holds the runtime lock.
    pooled_calloc(unsafe { runtime() }, nelem, elsize).cast()
}

/// Default MEM/OBJ `realloc` as a table function.
///
/// # Safety
/// As for [`pooled_realloc`].
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn pool_realloc(_ctx: *mut c_void, p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { pooled_realloc(runtime(), p.cast(), n, "realloc of the pool allocator").cast() }
}

/// Default MEM/OBJ `free` as a table function.
///
/// # Safety
/// As for [`pooled_free`].
#[unsafe(link_section = ".text.hot.pyheap")]
pub unsafe extern "C" fn pool_free(_ctx: *mut c_void, p: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { pooled_free(runtime(), p.cast(), "free of the pool allocator") }
}
