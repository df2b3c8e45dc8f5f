#!/usr/bin/env bash
# Publishes tools/GpuCheck self-contained for the GPU machine (which has no .NET), per shared/gpu/README.md's recipe.
#   tools/gpu/publish-gpucheck.sh OUTPUT_DIR
# Trimming runs in partial mode with the trim analyzer off: the referenced ASP.NET Core service code (never run by
# GpuCheck) uses reflection-based JSON that the analyzer would report as errors under warnings-as-errors.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?output folder}"
dotnet publish "$root/tools/GpuCheck" -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:PublishTrimmed=true -p:TrimMode=partial \
    -p:EnableTrimAnalyzer=false -p:SuppressTrimAnalysisWarnings=true -o "$out"
