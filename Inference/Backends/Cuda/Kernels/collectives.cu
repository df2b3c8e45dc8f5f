// collectives.cu — a one-shot all-reduce over peer-to-peer device memory, for the small messages of tensor-parallel
// decode (two per layer, a few KB to 1 MB each), where NCCL's per-call latency dominates. vLLM's custom all-reduce is
// the anchor. Host side: TensorParallel/PeerAllReduce.cs (one process, one context per device, peer access enabled).
//
// peer_all_reduce: every rank launches it on its own stream with the same n, in place on its partial sums x. table (in the
// rank's own memory) holds every rank's staging pointer [0, 8) and flags pointer [8, 16); epochs (own memory) holds each
// block's call counter. The grid is always the same 32 blocks, and block b of every rank handles the same elements
// (b·blockDim + t, stride gridDim·blockDim), so the ranks synchronise block by block: block b (1) takes epoch = its
// counter + 1 and copies its elements of x into its own staging slot epoch % 2, (2) writes the epoch into flag [b][rank] of
// every rank (through peer access) once those copies are visible system-wide, (3) waits until its own flags [b][0…size)
// reach the epoch, (4) sums its elements over the ranks in rank order — the same order everywhere, so every rank gets
// bit-identical results — into x, and stores the epoch as its counter. No call counter comes from the host and nothing is
// copied before the launch, so a captured CUDA graph replays it correctly.
// Double buffering: a rank's block b rewrites slot e % 2 at epoch e + 2 only after it saw every peer's flag [b] of e + 1,
// which a peer's block b writes only after its kernel of epoch e (the last reader of that slot) has finished.
// grid (PeerAllReduce.Blocks = 32, all resident at once), block 1024; flags [32][8] per rank; n ≤ the staging capacity.
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

extern "C" __global__ void __launch_bounds__(1024) peer_all_reduce(const unsigned long long* table, unsigned* epochs, int rank,
                                                                   int size, long long capacity, long long n, float* x) {
    pdl_start();
    float* const* staging = (float* const*)table;
    unsigned* const* flags = (unsigned* const*)(table + PEER_MAX_RANKS);
    __shared__ unsigned sEpoch;
    if (threadIdx.x == 0) sEpoch = epochs[blockIdx.x] + 1;
    __syncthreads();
    const unsigned epoch = sEpoch;
    const long long slot = (long long)(epoch % 2) * capacity;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) staging[rank][slot + i] = x[i];
    __threadfence_system();
    __syncthreads();
    if (threadIdx.x < size) {
        *((volatile unsigned*)flags[threadIdx.x] + blockIdx.x * PEER_MAX_RANKS + rank) = epoch;
        // A rank that never arrives (its host thread failed) must not hang this device: after ~10 s of cycles, trap, which
        // fails this launch (the step then ends with an error, as NCCL's abort would).
        const volatile unsigned* mine = (const volatile unsigned*)flags[rank] + blockIdx.x * PEER_MAX_RANKS + threadIdx.x;
        const long long start = cycles();
        while ((int)(*mine - epoch) < 0) {
            if (cycles() - start > 20000000000LL) asm volatile("trap;");
        }
    }
    __syncthreads();
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float sum = 0.0f;
        for (int p = 0; p < size; p++) sum += load_fresh(staging[p] + slot + i);
        x[i] = sum;
    }
    if (threadIdx.x == 0) epochs[blockIdx.x] = epoch;
}
