#!/usr/bin/env bash
# Allocator benchmark: pyheap's PyObject_Malloc against CPython 3.11's
# pymalloc, glibc, mimalloc and jemalloc over the workloads of
# bench/alloc_bench.c. Builds pyheap (release) and the driver (-O2), then
#   bash bench/run.sh [time]     runs each workload RUNS times (5 by default)
#                                per allocator, alternating allocators, and
#                                prints median ns per call and the paired
#                                ratios (median of per-run ratios)
#   bash bench/run.sh callgrind  runs each (workload, allocator) once under
#                                callgrind and prints the allocator's own
#                                instructions per call
#   bash bench/run.sh cachesim   runs each (workload, allocator) once under
#                                callgrind's cache simulator, sized as this
#                                machine's L1d and per-core L2, and prints
#                                the data-cache misses per call inside the
#                                three wrappers, the allocator's and the
#                                wrappers' own few (pyheap and pymalloc
#                                only; ALL=1 for all)
#   bash bench/run.sh refcount   compiles bench/refcount_code.c against
#                                pyheap.h and CPython's Python.h and counts
#                                the instructions of Py_INCREF/Py_DECREF
# Raw results stay in bench/out/. Installs nothing: mimalloc and jemalloc
# columns are skipped when their libraries are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-time}
case "$mode" in time | callgrind | cachesim | refcount) ;; *)
    echo "usage: bash bench/run.sh [time|callgrind|cachesim|refcount]" >&2
    exit 2 ;;
esac
RUNS=${RUNS:-5}
out=bench/out
mkdir -p "$out"

if [ "$mode" = refcount ]; then
    cc -O2 -c -Iinclude bench/refcount_code.c -o "$out/refcount_pyheap.o"
    cc -O2 -c -DUSE_CPYTHON -I/usr/include/python3.11 bench/refcount_code.c \
        -o "$out/refcount_cpython.o"
    # Instructions per function, alignment padding (nop) left out.
    count() {
        objdump -d --no-show-raw-insn "$1" | awk -v f="<$2>:" '
            $2 == f { on = 1; next } on && NF == 0 { exit }
            on && $2 !~ /^(nop|xchg|data16|cs)/ { n++ } END { print n + 0 }'
    }
    echo "| function (-O2) | pyheap.h | CPython 3.11 Python.h |"
    echo "|---|---:|---:|"
    for f in incref decref xincref xdecref setref; do
        echo "| $f | $(count "$out/refcount_pyheap.o" $f) | $(count "$out/refcount_cpython.o" $f) |"
    done
    exit 0
fi

# libjemalloc.so.2 uses initial-exec TLS; dlopen needs this much spare room.
export GLIBC_TUNABLES=glibc.rtld.optional_static_tls=8192

# (no grep -q: with pipefail, its early exit would fail ldconfig with SIGPIPE)
have_lib() { ldconfig -p | grep -F "$1" >/dev/null; }
allocs=(pyheap)
if have_lib libpython3.11.so.1.0; then allocs+=(cpython-3.11); else
    echo "libpython3.11 not found (apt-get install -y libpython3.11); skipping pymalloc" >&2; fi
allocs+=(glibc)
for a in mimalloc jemalloc; do
    if have_lib "lib$a.so.2"; then allocs+=("$a"); else
        echo "lib$a not found (apt-get install -y libmimalloc-dev libjemalloc-dev); skipping $a" >&2; fi
done
if [ "$mode" = cachesim ] && [ "${ALL:-0}" != 1 ]; then
    keep=()
    for a in "${allocs[@]}"; do
        case $a in pyheap | cpython-3.11) keep+=("$a") ;; esac
    done
    allocs=("${keep[@]}")
fi
if [ "$mode" = callgrind ] || [ "$mode" = cachesim ]; then
    command -v valgrind >/dev/null && [ -f /usr/include/valgrind/callgrind.h ] || {
        echo "callgrind mode needs valgrind and its header (apt-get install -y valgrind)" >&2
        exit 1
    }
fi

cargo build --release --quiet
cc -O2 -Wall -Wextra -Iinclude bench/alloc_bench.c target/release/libpyheap.a \
    -lpthread -ldl -lm -o "$out/alloc_bench"

cases=()
for w in lifo fifo random prodcons; do
    for s in rand 16 64 256 512; do cases+=("$w $s"); done
done
cases+=("realloc rand")

if [ "$mode" = callgrind ]; then
    results="$out/alloc_callgrind.txt"
    mkdir -p "$out/callgrind"
    : > "$results"
    for c in "${cases[@]}"; do
        set -- $c
        for a in "${allocs[@]}"; do
            f="$out/callgrind/$1-$2-$a.out"
            line=$(valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
                --toggle-collect=bench_malloc --toggle-collect=bench_realloc \
                --toggle-collect=bench_free --callgrind-out-file="$f" \
                "$out/alloc_bench" "$1" "$2" "$a" callgrind 2>/dev/null)
            echo "$line cg=$f" >> "$results"
        done
    done
elif [ "$mode" = cachesim ]; then
    # The simulated caches: this machine's L1d, and its L2 as the last
    # level (callgrind would take the L3), per core.
    cache() { # level, then size | assoc | line
        local d
        for d in /sys/devices/system/cpu/cpu0/cache/index*; do
            if [ "$(cat "$d/level")" = "$1" ] && [ "$(cat "$d/type")" != Instruction ]; then
                case $2 in
                    size) echo $(($(sed 's/K$//' "$d/size") * 1024)) ;;
                    assoc) cat "$d/ways_of_associativity" ;;
                    line) cat "$d/coherency_line_size" ;;
                esac
                return
            fi
        done
    }
    d1="$(cache 1 size),$(cache 1 assoc),$(cache 1 line)"
    l2="$(cache 2 size),$(cache 2 assoc),$(cache 2 line)"
    case "$d1,$l2" in *,,* | ,* | *,)
        echo "cachesim: cannot read the L1d and L2 sizes from /sys/devices/system/cpu/cpu0/cache" >&2
        exit 1 ;;
    esac
    echo "simulated caches: D1 $d1, L2 $l2 (bytes, ways, line)"
    results="$out/alloc_cachesim.txt"
    : > "$results"
    for c in "${cases[@]}"; do
        set -- $c
        for a in "${allocs[@]}"; do
            f="$out/callgrind/cachesim-$1-$2-$a.out"
            mkdir -p "$out/callgrind"
            line=$(valgrind --tool=callgrind --cache-sim=yes --D1="$d1" --LL="$l2" \
                --instr-atstart=no --collect-atstart=no \
                --toggle-collect=bench_malloc --toggle-collect=bench_realloc \
                --toggle-collect=bench_free --callgrind-out-file="$f" \
                "$out/alloc_bench" "$1" "$2" "$a" callgrind 2>"$f.err") || {
                cat "$f.err" >&2
                exit 1
            }
            echo "$line cg=$f" >> "$results"
        done
    done
else
    results="$out/alloc_results.txt"
    : > "$results"
    for c in "${cases[@]}"; do
        set -- $c
        for run in $(seq "$RUNS"); do
            for a in "${allocs[@]}"; do
                echo "$("$out/alloc_bench" "$1" "$2" "$a") run=$run" >> "$results"
            done
        done
    done
fi

python3 - "$mode" "$results" "${allocs[@]}" <<'PY'
import sys, statistics
mode, path, allocs = sys.argv[1], sys.argv[2], sys.argv[3:]

def allocator_cost(cg):
    """From a callgrind output file: per wrapper (bench_malloc, bench_realloc,
    bench_free), the number of calls and the cost of what it calls, which is
    the allocator's own cost (the wrapper's self cost, the indirect call, is
    left out)."""
    names, fn, cfn, after_calls = {}, None, None, False
    calls, cost = {}, {}
    for line in open(cg):
        if line[:3] in ("fn=", "cfn") and "(" in line:
            key, _, rest = line.rstrip("\n").partition("=")
            ident, _, name = rest.partition(" ")
            if name:
                names[ident] = name
            if key == "fn":
                fn = names[ident]
            else:
                cfn = names[ident]
        elif line.startswith("calls="):
            calls[cfn] = calls.get(cfn, 0) + int(line[6:].split()[0])
            after_calls = True
        elif after_calls and line[:1] in "0123456789+-*":
            cost[fn] = cost.get(fn, 0) + int(line.split()[1])
            after_calls = False
    return {op: (calls.get("bench_" + op, 0), cost.get("bench_" + op, 0))
            for op in ("malloc", "realloc", "free")}

rows, order = {}, []
for line in open(path):
    kv = dict(p.split("=", 1) for p in line.split())
    if mode == "cachesim":
        # totals: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw, of the collected
        # part (inside the three wrappers).
        t = next(l for l in open(kv["cg"]) if l.startswith("totals:")).split()[1:]
        t = [int(x) for x in t]
        kv["d1"], kv["l2"] = t[4] + t[5], t[7] + t[8]
    if mode == "callgrind":
        kv["ops"] = allocator_cost(kv["cg"])
        kv["ir"] = sum(c for _, c in kv["ops"].values())
    case = (kv["workload"], kv["sizes"])
    if case not in order:
        order.append(case)
    rows.setdefault(case, {}).setdefault(kv["alloc"], []).append(kv)

def cell(rs, base):
    """Median of the metric, and of its per-run ratio to `base`'s runs."""
    if mode == "callgrind":
        v = [r["ir"] / int(r["calls"]) for r in rs]
        b = [r["ir"] / int(r["calls"]) for r in base]
    else:
        v = [float(r["ns_per_call"]) for r in rs]
        b = [float(r["ns_per_call"]) for r in base]
    return statistics.median(v), statistics.median(x / y for x, y in zip(v, b))

def sizes(case):
    return {"rand": "8..512", "grow": "8 to 512"}.get(case[1], case[1])

if mode == "cachesim":
    print("Allocator data-cache misses per call, L1d / L2 (callgrind's cache "
          "simulator, one run)\n")
    print("| workload | sizes | " + " | ".join(allocs)
          + (" | pyheap / pymalloc, L1d / L2 |" if "cpython-3.11" in allocs else " |"))
    print("|---|---|" + "---:|" * (len(allocs) + ("cpython-3.11" in allocs)))
    for case in order:
        r = {a: rows[case][a][0] for a in allocs}
        per = {a: (r[a]["d1"] / int(r[a]["calls"]), r[a]["l2"] / int(r[a]["calls"]))
               for a in allocs}
        cells = [f"{d:.2f} / {l:.2f}" for d, l in per.values()]
        if "cpython-3.11" in allocs:
            (pd, pl), (cd, cl) = per["pyheap"], per["cpython-3.11"]
            ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
            cells.append(f"{ratio(pd, cd)} / {ratio(pl, cl)}")
        print(f"| {case[0]} | {sizes(case)} | " + " | ".join(cells) + " |")
    sys.exit(0)
if mode == "callgrind":
    print("Allocator instructions per call (callgrind Ir, one run; x = ratio to glibc)\n")
else:
    print(f"Median ns per call over {len(next(iter(rows.values()))['pyheap'])} runs "
          "(x = median of per-run ratios to glibc; k/N = runs in which pyheap "
          "was faster than pymalloc)\n")
pair = "cpython-3.11" in allocs
print("| workload | sizes | " + " | ".join(allocs) + (" | pyheap / pymalloc |" if pair else " |"))
print("|---|---|" + "---:|" * (len(allocs) + pair))
for case in order:
    r = rows[case]
    cells = []
    for a in allocs:
        m, x = cell(r[a], r["glibc"])
        cells.append(f"{m:.1f}" + ("" if a == "glibc" else f" ({x:.2f}x)"))
    if pair:
        text = f"{cell(r['pyheap'], r['cpython-3.11'])[1]:.2f}x"
        if mode == "time":
            # and in how many runs pyheap was the faster of the two
            v = [float(p["ns_per_call"]) / float(c["ns_per_call"])
                 for p, c in zip(r["pyheap"], r["cpython-3.11"])]
            text += f" ({sum(x < 1 for x in v)}/{len(v)})"
        cells.append(text)
    print(f"| {case[0]} | {sizes(case)} | " + " | ".join(cells) + " |")

if mode == "callgrind":
    print("\nInstructions per malloc / per free (realloc: per realloc)\n")
    print("| workload | sizes | " + " | ".join(allocs) + " |")
    print("|---|---|" + "---:|" * len(allocs))
    for case in order:
        cells = []
        for a in allocs:
            ops = rows[case][a][0]["ops"]
            per = {op: c / n for op, (n, c) in ops.items() if n}
            cells.append(f"{per['realloc']:.1f}" if case[0] == "realloc"
                         else f"{per['malloc']:.1f} / {per['free']:.1f}")
        print(f"| {case[0]} | {sizes(case)} | " + " | ".join(cells) + " |")
PY
