#!/usr/bin/env bash
# Syntax- and type-checks the CUDA kernel sources on a machine without the CUDA toolkit, with clang's CUDA front end
# (Debian's clang-14 has the NVPTX target) and the small shim in tools/gpu/clang-shim. The PTX this produces is thrown
# away: committed PTX always comes from nvcc (tools/gpu/build-ptx.sh on the GPU machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
clang="${CLANG:-$(command -v clang++-14 || command -v clang++ || echo /usr/lib/llvm-14/bin/clang++)}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
for source in "$root"/Inference/Backends/Cuda/Kernels/*.cu; do
    name="$(basename "$source" .cu)"
    if ! "$clang" -x cuda --cuda-device-only --cuda-gpu-arch=sm_80 -Xclang -target-feature -Xclang +ptx70 \
        -nocudalib -nocudainc -std=c++17 -O2 -Wall -Wno-unknown-cuda-version -I"$root/tools/gpu/clang-shim" \
        -include "$root/tools/gpu/clang-shim/shim.h" -S -o "$out/$name.ptx" "$source"; then
        status=1
    else
        echo "ok  $name.cu"
    fi
done
exit $status
