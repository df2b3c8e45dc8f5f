#!/usr/bin/env bash
# The serving API on the GPU (docs/cuda.md): `serve --device cuda` from the published GpuCheck binary (it carries the
# Inference CLI), a greedy completion compared with the CPU's text, a chat completion, /metrics, then bench-serve over
# HTTP against it and in-process. Expects $GPU/bin/GpuCheck and $GPU/models/stories15M-q8_0.gguf; writes to $OUT.
# TP=2 serves over two GPUs (--tensor-parallel-size); MODEL may be a random model of a real shape
# (MODEL=random:llama3.2-1b:bf16:4096), whose text is not comparable with the CPU's but exercises the same API.
#   TP=2 MODEL=random:llama3.2-1b:bf16:4096 bash .gpu/tools/serve-check.sh
set -uo pipefail
GPU="${GPU:-.gpu}"
OUT="${OUT:-$GPU/out}"
MODEL="${MODEL:-$GPU/models/stories15M-q8_0.gguf}"
PORT="${PORT:-8123}"
TP="${TP:-1}"
export NCCL_NVLS_ENABLE=0
mkdir -p "$OUT"
chmod +x "$GPU"/bin/*
log="$OUT/serve-check.log"
"$GPU/bin/GpuCheck" inference serve --model "$MODEL" --device cuda --tensor-parallel-size "$TP" --urls "http://127.0.0.1:$PORT" --Inference:Embeddings:Model=none > "$OUT/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 1; done
id="$(curl -s "http://127.0.0.1:$PORT/v1/models" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["id"])')"
{
    echo "== model $id, tensor-parallel-size $TP"
    echo "== health"; curl -s "http://127.0.0.1:$PORT/health"; echo
    echo "== backend"; grep -m2 -E "Backend:|Serving " "$OUT/serve.log"
    echo "== greedy completion (CPU text in ../shared/models/README.md)"
    curl -s "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
        -d '{"model":"'"$id"'","prompt":"Once upon a time","max_tokens":40,"temperature":0}'; echo
    echo "== chat, streamed"
    curl -sN "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' \
        -d '{"model":"'"$id"'","messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":16,"stream":true,"seed":1}' | tail -n 4
    echo "== bench-serve over HTTP (GPU server)"
    timeout 240 "$GPU/bin/GpuCheck" inference bench-serve --url "http://127.0.0.1:$PORT" --num-prompts 256 2>&1 | tail -n 25
    echo "== metrics"
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E "^vllm:(request_success_total|generation_tokens_total|num_preemptions_total)"
} > "$log" 2>&1
kill $server; wait $server 2>/dev/null
trap - EXIT
{
    echo "== bench-serve in-process (cuda, tensor-parallel-size $TP)"
    timeout 240 "$GPU/bin/GpuCheck" inference bench-serve --model "$MODEL" --device cuda --tensor-parallel-size "$TP" --num-prompts 256 2>&1 | tail -n 25
} >> "$log" 2>&1
tail -n 20 "$OUT/serve.log" > "$OUT/serve-tail.log"
cat "$log"
