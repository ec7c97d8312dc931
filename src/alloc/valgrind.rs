//! Valgrind client requests (the `valgrind` feature): the pool heap tells
//! memcheck where its blocks start and end, so memcheck reports leaked
//! pooled blocks and accesses to freed ones as it does for `malloc`'s.
//! Without the feature every function here is empty and compiles away.
//!
//! A client request is a no-op instruction sequence that Valgrind
//! recognises; outside Valgrind it costs a handful of instructions and
//! returns the default value.

#[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
mod imp {
    const MALLOCLIKE_BLOCK: usize = 0x1301;
    const FREELIKE_BLOCK: usize = 0x1302;
    /// Memcheck's requests start at ('M' << 24) | ('C' << 16).
    const MAKE_MEM_DEFINED: usize = 0x4D43_0002;

    /// Issues client request `req` with five arguments.
    #[inline(always)]
    fn request(req: usize, a: [usize; 5]) {
        let args = [req, a[0], a[1], a[2], a[3], a[4]];
        // SAFETY: Valgrind's magic sequence: four rotations of rdi by a
        // total of 128 bits and an exchange of rbx with itself. Outside
        // Valgrind it changes only rdi (declared clobbered), the flags (not
        // declared preserved) and nothing else; under Valgrind it reads the
        // six words at rax and sets rdx (declared).
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") 0usize => _,
                inout("rdi") 0usize => _,
                options(nostack),
            );
        }
    }

    /// A block of `n` bytes was handed out at `p`.
    #[inline(always)]
    pub fn malloclike(p: *mut u8, n: usize) {
        request(MALLOCLIKE_BLOCK, [p as usize, n, 0, 0, 0]);
    }

    /// The block at `p` was freed.
    #[inline(always)]
    pub fn freelike(p: *mut u8) {
        request(FREELIKE_BLOCK, [p as usize, 0, 0, 0, 0]);
    }

    /// `n` bytes at `p` are the allocator's own again (a free-list link,
    /// or a pool being set up afresh).
    #[inline(always)]
    pub fn defined(p: *mut u8, n: usize) {
        request(MAKE_MEM_DEFINED, [p as usize, n, 0, 0, 0]);
    }
}

#[cfg(not(all(feature = "valgrind", target_arch = "x86_64")))]
mod imp {
    /// A block of `n` bytes was handed out at `p`.
    #[inline(always)]
    pub fn malloclike(_p: *mut u8, _n: usize) {}
    /// The block at `p` was freed.
    #[inline(always)]
    pub fn freelike(_p: *mut u8) {}
    /// `n` bytes at `p` are the allocator's own again.
    #[inline(always)]
    pub fn defined(_p: *mut u8, _n: usize) {}
}

pub use imp::*;

/// True iff the `valgrind` feature is built in.
pub const ENABLED: bool = cfg!(all(feature = "valgrind", target_arch = "x86_64"));
