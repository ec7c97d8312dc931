//! The `gc` module's operations over the collector's state: object lists,
//! referrers and referents, freezing, the garbage list.

use core::ffi::{c_int, c_void};

use super::collect::collect_with_callbacks;
use super::*;
use crate::domains::runtime;
use crate::error::Error;
use crate::object::alloc::is_gc;
use crate::object::dealloc::decref;

/// `gc.collect(generation)`: runs even when automatic collection is off.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn collect(generation: c_int) -> Result<isize, Error> {
    if !(0..NUM_GENERATIONS as c_int).contains(&generation) {
        return Err(Error::Value("invalid generation".into()));
    }
    // SAFETY: forwarded contract.
    Ok(unsafe { collect_with_callbacks(generation as usize) })
}

/// Tracked objects of `generation` (-1: generations 0–2), in list order.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn objects(generation: c_int) -> Result<Vec<*mut PyObject>, Error> {
    let gens = match generation {
        -1 => 0..NUM_GENERATIONS,
        g if g < -1 => {
            return Err(Error::Value(
                "generation parameter cannot be negative".into(),
            ));
        }
        g if g as usize >= NUM_GENERATIONS => {
            return Err(Error::Value(
                "generation parameter must be less than the number of available generations (3)"
                    .into(),
            ));
        }
        g => g as usize..g as usize + 1,
    };
    let mut out = Vec::new();
    // SAFETY: runtime lock held; reading well-formed lists.
    unsafe {
        let st = &mut runtime().gc;
        for g in gens {
            list::for_each(st.head(g), |h| out.push(from_gc(h)));
        }
    }
    Ok(out)
}

struct Search<'a> {
    targets: &'a [*mut PyObject],
    found: bool,
}

unsafe extern "C" fn visit_find(op: *mut PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Search of referrers() below.
    let s = unsafe { &mut *arg.cast::<Search>() };
    if s.targets.contains(&op) {
        s.found = true;
        return 1; // stop this traversal: one hit is enough
    }
    0
}

/// Objects in generations 0–2 whose `tp_traverse` visits any of `targets`.
///
/// # Safety
/// Runtime lock held; `targets` are live objects.
pub unsafe fn referrers(targets: &[*mut PyObject]) -> Vec<*mut PyObject> {
    // SAFETY: forwarded contract; traversal does not mutate.
    let all = unsafe { objects(-1) }.unwrap_or_default();
    let mut out = Vec::new();
    for op in all {
        let mut s = Search {
            targets,
            found: false,
        };
        // SAFETY: op is a tracked, live GC object.
        unsafe {
            if let Some(t) = (*(*op).ob_type).tp_traverse {
                t(op, Some(visit_find), (&mut s as *mut Search).cast());
            }
        }
        if s.found {
            out.push(op);
        }
    }
    out
}

unsafe extern "C" fn visit_collect(op: *mut PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Vec of referents() below.
    let v = unsafe { &mut *arg.cast::<Vec<*mut PyObject>>() };
    v.push(op);
    0
}

/// What the GC objects among `objs` visit with `tp_traverse`.
///
/// # Safety
/// `objs` are live objects.
pub unsafe fn referents(objs: &[*mut PyObject]) -> Vec<*mut PyObject> {
    let mut out: Vec<*mut PyObject> = Vec::new();
    for &op in objs {
        // SAFETY: forwarded contract.
        unsafe {
            if op.is_null() || !is_gc(op) {
                continue;
            }
            if let Some(t) = (*(*op).ob_type).tp_traverse {
                t(
                    op,
                    Some(visit_collect),
                    (&mut out as *mut Vec<*mut PyObject>).cast(),
                );
            }
        }
    }
    out
}

/// `gc.freeze()`: every tracked object moves to the permanent generation,
/// which collections ignore; counts are zeroed.
///
/// # Safety
/// Runtime lock held, no collection running.
pub unsafe fn freeze() {
    // SAFETY: forwarded contract.
    unsafe {
        let st = &mut runtime().gc;
        let perm = st.head(PERMANENT);
        for g in 0..NUM_GENERATIONS {
            list::merge(st.head(g), perm);
        }
        st.count = [0; NUM_GENERATIONS];
    }
}

/// `gc.unfreeze()`: the permanent generation joins the oldest one.
///
/// # Safety
/// Runtime lock held, no collection running.
pub unsafe fn unfreeze() {
    // SAFETY: forwarded contract.
    unsafe {
        let st = &mut runtime().gc;
        list::merge(st.head(PERMANENT), st.head(NUM_GENERATIONS - 1));
    }
}

/// Drops the garbage list's references; returns how many there were.
///
/// # Safety
/// Runtime lock held.
pub unsafe fn clear_garbage() -> usize {
    // SAFETY: short borrow to take the list; the decrefs run unborrowed.
    let garbage = core::mem::take(unsafe { &mut runtime().gc.garbage });
    let n = garbage.len();
    for op in garbage {
        // SAFETY: the list owned one reference to each.
        unsafe { decref(op) };
    }
    n
}
