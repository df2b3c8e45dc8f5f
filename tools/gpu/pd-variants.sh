#!/usr/bin/env bash
# Variants of the persistent decode kernel, each built and timed on the GPU machine after perf-run.sh has prepared
# $GPU/ptx (REBUILD=decode_persistent): decode_persistent.cu built by build-ptx.sh with extra nvcc flags (-D…) and/or a sed
# expression applied to a copy of the source, over a copy of $GPU/ptx, then one GpuCheck --shapes 8b-q4_0 --beside persistent per
# context (Llama-3-8B Q4_0, batch 1, the layer-by-layer step beside it in the same process). Diagnostic builds (parts of
# the kernel removed, -DPD_TRACE_BLOCKS) go through here and are never committed. A variant that does not build is
# reported and not run. Output appended to $OUT/variants.log.
#   OUT=$OUT bash .gpu/tools/pd-variants.sh "name|-DFLAG=1|" "other||s/a/b/"   (CONTEXTS="128 2048": those contexts)
GPU="${GPU:-.gpu}"
for spec in "$@"; do
    IFS='|' read -r name flags sedexpr <<< "$spec"
    d=/tmp/ptx-$name k=/tmp/k-$name
    rm -rf "$d" "$k"; cp -r "$GPU/ptx" "$d"; cp -r "$GPU/kernels" "$k"
    [ -n "$sedexpr" ] && sed -i "$sedexpr" "$k/decode_persistent.cu"
    {
        echo "== variant $name: $flags ${sedexpr:+sed $sedexpr}"
        ONLY=decode_persistent KERNELS="$k" NVCC_FLAGS="$flags" bash "$GPU/tools/build-ptx.sh" "$d" > "$k/build.log" 2>&1 \
            || { tail -5 "$k/build.log"; echo "build failed: not run"; continue; }
        grep -E "registers|spill" "$d/ptxas-report.txt" | tr -s ' \n' ' '; echo
        for ctx in ${CONTEXTS:-128}; do
            ASPIREAI_CUDA_PTX_DIR="$d" timeout 150 "$GPU/bin/GpuCheck" --ptx-dir "$d" --shapes 8b-q4_0 --decode "1:$ctx" --beside persistent 2>&1 \
                | grep -E "TIME.*persistent|FAIL|rror" | sort -u
        done
    } >> "${OUT:?the results folder}/variants.log"
done
