#!/usr/bin/env bash
# The GPU performance measurements in one command on the GPU machine (docs/performance.md, "GPU performance"): PTX from
# the sources, a quick correctness pass of the kernels and engine against the CPU (so no number comes from a broken build),
# then GpuCheck --shapes (the issue's table for the named model shapes), the nano-vllm workload through bench-serve on a
# random Qwen3-0.6B, and the PyTorch peer (tools/gpu/torch-peer.py) when present. Same layout as gpu-check.sh: GpuCheck in
# $GPU/bin, kernels in $GPU/kernels, tools in $GPU/tools, models in $GPU/models; results in $OUT.
#   SHAPES=8b-q8_0,1b-bf16 PEER=decode,copy SERVE=1 bash .gpu/tools/perf-run.sh   (KV=fp32|fp16: the KV cache type, default auto;
#   EAGER=1: bench-serve also with --enforce-eager, to compare against the serving engine's CUDA graphs; DECODE=1:128,32:2048:
#   only those (batch, context) pairs and no prefill, for tuning runs; OMIT=K1+K2,K3: at batch 1 also the replayed step
#   without those kernels (GpuCheck --omit: what each set costs on the step's critical path); BESIDE=none|TEXT,...: only those
#   batch-1 "beside" lines (GpuCheck --beside); GEMM=1: GpuCheck --gemm-bench too, the F16/BF16
#   GEMMs alone at Llama-3-8B's shapes, gemm_half_tc against each Hopper tile; CHECK=full: the whole GpuCheck --no-bench
#   instead of the quick pass, CHECK=0: none)
set -uo pipefail
LOG_NAME=perf.log . "$(dirname "$0")/run-setup.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$log"
prepare_ptx || exit 1
models=()
for m in "$GPU"/models/*.gguf; do [ -e "$m" ] && models+=(--model "$m"); done  # none carried: kernel checks only
if [ "${CHECK:-1}" != 0 ]; then
    # CHECK=full: every check GpuCheck has (the engine on real and random models included) instead of the quick pass.
    scope=$([ "${CHECK:-1}" = full ] && echo full || echo quick)
    stamp "$scope check"
    timeout "${CHECK_SECONDS:-150}" "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" $([ "$scope" = quick ] && echo --quick) --no-bench "${models[@]}" > "$OUT/check.log" 2>&1
    stamp "$scope check exit $? ($(grep -c '^FAIL' "$OUT/check.log") FAIL lines)"
    grep -E '^FAIL|passed, .* failed' "$OUT/check.log" | tail -n 8 | tee -a "$log"
fi
if [ -n "${SHAPES:-}" ]; then
    stamp "shapes $SHAPES"
    timeout "${SHAPES_SECONDS:-400}" "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" --shapes "$SHAPES" --kv-cache-dtype "${KV:-auto}" \
        ${DECODE:+--decode "$DECODE"} ${OMIT:+--omit "$OMIT"} ${BESIDE:+--beside "$BESIDE"} >> "$log" 2>&1
    stamp "shapes exit $?"
fi
if [ "${GEMM:-0}" = 1 ]; then
    stamp "F16/BF16 GEMMs alone"
    timeout "${GEMM_SECONDS:-200}" "$GPU/bin/GpuCheck" --ptx-dir "$GPU/ptx" --gemm-bench >> "$log" 2>&1
    stamp "gemm-bench exit $?"
fi
if [ "${SERVE:-0}" = 1 ]; then
    # EAGER=1: the workload twice, with the engine's CUDA graphs (the default) and then --enforce-eager, side by side.
    for graphs in "" ${EAGER:+--enforce-eager}; do
        stamp "nano-vllm workload, random Qwen3-0.6B ${SERVE_TYPE:-bf16} ${graphs:-cuda graphs}"
        timeout "${SERVE_SECONDS:-150}" "$GPU/bin/GpuCheck" inference bench-serve --model "random:qwen3-0.6b:${SERVE_TYPE:-bf16}:4096" --device cuda \
            --num-prompts 256 --max-num-seqs "${SERVE_SEQS:-256}" --max-batched-tokens 8192 --seed 0 --kv-cache-dtype "${KV:-auto}" $graphs >> "$log" 2>&1
        stamp "bench-serve exit $?"
    done
fi
if [ -n "${PEER:-}" ] && [ -f "$GPU/tools/torch-peer.py" ]; then
    stamp "PyTorch peer: $PEER"
    timeout "${PEER_SECONDS:-300}" python3 "$GPU/tools/torch-peer.py" --only "$PEER" --out "$OUT/torch-peer.jsonl" >> "$log" 2>&1
    stamp "torch-peer exit $?"
fi
