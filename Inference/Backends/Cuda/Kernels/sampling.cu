// sampling.cu — token choice on the device, so only token ids cross to the host.
//
// argmax_rows: grid (rows), block 1024. The first index of each row's largest logit (TokenChooser.ArgMax on the CPU).
// sample_rows: grid (rows), block 1024; one block per logits row, each with its own SamplingRow (parameters, penalty list,
//   uniform). Computes exactly TokenChooser.Choose (Inference/Backends/Sampling/TokenChooser.cs, which documents the
//   definition), bit for bit:
//   1. penalties (when the row has entries): the row is copied to its scratch row and each listed token's logit penalised;
//   2. temperature ≤ 0 (or 1/T = ∞), or a largest logit that is not finite: the first index of the largest logit;
//   3. weights w = exp((l − max) · (1/T)) with sampling_exp (Cephes' expf, every operation rounded on its own), into the
//      scratch row;
//   4. the kept set is {w ≥ floor}: floor = max(2⁻³², min_p); top-k raises it to the K-th largest kept weight, top-p to the
//      largest v whose kept weights ≥ v reach P of the kept total. Both thresholds come from radix selection on the float
//      bits (non-negative floats order as unsigned ints): four passes of 256-bin shared-memory histograms (counts for
//      top-k, fixed-point weight sums for top-p), each fixing 8 more bits;
//   5. the draw: r = min(⌊u · total⌋, total − 1); the first kept token in vocabulary order whose running weight exceeds r,
//      found by a block-wide scan over contiguous chunks (one per thread) and a walk of the chunk that holds r.
//   Every sum is over fixed-point weights ⌊w · 2³²⌋ in 64-bit integers: exact, so the order of a thousand threads'
//   additions cannot change a result, and equal to the CPU's.
//   Layout: logits [rows][vocabulary] (the model's logits tensor, read only); scratch [rows][vocabulary] floats;
//   rows [rows] SamplingRow (48 bytes, as the C# record struct); penalties: TokenPenalty entries, row r's at
//   [penaltyStart, penaltyStart + penaltyCount) (distinct tokens); ids [rows].
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)

// TokenChooser.FixedPointScale and MinimumWeight: 2^32 and 2^-32.
#define FIXED_POINT_SCALE 0x1p32f
#define MINIMUM_WEIGHT 0x1p-32f

typedef unsigned long long u64;

struct SamplingRow {
    float temperature;
    int topK;
    float topP;
    float minP;
    float repetitionPenalty;
    float presencePenalty;
    float frequencyPenalty;
    int penaltyStart;
    int penaltyCount;
    int padding;
    double uniform;
};

struct TokenPenalty {
    int token;
    int outputCount;
};

// TokenChooser.Exp: Cephes expf for x ≤ 0, 0 below −87 (and for NaN). The _rn intrinsics keep nvcc from fusing a multiply
// and an add into an FMA, which rounds once instead of twice and would differ from the CPU in the last bit.
__device__ __forceinline__ float sampling_exp(float x) {
    if (!(x >= -87.0f)) return 0.0f;
    const float n = floorf(__fadd_rn(__fmul_rn(x, 1.44269504088896341f), 0.5f));
    float r = __fsub_rn(x, __fmul_rn(n, 0.693359375f));
    r = __fsub_rn(r, __fmul_rn(n, -2.12194440e-4f));
    float p = __fadd_rn(__fmul_rn(1.9875691500e-4f, r), 1.3981999507e-3f);
    p = __fadd_rn(__fmul_rn(p, r), 8.3334519073e-3f);
    p = __fadd_rn(__fmul_rn(p, r), 4.1665795894e-2f);
    p = __fadd_rn(__fmul_rn(p, r), 1.6666665459e-1f);
    p = __fadd_rn(__fmul_rn(p, r), 5.0000001201e-1f);
    p = __fadd_rn(__fadd_rn(__fmul_rn(p, __fmul_rn(r, r)), r), 1.0f);
    return __fmul_rn(p, __int_as_float(((int)n + 127) << 23));
}

// TokenChooser.Penalize.
__device__ __forceinline__ float penalize(float logit, int outputCount, const SamplingRow& row) {
    if (row.repetitionPenalty != 1.0f)
        logit = logit > 0.0f ? __fdiv_rn(logit, row.repetitionPenalty) : __fmul_rn(logit, row.repetitionPenalty);
    if (outputCount > 0)
        logit = __fsub_rn(logit, __fadd_rn(__fmul_rn(row.frequencyPenalty, (float)outputCount), row.presencePenalty));
    return logit;
}

// TokenChooser.Fixed: ⌊w · 2³²⌋ (w · 2³² is exact: a scaling by a power of two).
__device__ __forceinline__ u64 fixed_weight(float w) { return __float2ull_rz(__fmul_rn(w, FIXED_POINT_SCALE)); }

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// The block's sum, returned to every thread. scratch: SAMPLE_WARPS values of shared memory.
__device__ u64 block_sum_u64(u64 v, u64* scratch) {
    v = warp_sum_u64(v);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < SAMPLE_WARPS ? scratch[threadIdx.x] : 0ull;
    if (threadIdx.x < 32) v = warp_sum_u64(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    v = scratch[0];
    __syncthreads();
    return v;
}

__device__ float block_max(float v, float* scratch) {
    v = warp_max(v);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < SAMPLE_WARPS ? scratch[threadIdx.x] : -INFINITY;
    if (threadIdx.x < 32) v = warp_max(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    v = scratch[0];
    __syncthreads();
    return v;
}

// Keeps (best, index) at the first index of the largest value seen, for values seen in increasing index order.
__device__ __forceinline__ void keep_larger(float v, int i, float& best, int& index) {
    if (v > best) {
        best = v;
        index = i;
    }
}

// The first index of the row's largest value, in thread 0. One block scans the whole row (128k logits for Llama-3), so its
// speed is the loads it keeps in flight: the values before the row's first 16-byte boundary one a thread, then float4
// chunks strided over the threads, ARGMAX_LOADS of them issued before the first is compared (one scalar load at a time
// over 1024 threads took 43 µs for Llama-3's row on an H100), then the tail. A thread sees its values in increasing index
// order, so its first maximum has its smallest index; then the smaller index wins ties between threads.
#define ARGMAX_LOADS 8
__device__ int block_argmax(const float* row, int vocabulary, float* sValue, int* sIndex) {
    float best = -INFINITY;
    int index = 0x7fffffff;
    const int head = min(vocabulary, (int)((16 - ((unsigned long long)row & 15)) & 15) / 4);
    if (threadIdx.x < head) keep_larger(row[threadIdx.x], threadIdx.x, best, index);
    const float4* chunks = (const float4*)(row + head);
    const int count = (vocabulary - head) / 4;
    for (int c0 = threadIdx.x; c0 < count; c0 += ARGMAX_LOADS * blockDim.x) {
        float4 v[ARGMAX_LOADS];
#pragma unroll
        for (int j = 0; j < ARGMAX_LOADS; j++) {
            const int c = c0 + j * blockDim.x;
            v[j] = c < count ? chunks[c] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        }
#pragma unroll
        for (int j = 0; j < ARGMAX_LOADS; j++) {
            const int i = head + 4 * (c0 + j * blockDim.x);
            keep_larger(v[j].x, i, best, index);
            keep_larger(v[j].y, i + 1, best, index);
            keep_larger(v[j].z, i + 2, best, index);
            keep_larger(v[j].w, i + 3, best, index);
        }
    }
    const int tail = head + 4 * count + threadIdx.x;
    if (tail < vocabulary) keep_larger(row[tail], tail, best, index);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(FULL_MASK, best, o);
        const int oi = __shfl_xor_sync(FULL_MASK, index, o);
        if (ov > best || (ov == best && oi < index)) {
            best = ov;
            index = oi;
        }
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        sValue[warp] = best;
        sIndex[warp] = index;
    }
    __syncthreads();
    if (warp == 0) {
        const int warps = blockDim.x / 32;
        best = lane < warps ? sValue[lane] : -INFINITY;
        index = lane < warps ? sIndex[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(FULL_MASK, best, o);
            const int oi = __shfl_xor_sync(FULL_MASK, index, o);
            if (ov > best || (ov == best && oi < index)) {
                best = ov;
                index = oi;
            }
        }
    }
    __syncthreads();
    return index == 0x7fffffff ? 0 : index;  // a row of NaNs: index 0, as the CPU's scan
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) argmax_rows(const float* logits, int vocabulary, int* ids) {
    pdl_start();
    __shared__ float sValue[SAMPLE_WARPS];
    __shared__ int sIndex[SAMPLE_WARPS];
    const int index = block_argmax(logits + (long long)blockIdx.x * vocabulary, vocabulary, sValue, sIndex);
    if (threadIdx.x == 0) ids[blockIdx.x] = index;
}

// The bits of the largest threshold τ such that the kept weights (bits ≥ floorBits) that are ≥ τ number at least target
// (byCount) or have fixed-point weights summing to at least target. The caller guarantees that all kept weights reach
// the target, so τ is the bits of a kept weight: the K-th largest (top-k) or the nucleus' smallest (top-p).
__device__ unsigned radix_threshold(const float* weights, int vocabulary, unsigned floorBits, double target, bool byCount,
                                    u64* histogram) {
    __shared__ unsigned sDigit;
    __shared__ u64 sAbove;
    unsigned prefix = 0;
    u64 above = 0;  // count or weight of the kept values whose higher bits exceed the prefix found so far
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) histogram[i] = 0;
        __syncthreads();
        const unsigned highMask = shift == 24 ? 0u : 0xFFFFFFFFu << (shift + 8);
        for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) {
            const float w = weights[i];
            const unsigned bits = __float_as_uint(w);
            if (bits >= floorBits && (bits & highMask) == prefix)
                atomicAdd(&histogram[(bits >> shift) & 255], byCount ? 1ull : fixed_weight(w));
        }
        __syncthreads();
        // From the top bin down: the bin where the running total reaches the target fixes these 8 bits.
        if (threadIdx.x == 0) {
            u64 running = above;
            unsigned digit = 0;
            for (int d = 255; d >= 0; d--) {
                if ((double)(running + histogram[d]) >= target) {
                    digit = (unsigned)d;
                    break;
                }
                running += histogram[d];
            }
            sDigit = digit;
            sAbove = running;
        }
        __syncthreads();
        prefix |= sDigit << shift;
        above = sAbove;
        __syncthreads();
    }
    return prefix;
}

// The sum (or, byCount, the number) of the fixed-point weights with bits ≥ floorBits, to every thread.
__device__ u64 kept_total(const float* w, int vocabulary, unsigned floorBits, bool byCount, u64* scratch) {
    u64 local = 0;
    for (int i = threadIdx.x; i < vocabulary; i += blockDim.x)
        if (__float_as_uint(w[i]) >= floorBits) local += byCount ? 1ull : fixed_weight(w[i]);
    return block_sum_u64(local, scratch);
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
    sample_rows(const float* logits, float* scratch, int vocabulary, const SamplingRow* rows, const TokenPenalty* penalties,
                int* ids) {
    pdl_start();
    __shared__ u64 sums[SAMPLE_WARPS];
    __shared__ u64 histogram[256];
    __shared__ u64 sScan[SAMPLE_WARPS];
    __shared__ float sValue[SAMPLE_WARPS];
    __shared__ int sIndex[SAMPLE_WARPS];
    const SamplingRow row = rows[blockIdx.x];
    const float* source = logits + (long long)blockIdx.x * vocabulary;
    float* w = scratch + (long long)blockIdx.x * vocabulary;

    if (row.penaltyCount > 0) {
        for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) w[i] = source[i];
        __syncthreads();
        for (int j = threadIdx.x; j < row.penaltyCount; j += blockDim.x) {
            const TokenPenalty e = penalties[row.penaltyStart + j];
            w[e.token] = penalize(w[e.token], e.outputCount, row);
        }
        __syncthreads();
        source = w;
    }

    const float inverse = __fdiv_rn(1.0f, row.temperature);
    float m = -INFINITY;
    if (row.temperature > 0.0f && inverse < INFINITY) {
        for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) m = fmaxf(m, source[i]);
        m = block_max(m, sValue);
    }
    // Greedy rows, and rows whose largest logit is not finite (then no token has weight; the CPU finds its kept total 0).
    if (!(m > -INFINITY && m < INFINITY)) {
        const int index = block_argmax(source, vocabulary, sValue, sIndex);
        if (threadIdx.x == 0) ids[blockIdx.x] = index;
        return;
    }

    // In place when source is the scratch row: each thread reads and writes only its own elements.
    for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) w[i] = sampling_exp(__fmul_rn(__fsub_rn(source[i], m), inverse));
    __syncthreads();

    unsigned floorBits = __float_as_uint(fmaxf(MINIMUM_WEIGHT, row.minP));
    if (row.topK > 0) {
        const u64 kept = kept_total(w, vocabulary, floorBits, true, sums);
        if ((u64)row.topK < kept) floorBits = radix_threshold(w, vocabulary, floorBits, (double)row.topK, true, histogram);
    }
    if (row.topP < 1.0f) {
        const u64 kept = kept_total(w, vocabulary, floorBits, false, sums);
        if (kept > 0) floorBits = radix_threshold(w, vocabulary, floorBits, __dmul_rn((double)row.topP, (double)kept), false, histogram);
    }

    // The draw. Thread t owns elements [t·chunk, (t+1)·chunk): its kept weight, then an exclusive scan over the block.
    const int chunk = (vocabulary + blockDim.x - 1) / blockDim.x;
    const int begin = min(vocabulary, threadIdx.x * chunk), end = min(vocabulary, begin + chunk);
    u64 local = 0;
    for (int i = begin; i < end; i++)
        if (__float_as_uint(w[i]) >= floorBits) local += fixed_weight(w[i]);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    u64 inclusive = local;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const u64 other = __shfl_up_sync(FULL_MASK, inclusive, o);
        if (lane >= o) inclusive += other;
    }
    if (lane == 31) sScan[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        u64 warpTotal = lane < SAMPLE_WARPS ? sScan[lane] : 0ull;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const u64 other = __shfl_up_sync(FULL_MASK, warpTotal, o);
            if (lane >= o) warpTotal += other;
        }
        if (lane < SAMPLE_WARPS) sScan[lane] = warpTotal;  // inclusive over warps
    }
    __syncthreads();
    const u64 total = sScan[SAMPLE_WARPS - 1];  // ≥ 2^32: the most likely token weighs 1 and is always kept
    const u64 before = inclusive - local + (warp > 0 ? sScan[warp - 1] : 0ull);
    const u64 scaled = __double2ull_rz(__dmul_rn(row.uniform, (double)total));
    const u64 r = scaled < total ? scaled : total - 1;
    if (before <= r && r < before + local) {  // exactly one thread: the chunks' ranges partition [0, total)
        u64 running = before;
        for (int i = begin; i < end; i++) {
            const float v = w[i];
            if (__float_as_uint(v) >= floorBits) {
                running += fixed_weight(v);
                if (running > r) {
                    ids[blockIdx.x] = i;
                    break;
                }
            }
        }
    }
}
