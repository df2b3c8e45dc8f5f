#!/usr/bin/env bash
# Nsight Compute on chosen kernels of GpuCheck's kernel benchmarks (docs/cuda.md, "Profiling"): where a kernel's time
# goes (throughput against the ceilings, stall reasons, occupancy) — what event timings cannot say. Run on the GPU machine
# with the layout of perf-run.sh (GpuCheck in $GPU/bin, PTX in $GPU/ptx); clocks are left alone (--clock-control none,
# the device README's rule).
#   KERNELS="gemv_int8_m1 gemv_nibble_m1" SKIP=3 bash .gpu/tools/kernel-profile.sh
# Each kernel name is profiled once, at its (SKIP+1)-th launch (the first launches are the benchmark's warm-up); GpuCheck
# is ended right after it (--kill yes), so a late launch of a long benchmark costs no more than the way there.
# SASS=1: the full section set instead, and the kernel's SASS with per-instruction executed counts and sampled stall
# reasons (sass-KERNEL.csv, ncu's source page): where a latency-bound kernel's instructions and waits are. The reports
# and CSVs are packed into $OUT/profile.tar.gz, since the device tool brings back at most 8 files; read a CSV with
# tools/gpu/sass-summary.py.
set -uo pipefail
GPU="${GPU:-.gpu}"
OUT="${OUT:-$GPU/out}"
mkdir -p "$OUT"
work="$OUT"
[ "${SASS:-0}" = 1 ] && work="$(mktemp -d)"
for kernel in ${KERNELS:?kernel names}; do
    if [ "${SASS:-0}" = 1 ]; then
        sections=(--set full --import-source no -o "$work/ncu-$kernel" -f)
    else
        sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats)
    fi
    timeout "${PROFILE_SECONDS:-120}" ncu --clock-control none -k "regex:^${kernel}\$" --launch-skip "${SKIP:-3}" --launch-count 1 --kill yes \
        "${sections[@]}" "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" ${BENCH_ARGS:---quick --only-bench} > "$work/ncu-$kernel.txt" 2>&1
    echo "ncu $kernel exit $?"
    if [ "${SASS:-0}" = 1 ]; then
        ncu -i "$work/ncu-$kernel.ncu-rep" --page details >> "$work/ncu-$kernel.txt" 2>&1
        ncu -i "$work/ncu-$kernel.ncu-rep" --page source --csv --print-source sass > "$work/sass-$kernel.csv" 2>&1
        echo "sass $kernel exit $? ($(wc -l < "$work/sass-$kernel.csv") lines)"
    fi
    grep -E "Duration|Memory Throughput|DRAM Throughput|L2 Cache Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Executed Instructions  |Warp Cycles Per Issued|One or More|No Eligible" "$work/ncu-$kernel.txt" | head -20
done
if [ "${SASS:-0}" = 1 ]; then
    # The .ncu-rep reports (~2.5 MB each) only with KEEP_REPORTS=1: ncu on the GPU machine re-imports them (ncu -i).
    tar -czf "$OUT/profile.tar.gz" -C "$work" $([ "${KEEP_REPORTS:-0}" = 1 ] || echo "--exclude=*.ncu-rep") . \
        && echo "profile: $OUT/profile.tar.gz ($(du -h "$OUT/profile.tar.gz" | cut -f1))"
fi
