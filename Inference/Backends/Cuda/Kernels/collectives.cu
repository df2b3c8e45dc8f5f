// collectives.cu — a one-shot all-reduce over peer-to-peer device memory, for the small messages of tensor-parallel
// decode (two per layer, a few KB to 1 MB each), where NCCL's per-call latency dominates. vLLM's custom all-reduce is
// the anchor. Host side: TensorParallel/PeerAllReduce.cs (one process, one context per device, peer access enabled).
//
// peer_all_reduce: every rank launches it on its own stream after copying its partial sums into its own staging
// buffer, slot epoch % 2. table (in the rank's own memory) holds every rank's staging pointer [0, 8) and flags pointer
// [8, 16). Block 0 writes the epoch into slot `rank` of every rank's flags (through peer access); then every block waits
// until all of its own rank's flags reach the epoch: all partials of this call are in place. Each thread sums element i
// over the ranks in rank order — the same order on every rank, so every rank gets bit-identical results — into output.
// Staging is double-buffered: a rank rewrites slot epoch % 2 at epoch + 2 only after its kernel of epoch + 1 saw every
// peer's epoch + 1 flag, which each peer writes only after its kernel of epoch (the last reader of that slot) finished.
// grid (≤ 32 blocks, all resident at once: a block waits on block 0's writes), block 1024; n ≤ the staging capacity.
#include "common.cuh"

#define PEER_MAX_RANKS 8

__device__ __forceinline__ long long cycles() {
    long long c;
    asm volatile("mov.u64 %0, %%clock64;" : "=l"(c));
    return c;
}

// A load that fetches again rather than hit a cached line (ld.global.cv): a peer's staging slot holds new data each use.
__device__ __forceinline__ float load_fresh(const float* p) {
    float v;
    asm volatile("ld.global.cv.f32 %0, [%1];" : "=f"(v) : "l"(p));
    return v;
}

extern "C" __global__ void __launch_bounds__(1024) peer_all_reduce(const unsigned long long* table, int rank, int size,
                                                                   unsigned epoch, long long slotOffset, long long n,
                                                                   float* output) {
    const float* const* staging = (const float* const*)table;
    unsigned* const* flags = (unsigned* const*)(table + PEER_MAX_RANKS);
    if (blockIdx.x == 0 && threadIdx.x < size) {
        __threadfence_system();
        *((volatile unsigned*)flags[threadIdx.x] + rank) = epoch;
    }
    if (threadIdx.x < size) {
        // A rank that never arrives (its host thread failed) must not hang this device: after ~10 s of cycles, trap, which
        // fails this launch (the step then ends with an error, as NCCL's abort would).
        const volatile unsigned* mine = (const volatile unsigned*)flags[rank] + threadIdx.x;
        const long long start = cycles();
        while ((int)(*mine - epoch) < 0) {
            if (cycles() - start > 20000000000LL) asm volatile("trap;");
        }
    }
    __syncthreads();
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float sum = 0.0f;
        for (int p = 0; p < size; p++) sum += load_fresh(staging[p] + slotOffset + i);
        output[i] = sum;
    }
}
