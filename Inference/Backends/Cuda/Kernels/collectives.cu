// collectives.cu — a one-shot all-reduce over peer-to-peer device memory, for the small messages of tensor-parallel
// decode (two per layer, a few KB to 1 MB each), where NCCL's per-call latency dominates. vLLM's custom all-reduce is
// the anchor for the idea, TensorRT-LLM's "Lamport" one-shot all-reduce for the protocol. Host side:
// TensorParallel/PeerAllReduce.cs (one process, one context per device, peer access enabled).
//
// peer_all_reduce: every rank launches it on its own stream with the same n, in place on its partial sums x. table (in the
// rank's own memory) holds every rank's staging pointer; a rank's staging is [2 slots][size ranks][capacity] floats, every
// element PEER_EMPTY (−0.0f) while unused. Each call, block b of every rank handles the same float4 chunks of x and
// keeps its own call counter (epochs[b]) and so the same slot, epoch % 2:
//   1. push: each of its chunks, −0.0 written as +0.0, into row `rank` of that slot in every other rank's staging
//      (remote stores over NVLink, all of them before any wait);
//   2. pull: it polls its own staging's row p of each chunk until no component is PEER_EMPTY any more — the value is its
//      own arrival flag, so there is no flag, no fence and no barrier, one one-way NVLink trip — and sums the rows in
//      rank order 0…size − 1 (the same order everywhere: every rank gets bit-identical results) into x;
//   3. it writes PEER_EMPTY back over what it read, so the slot is empty again for its next use.
// The old protocol (stage locally, __threadfence_system, a flag to every peer, wait, read the peers' staging remotely)
// paid a system fence and a remote round trip on top: ~12 µs a call on 4 × H100 for 16 KB a rank.
// Two slots are enough: a rank writes slot s at epoch e + 2 only after it has read every rank's data of epoch e + 1,
// which a rank pushes only after its kernel of epoch e — the one that read and emptied slot s — has finished (no kernel
// here runs ahead of pdl_wait). No call counter comes from the host and nothing is copied before the launch, so a
// captured CUDA graph replays it correctly.
// With residual given (one row, n a multiple of 1024, so that each block's run is whole 32-value blocks in whole 8-lane
// groups), the kernel is also the producer of a folded norm (matmul.cu, CudaBackend.MatMulAddRmsNorm): instead of writing
// the sum back it adds it to the residual (residual + sum, rms_norm_rows' float sum), and writes h · norm_weight, its int8
// blocks where norm_codes is given, and Σh² per 32 values for the GEMV that reads them — no norm launch after it.
// grid (PeerAllReduce.Blocks = 32), block 1024; n a multiple of 4 and ≤ capacity (the host checks both).
#include "common.cuh"

#define PEER_EMPTY 0x80000000u  // −0.0f

__device__ __forceinline__ long long cycles() {
    long long c;
    asm volatile("mov.u64 %0, %%clock64;" : "=l"(c));
    return c;
}

// Volatile 16-byte accesses: stores that go out to the peer at once, loads that fetch again rather than hit a cached line.
__device__ __forceinline__ void store_volatile(float* p, float4 v) {
    asm volatile("st.volatile.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
}

__device__ __forceinline__ float4 load_volatile(const float* p) {
    float4 v;
    asm volatile("ld.volatile.global.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ bool peer_empty(float4 v) {
    return __float_as_uint(v.x) == PEER_EMPTY || __float_as_uint(v.y) == PEER_EMPTY || __float_as_uint(v.z) == PEER_EMPTY
           || __float_as_uint(v.w) == PEER_EMPTY;
}

// A value as the peers receive it: −0.0 (PEER_EMPTY) sent as +0.0.
__device__ __forceinline__ float not_empty(float v) { return __float_as_uint(v) == PEER_EMPTY ? 0.0f : v; }

__device__ __forceinline__ float4 as_sent(float4 v) {
    return make_float4(not_empty(v.x), not_empty(v.y), not_empty(v.z), not_empty(v.w));
}

extern "C" __global__ void __launch_bounds__(1024) peer_all_reduce(const unsigned long long* table, unsigned* epochs, int rank,
                                                                   int size, long long capacity, long long n, float* x,
                                                                   float* residual, const float* norm_weight,
                                                                   float* norm_values, signed char* norm_codes,
                                                                   float2* norm_scale_sums, float* norm_sums) {
    pdl_start();
    float* const* staging = (float* const*)table;
    const unsigned epoch = epochs[blockIdx.x] + 1;
    const long long slot = (long long)(epoch % 2) * size * capacity;
    // Block b's chunks: a contiguous run of them, so that a small message still spreads over every block.
    const long long chunks = n / 4, per = (chunks + gridDim.x - 1) / gridDim.x;
    const long long first = (long long)blockIdx.x * per, last = min(chunks, first + per);
    for (long long c = first + threadIdx.x; c < last; c += blockDim.x) {
        const float4 v = as_sent(((const float4*)x)[c]);
        for (int p = 0; p < size; p++)
            if (p != rank) store_volatile(staging[p] + slot + (long long)rank * capacity + 4 * c, v);
    }
    float* const mine = staging[rank] + slot;
    const float4 empty = make_float4(__uint_as_float(PEER_EMPTY), __uint_as_float(PEER_EMPTY), __uint_as_float(PEER_EMPTY),
                                     __uint_as_float(PEER_EMPTY));
    for (long long c = first + threadIdx.x; c < last; c += blockDim.x) {
        const float4 own = as_sent(((const float4*)x)[c]);
        float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int p = 0; p < size; p++) {
            float4 w = own;
            if (p != rank) {
                float* const at = mine + (long long)p * capacity + 4 * c;
                // A rank that never arrives (its host thread failed) must not hang this device: after ~10 s of cycles,
                // trap, which fails this launch (the step then ends with an error, as NCCL's abort would).
                const long long start = cycles();
                while (peer_empty(w = load_volatile(at))) {
                    if (cycles() - start > 20000000000LL) asm volatile("trap;");
                }
                store_volatile(at, empty);
            }
            sum = make_float4(sum.x + w.x, sum.y + w.y, sum.z + w.z, sum.w + w.w);
        }
        if (!residual) {
            ((float4*)x)[c] = sum;
            continue;
        }
        const float4 r = ((const float4*)residual)[c], g = ((const float4*)norm_weight)[c];
        const float4 h = make_float4(r.x + sum.x, r.y + sum.y, r.z + sum.z, r.w + sum.w);
        ((float4*)residual)[c] = h;
        const float4 v = make_float4(h.x * g.x, h.y * g.y, h.z * g.z, h.w * g.w);
        ((float4*)norm_values)[c] = v;
        if (norm_codes) quantize_block4(v, norm_codes, norm_scale_sums, 4 * c);
        const unsigned group = 0xFFu << (threadIdx.x % 32 & 24);
        float squares = h.x * h.x + h.y * h.y + h.z * h.z + h.w * h.w;
#pragma unroll
        for (int o = 4; o > 0; o >>= 1) squares += __shfl_xor_sync(group, squares, o);
        if ((threadIdx.x & 7) == 0) norm_sums[c / 8] = squares;
    }
    __syncthreads();  // every thread has read epochs[b] before it moves on
    if (threadIdx.x == 0) epochs[blockIdx.x] = epoch;
}
