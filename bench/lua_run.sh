#!/usr/bin/env bash
# Lua benchmark: the Lua 5.4 host of examples/lua/ built once per allocator,
# running the programs of bench/lua/: pyheap as the host uses it, the plain
# PyObject_Realloc and PyMem_Realloc hosts, glibc, mimalloc, and CPython
# 3.11's pymalloc.
#   bash bench/lua_run.sh [time]     each program RUNS times (5 by default)
#                                    per allocator, allocators interleaved
#                                    (their order rotates every run); median
#                                    CPU and wall time, the median of the
#                                    per-run CPU time ratios to glibc, and
#                                    the median peak RSS and page faults
#   bash bench/lua_run.sh callgrind  each (program, allocator) once under
#                                    callgrind at a smaller size: the whole
#                                    run's instructions (lua_newstate to
#                                    lua_close) and the lua_Alloc's share
# Needs liblua5.4-dev; mimalloc and CPython are skipped when missing.
# Raw results stay in bench/out/lua/.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-time}
case "$mode" in time | callgrind) ;; *)
    echo "usage: bash bench/lua_run.sh [time|callgrind]" >&2
    exit 2 ;;
esac
RUNS=${RUNS:-5}
out=bench/out/lua
mkdir -p "$out"
[ -f /usr/include/lua5.4/lua.h ] || {
    echo "needs the Lua 5.4 headers and library (apt-get install -y liblua5.4-dev)" >&2
    exit 1
}

# Program and its size: timed runs take one to a few seconds each with
# glibc; callgrind runs are about ten times smaller.
programs=(binary_trees strings table_churn closures)
declare -A size=([binary_trees]=15 [strings]=100000 [table_churn]=100000 [closures]=200000)
declare -A cg_size=([binary_trees]=12 [strings]=10000 [table_churn]=10000 [closures]=20000)

have_lib() { ldconfig -p | grep -F "$1" >/dev/null; }
cargo build --release --quiet
lib="${CARGO_TARGET_DIR:-target}/release/libpyheap.a"
# Every host is linked with --gc-sections, as rustc links Rust programs
# and the README advises for libpyheap.a: the parts of Rust's standard
# library pyheap never calls stay out (it changes nothing for the others).
build() { # name, then flags
    local name=$1
    shift
    cc -O2 -g -Wall -Wextra -Iinclude -I/usr/include/lua5.4 examples/lua/luahost.c \
        -o "$out/luahost-$name" "$@" -Wl,--gc-sections
}
pylibs=("$lib" -llua5.4 -lpthread -ldl -lm)
build pyheap -DALLOC_PYHEAP "${pylibs[@]}"
build pyheap-obj -DALLOC_PYHEAP_OBJ "${pylibs[@]}"
build pyheap-mem -DALLOC_PYHEAP_MEM "${pylibs[@]}"
# The plain variants run the same code but for the domain (and for the
# OBJ one, new blocks and resizes through PyObject_Realloc): their
# instructions tell the difference; timing them too takes ALL=1.
allocs=(pyheap)
if [ "$mode" = callgrind ] || [ "${ALL:-0}" = 1 ]; then allocs+=(pyheap-obj pyheap-mem); fi
build glibc -DALLOC_GLIBC -llua5.4
allocs+=(glibc)
if have_lib libmimalloc.so.2 && [ -f /usr/include/mimalloc.h ]; then
    build mimalloc -DALLOC_MIMALLOC -llua5.4 -lmimalloc
    allocs+=(mimalloc)
else
    echo "mimalloc not found (apt-get install -y libmimalloc-dev); skipping it" >&2
fi
if have_lib libpython3.11.so; then
    build cpython-3.11 -DALLOC_CPYTHON -llua5.4 -lpython3.11
    allocs+=(cpython-3.11)
else
    echo "libpython3.11 not found (apt-get install -y libpython3.11-dev); skipping it" >&2
fi

if [ "$mode" = callgrind ]; then
    command -v valgrind >/dev/null || {
        echo "callgrind mode needs valgrind (apt-get install -y valgrind)" >&2
        exit 1
    }
    results="$out/callgrind.txt"
    : > "$results"
    for p in "${programs[@]}"; do
        for a in "${allocs[@]}"; do
            f="$out/callgrind-$p-$a.out"
            valgrind --tool=callgrind --toggle-collect=luahost_run \
                --callgrind-out-file="$f" "$out/luahost-$a" "bench/lua/$p.lua" \
                "${cg_size[$p]}" > "$out/stdout-$p-$a.txt" 2> "$out/stderr-$p-$a.txt"
            echo "prog=$p alloc=$a cg=$f out=$out/stdout-$p-$a.txt" >> "$results"
        done
    done
else
    results="$out/time.txt"
    : > "$results"
    for run in $(seq "$RUNS"); do
        for p in "${programs[@]}"; do
            # Rotate the order, so no allocator always runs first.
            n=${#allocs[@]}
            for i in $(seq 0 $((n - 1))); do
                a=${allocs[$(((i + run) % n))]}
                "$out/luahost-$a" "bench/lua/$p.lua" "${size[$p]}" \
                    > "$out/stdout-$p-$a.txt" 2> "$out/stderr.txt"
                echo "prog=$p run=$run $(grep '^luahost:' "$out/stderr.txt" | cut -d' ' -f2-)" \
                    "out=$out/stdout-$p-$a.txt" >> "$results"
            done
        done
    done
fi

python3 - "$mode" "$results" "${allocs[@]}" <<'PY'
import sys, statistics
mode, path, allocs = sys.argv[1], sys.argv[2], sys.argv[3:]

def callgrind_costs(cg):
    """Total instructions collected (inside luahost_run) and the inclusive
    cost of the calls to luahost_alloc (the lua_Alloc and the allocator)."""
    names, cfn, after_calls = {}, None, False
    total = alloc = 0
    for line in open(cg):
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
        elif line[:4] == "cfn=":
            ident, _, name = line[4:].rstrip("\n").partition(" ")
            if name:
                names[ident] = name
            cfn = names.get(ident, ident)
        elif line[:3] == "fn=":
            ident, _, name = line[3:].rstrip("\n").partition(" ")
            if name:
                names[ident] = name
        elif line.startswith("calls="):
            after_calls = True
        elif after_calls and line[:1] in "0123456789+-*":
            if cfn == "luahost_alloc":
                alloc += int(line.split()[1])
            after_calls = False
    return total, alloc

rows, progs = {}, []
for line in open(path):
    kv = dict(p.split("=", 1) for p in line.split())
    kv["result"] = open(kv["out"]).read().strip().splitlines()[-1]
    if kv["prog"] not in progs:
        progs.append(kv["prog"])
    rows.setdefault(kv["prog"], {}).setdefault(kv["alloc"], []).append(kv)

# Every allocator must have computed the same result.
for p in progs:
    results = {r["result"] for a in allocs for r in rows[p][a]}
    if len(results) != 1:
        sys.exit(f"{p}: allocators disagree on the result: {sorted(results)}")

if mode == "callgrind":
    print("Instructions from lua_newstate to lua_close (callgrind Ir, millions; "
          "x = ratio to glibc), and the allocator's share (luahost_alloc inclusive)\n")
    cost = {p: {a: callgrind_costs(rows[p][a][0]["cg"]) for a in allocs} for p in progs}
    pairs = [b for b in ("cpython-3.11", "mimalloc") if b in allocs]
    for i, title in [(0, None), (1, "Allocator instructions (luahost_alloc inclusive, "
                                   "millions; x = ratio to glibc)")]:
        if title:
            print(f"\n{title}\n")
        print("| program | " + " | ".join(allocs) + "".join(f" | pyheap / {b}" for b in pairs)
              + " |")
        print("|---|" + "---:|" * (len(allocs) + len(pairs)))
        for p in progs:
            g = cost[p]["glibc"][i]
            cells = [f"{c / 1e6:.1f}" + ("" if a == "glibc" else f" ({c / g:.2f}x)")
                     for a in allocs for c in [cost[p][a][i]]]
            cells += [f"{cost[p]['pyheap'][i] / cost[p][b][i]:.3f}x" for b in pairs]
            print(f"| {p} | " + " | ".join(cells) + " |")
else:
    runs = len(rows[progs[0]][allocs[0]])
    print(f"Median over {runs} interleaved runs: CPU time (user + system) in seconds "
          "(x = median of the per-run ratios to glibc), wall time in brackets; "
          "peak RSS in MiB (getrusage), and its growth over the RSS at start-up in brackets; "
          "minor page faults from lua_newstate to lua_close\n")
    pairs = [b for b in ("cpython-3.11", "mimalloc") if b in allocs]
    print("| program | " + " | ".join(allocs) + "".join(f" | pyheap / {b}" for b in pairs) + " |")
    print("|---|" + "---:|" * (len(allocs) + len(pairs)))
    def paired(p, key, b):
        """Median over runs of pyheap's value over b's in the same run."""
        other = {r["run"]: float(r[key]) for r in rows[p][b]}
        return statistics.median(float(r[key]) / other[r["run"]] for r in rows[p]["pyheap"])
    for p in progs:
        base = {r["run"]: float(r["cpu_s"]) for r in rows[p]["glibc"]}
        cells = []
        for a in allocs:
            rs = rows[p][a]
            t = statistics.median(float(r["cpu_s"]) for r in rs)
            w = statistics.median(float(r["time_s"]) for r in rs)
            x = statistics.median(float(r["cpu_s"]) / base[r["run"]] for r in rs)
            cells.append(f"{t:.2f}" + ("" if a == "glibc" else f" ({x:.2f}x)") + f" [{w:.2f}]")
        cells += [f"{paired(p, 'cpu_s', b):.2f}x" for b in pairs]
        print(f"| {p} time | " + " | ".join(cells) + " |")
        cells = []
        for a in allocs:
            rs = rows[p][a]
            m = statistics.median(float(r["maxrss_kib"]) for r in rs) / 1024
            g = statistics.median(float(r["maxrss_kib"]) - float(r["start_rss_kib"])
                                  for r in rs) / 1024
            cells.append(f"{m:.1f} [{g:.1f}]")
        cells += [f"{paired(p, 'maxrss_kib', b):.2f}x" for b in pairs]
        print(f"| {p} RSS | " + " | ".join(cells) + " |")
        cells = [f"{statistics.median(float(r['minflt']) for r in rows[p][a]):,.0f}"
                 for a in allocs]
        cells += [f"{paired(p, 'minflt', b):.2f}x" for b in pairs]
        print(f"| {p} page faults | " + " | ".join(cells) + " |")
for p in progs:
    print(f"\n{p}: {rows[p][allocs[0]][0]['result']}", end="")
print()
PY
