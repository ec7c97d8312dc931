//! The executor: runs each step against the library and compares the heap
//! with the model after it.
//!
//! Checked after every step: every live object has the model's reference
//! count, type, slots, tracking and finalization state and weak reference
//! count; objects die exactly when the model says (the types' hooks log
//! deaths, finalizers and callbacks); weak references read their referent
//! or `None` as the model says; every live block holds its fill pattern and
//! no two live blocks or objects overlap; `PyHeap_GetAllocatedBlocks`, the
//! collector's counts, thresholds, long-lived totals, statistics and
//! generation lists match; every structure's invariants hold (the pool
//! heap's, the generation lists', the weak reference lists': what
//! `PyHeap_CheckHeap` checks); no error is left recorded. After a full
//! collection, the model checks itself: the trash there was before it is
//! gone, but for what finalizers resurrected.
//!
//! A case ends by emptying every slot, dropping every reference, freeing
//! every block and collecting, each a checked step; the heap must then be as
//! it was before the case. A case that fails is cleaned up from what the
//! driver really holds instead, so the next case starts clean.

use core::ffi::c_void;
use core::ptr;
use std::collections::{BTreeMap, BTreeSet};

use super::model::{Callback, MBlock, MGc, MKind, Model, Step};
use super::objects::{self, TestObject, as_test, take_events, types};
use super::ops::{Domain, Edge, Kind, NSLOTS, Op, WeakKind};
use crate::domains::runtime;
use crate::ffi::{gc as fgc, mem, object as fobj, stats, weakref as fweak};
use crate::gc::{self as gcm, list};
use crate::object::dealloc::{ObjectState, object_state};
use crate::object::layout::{GC_HEADER_SIZE, PyObject, PyTypeObject};
use crate::object::types::none;
use crate::weakref::{_PyWeakref_ProxyType, _PyWeakref_RefType, PyWeakReference};

/// How to run a case.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The debug hooks are installed: fresh memory must read 0xCD.
    pub debug_fill: bool,
}

/// What a case did (to see that generated cases reach what they should).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Steps run (the clean-up's included).
    pub steps: usize,
    /// Steps skipped (nothing to select, or not predictable).
    pub skipped: usize,
    /// Objects made (weak references included).
    pub objects: usize,
    /// Objects freed by collections.
    pub collected: usize,
    /// Weak reference callbacks called.
    pub callbacks: usize,
    /// Finalizers run.
    pub finalized: usize,
    /// Objects resurrected.
    pub resurrected: usize,
    /// Most objects alive at once.
    pub max_live: usize,
}

impl core::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Summary) {
        self.steps += o.steps;
        self.skipped += o.skipped;
        self.objects += o.objects;
        self.collected += o.collected;
        self.callbacks += o.callbacks;
        self.finalized += o.finalized;
        self.resurrected += o.resurrected;
        self.max_live = self.max_live.max(o.max_live);
    }
}

/// Runs `ops` as one case: every step checked, then everything released
/// and checked again. The runtime lock must be held. The error names the
/// step and what differed.
pub fn run(ops: &[Op], opts: Options) -> Result<Summary, String> {
    let mut ex = Executor::start(opts)?;
    let mut result = Ok(());
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = ex.step(op) {
            result = Err(format!("step {i} ({op:?}): {e}"));
            break;
        }
    }
    if result.is_ok() {
        result = ex.finish().map_err(|e| format!("clean-up: {e}"));
    }
    if result.is_err() {
        ex.salvage();
    }
    ex.restore();
    result.map(|()| ex.summary)
}

/// A case in progress.
struct Executor {
    model: Model,
    /// Object id → address (dead objects stay until their death is checked).
    ptrs: BTreeMap<u64, usize>,
    /// Block id → address and what the block should hold.
    blocks: BTreeMap<u64, (usize, Vec<u8>)>,
    /// The driver's references, as really held (same order as the model's).
    handles: Vec<usize>,
    /// Callback calls seen per weak reference id.
    calls: BTreeMap<u64, u32>,
    baseline: isize,
    saved_gc: (bool, [isize; 3]),
    opts: Options,
    summary: Summary,
}

fn gc_state() -> MGc {
    // SAFETY: runtime lock held; copies only.
    let g = unsafe { &runtime().gc };
    MGc {
        enabled: g.enabled,
        threshold: g.threshold,
        count: g.count,
        long_lived_total: g.long_lived_total,
        long_lived_pending: g.long_lived_pending,
        stats: [0, 1, 2].map(|i| (g.stats[i].collections, g.stats[i].collected)),
    }
}

/// Bytes every block's fill is cut from: block `id` holds, at offset `k`,
/// `BASE[id % 251 + k]` (compared with `memcmp`, which even an unoptimised
/// build does fast).
fn base() -> &'static [u8] {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        (0..MAX_FILL + 256)
            .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
            .collect()
    })
}

/// The largest block the operations make (sizes are at most 65,536 +
/// 65,535; zero-sized ones are filled up to 0 bytes).
const MAX_FILL: usize = 1 << 18;

fn pattern(id: u64, from: usize, to: usize) -> &'static [u8] {
    let off = (id % 251) as usize;
    &base()[off + from..off + to]
}

/// # Safety
/// `p` is a live block of at least `to` bytes.
unsafe fn fill(p: usize, id: u64, from: usize, to: usize) {
    // SAFETY: caller's contract.
    let s = unsafe { core::slice::from_raw_parts_mut(p as *mut u8, to) };
    s[from..].copy_from_slice(pattern(id, from, to));
}

/// The first byte of `p[from..to]` that differs from `want` (which has
/// `to - from` bytes), if any.
///
/// # Safety
/// `p` is a live block of at least `to` bytes.
unsafe fn differs(p: usize, from: usize, to: usize, want: &[u8]) -> Option<usize> {
    // SAFETY: caller's contract.
    let s = unsafe { &core::slice::from_raw_parts(p as *const u8, to)[from..] };
    if s == want {
        return None;
    }
    s.iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .map(|k| from + k)
}

/// # Safety
/// `p` is a live block of at least `to` bytes.
unsafe fn all_are(p: usize, from: usize, to: usize, byte: u8) -> Option<usize> {
    static CONST: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let c = CONST.get_or_init(|| [vec![0; MAX_FILL], vec![0xCD; MAX_FILL]]);
    let want = if byte == 0 { &c[0] } else { &c[1] };
    // SAFETY: caller's contract.
    unsafe { differs(p, from, to, &want[..to - from]) }
}

fn malloc(d: Domain, n: usize) -> *mut c_void {
    match d {
        Domain::Raw => mem::PyMem_RawMalloc(n),
        Domain::Mem => mem::PyMem_Malloc(n),
        Domain::Obj => mem::PyObject_Malloc(n),
    }
}

fn calloc(d: Domain, a: usize, b: usize) -> *mut c_void {
    match d {
        Domain::Raw => mem::PyMem_RawCalloc(a, b),
        Domain::Mem => mem::PyMem_Calloc(a, b),
        Domain::Obj => mem::PyObject_Calloc(a, b),
    }
}

/// # Safety
/// `p` is NULL or a live block of domain `d`.
unsafe fn realloc(d: Domain, p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe {
        match d {
            Domain::Raw => mem::PyMem_RawRealloc(p, n),
            Domain::Mem => mem::PyMem_Realloc(p, n),
            Domain::Obj => mem::PyObject_Realloc(p, n),
        }
    }
}

/// # Safety
/// `p` is NULL or a live block of domain `d`, not used afterwards.
unsafe fn free(d: Domain, p: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe {
        match d {
            Domain::Raw => mem::PyMem_RawFree(p),
            Domain::Mem => mem::PyMem_Free(p),
            Domain::Obj => mem::PyObject_Free(p),
        }
    }
}

const HUGE: usize = isize::MAX as usize + 1;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

impl Executor {
    fn start(opts: Options) -> Result<Self, String> {
        let _ = types();
        let _ = take_events();
        crate::error::clear();
        // SAFETY: runtime lock held; the borrow ends in this block.
        let leftover: Vec<usize> = unsafe {
            let g = &mut runtime().gc;
            (0..=3).map(|i| g.len(i)).collect()
        };
        let g = gc_state();
        let mut ex = Executor {
            model: Model::new(g),
            ptrs: BTreeMap::new(),
            blocks: BTreeMap::new(),
            handles: Vec::new(),
            calls: BTreeMap::new(),
            baseline: stats::PyHeap_GetAllocatedBlocks(),
            saved_gc: (g.enabled, g.threshold),
            opts,
            summary: Summary::default(),
        };
        if leftover.iter().any(|&n| n != 0) {
            ex.salvage();
            return Err(format!(
                "the heap is not clean at the start (tracked objects per generation: {leftover:?})"
            ));
        }
        Ok(ex)
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        let step = self.model.apply(op);
        self.run_step(&step)
    }

    fn run_step(&mut self, step: &Step) -> Result<(), String> {
        if std::env::var_os("PYHEAP_MODEL_TRACE").is_some() {
            // Debugging aid: each step with the model's live objects
            // (id, count, slots, tracked, generation) before it.
            let live: Vec<_> = self
                .model
                .live()
                .map(|(i, o)| (i, o.rc, o.slots, o.tracked, o.generation))
                .collect();
            eprintln!("step {step:?}\n  before: {live:?} ptrs {:x?}", self.ptrs);
        }
        let s = &mut self.summary;
        s.steps += 1;
        match step {
            Step::Skip => s.skipped += 1,
            Step::New { .. }
            | Step::Weak {
                result: Ok((_, true)),
                ..
            } => s.objects += 1,
            Step::Collect { found, .. } => s.collected += *found as usize,
            _ => {}
        }
        let direct = self.exec(step);
        // Whatever happened, the driver now owns the references that
        // finalizers gave it.
        let ev = take_events();
        let s = &mut self.summary;
        s.callbacks += ev.calls.len();
        s.finalized += ev.finalized.len();
        s.resurrected += ev.lazarus.len();
        s.max_live = s.max_live.max(self.model.live().count());
        let mut laz = ev.lazarus.clone();
        laz.sort_unstable();
        self.handles.extend(laz.iter().map(|&(_, p)| p));
        direct?;
        self.check(ev)
    }

    fn ptr(&self, id: u64) -> *mut PyObject {
        self.ptrs[&id] as *mut PyObject
    }

    fn exec(&mut self, step: &Step) -> Result<(), String> {
        match *step {
            Step::Skip => {}
            Step::Alloc { block, zeroed } => {
                let p = if zeroed {
                    calloc(block.domain, 1, block.size)
                } else {
                    malloc(block.domain, block.size)
                };
                self.new_block(block, p, zeroed)?;
            }
            Step::Realloc { block, size } => {
                self.intact(block)?;
                let (p, mut want) = self.blocks.remove(&block.id).unwrap();
                // SAFETY: p is a live block of this domain.
                let q = unsafe { realloc(block.domain, p as *mut c_void, size) } as usize;
                if q == 0 {
                    self.blocks.insert(block.id, (p, want));
                    return Err(format!("realloc to {size} failed"));
                }
                let keep = block.size.min(size);
                want.truncate(keep);
                want.extend_from_slice(pattern(block.id, keep, size));
                self.blocks.insert(block.id, (q, want));
                ensure!(q % 16 == 0, "realloc gave {q:#x}, not 16-byte aligned");
                let want = &self.blocks[&block.id].1;
                // SAFETY: q is a live block of `size` bytes.
                unsafe {
                    if let Some(k) = differs(q, 0, keep, &want[..keep]) {
                        return Err(format!("realloc lost byte {k} of {keep} kept"));
                    }
                    if self.opts.debug_fill && size > block.size {
                        if let Some(k) = all_are(q, block.size, size, 0xCD) {
                            return Err(format!("grown byte {k} is not 0xCD"));
                        }
                    }
                    fill(q, block.id, keep, size);
                }
            }
            Step::Free { block } => {
                self.intact(block)?;
                let (p, _) = self.blocks.remove(&block.id).unwrap();
                // SAFETY: a live block of this domain, freed once.
                unsafe { free(block.domain, p as *mut c_void) };
            }
            Step::Fill { block, byte } => {
                self.intact(block)?;
                let (p, want) = self.blocks.get_mut(&block.id).unwrap();
                // SAFETY: a live block of block.size bytes.
                unsafe { ptr::write_bytes(*p as *mut u8, byte, block.size) };
                want.fill(byte);
            }
            Step::Edge {
                domain,
                edge,
                block,
            } => self.edge(domain, edge, block)?,
            Step::New {
                id,
                kind,
                resurrect,
            } => {
                // SAFETY: runtime lock held.
                let p = unsafe { objects::new_object(kind, id, resurrect) };
                ensure!(!p.is_null(), "creating a {kind:?} failed");
                self.ptrs.insert(id, p as usize);
                self.handles.push(p as usize);
            }
            Step::Dup { id } => {
                let p = self.ptr(id);
                // SAFETY: p is live (the model holds a reference).
                unsafe { fobj::Py_IncRef(p) };
                self.handles.push(p as usize);
            }
            Step::Drop { id, index } => {
                ensure!(
                    self.handles.get(index) == self.ptrs.get(&id),
                    "handle {index} is not #{id}"
                );
                let p = self.handles.remove(index);
                // SAFETY: the driver owns this reference.
                unsafe { fobj::Py_DecRef(p as *mut PyObject) };
            }
            Step::Link { src, slot, dst } => {
                let s = as_test(self.ptr(src));
                let d = dst.map_or(ptr::null_mut(), |d| self.ptr(d));
                // SAFETY: s is a live test object; d NULL or live; the old
                // reference is dropped after the slot holds the new one.
                unsafe {
                    if !d.is_null() {
                        fobj::Py_IncRef(d);
                    }
                    let old = (*s).slots[slot];
                    (*s).slots[slot] = d;
                    if !old.is_null() {
                        fobj::Py_DecRef(old);
                    }
                }
            }
            Step::Load { src, slot, id } => {
                let s = as_test(self.ptr(src));
                // SAFETY: s is a live test object.
                let t = unsafe { (*s).slots[slot] };
                ensure!(
                    t == self.ptr(id),
                    "slot {slot} of #{src} holds {t:p}, not #{id}"
                );
                // SAFETY: t is live (the slot holds it).
                unsafe { fobj::Py_IncRef(t) };
                self.handles.push(t as usize);
            }
            Step::Weak {
                target,
                kind,
                result,
            } => {
                let p = self.ptr(target);
                let ctx = result.map_or(0, |(id, _)| id) as usize as *mut c_void;
                // SAFETY: p is live; the callback's ctx is a plain number.
                let r = unsafe {
                    match kind {
                        WeakKind::Ref => fweak::PyWeakref_NewRef(p, ptr::null_mut()),
                        WeakKind::Proxy => fweak::PyWeakref_NewProxy(p, ptr::null_mut()),
                        WeakKind::Callback => fweak::PyHeap_Weakref_NewRefWithCallback(
                            p,
                            Some(objects::weak_callback),
                            ctx,
                        ),
                    }
                };
                match result {
                    Err(()) => {
                        ensure!(r.is_null(), "a weak reference to #{target} was made");
                        expect_error(crate::error::PyHeap_ErrorKind::PYHEAP_ERR_TYPE)?;
                    }
                    Ok((id, new)) => {
                        ensure!(!r.is_null(), "no weak reference to #{target}");
                        if new {
                            let clash = self
                                .model
                                .live()
                                .any(|(i, _)| self.ptrs.get(&i) == Some(&(r as usize)));
                            ensure!(!clash, "a new weak reference at a live object's address");
                            self.ptrs.insert(id, r as usize);
                        } else {
                            ensure!(
                                r == self.ptr(id),
                                "the basic {kind:?} of #{target} was not shared"
                            );
                        }
                        self.handles.push(r as usize);
                    }
                }
            }
            Step::Deref {
                weak,
                result,
                referent,
            } => {
                let p = self.ptr(weak);
                let mut out: *mut PyObject = ptr::null_mut();
                // SAFETY: p is live; out is writable.
                let r = unsafe { fweak::PyWeakref_GetRef(p, &mut out) };
                ensure!(r == result, "PyWeakref_GetRef gave {r}, not {result}");
                match r {
                    1 => {
                        let want = self.ptr(referent.unwrap());
                        ensure!(out == want, "PyWeakref_GetRef gave {out:p}, not {want:p}");
                        self.handles.push(out as usize);
                    }
                    0 => ensure!(out.is_null(), "PyWeakref_GetRef gave an object for 0"),
                    _ => expect_error(crate::error::PyHeap_ErrorKind::PYHEAP_ERR_TYPE)?,
                }
            }
            Step::Track { id } => {
                // SAFETY: a live, untracked GC object.
                unsafe { fobj::PyObject_GC_Track(self.ptr(id).cast()) }
            }
            Step::Untrack { id } => {
                // SAFETY: a live GC object.
                unsafe { fobj::PyObject_GC_UnTrack(self.ptr(id).cast()) }
            }
            Step::Collect { generation, found } => {
                let n = fgc::PyHeap_GC_Collect(generation as i32);
                ensure!(
                    n == found,
                    "collecting generation {generation} found {n}, not {found}"
                );
            }
            Step::Freeze => fgc::PyHeap_GC_Freeze(),
            Step::Unfreeze => fgc::PyHeap_GC_Unfreeze(),
            Step::SetGc { enabled, threshold } => {
                if enabled {
                    fgc::PyGC_Enable();
                } else {
                    fgc::PyGC_Disable();
                }
                fgc::PyHeap_GC_SetThreshold(threshold[0], threshold[1], threshold[2]);
            }
        }
        Ok(())
    }

    fn new_block(&mut self, block: MBlock, p: *mut c_void, zeroed: bool) -> Result<(), String> {
        let p = p as usize;
        ensure!(p != 0, "allocating {} bytes failed", block.size);
        ensure!(p % 16 == 0, "{p:#x} is not 16-byte aligned");
        // SAFETY: p is a fresh block of block.size bytes.
        unsafe {
            if zeroed {
                if let Some(k) = all_are(p, 0, block.size, 0) {
                    return Err(format!("calloc byte {k} is not zero"));
                }
            } else if self.opts.debug_fill {
                if let Some(k) = all_are(p, 0, block.size, 0xCD) {
                    return Err(format!("fresh byte {k} is not 0xCD"));
                }
            }
            fill(p, block.id, 0, block.size);
        }
        let want = pattern(block.id, 0, block.size).to_vec();
        self.blocks.insert(block.id, (p, want));
        Ok(())
    }

    fn intact(&self, block: MBlock) -> Result<(), String> {
        let (p, want) = &self.blocks[&block.id];
        let p = *p;
        // SAFETY: p is a live block of block.size bytes.
        match unsafe { differs(p, 0, block.size, want) } {
            Some(k) => Err(format!(
                "block #{} ({:?}, {} bytes at {p:#x}): byte {k} changed",
                block.id, block.domain, block.size
            )),
            None => Ok(()),
        }
    }

    fn edge(&mut self, d: Domain, edge: Edge, block: Option<MBlock>) -> Result<(), String> {
        match edge {
            // SAFETY: free(NULL) is allowed.
            Edge::FreeNull => unsafe { free(d, ptr::null_mut()) },
            Edge::ReallocNull(_) => {
                let b = block.unwrap();
                // SAFETY: realloc(NULL, n) is malloc.
                let p = unsafe { realloc(d, ptr::null_mut(), b.size) };
                self.new_block(b, p, false)?;
            }
            Edge::MallocHuge => {
                ensure!(
                    malloc(d, HUGE).is_null(),
                    "malloc(PY_SSIZE_T_MAX + 1) gave memory"
                );
            }
            Edge::CallocOverflow => {
                ensure!(
                    calloc(d, usize::MAX / 2 + 1, 2).is_null() && calloc(d, HUGE, 1).is_null(),
                    "an overflowing calloc gave memory"
                );
            }
            Edge::CallocZero(n) => {
                let b = block.unwrap();
                let p = if n % 2 == 0 {
                    calloc(d, 0, n)
                } else {
                    calloc(d, n, 0)
                };
                self.new_block(b, p, true)?;
            }
            Edge::ReallocHuge(_) => {
                let b = block.unwrap();
                let p = self.blocks[&b.id].0;
                // SAFETY: p is a live block of this domain.
                let q = unsafe { realloc(d, p as *mut c_void, HUGE) };
                ensure!(q.is_null(), "realloc to PY_SSIZE_T_MAX + 1 gave memory");
                self.intact(b)?;
            }
        }
        crate::error::clear();
        Ok(())
    }

    fn check(&mut self, ev: objects::Events) -> Result<(), String> {
        let m = &self.model;
        m.check_consistency()?;
        ensure!(ev.wrong.is_empty(), "{}", ev.wrong.join("; "));
        // Deaths, finalizers, resurrections and callbacks, as the model says.
        let sorted = |mut v: Vec<u64>| {
            v.sort_unstable();
            v
        };
        let want_died = sorted(
            m.died
                .iter()
                .copied()
                .filter(|&i| matches!(m.obj(i).kind, MKind::Obj(_)))
                .collect(),
        );
        ensure!(
            sorted(ev.died.clone()) == want_died,
            "objects freed: {:?}, model: {want_died:?}",
            sorted(ev.died)
        );
        let want_fin = sorted(m.finalized.clone());
        ensure!(
            sorted(ev.finalized.clone()) == want_fin,
            "finalized: {:?}, model: {want_fin:?}",
            sorted(ev.finalized)
        );
        let laz: Vec<u64> = sorted(ev.lazarus.iter().map(|&(i, _)| i).collect());
        ensure!(
            laz == m.lazarus,
            "resurrected: {laz:?}, model: {:?}",
            m.lazarus
        );
        for &(i, p) in &ev.lazarus {
            ensure!(self.ptrs.get(&i) == Some(&p), "#{i} resurrected at {p:#x}");
        }
        for &w in &ev.calls {
            *self.calls.entry(w).or_insert(0) += 1;
        }
        for (&w, o) in &m.objs {
            if o.kind != MKind::Weak(WeakKind::Callback) {
                continue;
            }
            let got = self.calls.get(&w).copied().unwrap_or(0);
            if o.calls_maybe {
                ensure!(got <= 1, "callback of #{w} called {got} times");
            } else {
                ensure!(
                    got == o.calls,
                    "callback of #{w} called {got} times, model: {}",
                    o.calls
                );
            }
        }
        // The driver's references.
        ensure!(
            self.handles.len() == m.handles.len()
                && self
                    .handles
                    .iter()
                    .zip(&m.handles)
                    .all(|(&p, h)| self.ptrs.get(h) == Some(&p)),
            "the driver's references differ from the model's"
        );
        self.check_objects()?;
        self.check_dead()?;
        self.check_gc()?;
        self.check_memory()?;
        let m = &self.model;
        let want = self.baseline + m.allocated_blocks() as isize;
        let got = stats::PyHeap_GetAllocatedBlocks();
        ensure!(got == want, "{got} blocks allocated, model: {want}");
        let plain = types().of(Kind::Plain);
        // SAFETY: the heap type is alive for ever.
        let rc = unsafe { (*plain).ob_base.ob_base.ob_refcnt };
        let want = types().plain_refs() + m.count_kind(MKind::Obj(Kind::Plain)) as isize;
        ensure!(rc == want, "type Plain has count {rc}, model: {want}");
        if let Some(e) = crate::error::last() {
            return Err(format!("an error is left recorded: {e}"));
        }
        ensure!(
            m.oracle_errors().is_empty(),
            "{}",
            m.oracle_errors().join("; ")
        );
        Ok(())
    }

    fn check_objects(&self) -> Result<(), String> {
        let m = &self.model;
        let t = types();
        for (id, o) in m.live() {
            let p = self.ptr(id);
            // SAFETY: the model says p is a live object; every read below
            // is of its header or of a field of its type's layout.
            unsafe {
                let rc = (*p).ob_refcnt;
                ensure!(rc == o.rc as isize, "#{id} has count {rc}, model: {}", o.rc);
                let tp = (*p).ob_type;
                let want_tp: *mut PyTypeObject = match o.kind {
                    MKind::Obj(k) => t.of(k),
                    MKind::Weak(WeakKind::Proxy) => &raw mut _PyWeakref_ProxyType,
                    MKind::Weak(_) => &raw mut _PyWeakref_RefType,
                };
                ensure!(tp == want_tp, "#{id} has the wrong type");
                let tracked = fobj::PyObject_GC_IsTracked(p) != 0;
                ensure!(
                    tracked == o.tracked,
                    "#{id} tracked: {tracked}, model: {}",
                    o.tracked
                );
                match o.kind {
                    MKind::Obj(k) => {
                        let to = as_test(p);
                        ensure!((*to).id == id, "#{id} reads id {}", (*to).id);
                        for s in 0..NSLOTS {
                            let want = o.slots[s].map_or(ptr::null_mut(), |x| self.ptr(x));
                            ensure!(
                                (*to).slots[s] == want,
                                "slot {s} of #{id} is {:p}, model: {:?}",
                                (*to).slots[s],
                                o.slots[s]
                            );
                        }
                        if k == Kind::FinNode {
                            let f = fobj::PyObject_GC_IsFinalized(p) != 0;
                            ensure!(
                                f == o.finalized,
                                "#{id} finalized: {f}, model: {}",
                                o.finalized
                            );
                        }
                        let n = fweak::PyHeap_Weakref_Count(p);
                        ensure!(
                            n == o.weakrefs.len() as isize,
                            "#{id} has {n} weak references, model: {:?}",
                            o.weakrefs
                        );
                    }
                    MKind::Weak(_) => {
                        let r = fweak::PyWeakref_GetObject(p);
                        let want = o.referent.map_or(none(), |x| self.ptr(x));
                        ensure!(
                            r == want,
                            "weak reference #{id} reads {r:p}, model: {:?}",
                            o.referent
                        );
                        let cb = !(*p.cast::<PyWeakReference>()).wr_callback.is_null();
                        let want_cb =
                            matches!(o.callback, Callback::Attached | Callback::CalledKept);
                        ensure!(
                            cb == want_cb,
                            "weak reference #{id} has a callback: {cb}, model: {:?}",
                            o.callback
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Objects that died in this step: test objects were seen dying; weak
    /// references must be gone from the heap (unless their memory now
    /// holds another live object). Their addresses are then forgotten.
    fn check_dead(&mut self) -> Result<(), String> {
        let live: BTreeSet<usize> = self
            .model
            .live()
            .filter_map(|(i, _)| self.ptrs.get(&i).copied())
            .collect();
        for &id in &self.model.died {
            let Some(p) = self.ptrs.remove(&id) else {
                continue;
            };
            if matches!(self.model.obj(id).kind, MKind::Weak(_)) && !live.contains(&p) {
                ensure!(
                    object_state(p as *mut PyObject) != ObjectState::Live,
                    "weak reference #{id} should be dead, but is still an object"
                );
            }
        }
        Ok(())
    }

    fn check_gc(&self) -> Result<(), String> {
        let m = &self.model;
        let g = gc_state();
        ensure!(g == m.gc, "collector state {g:?}, model: {:?}", m.gc);
        let by_addr: BTreeMap<usize, u64> = m
            .live()
            .filter_map(|(i, _)| self.ptrs.get(&i).map(|&p| (p, i)))
            .collect();
        let limit = by_addr.len() + 1;
        for generation in 0..=3 {
            // SAFETY: runtime lock held and no collection running: each list
            // is well formed (checked as it is walked, every element found
            // among the live objects before it is read).
            let found = unsafe {
                let head = runtime().gc.head(generation);
                let mut ids = BTreeSet::new();
                let mut prev = head;
                let mut g = list::next(head);
                while g != head {
                    ensure!(
                        ids.len() < limit,
                        "generation {generation}: a cycle in the list"
                    );
                    let op = gcm::from_gc(g);
                    let Some(&id) = by_addr.get(&(op as usize)) else {
                        return Err(format!(
                            "generation {generation} holds {op:p}, not a live model object"
                        ));
                    };
                    ensure!(
                        list::prev(g) == prev,
                        "generation {generation}: #{id} links back wrongly"
                    );
                    ensure!(
                        (*g)._gc_prev & gcm::PREV_MASK_COLLECTING == 0
                            && (*g)._gc_next & gcm::NEXT_MASK_UNREACHABLE == 0,
                        "generation {generation}: #{id} carries a collection mark"
                    );
                    ids.insert(id);
                    prev = g;
                    g = list::next(g);
                }
                ensure!(
                    list::prev(head) == prev,
                    "generation {generation}: the head links back wrongly"
                );
                ids
            };
            let want = m.generation(generation);
            ensure!(
                found == want,
                "generation {generation} holds {found:?}, model: {want:?}"
            );
        }
        Ok(())
    }

    fn check_memory(&self) -> Result<(), String> {
        let m = &self.model;
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        for b in &m.blocks {
            self.intact(*b)?;
            let p = self.blocks[&b.id].0;
            spans.push((p, p + b.size.max(1), format!("block #{}", b.id)));
        }
        for (id, o) in m.live() {
            let p = self.ptrs[&id];
            let (pre, size) = match o.kind {
                MKind::Obj(k) => (
                    if k.is_gc() { GC_HEADER_SIZE } else { 0 },
                    core::mem::size_of::<TestObject>(),
                ),
                MKind::Weak(_) => (GC_HEADER_SIZE, core::mem::size_of::<PyWeakReference>()),
            };
            spans.push((p - pre, p + size, format!("object #{id}")));
        }
        spans.sort();
        for w in spans.windows(2) {
            ensure!(
                w[0].1 <= w[1].0,
                "{} [{:#x}, {:#x}) overlaps {} at {:#x}",
                w[0].2,
                w[0].0,
                w[0].1,
                w[1].2,
                w[1].0
            );
        }
        // Every structure's invariants (pool heap, generation lists, weak
        // reference lists), as `PyHeap_CheckHeap` checks them.
        // SAFETY: runtime lock held; no other borrow of the runtime is live.
        crate::check::check_heap(unsafe { runtime() })
    }

    /// Releases everything the case made, each step checked; then the heap
    /// must be as it was at the start.
    fn finish(&mut self) -> Result<(), String> {
        let t = self
            .saved_gc
            .1
            .map(|x| x.clamp(0, u16::MAX as isize) as u16);
        self.step(&Op::SetGc {
            enabled: false,
            threshold: t,
        })?;
        self.step(&Op::Unfreeze)?;
        // First every reference the driver holds, and a full collection:
        // the object graphs the case built become garbage at once.
        self.drop_all()?;
        self.step(&Op::Collect { generation: 2 })?;
        // Then what no collection frees (untracked objects, cycles through
        // non-GC objects, objects resurrected meanwhile): every slot
        // emptied.
        loop {
            let full: Vec<(u64, usize)> = self
                .model
                .live()
                .flat_map(|(i, o)| {
                    (0..NSLOTS)
                        .filter(|&s| o.slots[s].is_some())
                        .map(move |s| (i, s))
                })
                .collect();
            let Some(&(id, slot)) = full.first() else {
                break;
            };
            let step = self.model.clear_slot(id, slot);
            ensure!(
                step != Step::Skip,
                "emptying slot {slot} of #{id} was skipped"
            );
            self.run_step(&step)?;
        }
        self.drop_all()?;
        while !self.model.blocks.is_empty() {
            self.step(&Op::Free { block: 0 })?;
        }
        self.step(&Op::Collect { generation: 2 })?;
        if let Some((id, _)) = self.model.live().next() {
            return Err(format!("#{id} is still alive"));
        }
        let got = stats::PyHeap_GetAllocatedBlocks();
        ensure!(
            got == self.baseline,
            "{got} blocks allocated after the clean-up, {} before the case",
            self.baseline
        );
        Ok(())
    }

    fn drop_all(&mut self) -> Result<(), String> {
        while !self.model.handles.is_empty() {
            let h = self.model.handles.len() - 1;
            self.step(&Op::Drop { h })?;
        }
        Ok(())
    }

    /// After a failure: releases what the driver really holds, so the next
    /// case starts clean (best effort; nothing here trusts the model).
    fn salvage(&mut self) {
        fgc::PyGC_Disable();
        fgc::PyHeap_GC_Unfreeze();
        let is_ours = |p: usize| {
            object_state(p as *mut PyObject) == ObjectState::Live
                // SAFETY: p is a live object.
                && types().kind_of(unsafe { (*(p as *mut PyObject)).ob_type }).is_some()
        };
        let addrs: Vec<usize> = self.ptrs.values().copied().collect();
        for &p in &addrs {
            if is_ours(p) {
                let o = p as *mut TestObject;
                for s in 0..NSLOTS {
                    // SAFETY: p is a live test object (checked again before
                    // each slot: clearing one may free it).
                    unsafe {
                        if !is_ours(p) {
                            break;
                        }
                        let x = (*o).slots[s];
                        if !x.is_null() {
                            (*o).slots[s] = ptr::null_mut();
                            fobj::Py_DecRef(x);
                        }
                    }
                }
            }
        }
        for _ in 0..3 {
            for p in core::mem::take(&mut self.handles).into_iter().rev() {
                if object_state(p as *mut PyObject) == ObjectState::Live {
                    // SAFETY: a live object whose reference the driver owns.
                    unsafe { fobj::Py_DecRef(p as *mut PyObject) };
                }
            }
            let ev = take_events();
            self.handles.extend(ev.lazarus.iter().map(|&(_, p)| p));
        }
        for b in &self.model.blocks {
            if let Some((p, _)) = self.blocks.remove(&b.id) {
                // SAFETY: a live block of this domain.
                unsafe { free(b.domain, p as *mut c_void) };
            }
        }
        fgc::PyHeap_GC_Collect(2);
        let _ = take_events();
        crate::error::clear();
    }

    fn restore(&mut self) {
        let (enabled, t) = self.saved_gc;
        if enabled {
            fgc::PyGC_Enable();
        } else {
            fgc::PyGC_Disable();
        }
        fgc::PyHeap_GC_SetThreshold(t[0], t[1], t[2]);
    }
}

fn expect_error(kind: crate::error::PyHeap_ErrorKind) -> Result<(), String> {
    let e = crate::error::last();
    crate::error::clear();
    match e {
        Some(e) if e.kind() == kind => Ok(()),
        other => Err(format!("expected a {kind:?} error, got {other:?}")),
    }
}
