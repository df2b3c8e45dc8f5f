// sampling.cu — token choice on the device, so only token ids cross to the host.
//
// argmax_rows: grid (rows), block 1024. The first index of the largest logit (as Sampler.ArgMax on the CPU).
// sample_rows: grid (rows), block 1024. Weights w = exp((logit − max) / temperature) as the CPU Sampler computes them;
//   keep the tokens with w ≥ the k-th largest weight (top-k; ties at the k-th value are all kept) and, of those, the
//   smallest set of largest weights whose sum reaches topP of their total (the nucleus; again by a threshold); then draw
//   with uniform u ∈ [0, 1): the first token in vocabulary order whose running kept weight exceeds u · kept total.
//   Thresholds are found by radix selection on the float bits (positive floats order as unsigned ints): four passes of
//   256-bin histograms in shared memory (counts for top-k, weight sums for top-p), each fixing 8 more bits.
#include "common.cuh"

#define SAMPLE_THREADS 1024

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) argmax_rows(const float* logits, int vocabulary, int* ids) {
    __shared__ float sValue[32];
    __shared__ int sIndex[32];
    const float* row = logits + (long long)blockIdx.x * vocabulary;
    float best = -INFINITY;
    int index = 0x7fffffff;
    for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) {
        const float v = row[i];
        if (v > best) {  // strided scan: a thread's first maximum has its smallest index
            best = v;
            index = i;
        }
    }
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
        if (lane == 0) ids[blockIdx.x] = index == 0x7fffffff ? 0 : index;
    }
}

__device__ float block_reduce_max(float v, float* scratch) {
    v = warp_max(v);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < blockDim.x / 32 ? scratch[threadIdx.x] : -INFINITY;
    if (threadIdx.x < 32) v = warp_max(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    v = scratch[0];
    __syncthreads();
    return v;
}

__device__ float block_reduce_sum(float v, float* scratch) {
    v = warp_sum(v);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < blockDim.x / 32 ? scratch[threadIdx.x] : 0.0f;
    if (threadIdx.x < 32) v = warp_sum(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    v = scratch[0];
    __syncthreads();
    return v;
}

// The bit pattern of the largest threshold τ (among the kept weights ≥ floor) such that the kept weights ≥ τ have count
// ≥ target (byCount) or weight sum ≥ target (by weight). Weights are positive, so their bits order like the floats.
__device__ unsigned radix_threshold(const float* weights, int vocabulary, unsigned floorBits, float target, bool byCount,
                                    float* histogram) {
    unsigned prefix = 0;
    float above = 0.0f;  // count or weight of kept values whose high bits exceed the prefix found so far
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) histogram[i] = 0.0f;
        __syncthreads();
        const unsigned highMask = shift == 24 ? 0u : 0xFFFFFFFFu << (shift + 8);
        for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) {
            const unsigned bits = __float_as_uint(weights[i]);
            if (bits >= floorBits && (bits & highMask) == prefix)
                atomicAdd(&histogram[(bits >> shift) & 255], byCount ? 1.0f : weights[i]);
        }
        __syncthreads();
        // Walk bins from the top: the bin where the running total reaches the target fixes these 8 bits.
        __shared__ unsigned sDigit;
        __shared__ float sAbove;
        if (threadIdx.x == 0) {
            float running = above;
            int digit = 0;
            for (int d = 255; d >= 0; d--) {
                if (running + histogram[d] >= target) {
                    digit = d;
                    break;
                }
                running += histogram[d];
            }
            sDigit = (unsigned)digit;
            sAbove = running;
        }
        __syncthreads();
        prefix |= sDigit << shift;
        above = sAbove;
        __syncthreads();
    }
    return prefix;
}

// weights: scratch [rows][vocabulary]. u: one uniform per row.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_rows(const float* logits, float* weights, int vocabulary,
                                                                          float temperature, int topK, float topP,
                                                                          const float* uniforms, int* ids) {
    __shared__ float scratch[32];
    __shared__ float histogram[256];
    __shared__ float sPrefix[SAMPLE_THREADS];
    const float* row = logits + (long long)blockIdx.x * vocabulary;
    float* w = weights + (long long)blockIdx.x * vocabulary;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) m = fmaxf(m, row[i]);
    m = block_reduce_max(m, scratch);
    const float inverse = 1.0f / temperature;
    for (int i = threadIdx.x; i < vocabulary; i += blockDim.x) w[i] = expf((row[i] - m) * inverse);
    __syncthreads();

    unsigned floorBits = 1;  // the smallest positive float: weights that underflowed to 0 are never kept
    if (topK > 0 && topK < vocabulary)
        floorBits = max(floorBits, radix_threshold(w, vocabulary, floorBits, (float)topK, true, histogram));
    if (topP < 1.0f) {
        float kept = 0.0f;
        for (int i = threadIdx.x; i < vocabulary; i += blockDim.x)
            if (__float_as_uint(w[i]) >= floorBits) kept += w[i];
        kept = block_reduce_sum(kept, scratch);
        floorBits = max(floorBits, radix_threshold(w, vocabulary, floorBits, topP * kept, false, histogram));
    }

    // Contiguous chunk per thread, block-wide inclusive scan of chunk sums, then the owning thread walks its chunk.
    const int chunk = (vocabulary + blockDim.x - 1) / blockDim.x;
    const int begin = threadIdx.x * chunk, stop = min(vocabulary, begin + chunk);
    float local = 0.0f;
    for (int i = begin; i < stop; i++)
        if (__float_as_uint(w[i]) >= floorBits) local += w[i];
    sPrefix[threadIdx.x] = local;
    __syncthreads();
    for (int offset = 1; offset < blockDim.x; offset <<= 1) {
        const float add = threadIdx.x >= offset ? sPrefix[threadIdx.x - offset] : 0.0f;
        __syncthreads();
        sPrefix[threadIdx.x] += add;
        __syncthreads();
    }
    const float total = sPrefix[blockDim.x - 1];
    const float r = uniforms[blockIdx.x] * total;
    float running = threadIdx.x == 0 ? 0.0f : sPrefix[threadIdx.x - 1];
    __shared__ int sChoice;
    if (threadIdx.x == 0) sChoice = -1;
    __syncthreads();
    if (running <= r && r < sPrefix[threadIdx.x]) {
        for (int i = begin; i < stop; i++) {
            if (__float_as_uint(w[i]) < floorBits) continue;
            running += w[i];
            if (r < running) {
                atomicMax(&sChoice, i);
                break;
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int choice = sChoice;
        if (choice < 0) {  // rounding put r at the very end: take the last kept token
            for (int i = vocabulary - 1; i >= 0; i--)
                if (__float_as_uint(w[i]) >= floorBits) {
                    choice = i;
                    break;
                }
        }
        ids[blockIdx.x] = choice;
    }
}
