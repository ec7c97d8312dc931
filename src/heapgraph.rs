//! The reference graph of the live objects, as `tp_traverse` shows it:
//! why an object is alive (the chain of referrers from something held
//! outside the heap), and Graphviz pictures of the graph around an object
//! or of the garbage list.
//!
//! An object's count minus the references the graph shows is what is held
//! from outside the heap: C variables, or references leaked by a missing
//! `Py_DECREF`. Objects without `tp_traverse` (non-GC objects, usually)
//! show no references, so what they hold looks held from outside.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use crate::domains::runtime;
use crate::gc::api::referents;
use crate::object::layout::{GC_HEADER_SIZE, PyObject, is_immortal_count};
use crate::object::{alloc::is_gc, live, types};
use crate::trace::frames::{Frame, NamedFrame};
use crate::trace::snapshot;

/// The graph: every live object pyheap allocated, and its references.
pub struct Graph {
    nodes: Vec<*mut PyObject>,
    index: HashMap<usize, usize>,
    out: Vec<Vec<usize>>,
    ins: Vec<Vec<usize>>,
}

impl Graph {
    /// Builds the graph.
    ///
    /// # Safety
    /// Runtime lock held; every live object is well formed.
    pub unsafe fn build() -> Graph {
        let mut nodes = Vec::new();
        // SAFETY: caller's contract.
        live::for_each(unsafe { runtime() }, |op| nodes.push(op));
        let index: HashMap<usize, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, &op)| (op as usize, i))
            .collect();
        let mut out = vec![Vec::new(); nodes.len()];
        let mut ins = vec![Vec::new(); nodes.len()];
        for (i, &op) in nodes.iter().enumerate() {
            // SAFETY: op is live; referents runs its tp_traverse.
            for r in unsafe { referents(&[op]) } {
                if let Some(&j) = index.get(&(r as usize)) {
                    out[i].push(j);
                    ins[j].push(i);
                }
            }
        }
        Graph {
            nodes,
            index,
            out,
            ins,
        }
    }

    /// True if node `i` is immortal (PEP 683): alive for good, so whatever
    /// it references is too.
    fn immortal(&self, i: usize) -> bool {
        // SAFETY: a live object (see `external`).
        is_immortal_count(unsafe { (*self.nodes[i]).ob_refcnt })
    }

    /// References to node `i` the graph cannot see (0 for immortal ones).
    fn external(&self, i: usize) -> isize {
        // SAFETY: a live object (the graph is used under the lock it was
        // built under, with no object freed meanwhile).
        let rc = unsafe { (*self.nodes[i]).ob_refcnt };
        if is_immortal_count(rc) {
            return 0;
        }
        rc - self.ins[i].len() as isize
    }
}

/// `<type object at 0x...>`.
///
/// # Safety
/// `op` is a live object.
unsafe fn describe(op: *mut PyObject) -> String {
    // SAFETY: caller's contract.
    let name = unsafe { types::type_name((*op).ob_type) };
    format!("<{name} object at {op:p}>")
}

/// Where each of `ops` was allocated (the first frames after pyheap's
/// own), when tracing.
fn sites(ops: &[*mut PyObject]) -> HashMap<usize, Vec<NamedFrame>> {
    if !crate::trace::is_tracing() {
        return HashMap::new();
    }
    let tbs: Vec<(usize, std::sync::Arc<[Frame]>)> = ops
        .iter()
        .filter_map(|&op| {
            // SAFETY: live objects (caller).
            let block = if unsafe { is_gc(op) } {
                op as usize - GC_HEADER_SIZE
            } else {
                op as usize
            };
            crate::trace::traceback_of(block).map(|tb| (op as usize, tb))
        })
        .collect();
    let frames: Vec<&[Frame]> = tbs.iter().map(|(_, tb)| &tb[..]).collect();
    let named = snapshot::name_all(&frames, Some(SITE_FRAMES));
    tbs.iter().map(|(op, _)| *op).zip(named).collect()
}

/// Frames an allocation site shows (the tracer may have recorded fewer).
const SITE_FRAMES: usize = 3;

fn frame_site(f: &NamedFrame) -> String {
    if f.function.is_empty() {
        format!("{}:{}", f.filename, f.lineno)
    } else {
        format!("{}:{} in {}", f.filename, f.lineno, f.function)
    }
}

/// `file:line in f, called from file:line in g, ...`.
fn site_text(frames: &[NamedFrame]) -> String {
    frames
        .iter()
        .map(frame_site)
        .collect::<Vec<_>>()
        .join(", called from ")
}

/// Most roots a why-alive report lists.
const MAX_ROOTS: usize = 10;

/// Writes why `obj` is alive to `out`; returns how many objects held from
/// outside the heap keep it alive (0: it is garbage waiting for the
/// collector, or kept only by objects the graph cannot see).
///
/// # Safety
/// Runtime lock held; `obj` is a live object pyheap allocated.
pub unsafe fn why_alive(obj: *mut PyObject, out: &mut String) -> Option<usize> {
    // SAFETY: caller's contract.
    let g = unsafe { Graph::build() };
    let &target = g.index.get(&(obj as usize))?;
    // Breadth first over referrers: the nearest roots first, each with the
    // path that reaches the object.
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut seen = vec![false; g.nodes.len()];
    let mut queue = VecDeque::from([target]);
    seen[target] = true;
    // SAFETY: caller's contract; read only.
    let garbage: std::collections::HashSet<usize> = unsafe { runtime() }
        .gc
        .garbage
        .iter()
        .map(|&op| op as usize)
        .collect();
    let in_garbage = |i: usize| garbage.contains(&(g.nodes[i] as usize));
    let mut roots = Vec::new();
    while let Some(i) = queue.pop_front() {
        if g.external(i) > 0 || g.immortal(i) {
            roots.push(i);
            if roots.len() == MAX_ROOTS {
                break;
            }
        }
        for &r in &g.ins[i] {
            if !seen[r] {
                seen[r] = true;
                parent.insert(r, i);
                queue.push_back(r);
            }
        }
    }
    let mut involved: Vec<*mut PyObject> = vec![obj];
    for &r in &roots {
        let mut i = r;
        while i != target {
            involved.push(g.nodes[i]);
            i = parent[&i];
        }
    }
    let site = sites(&involved);
    let at = |op: *mut PyObject| {
        site.get(&(op as usize))
            .map(|f| format!(", allocated at {}", site_text(f)))
            .unwrap_or_default()
    };
    // SAFETY: live objects, under the lock.
    unsafe {
        let _ = writeln!(out, "pyheap: why is {} alive?", describe(obj));
        let _ = writeln!(
            out,
            "  refcount {}: {} from objects of the heap, {} from outside it{}",
            (*obj).ob_refcnt,
            g.ins[target].len(),
            g.external(target).max(0),
            at(obj)
        );
        if roots.is_empty() {
            let _ = writeln!(
                out,
                "  nothing outside the heap keeps it alive: it is garbage waiting for \
                 the collector, or held by objects without tp_traverse"
            );
        }
        for &r in &roots {
            let op = g.nodes[r];
            // What holds the root: the garbage list holds one reference of
            // each object in it; the rest is C's.
            let from_c = g.external(r) - in_garbage(r) as isize;
            if g.immortal(r) {
                let _ = writeln!(
                    out,
                    "  held by an immortal object: {}{}",
                    describe(op),
                    at(op)
                );
            } else if in_garbage(r) && from_c <= 0 {
                let _ = writeln!(
                    out,
                    "  held by the garbage list (uncollectable, PyHeap_GC_GetGarbage): {}{}",
                    describe(op),
                    at(op)
                );
            } else {
                let _ = writeln!(
                    out,
                    "  held from outside the heap (a C variable, or a missing Py_DECREF): {}, \
                     refcount {}, {} reference(s) not from the heap{}",
                    describe(op),
                    (*op).ob_refcnt,
                    from_c,
                    at(op)
                );
            }
            let mut i = r;
            while i != target {
                i = parent[&i];
                let _ = writeln!(out, "    -> {}{}", describe(g.nodes[i]), at(g.nodes[i]));
            }
        }
    }
    Some(roots.len())
}

/// What to draw.
pub struct DotOptions<'a> {
    /// Steps away from the object, along references and back along
    /// referrers.
    pub depth: usize,
    /// Most references followed from (and to) one object.
    pub max_fanout: usize,
    /// Only objects whose type name contains this (the start always).
    pub type_filter: Option<&'a str>,
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Writes a DOT graph of `nodes` (indices into `g`) and the references
/// among them, `start` drawn bold. Returns the number of nodes.
fn write_dot_nodes(
    g: &Graph,
    nodes: &[usize],
    start: Option<usize>,
    title: &str,
    out: &mut String,
) -> usize {
    let ops: Vec<*mut PyObject> = nodes.iter().map(|&i| g.nodes[i]).collect();
    let site = sites(&ops);
    let member: HashMap<usize, ()> = nodes.iter().map(|&i| (i, ())).collect();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(title));
    let _ = writeln!(
        out,
        "  node [shape=box, fontname=\"monospace\", fontsize=10];"
    );
    for &i in nodes {
        let op = g.nodes[i];
        // SAFETY: live objects (the graph's contract).
        let (name, rc) = unsafe { (types::type_name((*op).ob_type), (*op).ob_refcnt) };
        let mut label = format!("{name}\\n{op:p}\\nrefcount {rc}");
        let ext = g.external(i);
        if ext > 0 {
            let _ = write!(label, " ({ext} from outside)");
        }
        if let Some(f) = site.get(&(op as usize)) {
            let _ = write!(label, "\\n{}", dot_escape(&site_text(f)));
        }
        let style = if Some(i) == start {
            ", style=bold, color=red"
        } else if ext > 0 {
            ", style=filled, fillcolor=lightyellow"
        } else {
            ""
        };
        let _ = writeln!(out, "  n{i} [label=\"{label}\"{style}];");
    }
    for &i in nodes {
        for &j in &g.out[i] {
            if member.contains_key(&j) {
                let _ = writeln!(out, "  n{i} -> n{j};");
            }
        }
    }
    let _ = writeln!(out, "}}");
    nodes.len()
}

/// Writes the graph around `obj` as DOT; returns the number of nodes.
///
/// # Safety
/// Runtime lock held; `obj` is a live object pyheap allocated.
pub unsafe fn write_dot(obj: *mut PyObject, opts: &DotOptions, out: &mut String) -> Option<usize> {
    // SAFETY: caller's contract.
    let g = unsafe { Graph::build() };
    let &start = g.index.get(&(obj as usize))?;
    let keep = |i: usize| {
        i == start
            || opts.type_filter.is_none_or(|f| {
                // SAFETY: live objects.
                unsafe { types::type_name((*g.nodes[i]).ob_type) }.contains(f)
            })
    };
    let mut depth_of: HashMap<usize, usize> = HashMap::from([(start, 0)]);
    let mut order = vec![start];
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        let d = depth_of[&i];
        if d >= opts.depth {
            continue;
        }
        let neighbours = g.out[i]
            .iter()
            .take(opts.max_fanout)
            .chain(g.ins[i].iter().take(opts.max_fanout));
        for &j in neighbours {
            if !depth_of.contains_key(&j) && keep(j) {
                depth_of.insert(j, d + 1);
                order.push(j);
                queue.push_back(j);
            }
        }
    }
    // SAFETY: a live object.
    let title = unsafe { describe(obj) };
    Some(write_dot_nodes(&g, &order, Some(start), &title, out))
}

/// Writes the garbage list (`PyHeap_GC_GetGarbage`) and the references
/// among its objects as DOT; returns the number of nodes.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn write_garbage_dot(out: &mut String) -> usize {
    // SAFETY: caller's contract.
    let garbage: Vec<usize> = unsafe { runtime() }
        .gc
        .garbage
        .iter()
        .map(|&op| op as usize)
        .collect();
    // SAFETY: caller's contract.
    let g = unsafe { Graph::build() };
    let nodes: Vec<usize> = garbage
        .iter()
        .filter_map(|a| g.index.get(a).copied())
        .collect();
    write_dot_nodes(&g, &nodes, None, "gc.garbage", out)
}

/// The cycles of the graph: its strongly connected components with more
/// than one object, or one object referring to itself (iterative Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<usize>> {
    let n = g.nodes.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0usize;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its out-edges)
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if let Some(&w) = g.out[v].get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 || g.out[v].contains(&v) {
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out
}

/// Writes every reference cycle among the live objects (after a
/// collection: the cycles that survived it) as DOT, one cluster per cycle,
/// at most `max_cycles` of them (0: all), biggest first. Returns the
/// number of cycles written.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn write_cycles_dot(max_cycles: usize, out: &mut String) -> usize {
    // SAFETY: caller's contract.
    let g = unsafe { Graph::build() };
    let mut cs = cycles(&g);
    cs.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    if max_cycles > 0 {
        cs.truncate(max_cycles);
    }
    let all: Vec<usize> = cs.iter().flatten().copied().collect();
    let mut body = String::new();
    write_dot_nodes(&g, &all, None, "cycles", &mut body);
    // Put each cycle's nodes in a cluster: the node lines are reused as
    // they are; the edges follow.
    let mut lines = body.lines();
    let header: Vec<&str> = lines.by_ref().take(2).collect();
    let rest: Vec<&str> = lines.collect();
    for h in header {
        let _ = writeln!(out, "{h}");
    }
    for (k, c) in cs.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{k} {{");
        let _ = writeln!(out, "    label=\"cycle {} ({} objects)\";", k + 1, c.len());
        for &i in c {
            let prefix = format!("  n{i} [");
            if let Some(l) = rest.iter().find(|l| l.starts_with(&prefix)) {
                let _ = writeln!(out, "  {l}");
            }
        }
        let _ = writeln!(out, "  }}");
    }
    for l in rest.iter().filter(|l| l.contains(" -> ") || *l == &"}") {
        let _ = writeln!(out, "{l}");
    }
    cs.len()
}

/// Renders a DOT file as SVG with Graphviz's `dot`; an error message if
/// `dot` is missing or fails.
pub fn render_svg(dot_path: &str, svg_path: &str) -> Result<(), String> {
    let status = std::process::Command::new("dot")
        .args(["-Tsvg", "-o", svg_path, dot_path])
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run dot (Graphviz): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("dot failed on {dot_path:?} ({status})"))
    }
}
