#!/usr/bin/env bash
# llama.cpp's CPU speed on this machine, side by side with ours (the engine-core issue's target is "at least llama.cpp's
# speed on the same file and machine"). No llama.cpp package exists for Debian bookworm and there is no model hub or
# GitHub here, but npm's node-llama-cpp carries the llama.cpp source it builds from (llama/gitRelease.bundle): this
# script installs that package without running its scripts, builds llama-bench from the bundle (CPU, -march=native), then
# alternates llama-bench and `Inference -- bench` on each file so both see the same minutes of a shared machine.
#   tools/cpu/llama-cpp-baseline.sh [MODEL.gguf ...]    (default: the stories15M files in ../shared/models)
# Needs: node/npm, cmake, g++ (Debian: apt-get install -y nodejs npm cmake g++); ~6 minutes to build on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${LLAMA_CPP_WORK:-${TMPDIR:-/tmp}/aspireai-llama-cpp}"
version="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
threads="${THREADS:-2}"
reps="${REPS:-5}"
mkdir -p "$work"
if [ ! -x "$work/src/build/bin/llama-bench" ]; then
    (cd "$work" && [ -f package.json ] || npm init -y > /dev/null)
    (cd "$work" && npm install "node-llama-cpp@$version" --no-audit --no-fund --ignore-scripts > /dev/null)
    rm -rf "$work/src"
    git clone -q "$work/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$work/src"
    cmake -S "$work/src" -B "$work/src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF > "$work/cmake.log"
    cmake --build "$work/src/build" --target llama-bench -j"$(nproc)" > "$work/build.log"
fi
dotnet build -c Release "$root/Inference/Inference.csproj" > /dev/null
ours="$root/Inference/bin/Release/net10.0/AspireAi.Inference.dll"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("$root"/../shared/models/stories15M-*.gguf)
echo "llama.cpp $("$work/src/build/bin/llama-bench" --version 2>&1 | head -1); $(lscpu | grep 'Model name' | sed 's/  */ /g'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %12s %12s %12s %12s\n' file "llama pp128" "ours pp128" "llama tg128" "ours tg128"
for model in "${models[@]}"; do
    llama="$("$work/src/build/bin/llama-bench" -m "$model" -t "$threads" -p 128 -n 128 -r "$reps" -o csv 2>/dev/null)"
    pp="$(echo "$llama" | awk -F, '/"128","0","0","2/ {gsub(/"/, "", $0); print $(NF-1)}' | head -1)"
    tg="$(echo "$llama" | awk -F, '/"0","128","0","2/ {gsub(/"/, "", $0); print $(NF-1)}' | head -1)"
    json="$(dotnet "$ours" bench --model "$model" --threads "$threads" --repetitions "$reps" --output json 2>/dev/null)"
    opp="$(echo "$json" | grep -o '"prefill_tokens_per_s":[0-9.]*' | cut -d: -f2)"
    otg="$(echo "$json" | grep -o '"decode_tokens_per_s":[0-9.]*' | cut -d: -f2)"
    printf '%-28s %12.0f %12.0f %12.0f %12.0f\n' "$(basename "$model")" "${pp:-0}" "${opp:-0}" "${tg:-0}" "${otg:-0}"
done
