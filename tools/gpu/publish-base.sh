#!/usr/bin/env bash
# Publishes the GpuCheck of another revision (default: main) with that revision's committed PTX, as the "base" side of a
# same-machine A/B run (tools/gpu/ab-run.sh): GpuCheck in OUTPUT_DIR/bin, PTX in OUTPUT_DIR/ptx-prebuilt, this checkout's
# tools in OUTPUT_DIR/tools, packed as OUTPUT_DIR.tar.xz (~11 MB: the device call's carried paths are limited to 64 MiB;
# ab-run.sh unpacks it). Built from a temporary git worktree, so the working tree is left as it is.
#   tools/gpu/publish-base.sh [REVISION] [OUTPUT_DIR]     (default: main .gpu/base)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
revision="${1:-main}"
out="$(realpath -m "${2:-$root/.gpu/base}")"
tree="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git -C "$root" worktree add -q --detach "$tree" "$revision"
rm -rf "$out"
mkdir -p "$out/ptx-prebuilt" "$out/tools"
bash "$tree/tools/gpu/publish-gpucheck.sh" "$out/bin" > "$out/publish.log" 2>&1 || { tail -n 20 "$out/publish.log" >&2; exit 1; }
rm -f "$out"/bin/*.pdb
cp "$tree"/Inference/Backends/Cuda/Kernels/*.ptx "$out/ptx-prebuilt/"
cp "$root"/tools/gpu/*.sh "$root"/tools/gpu/*.py "$out/tools/"
echo "$(git -C "$tree" rev-parse --short HEAD) $revision" > "$out/REVISION"
rm -f "$out/publish.log"
tar -cJf "$out.tar.xz" -C "$(dirname "$out")" "$(basename "$out")" && rm -rf "$out"
echo "base: $(tar -xJOf "$out.tar.xz" "$(basename "$out")/REVISION") in $out.tar.xz"
