#!/usr/bin/env bash
# A side-by-side timing of two builds on one GPU machine, minutes apart: this checkout's GpuCheck ($GPU/bin or
# $GPU/bin.tar.xz, kernels in $GPU/kernels: PTX built as in perf-run.sh, once) and a base build ($BASE or $BASE.tar.xz,
# from tools/gpu/publish-base.sh, with its committed PTX), in the order new, base, base, new
# so that a drifting clock or a warming card favours neither; then one line per decode case with the four tok/s.
#   SHAPES=8b-q8_0,8b-q4_0 DECODE=1:128,1:2048 bash .gpu/tools/ab-run.sh     (BASE=.gpu/base; CHECK=0 skips the quick
#   check of the new build; ROUNDS=1: new, base only; BESIDE=none: no "beside" lines, which an A/B of two builds does not
#   read — both builds need GpuCheck --beside, so the base a revision that has it)
set -uo pipefail
GPU="${GPU:-.gpu}"
OUT="${OUT:-$GPU/out}"
BASE="${BASE:-$GPU/base}"
# Packed builds (publish-base.sh's OUTPUT_DIR.tar.xz, a bin.tar.xz of the new GpuCheck) are unpacked with Python's
# tarfile: the GPU machine may lack xz.
unpack() { [ -d "$1" ] || [ ! -f "$1.tar.xz" ] || python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$1.tar.xz" "$(dirname "$1")"; }
unpack "$BASE"
unpack "$GPU/bin"
[ -d "$BASE/ptx-prebuilt" ] || { echo "ab-run: no base build in $BASE (tools/gpu/publish-base.sh)" >&2; exit 2; }
: "${SHAPES:?SHAPES=list of GpuCheck shapes}"
order=(new base)
[ "${ROUNDS:-2}" = 1 ] || order=(new base base new)
# The new build's PTX is built once (run 1) and then reused as prebuilt by its second run; removed again at the end.
madePrebuilt=0
trap '[ "$madePrebuilt" = 1 ] && rm -rf "$GPU/ptx-prebuilt"' EXIT
run=0
for side in "${order[@]}"; do
    run=$((run + 1))
    dir="$GPU"; [ "$side" = base ] && dir="$BASE"
    check=0; [ "$run" = 1 ] && [ "$side" = new ] && check="${CHECK:-1}"
    GPU="$dir" OUT="$OUT/$run-$side" CHECK="$check" SHAPES="$SHAPES" DECODE="${DECODE:-}" bash "$dir/tools/perf-run.sh" > /dev/null 2>&1
    echo "[$(date -u +%H:%M:%S)] run $run: $side ($(grep -c '^TIME decode' "$OUT/$run-$side/perf.log" 2>/dev/null || echo 0) decode lines)"
    [ "$check" = 0 ] || grep -hE '^FAIL|passed, .* failed' "$OUT/$run-$side/check.log" 2>/dev/null | cut -c1-200 | tail -n 12
    if [ "$side" = new ] && [ ! -d "$GPU/ptx-prebuilt" ] && [ -f "$OUT/$run-$side/ptx.tar" ]; then
        mkdir -p "$GPU/ptx-prebuilt" && tar -xf "$OUT/$run-$side/ptx.tar" -C "$GPU/ptx-prebuilt" && madePrebuilt=1
    fi
done
# One line per (model, batch, context, mode): the tok/s of each run in order.
python3 - "$OUT" "${order[@]}" <<'PY'
import re, sys, pathlib
out, order = pathlib.Path(sys.argv[1]), sys.argv[2:]
line = re.compile(r"^TIME decode (.+?): +([0-9.]+) tok/s \(.*?\), (.+)$")
table = {}  # insertion-ordered: the first run's order of cases
for run, side in enumerate(order, 1):
    log = out / f"{run}-{side}" / "perf.log"
    for text in (log.read_text().splitlines() if log.exists() else []):
        if m := line.match(text):
            table.setdefault(f"{m.group(1)}, {m.group(3)}", {})[run] = float(m.group(2))
print("tok/s by run: " + ", ".join(f"{run} {side}" for run, side in enumerate(order, 1)))
for key in table:
    values = " / ".join(f"{table[key][run]:.1f}" if run in table[key] else "-" for run in range(1, len(order) + 1))
    print(f"{key}: {values}")
PY
