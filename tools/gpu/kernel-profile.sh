#!/usr/bin/env bash
# Nsight Compute on chosen kernels of GpuCheck's kernel benchmarks (docs/cuda.md, "Profiling"): where a kernel's time
# goes (throughput against the ceilings, stall reasons, occupancy) — what event timings cannot say. Run on the GPU machine
# with the layout of perf-run.sh (GpuCheck in $GPU/bin, PTX in $GPU/ptx); clocks are left alone (--clock-control none,
# the device README's rule).
#   KERNELS="gemv_int8_m1 gemv_nibble_m1" SKIP=3 bash .gpu/tools/kernel-profile.sh
# Each kernel name is profiled once, at its (SKIP+1)-th launch (the first launches are the benchmark's warm-up); GpuCheck
# is ended right after it (--kill yes), so a late launch of a long benchmark costs no more than the way there.
# SASS=1: the full section set instead, and the kernel's SASS with per-instruction executed counts and sampled stall
# reasons ($OUT/sass-KERNEL.csv, ncu's source page): where a latency-bound kernel's instructions and waits are.
set -uo pipefail
GPU="${GPU:-.gpu}"
OUT="${OUT:-$GPU/out}"
mkdir -p "$OUT"
for kernel in ${KERNELS:?kernel names}; do
    if [ "${SASS:-0}" = 1 ]; then
        sections=(--set full --import-source no -o "$OUT/ncu-$kernel" -f)
    else
        sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats)
    fi
    timeout "${PROFILE_SECONDS:-120}" ncu --clock-control none -k "regex:^${kernel}\$" --launch-skip "${SKIP:-3}" --launch-count 1 --kill yes \
        "${sections[@]}" "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" ${BENCH_ARGS:---quick --only-bench} > "$OUT/ncu-$kernel.txt" 2>&1
    echo "ncu $kernel exit $?"
    if [ "${SASS:-0}" = 1 ]; then
        ncu -i "$OUT/ncu-$kernel.ncu-rep" --page details >> "$OUT/ncu-$kernel.txt" 2>&1
        ncu -i "$OUT/ncu-$kernel.ncu-rep" --page source --csv --print-source sass > "$OUT/sass-$kernel.csv" 2>&1
        echo "sass $kernel exit $? ($(wc -l < "$OUT/sass-$kernel.csv") lines)"
    fi
    grep -E "Duration|Memory Throughput|DRAM Throughput|L2 Cache Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Stall|One or More|No Eligible" "$OUT/ncu-$kernel.txt" | head -20
done
