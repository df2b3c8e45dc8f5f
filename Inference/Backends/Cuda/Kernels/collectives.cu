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
                                                                   int size, long long capacity, long long n, float* x) {
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
        ((float4*)x)[c] = sum;
    }
    __syncthreads();  // every thread has read epochs[b] before it moves on
    if (threadIdx.x == 0) epochs[blockIdx.x] = epoch;
}

// peer_all_reduce_rms_norm — peer_all_reduce of a row-parallel projection's partial sums (delta) fused with the residual
// add and RMSNorm after it: residual += Σ over ranks of delta, then output = residual / rms(residual) · weight with the
// int8 and f16/bf16 copies rms_norm_rows writes (codes, halves: null when not wanted). One launch where there were two,
// and the norm starts where the all-reduce's sums are, in registers. The same Lamport protocol as peer_all_reduce (push,
// poll, sum in rank order, empty), on a staging and call counters of its own; delta is left as it was.
// A row spans a thread-block cluster of NORM_CLUSTER blocks, block b taking chunk range b of it, so the all-reduce keeps
// its parallelism (two earlier fusions gave a row one block, whose NVLink round trips then ran one after another, and were
// slower than the two kernels: docs/tensor-parallel.md); the sum of squares goes across the cluster through distributed
// shared memory: each block's sum in its shared memory, a cluster barrier, and every block adds the cluster's sums in block
// order, so every block — and every rank — normalises with the same bits.
// Call counters: one per block, epochs[row · NORM_CLUSTER + b]; a block always handles the same staging elements, so the
// two-slot argument holds element by element even when the number of rows changes between calls.
// grid (NORM_CLUSTER, rows), cluster (NORM_CLUSTER, 1, 1), block NORM_CLUSTER_THREADS; columns a multiple of
// 32 · NORM_CLUSTER (each block's range whole 32-value blocks, for quantize_block4) and at most
// 4 · NORM_CLUSTER · NORM_CLUSTER_THREADS · NORM_CLUSTER_ITEMS; rows · columns ≤ capacity. sm_90 only (clusters).
#define NORM_CLUSTER 8
#define NORM_CLUSTER_THREADS 128
#define NORM_CLUSTER_ITEMS 4
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
extern "C" __global__ void __launch_bounds__(NORM_CLUSTER_THREADS) peer_all_reduce_rms_norm(
    const unsigned long long* table, unsigned* epochs, int rank, int size, long long capacity, const float* delta,
    float* residual, const float* weight, float epsilon, float* output, int columns, signed char* codes, float2* scaleSums,
    unsigned short* halves, int bf16) {
    const int b = blockIdx.x, row = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int per = columns / 4 / NORM_CLUSTER;                               // this block's float4 chunks of the row
    const long long first = (long long)row * (columns / 4) + (long long)b * per;  // its first, counted over all rows
    float4 w[NORM_CLUSTER_ITEMS];
#pragma unroll
    for (int k = 0; k < NORM_CLUSTER_ITEMS; k++) {
        const int c = threadIdx.x + k * NORM_CLUSTER_THREADS;
        w[k] = c < per ? ((const float4*)weight)[b * per + c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    pdl_start();
    float* const* staging = (float* const*)table;
    const int counter = row * NORM_CLUSTER + b;
    const unsigned epoch = epochs[counter] + 1;
    const long long slot = (long long)(epoch % 2) * size * capacity;
    float4 own[NORM_CLUSTER_ITEMS], x[NORM_CLUSTER_ITEMS];
#pragma unroll
    for (int k = 0; k < NORM_CLUSTER_ITEMS; k++) {
        const long long c = first + threadIdx.x + k * NORM_CLUSTER_THREADS;
        if (threadIdx.x + k * NORM_CLUSTER_THREADS >= per) continue;
        own[k] = as_sent(((const float4*)delta)[c]);
        x[k] = ((const float4*)residual)[c];
        for (int p = 0; p < size; p++)
            if (p != rank) store_volatile(staging[p] + slot + (long long)rank * capacity + 4 * c, own[k]);
    }
    float* const mine = staging[rank] + slot;
    const float4 empty = make_float4(__uint_as_float(PEER_EMPTY), __uint_as_float(PEER_EMPTY), __uint_as_float(PEER_EMPTY),
                                     __uint_as_float(PEER_EMPTY));
    float squares = 0.0f;
#pragma unroll
    for (int k = 0; k < NORM_CLUSTER_ITEMS; k++) {
        const long long c = first + threadIdx.x + k * NORM_CLUSTER_THREADS;
        if (threadIdx.x + k * NORM_CLUSTER_THREADS >= per) continue;
        float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int p = 0; p < size; p++) {
            float4 v = own[k];
            if (p != rank) {
                float* const at = mine + (long long)p * capacity + 4 * c;
                const long long start = cycles();  // a rank that never arrives: trap after ~10 s (peer_all_reduce)
                while (peer_empty(v = load_volatile(at))) {
                    if (cycles() - start > 20000000000LL) asm volatile("trap;");
                }
                store_volatile(at, empty);
            }
            sum = make_float4(sum.x + v.x, sum.y + v.y, sum.z + v.z, sum.w + v.w);
        }
        // residual + delta as rms_norm_rows adds them, the delta being peer_all_reduce's sum: the same bits as the two kernels.
        x[k] = make_float4(x[k].x + sum.x, x[k].y + sum.y, x[k].z + sum.z, x[k].w + sum.w);
        ((float4*)residual)[c] = x[k];
        squares += x[k].x * x[k].x + x[k].y * x[k].y + x[k].z * x[k].z + x[k].w * x[k].w;
    }
    __shared__ float sWarp[NORM_CLUSTER_THREADS / 32];
    __shared__ float sBlock;
    squares = warp_sum(squares);
    if (lane == 0) sWarp[warp] = squares;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < NORM_CLUSTER_THREADS / 32; i++) s += sWarp[i];
        sBlock = s;
    }
    cluster_sync();  // every block's sum is in its shared memory
    float total = 0.0f;
#pragma unroll
    for (int j = 0; j < NORM_CLUSTER; j++) total += load_cluster_float(cluster_address(&sBlock, j));
    const float scale = rsqrtf(total / columns + epsilon);
#pragma unroll
    for (int k = 0; k < NORM_CLUSTER_ITEMS; k++) {
        const long long c = first + threadIdx.x + k * NORM_CLUSTER_THREADS;
        if (threadIdx.x + k * NORM_CLUSTER_THREADS >= per) continue;  // whole 8-lane groups: per is a multiple of 8
        const float4 y = make_float4(x[k].x * scale * w[k].x, x[k].y * scale * w[k].y, x[k].z * scale * w[k].z,
                                     x[k].w * scale * w[k].w);
        ((float4*)output)[c] = y;
        if (codes) quantize_block4(y, codes, scaleSums, 4 * c);
        if (halves) {
            uint2 h;
            h.x = bf16 ? pack_bf162(y.x, y.y) : pack_half2(y.x, y.y);
            h.y = bf16 ? pack_bf162(y.z, y.w) : pack_half2(y.z, y.w);
            *(uint2*)(halves + 4 * c) = h;
        }
    }
    __syncthreads();  // every thread has read epochs[counter] before it moves on
    if (threadIdx.x == 0) epochs[counter] = epoch;
    cluster_sync();  // no block leaves while another may still read its sBlock
}
#endif
