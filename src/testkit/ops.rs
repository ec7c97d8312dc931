//! The operation language: what a test program does to the heap, one step
//! at a time.
//!
//! Operands that name something live (a reference the driver holds, a
//! memory block) are selectors: an index taken modulo the number of such
//! things at that step, so every sequence of operations is valid, however it
//! was generated or shrunk. An operation with nothing to select does
//! nothing.

/// An allocator domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// `PyMem_Raw*`.
    Raw,
    /// `PyMem_*`.
    Mem,
    /// `PyObject_*`.
    Obj,
}

/// The test object types (see `objects.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// GC container with reference slots, no weak references.
    Node,
    /// GC container with a weak reference list (`tp_weaklistoffset`).
    WeakNode,
    /// GC container with `tp_finalize` and a managed weak reference list.
    FinNode,
    /// Non-GC heap type (`PyType_FromSpec`) whose slots are `T_OBJECT_EX`
    /// members, with `__weaklistoffset__`; the default deallocator.
    Plain,
    /// Non-GC static type without slots or weak references.
    Leaf,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 5] = [
        Kind::Node,
        Kind::WeakNode,
        Kind::FinNode,
        Kind::Plain,
        Kind::Leaf,
    ];

    /// Instances are managed by the collector.
    pub fn is_gc(self) -> bool {
        matches!(self, Kind::Node | Kind::WeakNode | Kind::FinNode)
    }

    /// Instances have reference slots.
    pub fn has_slots(self) -> bool {
        self != Kind::Leaf
    }

    /// Instances can be weakly referenced.
    pub fn weakrefable(self) -> bool {
        matches!(self, Kind::WeakNode | Kind::FinNode | Kind::Plain)
    }
}

/// Reference slots per container.
pub const NSLOTS: usize = 3;

/// What kind of weak reference to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeakKind {
    /// `PyWeakref_NewRef(ob, NULL)` (the shared basic reference).
    Ref,
    /// `PyWeakref_NewProxy(ob, NULL)` (the shared basic proxy).
    Proxy,
    /// `PyHeap_Weakref_NewRefWithCallback` (a new reference each time).
    Callback,
}

/// The allocator's edge cases, all legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Edge {
    /// `free(NULL)`: nothing happens.
    FreeNull,
    /// `realloc(NULL, n)`: a new block.
    ReallocNull(usize),
    /// `malloc(PY_SSIZE_T_MAX + 1)`: NULL.
    MallocHuge,
    /// `calloc` whose product overflows: NULL.
    CallocOverflow,
    /// `calloc(0, n)` or `calloc(n, 0)`: a unique block of size 0.
    CallocZero(usize),
    /// `realloc(p, PY_SSIZE_T_MAX + 1)` of a block of this domain (the
    /// selector): NULL, the block intact.
    ReallocHuge(usize),
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocate a block (`calloc` if `zeroed`).
    Alloc {
        /// The domain.
        domain: Domain,
        /// Its size.
        size: usize,
        /// Use calloc.
        zeroed: bool,
    },
    /// Resize a block with its own domain's realloc.
    Realloc {
        /// Selects the block.
        block: usize,
        /// New size.
        size: usize,
    },
    /// Free a block with its own domain's free.
    Free {
        /// Selects the block.
        block: usize,
    },
    /// The driver writes `byte` over a whole block (the debug allocator's
    /// own fill bytes included: data may look like anything).
    Fill {
        /// Selects the block.
        block: usize,
        /// The byte.
        byte: u8,
    },
    /// An allocator edge case in a domain.
    Edge {
        /// The domain.
        domain: Domain,
        /// The case.
        edge: Edge,
    },
    /// Create an object; the driver holds the new reference.
    New {
        /// Its type.
        kind: Kind,
        /// A `FinNode` whose finalizer resurrects it (once: a finalizer
        /// runs at most once).
        resurrect: bool,
    },
    /// `Py_NewRef` of a held reference (the driver holds one more).
    Dup {
        /// Selects the reference.
        h: usize,
    },
    /// `Py_DECREF` of a held reference (the driver lets it go).
    Drop {
        /// Selects the reference.
        h: usize,
    },
    /// `Py_XSETREF(src->slots[slot], Py_XNewRef(dst))`.
    Link {
        /// Selects the container.
        src: usize,
        /// The slot (modulo the slot count).
        slot: usize,
        /// Selects the target, or None to clear the slot.
        dst: Option<usize>,
    },
    /// The driver takes a new reference to what a slot holds.
    Load {
        /// Selects the container.
        src: usize,
        /// The slot.
        slot: usize,
    },
    /// A new weak reference to a held object.
    Weak {
        /// Selects the referent.
        h: usize,
        /// What kind.
        kind: WeakKind,
    },
    /// `PyWeakref_GetRef` on a held reference (a strong reference to the
    /// referent if alive; an error if not a weak reference).
    Deref {
        /// Selects the weak reference.
        h: usize,
    },
    /// `PyObject_GC_Track` of an untracked GC object (others: nothing).
    Track {
        /// Selects the object.
        h: usize,
    },
    /// `PyObject_GC_UnTrack` of a GC object.
    Untrack {
        /// Selects the object.
        h: usize,
    },
    /// `PyHeap_GC_Collect(generation % 3)`.
    Collect {
        /// The generation.
        generation: u8,
    },
    /// `PyHeap_GC_Freeze`.
    Freeze,
    /// `PyHeap_GC_Unfreeze`.
    Unfreeze,
    /// Automatic collection on or off, and the thresholds.
    SetGc {
        /// `PyGC_Enable` or `PyGC_Disable`.
        enabled: bool,
        /// `PyHeap_GC_SetThreshold`.
        threshold: [u16; 3],
    },
}

/// Reads operations from fuzzer bytes. Every byte string decodes (missing
/// bytes read as zero); at most `max_ops` operations.
pub fn decode(data: &[u8], max_ops: usize) -> Vec<Op> {
    decode_with(data, max_ops, |r| r.op())
}

/// Like [`decode`], but only allocations, reallocations, frees, fills and
/// edge cases.
pub fn decode_memory(data: &[u8], max_ops: usize) -> Vec<Op> {
    decode_with(data, max_ops, |r| r.memory_op())
}

fn decode_with(data: &[u8], max_ops: usize, mut next: impl FnMut(&mut Reader) -> Op) -> Vec<Op> {
    let mut r = Reader { data, pos: 0 };
    let mut ops = Vec::new();
    while r.pos < data.len() && ops.len() < max_ops {
        ops.push(next(&mut r));
    }
    ops
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    fn sel(&mut self) -> usize {
        usize::from(self.u8())
    }

    fn domain(&mut self) -> Domain {
        match self.u8() % 3 {
            0 => Domain::Raw,
            1 => Domain::Mem,
            _ => Domain::Obj,
        }
    }

    /// Mostly small sizes, some above the pools' 512 bytes, a few large.
    fn size(&mut self) -> usize {
        let tag = self.u8();
        let raw = usize::from(self.u16());
        match tag % 16 {
            0 => 0,
            1..=8 => raw % 129,
            9..=12 => raw % 513,
            13 | 14 => 513 + raw % 3584,
            _ => 65_536 + raw,
        }
    }

    fn op(&mut self) -> Op {
        match self.u8() % 21 {
            0 | 1 => self.alloc(),
            2 => self.realloc(),
            3 => Op::Free { block: self.sel() },
            4 => self.edge(),
            5 | 6 => {
                let b = self.u8();
                Op::New {
                    kind: Kind::ALL[usize::from(b % 5)],
                    resurrect: b & 0x80 != 0,
                }
            }
            7 => Op::Dup { h: self.sel() },
            8 | 9 => Op::Drop { h: self.sel() },
            10 | 11 => {
                let src = self.sel();
                let slot = usize::from(self.u8());
                let d = self.u8();
                Op::Link {
                    src,
                    slot,
                    dst: (d != 0xFF).then_some(usize::from(d)),
                }
            }
            12 => Op::Load {
                src: self.sel(),
                slot: usize::from(self.u8()),
            },
            13 => {
                let h = self.sel();
                let kind = match self.u8() % 3 {
                    0 => WeakKind::Ref,
                    1 => WeakKind::Proxy,
                    _ => WeakKind::Callback,
                };
                Op::Weak { h, kind }
            }
            14 => Op::Deref { h: self.sel() },
            15 => Op::Track { h: self.sel() },
            16 => Op::Untrack { h: self.sel() },
            17 => Op::Collect {
                generation: self.u8() % 3,
            },
            18 => {
                if self.u8() & 1 == 0 {
                    Op::Freeze
                } else {
                    Op::Unfreeze
                }
            }
            19 => {
                let enabled = self.u8() & 1 == 1;
                let t0 = self.u16() % 40;
                let t1 = self.u8() % 8;
                let t2 = self.u8() % 8;
                Op::SetGc {
                    enabled,
                    threshold: [t0, u16::from(t1), u16::from(t2)],
                }
            }
            _ => self.fill(),
        }
    }

    fn alloc(&mut self) -> Op {
        Op::Alloc {
            domain: self.domain(),
            size: self.size(),
            zeroed: self.u8() & 1 == 1,
        }
    }

    fn realloc(&mut self) -> Op {
        Op::Realloc {
            block: self.sel(),
            size: self.size(),
        }
    }

    fn fill(&mut self) -> Op {
        let block = self.sel();
        let byte = match self.u8() % 6 {
            0 => 0xCD,
            1 => 0xDD,
            2 => 0xFD,
            3 => 0,
            _ => self.u8(),
        };
        Op::Fill { block, byte }
    }

    /// Memory operations only (for the debug allocator's target).
    fn memory_op(&mut self) -> Op {
        match self.u8() % 7 {
            0 | 1 => self.alloc(),
            2 | 3 => self.realloc(),
            4 => Op::Free { block: self.sel() },
            5 => self.fill(),
            _ => self.edge(),
        }
    }

    fn edge(&mut self) -> Op {
        let domain = self.domain();
        let edge = match self.u8() % 6 {
            0 => Edge::FreeNull,
            1 => Edge::ReallocNull(self.size()),
            2 => Edge::MallocHuge,
            3 => Edge::CallocOverflow,
            4 => Edge::CallocZero(self.size()),
            _ => Edge::ReallocHuge(self.sel()),
        };
        Op::Edge { domain, edge }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_string_decodes() {
        assert!(decode(&[], 10).is_empty());
        let ops = decode(&[5, 0, 10, 0, 1, 0], 10);
        assert_eq!(
            ops[0],
            Op::New {
                kind: Kind::Node,
                resurrect: false
            }
        );
        let many = decode(&[0xAB; 1000], 50);
        assert_eq!(many.len(), 50);
    }
}
