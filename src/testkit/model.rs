//! The reference model: what the heap should hold after each operation,
//! computed without pointers. Objects have ids; the driver's references
//! (handles) and the objects' slots are the only strong references, so an
//! object's reference count is the number of handles to it plus the number
//! of live objects' slots holding it. The collector is modelled as CPython
//! describes it (a generation's objects, their references from outside it,
//! what they reach), weak references as CPython clears them, and the
//! counters the `gc` module shows as `gcmodule.c` keeps them.
//!
//! A few outcomes depend on an order the model does not know: the order in
//! which a collection clears its garbage, or how the trashcan reorders very
//! deep deallocations. There only one thing can differ: whether a weak
//! reference that dies in the same step as its referent had its callback
//! called first. The model marks those callbacks "maybe" instead of
//! guessing.

use std::collections::{BTreeMap, BTreeSet};

use super::ops::{Domain, Edge, Kind, NSLOTS, Op, WeakKind};

/// An object's (or block's) id.
pub type Id = u64;

/// Nested deallocations past which the trashcan defers, and the model stops
/// knowing the order of deaths.
const TRASHCAN_DEPTH: usize = 45;

/// What an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MKind {
    /// A test object.
    Obj(Kind),
    /// A weak reference (reference or proxy).
    Weak(WeakKind),
}

impl MKind {
    /// Managed by the collector.
    pub fn is_gc(self) -> bool {
        match self {
            MKind::Obj(k) => k.is_gc(),
            MKind::Weak(_) => true,
        }
    }
}

/// The C callback object a weak reference may own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// No callback.
    None,
    /// Owned, not called.
    Attached,
    /// Called by a collection and still owned by the weak reference.
    CalledKept,
    /// Released.
    Gone,
}

/// One object.
#[derive(Clone, Debug)]
pub struct MObj {
    /// Its type.
    pub kind: MKind,
    /// Not yet deallocated.
    pub alive: bool,
    /// Its reference count.
    pub rc: usize,
    /// References it owns.
    pub slots: [Option<Id>; NSLOTS],
    /// Tracked by the collector.
    pub tracked: bool,
    /// Its generation when tracked (3: permanent).
    pub generation: usize,
    /// Its finalizer ran.
    pub finalized: bool,
    /// Its finalizer resurrects it.
    pub resurrect: bool,
    /// Weak references attached to it (as referent).
    pub weakrefs: Vec<Id>,
    /// A weak reference's referent while attached.
    pub referent: Option<Id>,
    /// A weak reference's first referent.
    pub first_referent: Option<Id>,
    /// A weak reference's callback object.
    pub callback: Callback,
    /// Times a weak reference's callback was called.
    pub calls: u32,
    /// The call count is not known (see the module docs).
    pub calls_maybe: bool,
}

impl MObj {
    fn new(kind: MKind, resurrect: bool) -> Self {
        MObj {
            kind,
            alive: true,
            rc: 1,
            slots: [None; NSLOTS],
            tracked: kind.is_gc(),
            generation: 0,
            finalized: false,
            resurrect,
            weakrefs: Vec::new(),
            referent: None,
            first_referent: None,
            callback: Callback::None,
            calls: 0,
            calls_maybe: false,
        }
    }

    /// Counted by `PyHeap_GetAllocatedBlocks` with its callback object.
    fn blocks(&self) -> usize {
        if !self.alive {
            return 0;
        }
        1 + usize::from(matches!(
            self.callback,
            Callback::Attached | Callback::CalledKept
        ))
    }
}

/// A memory block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MBlock {
    /// Its id (its fill pattern is a function of it).
    pub id: Id,
    /// Its domain.
    pub domain: Domain,
    /// Its size.
    pub size: usize,
}

/// The collector's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MGc {
    /// Automatic collection on.
    pub enabled: bool,
    /// Thresholds.
    pub threshold: [isize; 3],
    /// Counts.
    pub count: [isize; 3],
    /// Survivors of the last full collection.
    pub long_lived_total: isize,
    /// Survivors of generation-1 collections since.
    pub long_lived_pending: isize,
    /// Per generation: collections and objects collected.
    pub stats: [(isize, isize); 3],
}

/// A step with its operands resolved, and what the call should return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do (nothing to select, or an outcome the model cannot
    /// predict).
    Skip,
    /// A new block.
    Alloc {
        /// The block.
        block: MBlock,
        /// calloc.
        zeroed: bool,
    },
    /// `realloc(block, size)`.
    Realloc {
        /// The block before.
        block: MBlock,
        /// The new size.
        size: usize,
    },
    /// `free(block)`.
    Free {
        /// The block.
        block: MBlock,
    },
    /// Every byte of `block` set to `byte` (by the driver, not pyheap).
    Fill {
        /// The block.
        block: MBlock,
        /// The byte.
        byte: u8,
    },
    /// An edge case; `block` is the new block (`ReallocNull`,
    /// `CallocZero`) or the block given (`ReallocHuge`).
    Edge {
        /// The domain.
        domain: Domain,
        /// The case.
        edge: Edge,
        /// The block made or used.
        block: Option<MBlock>,
    },
    /// A new object.
    New {
        /// Its id.
        id: Id,
        /// Its type.
        kind: Kind,
        /// Resurrecting finalizer.
        resurrect: bool,
    },
    /// A new reference to `id`.
    Dup {
        /// The object.
        id: Id,
    },
    /// The driver's reference at `index` (to `id`) dropped.
    Drop {
        /// The object.
        id: Id,
        /// Its position among the driver's references.
        index: usize,
    },
    /// `src.slots[slot] = dst`.
    Link {
        /// The container.
        src: Id,
        /// The slot.
        slot: usize,
        /// The new target.
        dst: Option<Id>,
    },
    /// A new reference to `id`, read from `src.slots[slot]`.
    Load {
        /// The container.
        src: Id,
        /// The slot.
        slot: usize,
        /// What it holds.
        id: Id,
    },
    /// A weak reference to `target`: `Ok((id, new))`, or Err for a type
    /// without weak references (NULL and a `TypeError`).
    Weak {
        /// The referent.
        target: Id,
        /// What kind.
        kind: WeakKind,
        /// The result.
        result: Result<(Id, bool), ()>,
    },
    /// `PyWeakref_GetRef(weak)`: 1 (and the referent), 0, or -1 (not a
    /// weak reference).
    Deref {
        /// The object given.
        weak: Id,
        /// The result.
        result: i32,
        /// The referent when 1.
        referent: Option<Id>,
    },
    /// Track `id`.
    Track {
        /// The object.
        id: Id,
    },
    /// Untrack `id`.
    Untrack {
        /// The object.
        id: Id,
    },
    /// A collection that finds `found` unreachable objects.
    Collect {
        /// The generation.
        generation: usize,
        /// The result.
        found: isize,
    },
    /// `gc.freeze()`.
    Freeze,
    /// `gc.unfreeze()`.
    Unfreeze,
    /// Automatic collection settings.
    SetGc {
        /// On or off.
        enabled: bool,
        /// Thresholds.
        threshold: [isize; 3],
    },
}

/// The model.
#[derive(Clone, Debug)]
pub struct Model {
    /// Every object ever made in this case, dead ones included.
    pub objs: BTreeMap<Id, MObj>,
    /// The driver's strong references.
    pub handles: Vec<Id>,
    /// Live memory blocks.
    pub blocks: Vec<MBlock>,
    /// The collector's counters.
    pub gc: MGc,
    next_id: Id,
    /// Objects that died in this step.
    pub died: Vec<Id>,
    /// Finalizers run in this step.
    pub finalized: Vec<Id>,
    /// Objects resurrected in this step (their handles are added at its
    /// end, by id).
    pub lazarus: Vec<Id>,
    in_gc: bool,
    /// The model's own oracle failed (a full collection left trash).
    oracle: Vec<String>,
    depth: usize,
    order_unknown: bool,
    ambiguous: bool,
    count0_at_start: isize,
}

impl Model {
    /// An empty model; the collector's counters as they are now.
    pub fn new(gc: MGc) -> Self {
        Model {
            objs: BTreeMap::new(),
            handles: Vec::new(),
            blocks: Vec::new(),
            gc,
            next_id: 1,
            died: Vec::new(),
            finalized: Vec::new(),
            lazarus: Vec::new(),
            in_gc: false,
            oracle: Vec::new(),
            depth: 0,
            order_unknown: false,
            ambiguous: false,
            count0_at_start: 0,
        }
    }

    /// The object `id`.
    pub fn obj(&self, id: Id) -> &MObj {
        &self.objs[&id]
    }

    fn obj_mut(&mut self, id: Id) -> &mut MObj {
        self.objs.get_mut(&id).expect("model object")
    }

    fn fresh_id(&mut self) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Live objects, by id.
    pub fn live(&self) -> impl Iterator<Item = (Id, &MObj)> {
        self.objs
            .iter()
            .filter(|(_, o)| o.alive)
            .map(|(&i, o)| (i, o))
    }

    /// Blocks `PyHeap_GetAllocatedBlocks` should count beyond the baseline.
    pub fn allocated_blocks(&self) -> usize {
        let mem = self
            .blocks
            .iter()
            .filter(|b| b.domain != Domain::Raw)
            .count();
        mem + self.objs.values().map(MObj::blocks).sum::<usize>()
    }

    /// Live objects of `kind`.
    pub fn count_kind(&self, kind: MKind) -> usize {
        self.live().filter(|(_, o)| o.kind == kind).count()
    }

    /// Tracked objects of generation `g` (3: permanent).
    pub fn generation(&self, g: usize) -> BTreeSet<Id> {
        self.live()
            .filter(|(_, o)| o.tracked && o.generation == g)
            .map(|(i, _)| i)
            .collect()
    }

    fn new_block(&mut self, domain: Domain, size: usize) -> MBlock {
        let b = MBlock {
            id: self.fresh_id(),
            domain,
            size,
        };
        self.blocks.push(b);
        b
    }

    fn pick<T: Copy>(v: &[T], sel: usize) -> Option<T> {
        (!v.is_empty()).then(|| v[sel % v.len()])
    }

    /// Applies `op`, returning the resolved step (what the executor does
    /// and should see). An operation whose outcome the model cannot predict
    /// (see [`Step::Skip`]) changes nothing.
    pub fn apply(&mut self, op: &Op) -> Step {
        let mut trial = self.clone();
        trial.died.clear();
        trial.finalized.clear();
        trial.lazarus.clear();
        trial.order_unknown = false;
        trial.ambiguous = false;
        trial.count0_at_start = trial.gc.count[0];
        let step = trial.apply_inner(op);
        if trial.ambiguous {
            self.died.clear();
            self.finalized.clear();
            self.lazarus.clear();
            return Step::Skip;
        }
        trial.finish_step();
        *self = trial;
        step
    }

    /// The end of a step: resurrected objects become the driver's, by id;
    /// callbacks whose order is unknown become "maybe".
    fn finish_step(&mut self) {
        self.lazarus.sort_unstable();
        let laz = self.lazarus.clone();
        self.handles.extend(laz);
        if self.order_unknown {
            let died: BTreeSet<Id> = self.died.iter().copied().collect();
            for w in self.died.clone() {
                let o = &self.objs[&w];
                if matches!(o.kind, MKind::Weak(WeakKind::Callback))
                    && o.first_referent.is_some_and(|r| died.contains(&r))
                {
                    self.obj_mut(w).calls_maybe = true;
                }
            }
        }
    }

    fn apply_inner(&mut self, op: &Op) -> Step {
        match *op {
            Op::Alloc {
                domain,
                size,
                zeroed,
            } => Step::Alloc {
                block: self.new_block(domain, size),
                zeroed,
            },
            Op::Realloc { block, size } => {
                let Some(b) = Self::pick(&self.blocks, block) else {
                    return Step::Skip;
                };
                let i = self.blocks.iter().position(|x| x.id == b.id).unwrap();
                self.blocks[i].size = size;
                Step::Realloc { block: b, size }
            }
            Op::Free { block } => {
                let Some(b) = Self::pick(&self.blocks, block) else {
                    return Step::Skip;
                };
                self.blocks.retain(|x| x.id != b.id);
                Step::Free { block: b }
            }
            Op::Fill { block, byte } => match Self::pick(&self.blocks, block) {
                Some(b) => Step::Fill { block: b, byte },
                None => Step::Skip,
            },
            Op::Edge { domain, edge } => {
                let block = match edge {
                    Edge::ReallocNull(n) | Edge::CallocZero(n) => Some(
                        self.new_block(domain, if let Edge::CallocZero(_) = edge { 0 } else { n }),
                    ),
                    Edge::ReallocHuge(sel) => {
                        let mine: Vec<MBlock> = self
                            .blocks
                            .iter()
                            .filter(|b| b.domain == domain)
                            .copied()
                            .collect();
                        match Self::pick(&mine, sel) {
                            Some(b) => Some(b),
                            None => return Step::Skip,
                        }
                    }
                    Edge::FreeNull | Edge::MallocHuge | Edge::CallocOverflow => None,
                };
                Step::Edge {
                    domain,
                    edge,
                    block,
                }
            }
            Op::New { kind, resurrect } => {
                if kind.is_gc() {
                    self.gc_link();
                }
                let id = self.fresh_id();
                let resurrect = resurrect && kind == Kind::FinNode;
                self.objs.insert(id, MObj::new(MKind::Obj(kind), resurrect));
                self.handles.push(id);
                Step::New {
                    id,
                    kind,
                    resurrect,
                }
            }
            Op::Dup { h } => {
                let Some(id) = Self::pick(&self.handles, h) else {
                    return Step::Skip;
                };
                self.obj_mut(id).rc += 1;
                self.handles.push(id);
                Step::Dup { id }
            }
            Op::Drop { h } => {
                if self.handles.is_empty() {
                    return Step::Skip;
                }
                let index = h % self.handles.len();
                let id = self.handles.remove(index);
                self.decref(id);
                Step::Drop { id, index }
            }
            Op::Link { src, slot, dst } => {
                let Some(s) = Self::pick(&self.handles, src) else {
                    return Step::Skip;
                };
                if !matches!(self.obj(s).kind, MKind::Obj(k) if k.has_slots()) {
                    return Step::Skip;
                }
                let d = dst.map(|d| self.handles[d % self.handles.len()]);
                let slot = slot % NSLOTS;
                self.set_slot(s, slot, d);
                Step::Link {
                    src: s,
                    slot,
                    dst: d,
                }
            }
            Op::Load { src, slot } => {
                let Some(s) = Self::pick(&self.handles, src) else {
                    return Step::Skip;
                };
                let slot = slot % NSLOTS;
                let Some(t) = self.obj(s).slots[slot] else {
                    return Step::Skip;
                };
                self.obj_mut(t).rc += 1;
                self.handles.push(t);
                Step::Load {
                    src: s,
                    slot,
                    id: t,
                }
            }
            Op::Weak { h, kind } => {
                let Some(target) = Self::pick(&self.handles, h) else {
                    return Step::Skip;
                };
                let result = self.new_weak(target, kind);
                Step::Weak {
                    target,
                    kind,
                    result,
                }
            }
            Op::Deref { h } => {
                let Some(w) = Self::pick(&self.handles, h) else {
                    return Step::Skip;
                };
                let (result, referent) = match self.obj(w).kind {
                    MKind::Weak(_) => match self.obj(w).referent {
                        Some(r) => {
                            self.obj_mut(r).rc += 1;
                            self.handles.push(r);
                            (1, Some(r))
                        }
                        None => (0, None),
                    },
                    MKind::Obj(_) => (-1, None),
                };
                Step::Deref {
                    weak: w,
                    result,
                    referent,
                }
            }
            Op::Track { h } => {
                let Some(id) = Self::pick(&self.handles, h) else {
                    return Step::Skip;
                };
                let o = self.obj_mut(id);
                if !matches!(o.kind, MKind::Obj(k) if k.is_gc()) || o.tracked {
                    return Step::Skip;
                }
                o.tracked = true;
                o.generation = 0;
                Step::Track { id }
            }
            Op::Untrack { h } => {
                let Some(id) = Self::pick(&self.handles, h) else {
                    return Step::Skip;
                };
                let o = self.obj_mut(id);
                if !matches!(o.kind, MKind::Obj(k) if k.is_gc()) {
                    return Step::Skip;
                }
                o.tracked = false;
                Step::Untrack { id }
            }
            Op::Collect { generation } => {
                let g = usize::from(generation % 3);
                let found = self.collect(g);
                Step::Collect {
                    generation: g,
                    found,
                }
            }
            Op::Freeze => {
                for o in self.objs.values_mut() {
                    if o.alive && o.tracked && o.generation < 3 {
                        o.generation = 3;
                    }
                }
                self.gc.count = [0; 3];
                Step::Freeze
            }
            Op::Unfreeze => {
                for o in self.objs.values_mut() {
                    if o.alive && o.tracked && o.generation == 3 {
                        o.generation = 2;
                    }
                }
                Step::Unfreeze
            }
            Op::SetGc { enabled, threshold } => {
                let threshold = threshold.map(|t| t as isize);
                self.gc.enabled = enabled;
                self.gc.threshold = threshold;
                Step::SetGc { enabled, threshold }
            }
        }
    }

    /// Empties a slot of any live object (the clean-up at the end of a
    /// case reaches objects no handle holds).
    pub fn clear_slot(&mut self, id: Id, slot: usize) -> Step {
        let mut trial = self.clone();
        trial.died.clear();
        trial.finalized.clear();
        trial.lazarus.clear();
        trial.order_unknown = false;
        trial.ambiguous = false;
        trial.count0_at_start = trial.gc.count[0];
        trial.set_slot(id, slot, None);
        if trial.ambiguous {
            return Step::Skip;
        }
        trial.finish_step();
        *self = trial;
        Step::Link {
            src: id,
            slot,
            dst: None,
        }
    }

    fn set_slot(&mut self, s: Id, slot: usize, d: Option<Id>) {
        if let Some(d) = d {
            self.obj_mut(d).rc += 1;
        }
        let old = core::mem::replace(&mut self.obj_mut(s).slots[slot], d);
        if let Some(old) = old {
            self.decref(old);
        }
    }

    fn new_weak(&mut self, target: Id, kind: WeakKind) -> Result<(Id, bool), ()> {
        let MKind::Obj(k) = self.obj(target).kind else {
            return Err(());
        };
        if !k.weakrefable() {
            return Err(());
        }
        if kind != WeakKind::Callback {
            let shared = self
                .obj(target)
                .weakrefs
                .iter()
                .copied()
                .find(|&w| self.obj(w).kind == MKind::Weak(kind));
            if let Some(w) = shared {
                self.obj_mut(w).rc += 1;
                self.handles.push(w);
                return Ok((w, false));
            }
        }
        // The weak reference's allocation may collect (the callback object,
        // made first, plays no part in that).
        self.gc_link();
        let id = self.fresh_id();
        let mut o = MObj::new(MKind::Weak(kind), false);
        if kind == WeakKind::Callback {
            o.callback = Callback::Attached;
        }
        o.referent = Some(target);
        o.first_referent = Some(target);
        self.objs.insert(id, o);
        self.obj_mut(target).weakrefs.push(id);
        self.handles.push(id);
        Ok((id, true))
    }

    /// A GC allocation: counts it, and collects automatically as
    /// `gc_link` does.
    fn gc_link(&mut self) {
        self.gc.count[0] += 1;
        let g = self.gc;
        if g.count[0] > g.threshold[0] && g.enabled && g.threshold[0] != 0 && !self.in_gc {
            let pick = (0..3).rev().find(|&i| {
                g.count[i] > g.threshold[i]
                    && !(i == 2 && g.long_lived_pending < g.long_lived_total / 4)
            });
            if let Some(generation) = pick {
                self.collect(generation);
            }
        }
    }

    /// A GC object's memory freed (`PyObject_GC_Del`).
    fn gc_del(&mut self) {
        if self.gc.count[0] > 0 {
            self.gc.count[0] -= 1;
        }
    }

    fn decref(&mut self, id: Id) {
        let o = self.obj_mut(id);
        assert!(o.alive && o.rc > 0, "model: decref of #{id} at {}", o.rc);
        o.rc -= 1;
        if o.rc == 0 {
            self.dealloc(id);
        }
    }

    /// An object's count reached zero: its deallocator.
    fn dealloc(&mut self, id: Id) {
        self.depth += 1;
        if self.depth >= TRASHCAN_DEPTH {
            self.order_unknown = true;
        }
        let kind = self.obj(id).kind;
        match kind {
            MKind::Obj(k) => {
                if k == Kind::FinNode && !self.obj(id).finalized {
                    let o = self.obj_mut(id);
                    o.finalized = true;
                    let resurrect = o.resurrect;
                    self.finalized.push(id);
                    if resurrect {
                        // Deferred by the trashcan, it would be tracked
                        // again in generation 0: not followed.
                        if self.depth >= TRASHCAN_DEPTH {
                            self.ambiguous = true;
                        }
                        self.obj_mut(id).rc = 1;
                        self.lazarus.push(id);
                        self.depth -= 1;
                        return;
                    }
                }
                self.mark_dead(id);
                if k.weakrefable() {
                    self.clear_weakrefs(id);
                }
                for s in 0..NSLOTS {
                    if let Some(t) = self.obj_mut(id).slots[s].take() {
                        self.decref(t);
                    }
                }
            }
            MKind::Weak(_) => {
                self.mark_dead(id);
                self.detach(id);
                self.obj_mut(id).callback = Callback::Gone;
            }
        }
        self.depth -= 1;
    }

    fn mark_dead(&mut self, id: Id) {
        let o = self.obj_mut(id);
        o.alive = false;
        o.tracked = false;
        let gc = o.kind.is_gc();
        self.died.push(id);
        if gc {
            self.gc_del();
        }
    }

    /// Detaches weak reference `w` from its referent.
    fn detach(&mut self, w: Id) {
        if let Some(r) = self.obj_mut(w).referent.take() {
            self.obj_mut(r).weakrefs.retain(|&x| x != w);
        }
    }

    /// `PyObject_ClearWeakRefs` of a dying object: every weak reference
    /// detached, the callbacks of the live ones called and released.
    fn clear_weakrefs(&mut self, id: Id) {
        let ws = core::mem::take(&mut self.obj_mut(id).weakrefs);
        for w in ws {
            let o = self.obj_mut(w);
            o.referent = None;
            if o.callback == Callback::Attached {
                o.callback = Callback::Gone;
                if o.alive {
                    o.calls += 1;
                    // The call allocates an argument tuple, which may start
                    // an automatic collection in the middle of this
                    // deallocation: the model does not follow that.
                    let g = self.gc;
                    if !self.in_gc
                        && g.enabled
                        && g.threshold[0] != 0
                        && self.count0_at_start + 1 > g.threshold[0]
                    {
                        self.ambiguous = true;
                    }
                }
            }
        }
    }

    /// References to `id` from the slots of objects in `set`.
    fn internal_refs(&self, set: &BTreeSet<Id>) -> BTreeMap<Id, usize> {
        let mut n = BTreeMap::new();
        for &x in set {
            for t in self.obj(x).slots.iter().flatten() {
                if set.contains(t) {
                    *n.entry(*t).or_insert(0) += 1;
                }
            }
        }
        n
    }

    /// The objects of `set` reachable from its members referenced from
    /// outside it (CPython's update_refs, subtract_refs, move_unreachable).
    fn reachable_within(&self, set: &BTreeSet<Id>) -> BTreeSet<Id> {
        let internal = self.internal_refs(set);
        let mut reach: BTreeSet<Id> = set
            .iter()
            .copied()
            .filter(|x| self.obj(*x).rc > internal.get(x).copied().unwrap_or(0))
            .collect();
        let mut todo: Vec<Id> = reach.iter().copied().collect();
        while let Some(x) = todo.pop() {
            for t in self.obj(x).slots.iter().flatten() {
                if set.contains(t) && reach.insert(*t) {
                    todo.push(*t);
                }
            }
        }
        reach
    }

    /// Collects generation `g`; returns the number of unreachable objects
    /// found.
    fn collect(&mut self, g: usize) -> isize {
        let trash_before = if g == 2 {
            self.trash()
        } else {
            BTreeSet::new()
        };
        self.in_gc = true;
        if g + 1 < 3 {
            self.gc.count[g + 1] += 1;
        }
        for c in self.gc.count.iter_mut().take(g + 1) {
            *c = 0;
        }
        let old = (g + 1).min(2);
        let young: BTreeSet<Id> = self
            .live()
            .filter(|(_, o)| o.tracked && o.generation <= g)
            .map(|(i, _)| i)
            .collect();
        let reachable = self.reachable_within(&young);
        let unreachable: BTreeSet<Id> = young.difference(&reachable).copied().collect();
        for &x in &reachable {
            self.obj_mut(x).generation = old;
        }
        let survivors = reachable.len() as isize;
        if g == 1 {
            self.gc.long_lived_pending += survivors;
        } else if g == 2 {
            self.gc.long_lived_pending = 0;
            self.gc.long_lived_total = survivors;
        }
        // Weak references: those in the trash are detached; those to the
        // trash are detached, and the callbacks of the ones not in the
        // trash called (they move to the older generation).
        for &x in &unreachable {
            if let MKind::Weak(_) = self.obj(x).kind {
                self.detach(x);
            }
        }
        let mut callbacks_ran = false;
        for &x in &unreachable {
            let ws = core::mem::take(&mut self.obj_mut(x).weakrefs);
            for w in ws {
                let o = self.obj_mut(w);
                o.referent = None;
                if o.callback == Callback::Attached && !unreachable.contains(&w) {
                    o.calls += 1;
                    o.callback = Callback::CalledKept;
                    o.generation = old;
                    callbacks_ran = true;
                }
            }
        }
        // Finalizers, then what they resurrected (and what that reaches)
        // survives.
        let to_finalize = unreachable
            .iter()
            .any(|&x| self.obj(x).kind == MKind::Obj(Kind::FinNode) && !self.obj(x).finalized);
        let mut dead = unreachable.clone();
        if to_finalize || callbacks_ran {
            for &x in &unreachable {
                let o = self.obj_mut(x);
                if o.kind == MKind::Obj(Kind::FinNode) && !o.finalized {
                    o.finalized = true;
                    let resurrect = o.resurrect;
                    self.finalized.push(x);
                    if resurrect {
                        self.obj_mut(x).rc += 1;
                        self.lazarus.push(x);
                    }
                }
            }
            let back = self.reachable_within(&unreachable);
            for &x in &back {
                self.obj_mut(x).generation = old;
            }
            dead = unreachable.difference(&back).copied().collect();
        }
        // The trash dies; what it referred to outside it loses a
        // reference, which may free more (in an order the model does not
        // know).
        self.order_unknown = true;
        for &x in &dead {
            self.mark_dead(x);
            let o = self.obj_mut(x);
            o.rc = 0;
            if o.callback != Callback::None {
                o.callback = Callback::Gone;
            }
            o.referent = None;
        }
        let mut outside = Vec::new();
        for &x in &dead {
            for s in 0..NSLOTS {
                if let Some(t) = self.obj_mut(x).slots[s].take() {
                    if !dead.contains(&t) {
                        outside.push(t);
                    }
                }
            }
        }
        for t in outside {
            self.decref(t);
        }
        let s = &mut self.gc.stats[g];
        s.0 += 1;
        s.1 += dead.len() as isize;
        self.in_gc = false;
        // The oracle: a full collection frees all the trash there was
        // before it, except what finalizers resurrected and what that
        // reaches. (Trash it makes, by freeing what held a cycle from
        // outside, waits for the next one.)
        let mut kept = self.handles.clone();
        kept.extend(&self.lazarus);
        let kept = self.reach(kept);
        for x in trash_before {
            if self.obj(x).alive && !kept.contains(&x) {
                self.oracle.push(format!(
                    "model: #{x} was trash before a full collection and survived it"
                ));
            }
        }
        dead.len() as isize
    }

    /// Checks the model against itself: counts are what the references
    /// say, everything the handles reach is alive, weak reference lists
    /// agree with their members.
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut rc: BTreeMap<Id, usize> = BTreeMap::new();
        for &h in &self.handles {
            *rc.entry(h).or_insert(0) += 1;
        }
        for (_, o) in self.live() {
            for t in o.slots.iter().flatten() {
                *rc.entry(*t).or_insert(0) += 1;
            }
        }
        for (id, o) in self.live() {
            let want = rc.get(&id).copied().unwrap_or(0);
            if o.rc != want || want == 0 {
                return Err(format!(
                    "model: #{id} has count {} but {want} references",
                    o.rc
                ));
            }
            for t in o.slots.iter().flatten() {
                if !self.obj(*t).alive {
                    return Err(format!("model: #{id} refers to dead #{t}"));
                }
            }
            for &w in &o.weakrefs {
                if self.obj(w).referent != Some(id) || !self.obj(w).alive {
                    return Err(format!("model: #{id} lists weak reference #{w} wrongly"));
                }
            }
            if let Some(r) = o.referent {
                if !self.obj(r).alive || !self.obj(r).weakrefs.contains(&id) {
                    return Err(format!("model: weak reference #{id} to #{r} not listed"));
                }
            }
        }
        for &h in &self.handles {
            if !self.obj(h).alive {
                return Err(format!("model: a handle to dead #{h}"));
            }
        }
        Ok(())
    }

    /// Objects that nothing a collection treats as alive reaches: the
    /// driver's references, untracked and frozen objects, and non-GC
    /// objects (whose references no traversal shows) are the roots.
    fn trash(&self) -> BTreeSet<Id> {
        let mut todo: Vec<Id> = self.handles.clone();
        for (id, o) in self.live() {
            if !o.kind.is_gc() || !o.tracked || o.generation == 3 {
                todo.push(id);
            }
        }
        let seen = self.reach(todo);
        self.live()
            .map(|(i, _)| i)
            .filter(|i| !seen.contains(i))
            .collect()
    }

    /// What the slots of `from` reach, `from` included.
    fn reach(&self, mut todo: Vec<Id>) -> BTreeSet<Id> {
        let mut seen = BTreeSet::new();
        while let Some(x) = todo.pop() {
            if seen.insert(x) {
                todo.extend(self.obj(x).slots.iter().flatten().copied());
            }
        }
        seen
    }

    /// Problems the model found with itself (see [`Model::check_consistency`]).
    pub fn oracle_errors(&self) -> &[String] {
        &self.oracle
    }
}
