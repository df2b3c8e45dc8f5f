// attention.cu — paged causal attention over the KV cache, flash-decoding style.
//
// Token t (position p, sequence s) attends to positions 0…p of its sequence; position j lives at slot
// table[s][j / blockSize] · blockSize + j % blockSize, keys/values of one layer laid out [slot][kvHeads][headDim] (float32).
// Grouped-query attention: the G = heads / kvHeads query heads that share KV head h are computed together, so each key and
// value is read once per group. Scores are scaled by 1/√headDim·log2(e) and exponentiated with exp2; online softmax in fp32.
//
// attention_partition: grid (splits, kvHeads, tokens), block 128. Block (z, h, t) covers positions
//   [z·partition, min((z+1)·partition, p+1)) in tiles of 128: thread i scores position tile+i against the G queries
//   (held in shared memory), warps then update each head's running max / sum, and every thread accumulates its
//   ⌈G·headDim/128⌉ outputs over the tile's values (consecutive threads read consecutive values: coalesced).
//   With one split the normalised output is written directly; otherwise the unnormalised partial output and its
//   (max, sum) go to a workspace and attention_reduce combines them (flash-decoding's second pass).
// attention_reduce: grid (heads, tokens), block 128.
//
// The same kernels serve prefill: every new token's key/value is already in the cache (rope_store_kv runs first), so a
// prefill chunk is a batch of tokens at consecutive positions, each attending causally over the cached prefix and the
// chunk's earlier tokens.
#include "common.cuh"

#define ATT_THREADS 128
#define ATT_TILE 128
#define ATT_MAX_OUT 16  // G·headDim ≤ 2048 (checked by the host)

extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_partition(
    const float* query, const float* keyCache, const float* valueCache, const int* blockTables, const int* sequenceOf,
    const int* positions, float* output, float* partialOut, float2* partialStats, int heads, int kvHeads, int headDim,
    int blockSize, int maxBlocks, int partition, int splits, float scaleLog2) {
    extern __shared__ float shared[];
    const int group = heads / kvHeads;
    float* sq = shared;                          // [group][headDim]
    float* ss = sq + group * headDim;            // [group][ATT_TILE]
    float* sAlpha = ss + group * ATT_TILE;       // [group]
    float* sMax = sAlpha + group;                // [group]
    float* sSum = sMax + group;                  // [group]
    int* sSlot = (int*)(sSum + group);           // [ATT_TILE]

    const int z = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int length = positions[t] + 1;
    const int start = z * partition;
    if (start >= length) return;
    const int end = min(length, start + partition);
    const int* table = blockTables + (long long)sequenceOf[t] * maxBlocks;
    const int kvWidth = kvHeads * headDim;

    for (int i = tid; i < group * headDim; i += ATT_THREADS)
        sq[i] = query[(long long)t * heads * headDim + (long long)h * group * headDim + i] * scaleLog2;
    for (int g = tid; g < group; g += ATT_THREADS) {
        sMax[g] = -INFINITY;
        sSum[g] = 0.0f;
    }
    const int outputs = group * headDim;
    float acc[ATT_MAX_OUT];
#pragma unroll
    for (int i = 0; i < ATT_MAX_OUT; i++) acc[i] = 0.0f;
    __syncthreads();

    for (int tile = start; tile < end; tile += ATT_TILE) {
        const int count = min(ATT_TILE, end - tile);
        // 1. Scores of position tile + tid against every query head of the group.
        if (tid < count) {
            const int j = tile + tid;
            const int slot = table[j / blockSize] * blockSize + j % blockSize;
            sSlot[tid] = slot;
            const float4* k = (const float4*)(keyCache + (long long)slot * kvWidth + (long long)h * headDim);
            for (int g = 0; g < group; g++) {
                const float4* q = (const float4*)(sq + g * headDim);
                float s = 0.0f;
                for (int d = 0; d < headDim / 4; d++) {
                    const float4 a = k[d], b = q[d];
                    s += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
                }
                ss[g * ATT_TILE + tid] = s;
            }
        } else {
            for (int g = 0; g < group; g++) ss[g * ATT_TILE + tid] = -INFINITY;
        }
        __syncthreads();
        // 2. Online softmax update, one warp per head.
        for (int g = warp; g < group; g += ATT_THREADS / 32) {
            float* row = ss + g * ATT_TILE;
            float m = -INFINITY;
            for (int i = lane; i < ATT_TILE; i += 32) m = fmaxf(m, row[i]);
            m = warp_max(m);
            const float previous = sMax[g];
            const float next = fmaxf(previous, m);
            float sum = 0.0f;
            for (int i = lane; i < ATT_TILE; i += 32) {
                const float p = exp2f(row[i] - next);  // exp2(-inf) = 0 for the padding
                row[i] = p;
                sum += p;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                const float alpha = exp2f(previous - next);  // 0 on the first tile (previous = -inf)
                sAlpha[g] = alpha;
                sSum[g] = sSum[g] * alpha + sum;
                sMax[g] = next;
            }
        }
        __syncthreads();
        // 3. acc = acc·alpha + Σ p·v for this thread's outputs.
#pragma unroll
        for (int i = 0; i < ATT_MAX_OUT; i++) {
            const int o = tid + i * ATT_THREADS;
            if (o < outputs) {
                const int g = o / headDim, d = o % headDim;
                const float* p = ss + g * ATT_TILE;
                const float* v = valueCache + (long long)h * headDim + d;
                float a = acc[i] * sAlpha[g];
                for (int jj = 0; jj < count; jj++) a += p[jj] * v[(long long)sSlot[jj] * kvWidth];
                acc[i] = a;
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < ATT_MAX_OUT; i++) {
        const int o = tid + i * ATT_THREADS;
        if (o < outputs) {
            const int g = o / headDim, d = o % headDim;
            const int head = h * group + g;
            if (splits == 1) {
                output[(long long)t * heads * headDim + (long long)head * headDim + d] = acc[i] / sSum[g];
            } else {
                partialOut[(((long long)t * heads + head) * splits + z) * headDim + d] = acc[i];
            }
        }
    }
    if (splits > 1) {
        for (int g = tid; g < group; g += ATT_THREADS)
            partialStats[((long long)t * heads + h * group + g) * splits + z] = make_float2(sMax[g], sSum[g]);
    }
}

// Combines the partitions of head blockIdx.x of token blockIdx.y: out = Σ 2^(mᵢ−M)·oᵢ / Σ 2^(mᵢ−M)·lᵢ.
extern "C" __global__ void attention_reduce(const float* partialOut, const float2* partialStats, const int* positions,
                                            float* output, int heads, int headDim, int partition, int splits) {
    const int head = blockIdx.x, t = blockIdx.y;
    const int used = (positions[t] + partition) / partition;  // ⌈(p + 1) / partition⌉
    const float2* stats = partialStats + ((long long)t * heads + head) * splits;
    float m = -INFINITY;
    for (int z = 0; z < used; z++) m = fmaxf(m, stats[z].x);
    float total = 0.0f;
    for (int z = 0; z < used; z++) total += exp2f(stats[z].x - m) * stats[z].y;
    const float* parts = partialOut + ((long long)t * heads + head) * splits * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float v = 0.0f;
        for (int z = 0; z < used; z++) v += exp2f(stats[z].x - m) * parts[(long long)z * headDim + d];
        output[(long long)t * heads * headDim + (long long)head * headDim + d] = v / total;
    }
}
