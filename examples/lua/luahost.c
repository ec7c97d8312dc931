/* A small Lua 5.4 host whose allocator is chosen at build time.
 *
 *   luahost SCRIPT.lua [ARGS...]
 *
 * Build, from the repository's root after `cargo build --release`
 * (Debian: apt-get install liblua5.4-dev):
 *
 *   cc -O2 -Iinclude -I/usr/include/lua5.4 examples/lua/luahost.c \
 *      target/release/libpyheap.a -llua5.4 -lpthread -ldl -lm -o luahost
 *   ./luahost bench/lua/binary_trees.lua 15
 *
 * and the others with -DALLOC_GLIBC -llua5.4, -DALLOC_MIMALLOC -llua5.4
 * -lmimalloc, -DALLOC_CPYTHON -llua5.4 -lpython3.11 (bench/lua_run.sh
 * builds them all).
 *
 * runs SCRIPT with the standard libraries, ARGS as the chunk's `...` and
 * in the global `arg` (arg[0] is the script), in a state made with
 * lua_newstate() over one of these lua_Alloc functions:
 *
 *   -DALLOC_PYHEAP      pyheap's OBJ domain (the default): PyObject_Malloc
 *                       for new blocks, PyObject_Free, and resizes of
 *                       pooled blocks done with the old size (below)
 *   -DALLOC_PYHEAP_OBJ  PyObject_Realloc / PyObject_Free, nothing more
 *   -DALLOC_PYHEAP_MEM  PyMem_Realloc / PyMem_Free, nothing more
 *   -DALLOC_GLIBC       realloc / free
 *   -DALLOC_MIMALLOC    mi_malloc / mi_realloc / mi_free (link -lmimalloc,
 *                       which also becomes the process's malloc)
 *   -DALLOC_CPYTHON     CPython 3.11's PyObject_Malloc / Realloc / Free
 *                       (pymalloc, without Py_Initialize; link
 *                       -lpython3.11, never together with pyheap)
 *
 * Lua passes the old size of every block it resizes or frees (`osize`;
 * for a new block, the object's type). pyheap's PyObject_Realloc must find
 * the block's pool and check its state to learn its size class before
 * deciding to keep or move it; knowing `osize`, the host knows the class
 * of a pooled block (16-byte steps up to 512 bytes): it keeps the block
 * where pyheap would (the new size fits the class and shrinks it by less
 * than a quarter) and otherwise moves it itself with PyObject_Malloc, a
 * copy of whole 16-byte steps and PyObject_Free. Blocks above 512 bytes
 * (libc's) still go through PyObject_Realloc. The host does this only
 * while the OBJ domain is pyheap's plain pool allocator: the debug hooks
 * and the tracer add to each block and record its requested size, which a
 * resize they do not see would make wrong.
 *
 * pyheap runs with its default arenas, as any program would: it keeps the
 * pages of free pools while they number at most twice the pools in use,
 * so the bursts of frees of Lua's collector, followed by as many new
 * blocks, reuse resident pages (docs/design/allocator.md, "Giving memory
 * back").
 *
 * The global table `host` has
 *   host.alloc    the allocator's name
 *   host.check()  with -DLUAHOST_ACCOUNTING: checks that Lua's own count
 *                 (collectgarbage("count"), i.e. lua_gc(LUA_GCCOUNT) and
 *                 LUA_GCCOUNTB) equals the bytes this host saw go through
 *                 its lua_Alloc, and for pyheap that the blocks pyheap
 *                 counts (PyHeap_GetAllocatedBlocks) and, while tracing,
 *                 the bytes it traces (PyHeap_TraceMalloc_GetTracedMemory)
 *                 match the live Lua blocks and bytes exactly; raises an
 *                 error on a mismatch, returns a summary string otherwise
 *                 (false without accounting).
 *
 * On exit the host writes one line to stderr:
 *   luahost: alloc=NAME time_s=T cpu_s=C maxrss_kib=R start_rss_kib=S
 *            minflt=F [...]
 * with T the time from lua_newstate to lua_close, C the user and system
 * time the process spent in it, R the peak resident set (getrusage), S
 * the resident set before Lua started and F the minor page faults taken
 * in between. With accounting
 * it also checks, after lua_close, that every block and byte came back.
 * The function `luahost_run` is everything measured (callgrind toggles
 * collection on it; `luahost_alloc` is the allocator's share).
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if !defined(ALLOC_PYHEAP_OBJ) && !defined(ALLOC_PYHEAP_MEM) && !defined(ALLOC_GLIBC) && \
    !defined(ALLOC_MIMALLOC) && !defined(ALLOC_CPYTHON) && !defined(ALLOC_PYHEAP)
#define ALLOC_PYHEAP 1
#endif

#if defined(ALLOC_PYHEAP) || defined(ALLOC_PYHEAP_OBJ) || defined(ALLOC_PYHEAP_MEM)
#define USING_PYHEAP 1
#include "pyheap.h"
#endif

#if defined(ALLOC_PYHEAP)
#define ALLOC_NAME "pyheap"
#define A_MALLOC PyObject_Malloc
#define A_REALLOC PyObject_Realloc
#define A_FREE PyObject_Free
#elif defined(ALLOC_PYHEAP_OBJ)
#define ALLOC_NAME "pyheap-obj"
#define A_REALLOC PyObject_Realloc
#define A_FREE PyObject_Free
#elif defined(ALLOC_PYHEAP_MEM)
#define ALLOC_NAME "pyheap-mem"
#define A_REALLOC PyMem_Realloc
#define A_FREE PyMem_Free
#elif defined(ALLOC_GLIBC)
#define ALLOC_NAME "glibc"
#define A_REALLOC realloc
#define A_FREE free
#elif defined(ALLOC_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
#define A_MALLOC mi_malloc
#define A_REALLOC mi_realloc
#define A_FREE mi_free
#elif defined(ALLOC_CPYTHON)
/* Declared here rather than from Python.h: only these three are used. */
void *PyObject_Malloc(size_t size);
void *PyObject_Realloc(void *ptr, size_t new_size);
void PyObject_Free(void *ptr);
#define ALLOC_NAME "cpython-3.11"
#define A_MALLOC PyObject_Malloc
#define A_REALLOC PyObject_Realloc
#define A_FREE PyObject_Free
#endif

#ifdef ALLOC_PYHEAP
/* pyheap's pooled sizes: classes of 16-byte steps up to 512 bytes. */
#define POOL_LIMIT 512u
#define CLASS_SIZE(n) ((((n) - 1) | 15) + 1)
/* 1 while the OBJ domain is the plain pool allocator (see the top). */
static int plain_pool;

/* Resizes a pooled block of `osize` bytes (at most 512) to `nsize` bytes
 * (not 0) as PyObject_Realloc would, without looking up the block's pool
 * to learn its class: the block stays if the new size fits its class and
 * shrinks it by less than a quarter (pyheap's rule), else it moves. */
__attribute__((noinline)) static void *pooled_resize(void *ptr, size_t osize, size_t nsize) {
    size_t have = CLASS_SIZE(osize);
    if (nsize <= have && 4 * nsize > 3 * have)
        return ptr;
    void *q = PyObject_Malloc(nsize);
    if (q) {
        /* Both blocks are 16-byte aligned and hold whole 16-byte steps. */
        size_t n = CLASS_SIZE(osize < nsize ? osize : nsize);
        for (size_t i = 0; i < n; i += 16)
            memcpy((char *)q + i, (const char *)ptr + i, 16);
        PyObject_Free(ptr);
    }
    return q;
}
#endif

#ifdef LUAHOST_ACCOUNTING
static size_t live_bytes;         /* sum of the sizes Lua asked for */
static size_t live_blocks;        /* blocks Lua holds */
/* New blocks, resizes, frees, resizes within one 16-byte class of at most
 * 512 bytes, new or resized blocks above 512 bytes. */
static size_t calls[5];
#ifdef USING_PYHEAP
static Py_ssize_t base_blocks;    /* pyheap's count before Lua started */
static size_t base_traced;        /* pyheap's traced bytes before Lua */
#endif
#endif

/* The lua_Alloc: never inlined, so callgrind can count what it costs. */
__attribute__((noinline)) static void *luahost_alloc(void *ud, void *ptr, size_t osize,
                                               size_t nsize) {
    (void)ud;
    (void)osize; /* used by pyheap's resize and the accounting only */
#ifdef LUAHOST_ACCOUNTING
    /* For a new block Lua passes the object's type in osize. */
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr) {
            live_blocks--;
            calls[2]++;
        }
    } else if (!ptr) {
        live_blocks++;
        calls[0]++;
    } else {
        calls[1]++;
        if (((osize - 1) | (nsize - 1)) < 512 && ((osize - 1) >> 4) == ((nsize - 1) >> 4))
            calls[3]++;
    }
    if (nsize > 512)
        calls[4]++;
#endif
    void *r;
    if (nsize == 0) {
        A_FREE(ptr);
        r = NULL;
    }
#ifdef A_MALLOC
    else if (ptr == NULL)
        r = A_MALLOC(nsize);
#endif
#ifdef ALLOC_PYHEAP
    else if (plain_pool && osize <= POOL_LIMIT)
        r = pooled_resize(ptr, osize, nsize);
#endif
    else
        r = A_REALLOC(ptr, nsize);
#ifdef LUAHOST_ACCOUNTING
    if (nsize == 0 || r)
        live_bytes = live_bytes - old + nsize;
    else if (!ptr)
        live_blocks--; /* a failed new block */
#endif
    return r;
}

#ifdef USING_PYHEAP
/* Whether pyheap runs in allocator mode `want` (PyHeap_GetAllocatorName:
 * NULL for a custom table). */
__attribute__((unused)) static int malloc_mode_is(const char *want) {
    const char *name = PyHeap_GetAllocatorName();
    return name != NULL && strcmp(name, want) == 0;
}
#endif

#ifdef LUAHOST_ACCOUNTING
#ifdef USING_PYHEAP
/* 1 if pyheap counts blocks (PyHeap_GetAllocatedBlocks): in the pymalloc
 * modes; with "malloc" the domains are libc's, which it does not count. */
static int pyheap_counts_blocks;
#endif

/* Raises a Lua error with a message formatted by snprintf (Lua's own
 * formatter has no %zu). */
static int mismatch(lua_State *L, const char *what, size_t want, size_t got) {
    char msg[200];
    snprintf(msg, sizeof msg, "accounting: Lua %s %zu, %zu", what, want, got);
    return luaL_error(L, "%s", msg);
}
#endif

static int host_check(lua_State *L) {
#ifdef LUAHOST_ACCOUNTING
    size_t lua_bytes = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    if (lua_bytes != live_bytes)
        return mismatch(L, "counts bytes / its lua_Alloc saw", lua_bytes, live_bytes);
    char summary[200];
    int n = snprintf(summary, sizeof summary, "bytes=%zu blocks=%zu", live_bytes, live_blocks);
#ifdef USING_PYHEAP
    if (pyheap_counts_blocks) {
        size_t blocks = (size_t)(PyHeap_GetAllocatedBlocks() - base_blocks);
        if (blocks != live_blocks)
            return mismatch(L, "holds blocks / pyheap counts", live_blocks, blocks);
        n += snprintf(summary + n, sizeof summary - n, " pyheap_blocks=%zu", blocks);
    }
    if (PyHeap_TraceMalloc_IsTracing()) {
        size_t traced = 0;
        PyHeap_TraceMalloc_GetTracedMemory(&traced, NULL);
        if (traced - base_traced != live_bytes)
            return mismatch(L, "holds bytes / pyheap traces", live_bytes, traced - base_traced);
        snprintf(summary + n, sizeof summary - n, " traced=%zu", traced - base_traced);
    }
#else
    (void)n;
#endif
    lua_pushstring(L, summary);
#else
    lua_pushboolean(L, 0);
#endif
    return 1;
}

static long rss_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* User and system time used, in seconds. */
static double cpu_seconds(const struct rusage *r) {
    return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) +
           (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

static int traceback(lua_State *L) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Runs the script; returns the process's exit status. */
__attribute__((noinline)) static int luahost_run(int argc, char **argv) {
    lua_State *L = lua_newstate(luahost_alloc, NULL);
    if (!L) {
        fprintf(stderr, "luahost: cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ALLOC_NAME);
    lua_setfield(L, -2, "alloc");
    lua_pushcfunction(L, host_check);
    lua_setfield(L, -2, "check");
    lua_setglobal(L, "host");
    lua_createtable(L, argc - 1, 1);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    int status = 0;
    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "luahost: %s\n", lua_tostring(L, -1));
        status = 1;
    } else {
        for (int i = 2; i < argc; i++)
            lua_pushstring(L, argv[i]);
        if (lua_pcall(L, argc - 2, 0, 1) != LUA_OK) {
            fprintf(stderr, "luahost: %s\n", lua_tostring(L, -1));
            status = 1;
        }
    }
    lua_close(L);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT.lua [ARGS...]  (allocator: %s)\n", argv[0], ALLOC_NAME);
        return 2;
    }
#ifdef ALLOC_PYHEAP
    plain_pool = malloc_mode_is("pymalloc") && !PyHeap_TraceMalloc_IsTracing();
#endif
#ifdef LUAHOST_ACCOUNTING
#ifdef USING_PYHEAP
    pyheap_counts_blocks = malloc_mode_is("pymalloc") || malloc_mode_is("pymalloc_debug");
    base_blocks = PyHeap_GetAllocatedBlocks();
    if (PyHeap_TraceMalloc_IsTracing())
        PyHeap_TraceMalloc_GetTracedMemory(&base_traced, NULL);
#endif
#endif
    long start_rss = rss_kib();
    struct timespec t0, t1;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = luahost_run(argc, argv);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &r1);
    fflush(stdout);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = cpu_seconds(&r1) - cpu_seconds(&r0);
    fprintf(stderr,
            "luahost: alloc=%s time_s=%.4f cpu_s=%.4f maxrss_kib=%ld start_rss_kib=%ld minflt=%ld",
            ALLOC_NAME, secs, cpu, r1.ru_maxrss, start_rss, r1.ru_minflt - r0.ru_minflt);
#ifdef ALLOC_PYHEAP
    fprintf(stderr, " plain_pool=%d", plain_pool);
#endif
#ifdef LUAHOST_ACCOUNTING
    fprintf(stderr, " new=%zu resize=%zu free=%zu resize_in_class=%zu above_512=%zu", calls[0],
            calls[1], calls[2], calls[3], calls[4]);
    /* After lua_close every block and byte must have come back. */
    int leak = live_bytes != 0 || live_blocks != 0;
#ifdef USING_PYHEAP
    if (pyheap_counts_blocks) {
        Py_ssize_t left = PyHeap_GetAllocatedBlocks() - base_blocks;
        fprintf(stderr, " pyheap_blocks_after_close=%zd", left);
        leak |= left != 0;
    }
#endif
    fprintf(stderr, "\n");
    if (leak) {
        fprintf(stderr, "luahost: after lua_close %zu bytes in %zu blocks remain\n", live_bytes,
                live_blocks);
        status = 1;
    }
#else
    fprintf(stderr, "\n");
#endif
    return status;
}
