# run-setup.sh — what perf-run.sh and tp-run.sh share, sourced by them (not run on its own): the .gpu layout ($GPU, $OUT),
# a log with timestamped lines, and the PTX the run loads ($GPU/ptx-prebuilt when carried, else built from $GPU/kernels,
# with $OUT/ptx.tar to bring back and commit; REBUILD="decode_persistent …": the prebuilt PTX with those modules built
# from $GPU/kernels over it, and only they in $OUT/ptx.tar).
#   LOG_NAME=perf.log . "$(dirname "$0")/run-setup.sh"; ...; prepare_ptx || exit 1
GPU="${GPU:-.gpu}"
OUT="${OUT:-$GPU/out}"
mkdir -p "$OUT" "$GPU/ptx"
chmod +x "$GPU"/bin/* "$GPU"/tools/*.sh
log="$OUT/${LOG_NAME:?the log file name}"
stamp() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

prepare_ptx() {
    if [ -d "$GPU/ptx-prebuilt" ]; then
        cp "$GPU"/ptx-prebuilt/* "$GPU/ptx/"
        if [ -n "${REBUILD:-}" ]; then
            ONLY="$REBUILD" KERNELS="$GPU/kernels" bash "$GPU/tools/build-ptx.sh" "$GPU/ptx" >> "$log" 2>&1 || { stamp "build-ptx failed"; return 1; }
            tar -cf "$OUT/ptx.tar" -C "$GPU/ptx" ptxas-report.txt $(cd "$GPU/ptx" && for m in $REBUILD; do ls "$m".*ptx; done)
            grep -E "^==|stack frame|registers" "$GPU/ptx/ptxas-report.txt" | tee -a "$log"
        fi
    else
        KERNELS="$GPU/kernels" bash "$GPU/tools/build-ptx.sh" "$GPU/ptx" >> "$log" 2>&1 || { stamp "build-ptx failed"; return 1; }
        tar -cf "$OUT/ptx.tar" -C "$GPU/ptx" .
    fi
    export ASPIREAI_CUDA_PTX_DIR="$GPU/ptx"
}
