#!/usr/bin/env bash
# The whole GPU check in one command on the GPU machine (see docs/cuda.md): regenerate the PTX from the sources with nvcc,
# run GpuCheck on it (kernels and engine against the CPU backend, timings), then a small case under compute-sanitizer, and
# the Inference CLI's generate on the GPU. Expects the published GpuCheck in $GPU/bin, the kernel sources in $GPU/kernels
# and models in $GPU/models; writes results to $OUT (at most 8 files come back).
set -uo pipefail
GPU="${GPU:-.gpu}"
OUT="${OUT:-$GPU/out}"
mkdir -p "$OUT" "$GPU/ptx"
chmod +x "$GPU"/bin/* "$GPU"/tools/*.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/run.log"
KERNELS="$GPU/kernels" bash "$GPU/tools/build-ptx.sh" "$GPU/ptx" 2>&1 | tee -a "$OUT/run.log" || exit 1
tar -cf "$OUT/ptx.tar" -C "$GPU/ptx" .
models=()
for m in "$GPU"/models/*.gguf; do [ -e "$m" ] && models+=(--model "$m"); done  # none carried: kernel checks only
timeout "${CHECK_SECONDS:-400}" "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" "${models[@]}" --out "$OUT" ${CHECK_ARGS:-} 2>&1 | tail -n 400 >> "$OUT/run.log"
echo "gpucheck exit ${PIPESTATUS[0]}" | tee -a "$OUT/run.log"
timeout "${SANITIZER_SECONDS:-150}" compute-sanitizer --tool memcheck --leak-check full --print-limit 20 \
    "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" --quick --no-bench "${models[@]:0:2}" > "$OUT/sanitizer.log" 2>&1
echo "sanitizer exit $?" | tee -a "$OUT/run.log"
tail -n 5 "$OUT/sanitizer.log" | tee -a "$OUT/run.log"
first_model="${models[1]:-}"
if [ -n "$first_model" ]; then
    timeout 60 "$GPU/bin/GpuCheck" inference generate --model "$first_model" --device cuda --prompt "Once upon a time" --max-tokens 40 2>&1 | tee -a "$OUT/run.log"
fi
