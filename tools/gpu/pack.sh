#!/usr/bin/env bash
# Lays out the git-ignored .gpu/ folder that a device call carries (carry: [".gpu"]; docs/cuda.md, "GpuCheck"): this
# checkout's GpuCheck published self-contained and packed as .gpu/bin.tar.xz (~12 MB, where the unpacked ~47 MB with the
# repository would pass the call's 64 MiB limit), the kernel sources in .gpu/kernels, tools/gpu in .gpu/tools and the
# stories15M Q4_0 model in .gpu/models. With PREBUILT the PTX to start from goes to .gpu/ptx-prebuilt (perf-run.sh then
# builds only the modules REBUILD names over it): "worktree" (the working tree's PTX, the default), a revision (its
# committed PTX), or "none" (perf-run.sh builds every module from the sources, ~50 s).
#   tools/gpu/pack.sh   (PREBUILT=worktree|none|REVISION; PUBLISH=0: reuse the last publish in $PUBLISHED, /tmp/gpucheck-pub;
#                        MODELS=0: no model file, ~14 MB less, for calls that run no engine check on it: with the repository's
#                        PTX and logs the whole carry came to over 64 MiB and the call was refused, 2026-11-28)
# On the device the call first unpacks GpuCheck with Python's tarfile (the GPU machine may lack xz; ab-run.sh does the same):
#   cd .gpu && python3 -c "import tarfile; tarfile.open('bin.tar.xz').extractall('.')" && cd .. && bash .gpu/tools/perf-run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
gpu="$root/.gpu"
published="${PUBLISHED:-/tmp/gpucheck-pub}"
if [ "${PUBLISH:-1}" != 0 ]; then
    bash "$root/tools/gpu/publish-gpucheck.sh" "$published" > "$published.log" 2>&1 || { tail -n 20 "$published.log" >&2; exit 1; }
fi
rm -rf "$gpu"
mkdir -p "$gpu/kernels" "$gpu/tools" "$gpu/models"
pack="$(mktemp -d)"
trap 'rm -rf "$pack"' EXIT
mkdir "$pack/bin"
cp "$published"/* "$pack/bin/"
rm -f "$pack"/bin/*.pdb
tar -cJf "$gpu/bin.tar.xz" -C "$pack" bin
cp "$root"/Inference/Backends/Cuda/Kernels/*.cu "$root"/Inference/Backends/Cuda/Kernels/*.cuh "$gpu/kernels/"
cp -r "$root"/tools/gpu/*.sh "$root"/tools/gpu/*.py "$root"/tools/gpu/clang-shim "$gpu/tools/"
[ "${MODELS:-1}" = 0 ] || cp "$root"/../shared/models/stories15M-q4_0.gguf "$gpu/models/"
case "${PREBUILT:-worktree}" in
    none) ;;
    worktree)
        mkdir "$gpu/ptx-prebuilt"
        cp "$root"/Inference/Backends/Cuda/Kernels/*.ptx "$root"/Inference/Backends/Cuda/Kernels/ptxas-report.txt "$gpu/ptx-prebuilt/" ;;
    *)
        mkdir "$gpu/ptx-prebuilt"
        for f in $(git -C "$root" ls-tree --name-only "$PREBUILT" Inference/Backends/Cuda/Kernels/ | grep -E '\.ptx$|ptxas-report\.txt$'); do
            git -C "$root" show "$PREBUILT:$f" > "$gpu/ptx-prebuilt/$(basename "$f")"
        done ;;
esac
echo "packed $(du -sh "$gpu" | cut -f1) in $gpu (PTX: ${PREBUILT:-worktree})"
