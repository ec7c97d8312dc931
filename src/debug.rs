//! The debug allocator (SPEC.md §3): CPython 3.11's debug hooks, installed
//! over any domain's table by `PyMem_SetupDebugHooks` or by the allocator
//! mode (`PYHEAP_MALLOC`, see [`set_mode`]).
//!
//! Every block gets a header and a trailer around the caller's data, with
//! CPython's layout and its serial-number extension:
//!
//! ```text
//! base                      p = base + 16                 p + n
//! | size (8, big-endian) | API id | 0xFD x 7 | data (n) | 0xFD x 8 | serial (8, BE) |
//! ```
//!
//! Fresh data is filled with `0xCD`, freed blocks with `0xDD`, guards are
//! `0xFD`. `free` and `realloc` check the API id (the domain that made the
//! block) and both guards and stop with a report on a mismatch. Beyond
//! CPython: the report names the kind of error (buffer overflow or
//! underflow, wrong domain, double free, pointer never allocated), and,
//! over pyheap's pool heap, a freed block is checked again when the pool
//! hands it out, so a write to freed memory is reported at that point.

use core::ffi::c_void;
use core::fmt::Write;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::domains::{self, MAX_REQUEST, PyMemAllocatorDomain, PyMemAllocatorEx, runtime};
use crate::fatal::{self, Misuse};

/// Fresh data.
pub(crate) const CLEANBYTE: u8 = 0xCD;
/// Freed memory.
pub(crate) const DEADBYTE: u8 = 0xDD;
/// Guards.
pub(crate) const FORBIDDENBYTE: u8 = 0xFD;
const S: usize = core::mem::size_of::<usize>();
/// Header bytes before the data.
const HEADER: usize = 2 * S;
/// Bytes a debug block adds: header, trailer guard and serial number.
pub(crate) const EXTRA: usize = 4 * S;

/// One domain's debug hook: the table it wraps and the API id it stamps.
#[repr(C)]
pub struct DebugDomain {
    wrapped: PyMemAllocatorEx,
    id: u8,
    domain: PyMemAllocatorDomain,
}

struct Hooks(core::cell::UnsafeCell<[DebugDomain; 3]>);

// SAFETY: a domain's hook is written only by PyMem_SetupDebugHooks, which,
// like PyMem_SetAllocator, must not race with allocations (CPython's rule);
// afterwards it is only read.
unsafe impl Sync for Hooks {}

static HOOKS: Hooks = Hooks(core::cell::UnsafeCell::new([
    DebugDomain {
        wrapped: PyMemAllocatorEx::NULL,
        id: b'r',
        domain: PyMemAllocatorDomain::PYMEM_DOMAIN_RAW,
    },
    DebugDomain {
        wrapped: PyMemAllocatorEx::NULL,
        id: b'm',
        domain: PyMemAllocatorDomain::PYMEM_DOMAIN_MEM,
    },
    DebugDomain {
        wrapped: PyMemAllocatorEx::NULL,
        id: b'o',
        domain: PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ,
    },
]));

/// Calls to the debug `malloc`/`calloc`/`realloc`, numbering the blocks.
static SERIAL: AtomicUsize = AtomicUsize::new(0);

fn hook(d: PyMemAllocatorDomain) -> *mut DebugDomain {
    // SAFETY: an in-bounds element address; nothing is read.
    unsafe { HOOKS.0.get().cast::<DebugDomain>().add(d as usize) }
}

/// The debug table of domain `d` (its functions, with `d`'s hook as ctx).
fn debug_table(d: PyMemAllocatorDomain) -> PyMemAllocatorEx {
    PyMemAllocatorEx {
        ctx: hook(d).cast(),
        malloc: Some(debug_malloc),
        calloc: Some(debug_calloc),
        realloc: Some(debug_realloc),
        free: Some(debug_free),
    }
}

/// True iff domain `d`'s current table is the debug allocator.
pub fn is_hooked(d: PyMemAllocatorDomain) -> bool {
    // Tracing wraps the debug hooks without changing what they check.
    let t = crate::trace::below_tracer(d, domains::table(d));
    t.malloc.map(|f| f as usize) == Some(debug_malloc as unsafe extern "C" fn(_, _) -> _ as usize)
}

/// The table the debug hooks of domain `d` forward to, if they are
/// installed there.
pub fn wrapped_table(d: PyMemAllocatorDomain) -> Option<PyMemAllocatorEx> {
    // SAFETY: a plain copy of the hook's `wrapped`, which is written only
    // while the hooks are installed (a concurrent PyMem_SetupDebugHooks is
    // the caller's race, as for every allocator-table change).
    is_hooked(d).then(|| unsafe { (*hook(d)).wrapped })
}

/// `PyMem_SetupDebugHooks`: wraps every domain not already wrapped.
///
/// # Safety
/// No allocation is in progress (CPython's rule for `PyMem_SetAllocator`);
/// blocks allocated before the hooks must not be freed through them.
pub unsafe fn setup_debug_hooks() {
    for d in [
        PyMemAllocatorDomain::PYMEM_DOMAIN_RAW,
        PyMemAllocatorDomain::PYMEM_DOMAIN_MEM,
        PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ,
    ] {
        if is_hooked(d) {
            continue;
        }
        // SAFETY: caller's contract: nothing uses the hook concurrently.
        unsafe {
            (*hook(d)).wrapped = domains::table(d);
            runtime().set_allocator(d, debug_table(d));
        }
    }
}

fn api_name(id: u8) -> &'static str {
    match id {
        b'r' => "PyMem_Raw",
        b'm' => "PyMem_",
        b'o' => "PyObject_",
        _ => "?",
    }
}

fn domain_name(id: u8) -> &'static str {
    match id {
        b'r' => "RAW",
        b'm' => "MEM",
        b'o' => "OBJ",
        _ => "unknown",
    }
}

/// # Safety
/// `p..p + n` is writable.
unsafe fn fill(p: *mut u8, byte: u8, n: usize) {
    // SAFETY: caller's contract.
    unsafe { ptr::write_bytes(p, byte, n) }
}

/// Writes header, guards and serial around `n` data bytes at `base + 16`.
///
/// # Safety
/// `base` has room for `n + EXTRA` bytes.
unsafe fn write_frame(base: *mut u8, id: u8, n: usize) {
    // SAFETY: caller's contract.
    unsafe {
        base.cast::<[u8; S]>().write_unaligned(n.to_be_bytes());
        *base.add(S) = id;
        fill(base.add(S + 1), FORBIDDENBYTE, S - 1);
        let tail = base.add(HEADER + n);
        fill(tail, FORBIDDENBYTE, S);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed) + 1;
        tail.add(S)
            .cast::<[u8; S]>()
            .write_unaligned(serial.to_be_bytes());
    }
}

/// The size recorded in the header of the block at `p`.
///
/// # Safety
/// `p - 16` is readable.
unsafe fn recorded_size(p: *mut u8) -> usize {
    // SAFETY: caller's contract.
    usize::from_be_bytes(unsafe { p.sub(HEADER).cast::<[u8; S]>().read_unaligned() })
}

/// The usable size of a pooled block at `base`, if the wrapped allocator
/// is pyheap's pool heap and `base` is one of its live blocks.
fn pooled_usable(h: &DebugDomain, base: *mut u8) -> Option<usize> {
    if !h.wrapped.same_as(&PyMemAllocatorEx::POOLED) {
        return None;
    }
    // SAFETY: runtime lock held (MEM/OBJ callers); only pool headers the
    // address map proves ours are read.
    let heap = unsafe { &runtime().heap };
    if !heap.is_live_block(base) {
        return None;
    }
    heap.block_size(base, "debug allocator")
}

/// Where a freed block's tag and checked bytes lie: `(usable size, tag
/// offset, first checked byte)`; the checked bytes end one word before the
/// usable size. Only over pyheap's pool heap, and only while both of the
/// domains it serves (MEM and OBJ) are hooked: then every block it hands
/// out passes through a debug free before it can be handed out again, and
/// it reuses only the first word of a free block. An allocator shared with
/// code outside the hooks (libc's malloc serves Rust, libc and the program
/// too) may hand a freed block to someone else who writes to it, so no
/// check is made there: memcheck and AddressSanitizer do that job in the
/// `malloc` modes.
fn recycle_layout(h: &DebugDomain, base: *mut u8) -> Option<(usize, usize, usize)> {
    if !is_hooked(PyMemAllocatorDomain::PYMEM_DOMAIN_MEM)
        || !is_hooked(PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ)
    {
        return None;
    }
    pooled_usable(h, base).map(|total| (total, S, 2 * S))
}

unsafe extern "C" fn debug_malloc(ctx: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: ctx is the domain's hook (debug_table).
    let h = unsafe { &*ctx.cast::<DebugDomain>() };
    check_lock(h, || malloc_api(h.id, false));
    if n > MAX_REQUEST - EXTRA {
        return ptr::null_mut();
    }
    let Some(f) = h.wrapped.malloc else {
        return ptr::null_mut();
    };
    // SAFETY: the wrapped allocator's contract.
    let base = unsafe { f(h.wrapped.ctx, n + EXTRA) }.cast::<u8>();
    if base.is_null() {
        return ptr::null_mut();
    }
    check_recycled(h, base);
    // SAFETY: a fresh block of n + EXTRA bytes.
    unsafe {
        wipe_slack(h, base, n);
        write_frame(base, h.id, n);
        fill(base.add(HEADER), CLEANBYTE, n);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn debug_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    // SAFETY: ctx is the domain's hook.
    let h = unsafe { &*ctx.cast::<DebugDomain>() };
    check_lock(h, || malloc_api(h.id, true));
    let Some(n) = nelem
        .checked_mul(elsize)
        .filter(|&n| n <= MAX_REQUEST - EXTRA)
    else {
        return ptr::null_mut();
    };
    let Some(f) = h.wrapped.calloc else {
        return ptr::null_mut();
    };
    // SAFETY: the wrapped allocator's contract.
    let base = unsafe { f(h.wrapped.ctx, 1, n + EXTRA) }.cast::<u8>();
    if base.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a fresh zeroed block of n + EXTRA bytes; the data stays zero.
    unsafe {
        wipe_slack(h, base, n);
        write_frame(base, h.id, n);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn debug_free(ctx: *mut c_void, p: *mut c_void) {
    // SAFETY: ctx is the domain's hook.
    let h = unsafe { &*ctx.cast::<DebugDomain>() };
    check_lock(h, || free_api(h.id));
    if p.is_null() {
        return;
    }
    let p = p.cast::<u8>();
    let n = check_block(h, p, free_api(h.id));
    // SAFETY: check_block proved the frame intact: the block spans
    // [p - 16, p + n + 16), or more if the pool block is larger.
    unsafe {
        let base = p.sub(HEADER);
        match recycle_layout(h, base) {
            Some((total, tag_at, _)) => {
                // The whole usable block, and a tag naming this block and
                // its size where the allocator underneath leaves it alone,
                // so that the next hand-out can check it (check_recycled).
                fill(base, DEADBYTE, total);
                base.add(tag_at)
                    .cast::<usize>()
                    .write_unaligned(freed_tag(base, total));
            }
            None => fill(base, DEADBYTE, n + EXTRA),
        }
        if let Some(f) = h.wrapped.free {
            f(h.wrapped.ctx, base.cast());
        }
    }
}

unsafe extern "C" fn debug_realloc(ctx: *mut c_void, p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: ctx is the domain's hook.
    let h = unsafe { &*ctx.cast::<DebugDomain>() };
    check_lock(h, || realloc_api(h.id));
    if p.is_null() {
        // SAFETY: forwarded.
        return unsafe { debug_malloc(ctx, n) };
    }
    let old = check_block(h, p.cast(), realloc_api(h.id));
    if n > MAX_REQUEST - EXTRA {
        return ptr::null_mut();
    }
    let Some(f) = h.wrapped.realloc else {
        return ptr::null_mut();
    };
    // As CPython: the wrapped allocator resizes the whole block (in place
    // when it can), then the frame is written again around the new size
    // and any growth is filled with 0xCD. On failure the old block is
    // intact.
    // SAFETY: the frame was checked; the wrapped allocator's contract.
    unsafe {
        // As CPython: the header, the trailer and the first data bytes are
        // poisoned first, so that if the block moves, a stale pointer to
        // the old one reads as freed memory (and a free of it as a double
        // free); the data bytes are put back in the block that results.
        let old_base = p.cast::<u8>().sub(HEADER);
        let keep = old.min(2 * S);
        let mut saved = [0u8; 2 * S + HEADER + 2 * S];
        ptr::copy_nonoverlapping(old_base, saved.as_mut_ptr(), HEADER + keep);
        ptr::copy_nonoverlapping(
            old_base.add(HEADER + old),
            saved.as_mut_ptr().add(HEADER + 2 * S),
            2 * S,
        );
        fill(old_base, DEADBYTE, HEADER + keep);
        fill(old_base.add(HEADER + old), DEADBYTE, 2 * S);
        let base = f(h.wrapped.ctx, old_base.cast(), n + EXTRA).cast::<u8>();
        if base.is_null() {
            // The old block is intact again.
            ptr::copy_nonoverlapping(saved.as_ptr(), old_base, HEADER + keep);
            ptr::copy_nonoverlapping(
                saved.as_ptr().add(HEADER + 2 * S),
                old_base.add(HEADER + old),
                2 * S,
            );
            return ptr::null_mut();
        }
        ptr::copy_nonoverlapping(saved.as_ptr().add(HEADER), base.add(HEADER), keep.min(n));
        wipe_slack(h, base, n);
        write_frame(base, h.id, n);
        if n > old {
            fill(base.add(HEADER + old), CLEANBYTE, n - old);
        }
        base.add(HEADER).cast()
    }
}

fn free_api(id: u8) -> &'static str {
    match id {
        b'r' => "PyMem_RawFree",
        b'm' => "PyMem_Free",
        _ => "PyObject_Free",
    }
}

fn malloc_api(id: u8, zeroed: bool) -> &'static str {
    match (id, zeroed) {
        (b'm', false) => "PyMem_Malloc",
        (b'm', true) => "PyMem_Calloc",
        (_, false) => "PyObject_Malloc",
        (_, true) => "PyObject_Calloc",
    }
}

/// The MEM and OBJ domains need the runtime lock (CPython's debug hooks
/// check for the GIL the same way); RAW does not.
#[inline]
fn check_lock(h: &DebugDomain, api: impl FnOnce() -> &'static str) {
    if h.id != b'r' && !crate::lifecycle::lock_check() {
        fatal::error(
            api(),
            "memory allocator called without holding the runtime lock (the GIL)",
        );
    }
}

fn realloc_api(id: u8) -> &'static str {
    match id {
        b'r' => "PyMem_RawRealloc",
        b'm' => "PyMem_Realloc",
        _ => "PyObject_Realloc",
    }
}

/// Checks the frame of the block at `p` for `api`; returns its data size,
/// or stops the program with a report.
fn check_block(h: &DebugDomain, p: *mut u8, api: &'static str) -> usize {
    let base = p.wrapping_sub(HEADER);
    // With the pool heap underneath, the address map tells a block from
    // anything else before any header is read.
    if h.wrapped.same_as(&PyMemAllocatorEx::POOLED) {
        // SAFETY: runtime lock held; read only.
        let heap = unsafe { &runtime().heap };
        if heap.owns(base) && !heap.is_live_block(base) {
            let kind = if looks_freed(p) {
                Misuse::DoubleFree
            } else {
                Misuse::InvalidFree
            };
            report(kind, h, p, api, None);
        }
    }
    // SAFETY: the caller passed a block of this allocator; if it did not,
    // the header read is the best effort CPython also makes.
    let (id, lead_ok) = unsafe {
        let id = *base.add(S);
        let lead = core::slice::from_raw_parts(base.add(S + 1), S - 1);
        (id, lead.iter().all(|&b| b == FORBIDDENBYTE))
    };
    if id != h.id {
        let kind = if looks_freed(p) {
            Misuse::DoubleFree
        } else if matches!(id, b'r' | b'm' | b'o') && lead_ok {
            Misuse::WrongDomain
        } else {
            Misuse::InvalidFree
        };
        report(kind, h, p, api, Some(id));
    }
    if !lead_ok {
        report(Misuse::BufferUnderflow, h, p, api, Some(id));
    }
    // SAFETY: the header's id and pads are intact, so it is readable; the
    // size may still have been overwritten, which the cap below catches.
    let n = unsafe { recorded_size(p) };
    // The recorded size must fit the block the allocator underneath holds,
    // before the trailer is read there.
    let room = pooled_usable(h, base).or_else(|| {
        // SAFETY: with libc underneath, base is one of its live blocks.
        h.wrapped
            .same_as(&PyMemAllocatorEx::RAW)
            .then(|| unsafe { libc::malloc_usable_size(base.cast()) })
    });
    if room.is_some_and(|room| n.checked_add(EXTRA).is_none_or(|t| t > room)) {
        report(Misuse::BufferUnderflow, h, p, api, Some(id));
    }
    // SAFETY: the block spans n + EXTRA bytes from base.
    let tail_ok = unsafe { core::slice::from_raw_parts(p.add(n), S) }
        .iter()
        .all(|&b| b == FORBIDDENBYTE);
    if !tail_ok {
        report(Misuse::BufferOverflow, h, p, api, Some(id));
    }
    n
}

/// True if the second data word of the block at `p` reads as freed memory
/// (a debug free fills a block with 0xDD; the allocator underneath may
/// reuse the block's first words, and the recycling tag may take the
/// first data word, never the second).
fn looks_freed(p: *mut u8) -> bool {
    // SAFETY: a block has at least its trailer and serial (16 bytes) at p;
    // memory the caller passed as a block is readable there (best effort,
    // as CPython).
    unsafe { core::slice::from_raw_parts(p.add(S), S) }
        .iter()
        .all(|&b| b == DEADBYTE)
}

/// The word a debug free leaves after the free-list link of a pooled block
/// of `total` bytes at `base`.
fn freed_tag(base: *mut u8, total: usize) -> usize {
    (base as usize) ^ total.rotate_right(16) ^ 0x5a17_dead_0dd5_5a17usize
}

/// A block handed out again after a debug free (it carries the tag that
/// free wrote for exactly this block and size) is all `0xDD` in its checked
/// bytes; anything else was written after the free. Every debug free of a
/// block that overlapped this one since fills it with `0xDD`, so a tag that
/// survives is this block's own; fresh memory carries none and is not
/// checked.
///
/// For that, no tag may outlive the block it names in memory handed out
/// since: the debug frame and data written into a block cover all of it but
/// its slack (the bytes between `n + EXTRA` and the pool's block size), so
/// the slack of every block handed out is wiped ([`wipe_slack`]). Otherwise,
/// after a pool emptied and set up for another size class, an old tag in
/// the slack of a new block, the blocks around it written and freed, would
/// read as valid when the pool serves the first class again, and the
/// writes of those other blocks as writes to freed memory.
fn check_recycled(h: &DebugDomain, base: *mut u8) {
    // With pooled blocks announced to memcheck, a fresh block is
    // "undefined": reading it would be a report of its own, and memcheck
    // finds the write itself.
    if crate::alloc::valgrind::ENABLED {
        return;
    }
    let Some((total, tag_at, from)) = recycle_layout(h, base) else {
        return;
    };
    // SAFETY: a live pooled block of `total` (>= 4 words: EXTRA) bytes,
    // just handed to us.
    let (tag, body) = unsafe {
        (
            base.add(tag_at).cast::<usize>().read_unaligned(),
            core::slice::from_raw_parts(base.add(from), total - from - S),
        )
    };
    if tag != freed_tag(base, total) {
        return;
    }
    if let Some(k) = body.iter().position(|&b| b != DEADBYTE) {
        let offset = from + k;
        let byte = body[k];
        fatal::misuse(
            Misuse::WriteAfterFree,
            base as usize + offset,
            "debug allocator",
            &|out| {
                writeln!(
                    out,
                    "  a block freed earlier (data at {:#x}) was written to after its free:",
                    base as usize + HEADER
                )?;
                writeln!(
                    out,
                    "  byte {:#04x} at data offset {} (0xdd expected); found when the {} domain",
                    byte,
                    offset as isize - HEADER as isize,
                    domain_name(h.id)
                )?;
                writeln!(out, "  handed the block out again")
            },
        );
    }
}

/// Overwrites the slack of a block handed out with `n` data bytes: the
/// bytes of its pool block after the debug frame, where a stale "freed" tag
/// could otherwise survive (see [`check_recycled`]).
///
/// # Safety
/// `base` is a block just handed out with room for `n + EXTRA` bytes.
unsafe fn wipe_slack(h: &DebugDomain, base: *mut u8, n: usize) {
    if let Some((total, _, _)) = recycle_layout(h, base) {
        if total > n + EXTRA {
            // SAFETY: the pool block spans `total` bytes from base.
            unsafe { fill(base.add(n + EXTRA), FORBIDDENBYTE, total - n - EXTRA) };
        }
    }
}

/// Stops the program with CPython's block dump and pyheap's diagnosis.
fn report(kind: Misuse, h: &DebugDomain, p: *mut u8, api: &'static str, found: Option<u8>) -> ! {
    fatal::misuse(kind, p as usize, api, &|out| {
        let expected = h.id;
        writeln!(
            out,
            "  debug allocator of the {} domain ({}Free/Realloc, API '{}')",
            domain_name(expected),
            api_name(expected),
            expected as char
        )?;
        match kind {
            Misuse::WrongDomain => {
                let got = found.unwrap_or(b'?');
                writeln!(
                    out,
                    "  the block was allocated by the {} domain ({}Malloc, API '{}') but released \
                     with {api}",
                    domain_name(got),
                    api_name(got),
                    got as char
                )?;
            }
            Misuse::DoubleFree => {
                writeln!(out, "  the block was already freed (its header reads 0xdd)")?;
                return Ok(());
            }
            Misuse::InvalidFree => {
                writeln!(
                    out,
                    "  no block of the debug allocator starts at this address"
                )?;
                if let Some(id) = found {
                    writeln!(out, "  (API id byte found: {id:#04x})")?;
                }
                return Ok(());
            }
            _ => {}
        }
        dump(out, p)
    })
}

/// CPython's `_PyObject_DebugDumpAddress` format, after the frame checks.
fn dump(out: &mut dyn Write, p: *mut u8) -> core::fmt::Result {
    // SAFETY: only called once the header's API id was found valid, so the
    // header and, for a sane size, the block are readable.
    unsafe {
        let id = *p.sub(S);
        writeln!(
            out,
            "  Debug memory block at address p={p:p}: API '{}'",
            id as char
        )?;
        let n = recorded_size(p);
        writeln!(out, "      {n} bytes originally requested")?;
        if n > (1 << 40) {
            return writeln!(out, "      (the size is corrupt: the trailer is not read)");
        }
        let lead = p.sub(S - 1);
        if (0..S - 1).all(|i| *lead.add(i) == FORBIDDENBYTE) {
            writeln!(
                out,
                "      The {} pad bytes at p-{} are FORBIDDENBYTE, as expected.",
                S - 1,
                S - 1
            )?;
        } else {
            writeln!(
                out,
                "      The {} pad bytes at p-{} are not all FORBIDDENBYTE (0xfd):",
                S - 1,
                S - 1
            )?;
            for i in (1..S).rev() {
                let b = *p.sub(i);
                let ouch = if b == FORBIDDENBYTE { "" } else { " *** OUCH" };
                writeln!(out, "          at p-{i}: {b:#04x}{ouch}")?;
            }
            writeln!(
                out,
                "      Because memory is corrupted at the start, the count of bytes requested"
            )?;
            writeln!(
                out,
                "         may be bogus, and checking the trailing pad bytes may segfault."
            )?;
        }
        let tail = p.add(n);
        if (0..S).all(|i| *tail.add(i) == FORBIDDENBYTE) {
            writeln!(
                out,
                "      The {S} pad bytes at tail={tail:p} are FORBIDDENBYTE, as expected."
            )?;
        } else {
            writeln!(
                out,
                "      The {S} pad bytes at tail={tail:p} are not all FORBIDDENBYTE (0xfd):"
            )?;
            for i in 0..S {
                let b = *tail.add(i);
                let ouch = if b == FORBIDDENBYTE { "" } else { " *** OUCH" };
                writeln!(out, "          at tail+{i}: {b:#04x}{ouch}")?;
            }
        }
        let serial = usize::from_be_bytes(tail.add(S).cast::<[u8; S]>().read_unaligned());
        writeln!(
            out,
            "      The block was made by call #{serial} to debug malloc/realloc."
        )?;
        if n > 0 {
            write!(out, "      Data at p:")?;
            let show = |out: &mut dyn Write, from: usize, to: usize| -> core::fmt::Result {
                for i in from..to {
                    write!(out, " {:02x}", *p.add(i))?;
                }
                Ok(())
            };
            if n <= 16 {
                show(out, 0, n)?;
            } else {
                show(out, 0, 8)?;
                write!(out, " ...")?;
                show(out, n - 8, n)?;
            }
            writeln!(out)?;
        }
        if crate::trace::is_tracing() {
            crate::trace::write_block_traceback(p as usize, out)
        } else {
            writeln!(
                out,
                "  (the allocation site is unknown: run with PYHEAP_TRACEMALLOC=N to see it)"
            )
        }
    }
}

/// True iff `p` is the data of a live block of the OBJ domain's debug
/// allocator over the pool heap (a live pool block starts 16 bytes before
/// it and its header carries the OBJ id and intact pads). Used to register
/// objects placed with `PyObject_Init` in such a block.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn is_obj_debug_block(p: *mut u8) -> bool {
    if !is_hooked(PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ) {
        return false;
    }
    // Only over the pool heap, where the address map proves the header
    // readable before it is read.
    // SAFETY: runtime lock held; read only.
    if !unsafe { runtime() }
        .heap
        .is_live_block(p.wrapping_sub(HEADER))
    {
        return false;
    }
    // SAFETY: p - 16 is the start of a live pooled block.
    unsafe {
        *p.sub(S) == b'o'
            && core::slice::from_raw_parts(p.sub(S - 1), S - 1)
                .iter()
                .all(|&b| b == FORBIDDENBYTE)
    }
}

/// CPython's `_PyMem_IsPtrFreed`: a pointer value that is NULL or one of
/// the debug allocator's fill patterns, as read from freed or fresh memory.
pub fn is_ptr_freed(p: usize) -> bool {
    p == 0
        || p == usize::from_ne_bytes([CLEANBYTE; S])
        || p == usize::from_ne_bytes([DEADBYTE; S])
        || p == usize::from_ne_bytes([FORBIDDENBYTE; S])
}

/// An allocator mode (`PYHEAP_MALLOC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The pool heap (the default).
    Pymalloc,
    /// The pool heap under the debug hooks.
    PymallocDebug,
    /// Every domain straight to libc (for valgrind and sanitizers).
    Malloc,
    /// libc under the debug hooks.
    MallocDebug,
}

impl Mode {
    /// Parses a `PYHEAP_MALLOC` value (`debug` means `pymalloc_debug`).
    pub fn parse(s: &[u8]) -> Option<Mode> {
        Some(match s {
            b"" | b"pymalloc" => Mode::Pymalloc,
            b"pymalloc_debug" | b"debug" => Mode::PymallocDebug,
            b"malloc" => Mode::Malloc,
            b"malloc_debug" => Mode::MallocDebug,
            _ => return None,
        })
    }
}

/// Puts every domain in allocator mode `m`: the default tables first (so a
/// mode set earlier is undone), then the mode's.
///
/// # Safety
/// Called before any allocation whose block would be freed afterwards.
pub unsafe fn set_mode(m: Mode) {
    // SAFETY: caller's contract.
    unsafe {
        let rt = runtime();
        rt.set_allocator(
            PyMemAllocatorDomain::PYMEM_DOMAIN_RAW,
            PyMemAllocatorEx::RAW,
        );
        rt.set_allocator(
            PyMemAllocatorDomain::PYMEM_DOMAIN_MEM,
            PyMemAllocatorEx::POOLED,
        );
        rt.set_allocator(
            PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ,
            PyMemAllocatorEx::POOLED,
        );
        if matches!(m, Mode::Malloc | Mode::MallocDebug) {
            rt.set_allocator(
                PyMemAllocatorDomain::PYMEM_DOMAIN_MEM,
                PyMemAllocatorEx::RAW,
            );
            rt.set_allocator(
                PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ,
                PyMemAllocatorEx::RAW,
            );
        }
        if matches!(m, Mode::PymallocDebug | Mode::MallocDebug) {
            setup_debug_hooks();
        }
    }
}
