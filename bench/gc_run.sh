#!/usr/bin/env bash
# Collector and object benchmark: pyheap against CPython 3.11, paired in one
# run. Builds bench/gc_bench.c twice (pyheap, and -DUSE_CPYTHON against
# libpython3.11.so), runs each workload RUNS times per implementation,
# alternating them, and prints a Markdown table of medians and ratios.
#   bash bench/gc_run.sh            (RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
out=bench/out
mkdir -p "$out"
cargo build --release --quiet
cc -O2 -Wall -Wextra -Iinclude bench/gc_bench.c target/release/libpyheap.a -lpthread -ldl -lm -o "$out/gc_bench_pyheap"
cc -O2 -Wall -Wextra -DUSE_CPYTHON -I/usr/include/python3.11 bench/gc_bench.c -lpython3.11 -o "$out/gc_bench_cpython"

results="$out/gc_results.txt"
: > "$results"
for w in cycles live churn objects; do
    for _ in $(seq "$RUNS"); do
        "$out/gc_bench_pyheap" "$w" >> "$results"
        "$out/gc_bench_cpython" "$w" >> "$results"
    done
done

python3 - "$results" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split())
    rows.setdefault((kv["workload"], kv["impl"]), []).append(kv)
def med(rs, key):
    return statistics.median(float(r[key]) for r in rs)
print("| workload | impl | ns/object | pause max (ms) | pause total (ms) | collections | peak RSS (MiB) |")
print("|---|---|---:|---:|---:|---:|---:|")
for w in ["cycles", "live", "churn", "objects"]:
    base = None
    for impl in ["cpython-3.11", "pyheap"]:
        rs = rows[(w, impl)]
        ns = med(rs, "ns_per_object")
        if impl == "cpython-3.11":
            base = ns
            ratio = ""
        else:
            ratio = f" ({ns / base:.2f}x)"
        print(f"| {w} | {impl} | {ns:.1f}{ratio} | {med(rs, 'pause_max_ns') / 1e6:.2f} | "
              f"{med(rs, 'pause_total_ns') / 1e6:.1f} | {med(rs, 'collections'):.0f} | "
              f"{med(rs, 'peak_rss_kib') / 1024:.1f} |")
PY
