#!/usr/bin/env bash
# Tracing overhead: pyheap's tracer (off, 1 frame, 16 frames) on
# bench/trace_bench.c, beside CPython 3.11's tracemalloc (off, 1, 16) on the
# same workload written in Python (a random live set of 10,000 small
# bytearrays, allocations 20 calls deep). Prints the median ns per call of
# RUNS runs (5 by default) and each setting's ratio to tracing off.
#
#   bash bench/trace_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
out=bench/out
mkdir -p "$out"
cargo build --release --quiet
cc -O2 -g -Wall -Wextra -Iinclude bench/trace_bench.c target/release/libpyheap.a \
    -lpthread -ldl -lm -o "$out/trace_bench"

cat > "$out/trace_bench.py" <<'PY'
import random, sys, time, tracemalloc
nframe, depth = int(sys.argv[1]), int(sys.argv[2])
LIVE, STEPS = 10000, 200000
rng = random.Random(12345)
live = [bytearray(16 + rng.randrange(497)) for _ in range(LIVE)]
def work(d, steps):
    if d:
        return work(d - 1, steps)
    r = rng.randrange
    for _ in range(steps):
        live[r(LIVE)] = bytearray(16 + r(497))
if nframe:
    tracemalloc.start(nframe)
work(depth, STEPS // 10)
t0 = time.perf_counter()
work(depth, STEPS)
t = time.perf_counter() - t0
print(f"nframe={nframe} depth={depth} ns_per_call={t * 1e9 / (2 * STEPS):.1f}")
PY

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # command...: median ns_per_call over $runs runs
    for _ in $(seq "$runs"); do "$@" | sed 's/.*ns_per_call=//'; done | median
}

printf "| tracer | off | 1 frame | 16 frames |\n|---|---:|---:|---:|\n"
for who in pyheap cpython-3.11; do
    cells=()
    base=
    for n in 0 1 16; do
        if [ "$who" = pyheap ]; then
            v=$(measure "$out/trace_bench" "$n" 20)
        else
            v=$(measure python3 "$out/trace_bench.py" "$n" 20)
        fi
        [ -z "$base" ] && base=$v
        cells+=("$(awk -v v="$v" -v b="$base" 'BEGIN {printf "%.0f ns (%.1fx)", v, v / b}')")
    done
    echo "| $who | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
done
