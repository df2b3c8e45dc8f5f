#!/usr/bin/env bash
# Tensor parallelism on a multi-GPU host in one command (docs/tensor-parallel.md): TP = N against TP = 1 (GpuCheck --tp N:
# logits and greedy tokens of random models of real shapes), then decode scaling over 1, 2, … N GPUs for the named shapes
# (GpuCheck --tp N --shapes LIST: 8b-bf16, 70b-q8_0, 70b-bf16). PTX as in perf-run.sh (run-setup.sh: $GPU/ptx-prebuilt, else built here).
#   TP=4 SHAPES=8b-bf16,70b-q8_0,70b-bf16 bash .gpu/tools/tp-run.sh      (CHECK=0 skips the TP-against-TP=1 checks;
#   QUICK=1: two models against TP = 1 and the graph replays only)
set -uo pipefail
LOG_NAME=tp.log . "$(dirname "$0")/run-setup.sh"
TP="${TP:-$(nvidia-smi -L | wc -l)}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$log"
nvidia-smi topo -m >> "$log" 2>&1
prepare_ptx || exit 1
export NCCL_NVLS_ENABLE=0
if [ "${CHECK:-1}" = 1 ]; then
    stamp "checks: TP=$TP against TP=1"
    timeout "${CHECK_SECONDS:-200}" "$GPU/bin/GpuCheck" --tp "$TP" ${QUICK:+--quick} > "$OUT/tp-check.log" 2>&1
    stamp "checks exit $?"
    grep -E '^(PASS|FAIL)|passed, .* failed' "$OUT/tp-check.log" | cut -c1-200 | tee -a "$log"
fi
if [ -n "${SHAPES:-}" ]; then
    stamp "scaling: $SHAPES"
    timeout "${SHAPES_SECONDS:-360}" "$GPU/bin/GpuCheck" --tp "$TP" --shapes "$SHAPES" >> "$log" 2>&1
    stamp "scaling exit $?"
fi
