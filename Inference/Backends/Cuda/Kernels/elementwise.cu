// elementwise.cu — the row-wise operations of the forward pass, each the device twin of a CPU backend job.
//
// Activations are float32, row-major [rows][columns]. The KV cache of one layer is, for keys and values separately,
// [slots][kvHeads][headDim] with slot = block * blockSize + offset (KvCacheShape), in the cache's element type: float32, or
// f16 for the _f16 variants of the kernels that write it. Launch shapes are given per kernel;
// CudaLaunchGeometry in C# computes them.
#include "common.cuh"

// output[t][:] = row ids[t] of the table, dequantized.  grid (tokens), block one thread per EMBED_ITEMS values up to 1024
// (CudaLaunchGeometry.EmbedThreads). A thread gathers all its values before storing any: the table row is cold in L2, and
// a loop of load, store, load… (the stores may alias the table for the compiler) made one HBM round trip per 256 values —
// 16 in a row for a 4096-wide row, and the first layer's norm waits for it in every decode step.
#define EMBED_ITEMS 4
extern "C" __global__ void __launch_bounds__(1024) embed_rows(const unsigned char* __restrict__ codes, const void* __restrict__ scales,
                                                               const float* __restrict__ mins, int layout, int scalesPerBlock,
                                                               int offset, int columns, const int* ids, float* __restrict__ output) {
    pdl_start();
    const int t = blockIdx.x;
    const long long row = ids[t];
    for (int base = threadIdx.x; base < columns; base += EMBED_ITEMS * blockDim.x) {
        float v[EMBED_ITEMS];
#pragma unroll
        for (int j = 0; j < EMBED_ITEMS; j++) {
            const int i = base + j * blockDim.x;
            v[j] = i < columns ? weight_value(codes, scales, mins, layout, scalesPerBlock, offset, row, columns, i) : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < EMBED_ITEMS; j++) {
            const int i = base + j * blockDim.x;
            if (i < columns) output[(long long)t * columns + i] = v[j];
        }
    }
}

// Block-wide sum of one float per thread (blockDim a multiple of 32, at most 1024).
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    v = warp_sum(v);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    const int warps = blockDim.x / 32;
    v = lane < warps ? scratch[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

// residual += delta (when delta is given), then output = residual / rms(residual) * weight.  One block per row, a thread
// per 4 values up to 1024 threads (CudaLaunchGeometry.NormThreads), each holding at most NORM_ITEMS float4 of the row in
// registers from its loads to its stores; columns a multiple of 4, at most 4 · 1024 · NORM_ITEMS. Batch-1 decode runs
// this twice a layer as one block, so its latency is on the step's critical path: all of a thread's loads are issued
// before the first is used (a 4096-wide row took 17 µs as a loop of dependent scalar loads over 256 threads, ~8 µs over
// 1024), and the norm weight, which no kernel writes, is loaded before waiting for the kernel before.
// output may alias residual: a thread reads its own values before it writes them, and no other thread's.
// When codes is given (columns a multiple of 32), the output is also quantized as quantize_q8 does (quantize_block4: the
// 8 lanes of consecutive chunks that hold one 32-value block), for the quantized matmul that reads it next. When halves
// is given, it is also rounded to f16 (bf16 when bf16 != 0) as round_to_half does, for the half GEMM that reads it next.
// deltaSplits > 1: delta is a split-K GEMM's partials [deltaSplits][rows][columns], added here in split order from 0 —
// sum_splits' sum, bit for bit — and written to deltaSums (the GEMM's output), so no sum_splits launch runs between the
// two (CudaBackend.SplitSumsInNorm).
// ITEMS: the float4 a thread holds — NORM_ITEMS (rms_norm_rows), or 1 (rms_norm_rows_1: rows of at most 4,096 values,
// which 1,024 threads cover once). At 1,024 threads a thread has 64 registers; the 4-item kernel's 48 for its items alone
// spilled (72 bytes of stack) even where only one item is ever used.
#define NORM_ITEMS 4
template <int ITEMS>
__device__ __forceinline__ void rms_norm_row(float* residual, const float* delta, int deltaSplits, float* deltaSums,
                                             const float* weight, float epsilon, float* output, int columns,
                                             signed char* codes, float2* scaleSums, unsigned short* halves, int bf16) {
    const int chunks = columns / 4;
    float4 w[ITEMS];
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const int c = threadIdx.x + k * blockDim.x;
        w[k] = c < chunks ? ((const float4*)weight)[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    pdl_start();
    __shared__ float scratch[32];
    const long long base = (long long)blockIdx.x * columns;
    float4* row = (float4*)(residual + base);
    float4 x[ITEMS], d[ITEMS];
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const int c = threadIdx.x + k * blockDim.x;
        const bool inside = c < chunks;
        x[k] = inside ? row[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        d[k] = inside && delta ? ((const float4*)(delta + base))[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    if (deltaSplits > 1) {
        const long long plane = (long long)gridDim.x * columns;
#pragma unroll
        for (int k = 0; k < ITEMS; k++)  // sum_splits starts from 0 (+0 + −0 is +0)
            d[k] = make_float4(0.0f + d[k].x, 0.0f + d[k].y, 0.0f + d[k].z, 0.0f + d[k].w);
        for (int z = 1; z < deltaSplits; z++) {
#pragma unroll
            for (int k = 0; k < ITEMS; k++) {
                const int c = threadIdx.x + k * blockDim.x;
                if (c >= chunks) continue;
                const float4 p = ((const float4*)(delta + z * plane + base))[c];
                d[k] = make_float4(d[k].x + p.x, d[k].y + p.y, d[k].z + p.z, d[k].w + p.w);
            }
        }
#pragma unroll
        for (int k = 0; k < ITEMS; k++) {
            const int c = threadIdx.x + k * blockDim.x;
            if (c < chunks) ((float4*)(deltaSums + base))[c] = d[k];
        }
    }
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const int c = threadIdx.x + k * blockDim.x;
        if (delta) {
            x[k] = make_float4(x[k].x + d[k].x, x[k].y + d[k].y, x[k].z + d[k].z, x[k].w + d[k].w);
            if (c < chunks) row[c] = x[k];
        }
        sum += x[k].x * x[k].x + x[k].y * x[k].y + x[k].z * x[k].z + x[k].w * x[k].w;
    }
    sum = block_sum(sum, scratch);
    const float scale = rsqrtf(sum / columns + epsilon);
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const int c = threadIdx.x + k * blockDim.x;
        if (c >= chunks) continue;  // whole 8-lane groups when codes is given: chunks is then a multiple of 8
        const float4 y = make_float4(x[k].x * scale * w[k].x, x[k].y * scale * w[k].y, x[k].z * scale * w[k].z,
                                     x[k].w * scale * w[k].w);
        ((float4*)(output + base))[c] = y;
        if (codes) quantize_block4(y, codes, scaleSums, base + 4 * c);
        if (halves) {
            uint2 h;
            h.x = bf16 ? pack_bf162(y.x, y.y) : pack_half2(y.x, y.y);
            h.y = bf16 ? pack_bf162(y.z, y.w) : pack_half2(y.z, y.w);
            *(uint2*)(halves + base + 4 * c) = h;
        }
    }
}

#define RMS_NORM_ROWS_PARAMS float *residual, const float *delta, int deltaSplits, float *deltaSums, const float *weight,     \
                             float epsilon, float *output, int columns, signed char *codes, float2 *scaleSums,             \
                             unsigned short *halves, int bf16
#define RMS_NORM_ROWS_ARGS residual, delta, deltaSplits, deltaSums, weight, epsilon, output, columns, codes, scaleSums, halves, bf16
extern "C" __global__ void __launch_bounds__(1024) rms_norm_rows(RMS_NORM_ROWS_PARAMS) {
    rms_norm_row<NORM_ITEMS>(RMS_NORM_ROWS_ARGS);
}
extern "C" __global__ void __launch_bounds__(1024) rms_norm_rows_1(RMS_NORM_ROWS_PARAMS) {
    rms_norm_row<1>(RMS_NORM_ROWS_ARGS);
}

// Each group of `group` values normalised on its own (Qwen3's per-head q/k norm).  One warp per group, 4 warps per block:
// grid (ceil(rows * columns / group / 4)), block 128. Output may alias input.
extern "C" __global__ void rms_norm_groups(const float* input, const float* weight, float epsilon, float* output,
                                           int groups, int group) {
    pdl_start();
    const int g = blockIdx.x * 4 + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (g >= groups) return;
    const long long base = (long long)g * group;
    float sum = 0.0f;
    for (int i = lane; i < group; i += 32) sum += input[base + i] * input[base + i];
    sum = warp_sum(sum);
    const float scale = rsqrtf(sum / group + epsilon);
    for (int i = lane; i < group; i += 32) output[base + i] = input[base + i] * scale * weight[i];
}

// A key or value stored into the KV cache: as it is (float32), rounded to nearest even to f16, or to FP8 E4M3.
__device__ __forceinline__ void store_kv(float* cache, long long i, float x) { cache[i] = x; }
__device__ __forceinline__ void store_kv(unsigned short* cache, long long i, float x) { cache[i] = round_half(x, 0); }
__device__ __forceinline__ void store_kv(unsigned char* cache, long long i, float x) { cache[i] = fp8_e4m3_round(x); }

// Rotates every head of query and key of token t by its position (cos/sin tables [maxPositions][headDim/2]), writes the
// rotated key and the value to the cache at the token's slot.  grid (tokens, ceil((heads + kvHeads) · headDim/2 / 128)),
// block 128: one rotated pair per thread (one block per token looped 20 times over a Llama-3-8B token: 12 µs a layer).
// style 0: adjacent pairs (2i, 2i+1); style 1: NeoX (i, i + headDim/2). KV is the cache's element type (float, unsigned
// short holding f16: rope_store_kv_f16, or unsigned char holding E4M3: rope_store_kv_fp8); the rotated query and key in the
// activations stay float32.
// With qNorm and kNorm (Qwen3's per-head RMS norm of q and k, weights [headDim]) each head is first normalised as
// rms_norm_groups does — x · rsqrt(mean(x²) + epsilon) · weight — saving its two launches a layer. A head's pairs are
// consecutive threads of one block (the host asks 128 % (headDim / 2) == 0): summed over the warp, then, for heads wider
// than a warp, over the head's warps through shared memory.
template <typename KV>
__device__ __forceinline__ void rope_store_kv_body(float* query, float* key, const float* value, const float* cosTable,
                                                   const float* sinTable, const int* positions, const int* slots,
                                                   KV* keyCache, KV* valueCache, int heads, int kvHeads, int headDim,
                                                   int style, const float* qNorm, const float* kNorm, float epsilon) {
    __shared__ float headSums[4];
    const int t = blockIdx.x;
    const int pairs = headDim / 2;
    const long long p = positions[t];
    const float* cs = cosTable + p * pairs;
    const float* sn = sinTable + p * pairs;
    const long long slot = slots[t];
    const int kvWidth = kvHeads * headDim;
    const int item = blockIdx.y * blockDim.x + threadIdx.x;
    const bool inside = item < (heads + kvHeads) * pairs;
    const int h = item / pairs, i = item % pairs;
    const bool isKey = h >= heads;
    float* x = isKey ? key + (long long)t * kvWidth + (h - heads) * headDim
                     : query + (long long)t * heads * headDim + h * headDim;
    const int a = style == 0 ? 2 * i : i;
    const int b = style == 0 ? 2 * i + 1 : i + pairs;
    float x0 = inside ? x[a] : 0.0f, x1 = inside ? x[b] : 0.0f;
    if (qNorm) {  // uniform over the grid: every thread reaches the barrier
        float sum = x0 * x0 + x1 * x1;
        for (int offset = 1; offset < min(pairs, 32); offset *= 2) sum += __shfl_xor_sync(FULL_MASK, sum, offset);
        if (pairs > 32) {
            const int warp = threadIdx.x / 32, first = warp - warp % (pairs / 32);
            if (threadIdx.x % 32 == 0) headSums[warp] = sum;
            __syncthreads();
            sum = 0.0f;
            for (int w = first; w < first + pairs / 32; w++) sum += headSums[w];
        }
        const float scale = rsqrtf(sum / headDim + epsilon);
        const float* weight = isKey ? kNorm : qNorm;
        if (inside) {
            x0 = x0 * scale * weight[a];
            x1 = x1 * scale * weight[b];
        }
    }
    if (inside) {
        const float r0 = rope_first(x0, x1, cs[i], sn[i]);
        const float r1 = rope_second(x0, x1, cs[i], sn[i]);
        x[a] = r0;
        x[b] = r1;
        if (isKey) {
            const long long k = slot * kvWidth + (h - heads) * headDim;
            store_kv(keyCache, k + a, r0);
            store_kv(keyCache, k + b, r1);
        }
    }
    for (int j = item; j < kvWidth; j += gridDim.y * blockDim.x)
        store_kv(valueCache, slot * kvWidth + j, value[(long long)t * kvWidth + j]);
}

// The entries of rope_store_kv_body, one a cache element type (C linkage has no templates): rope_store_kv (float32),
// rope_store_kv_f16, rope_store_kv_fp8.
#define ROPE_STORE_KV(NAME, KV)                                                                                          \
    extern "C" __global__ void NAME(float* query, float* key, const float* value, const float* cosTable,                \
                                    const float* sinTable, const int* positions, const int* slots, KV* keyCache,        \
                                    KV* valueCache, int heads, int kvHeads, int headDim, int style, const float* qNorm, \
                                    const float* kNorm, float epsilon) {                                                 \
        pdl_start();                                                                                                     \
        rope_store_kv_body(query, key, value, cosTable, sinTable, positions, slots, keyCache, valueCache, heads,         \
                           kvHeads, headDim, style, qNorm, kNorm, epsilon);                                              \
    }

ROPE_STORE_KV(rope_store_kv, float)
ROPE_STORE_KV(rope_store_kv_f16, unsigned short)
ROPE_STORE_KV(rope_store_kv_fp8, unsigned char)

// output = gate / (1 + e^-gate) * up over n values.  grid (ceil(n / 256)), block 256. When codes is given (n and the
// row width multiples of 32, so every warp holds one whole block) the output is also quantized as quantize_q8 does; when
// halves is given, also rounded to f16/bf16 (rms_norm_rows). dependentsFirst: see pdl_start (common.cuh).
extern "C" __global__ void silu_mul(const float* gate, const float* up, float* output, long long n, signed char* codes,
                                    float2* scaleSums, unsigned short* halves, int bf16, int dependentsFirst) {
    pdl_start(dependentsFirst);
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = gate[i];
    const float y = g / (1.0f + expf(-g)) * up[i];
    output[i] = y;
    if (codes) quantize_block(y, codes, scaleSums, i / 32);
    if (halves) halves[i] = round_half(y, bf16);
}

// tensor[r][c] += bias[c].  grid (ceil(rows * columns / 256)), block 256.
extern "C" __global__ void add_bias(float* tensor, const float* bias, int columns, long long n) {
    pdl_start();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    tensor[i] += bias[i % columns];
}

// output[i] = input[indices[i]].  grid (count), block 256.
extern "C" __global__ void gather_rows(const float* input, const int* indices, float* output, int columns) {
    pdl_start();
    const long long src = (long long)indices[blockIdx.x] * columns, dst = (long long)blockIdx.x * columns;
    for (int i = threadIdx.x; i < columns; i += blockDim.x) output[dst + i] = input[src + i];
}

// quantize_block over whole rows: one warp per block of 32 values, 8 warps per thread block:
// grid (ceil(rows * columns / 32 / 8)), block 256.
extern "C" __global__ void quantize_q8(const float* input, signed char* codes, float2* scaleSums, long long blocks) {
    pdl_start();
    const long long b = (long long)blockIdx.x * 8 + threadIdx.x / 32;
    if (b >= blocks) return;
    quantize_block(input[b * 32 + threadIdx.x % 32], codes, scaleSums, b);
}

// Activations rounded (to nearest even) to f16 or bf16 for the half GEMM (gemm_half_tc in matmul.cu), which then moves
// both operands by cp.async alone. Eight values per thread (two float4 in, one 16-byte store out); count is a multiple of
// 8 (K % 32 == 0). grid (ceil(count / 8 / 256)), block 256.
extern "C" __global__ void round_to_half(const float* input, unsigned short* output, long long count, int bf16) {
    pdl_start();
    const long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= count) return;
    const float4 a = *(const float4*)(input + i), b = *(const float4*)(input + i + 4);
    uint4 r;
    r.x = bf16 ? pack_bf162(a.x, a.y) : pack_half2(a.x, a.y);
    r.y = bf16 ? pack_bf162(a.z, a.w) : pack_half2(a.z, a.w);
    r.z = bf16 ? pack_bf162(b.x, b.y) : pack_half2(b.x, b.y);
    r.w = bf16 ? pack_bf162(b.z, b.w) : pack_half2(b.z, b.w);
    *(uint4*)(output + i) = r;
}
