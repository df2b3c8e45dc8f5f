// attention.cu — paged causal attention over the KV cache, flash-decoding style.
//
// Token t (position p, sequence s) attends to positions 0…p of its sequence; position j lives at slot
// table[s][j / blockSize] · blockSize + j % blockSize, keys/values of one layer laid out [slot][kvHeads][headDim] (float32).
// Grouped-query attention: the G = heads / kvHeads query heads that share KV head h are computed together, so each key and
// value is read once per group. Scores are scaled by 1/√headDim·log2(e) and exponentiated with exp2; online softmax in fp32.
//
// attention_partition: grid (splits, kvHeads, tokens), block 128 (4 warps). Block (z, h, t) covers positions
//   [z·partition, min((z+1)·partition, p+1)) in tiles of 64. Warp w takes positions w, w + 4, … of a tile, four at a
//   time, and its lanes split the head dimension (lane l holds float4 chunks l and l + 32 of a K/V row), so every K and
//   V row is one coalesced warp load and four rows are in flight per warp: (1) scores of the G queries (held in shared
//   memory) by warp reductions; (2) each head's running max / sum updated by one warp per head; (3) the warp's partial
//   output Σ p·v in registers (G ≤ 8 heads × headDim ≤ 256). The four warps' partials are summed through shared memory at
//   the end. With one split the normalised output is written directly; otherwise the unnormalised partial output and
//   its (max, sum) go to a workspace and attention_reduce combines them (flash-decoding's second pass).
// attention_reduce: grid (heads, tokens), block 128.
//
// The same kernels serve prefill: every new token's key/value is already in the cache (rope_store_kv runs first), so a
// prefill chunk is a batch of tokens at consecutive positions, each attending causally over the cached prefix and the
// chunk's earlier tokens.
#include "common.cuh"

#define ATT_THREADS 128
#define ATT_WARPS 4
#define ATT_TILE 64
#define ATT_MAX_CHUNKS 2  // float4 chunks of a K/V row per lane: headDim ≤ 256 (checked by the host)
#define ATT_MAX_GROUP 8   // query heads per KV head (checked by the host)
#define ATT_LANE_OUT (ATT_MAX_GROUP * ATT_MAX_CHUNKS)
#define ATT_ROWS 4        // K/V rows a warp loads before using them

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_partition(
    const float* query, const float* keyCache, const float* valueCache, const int* blockTables, const int* sequenceOf,
    const int* positions, float* output, float* partialOut, float2* partialStats, int heads, int kvHeads, int headDim,
    int blockSize, int maxBlocks, int partition, int splits, float scaleLog2) {
    pdl_start();
    extern __shared__ float shared[];
    const int group = heads / kvHeads;
    const int chunks = headDim / 4;
    float* sq = shared;                          // [group][headDim]; at the end the warps' summed output
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
    const float* keys = keyCache + (long long)h * headDim;
    const float* values = valueCache + (long long)h * headDim;

    for (int i = tid; i < group * headDim; i += ATT_THREADS)
        sq[i] = query[(long long)t * heads * headDim + (long long)h * group * headDim + i] * scaleLog2;
    for (int g = tid; g < group; g += ATT_THREADS) {
        sMax[g] = -INFINITY;
        sSum[g] = 0.0f;
    }
    // acc[g · ATT_MAX_CHUNKS + c]: this lane's chunk lane + 32c of head g, summed over the warp's positions.
    float4 acc[ATT_LANE_OUT];
#pragma unroll
    for (int a = 0; a < ATT_LANE_OUT; a++) acc[a] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    for (int tile = start; tile < end; tile += ATT_TILE) {
        const int count = min(ATT_TILE, end - tile);
        if (tid < ATT_TILE) {
            const int j = tile + tid;
            sSlot[tid] = tid < count ? table[j / blockSize] * blockSize + j % blockSize : 0;
        }
        __syncthreads();
        // 1. Scores: positions warp + ATT_WARPS·i; padding positions score -inf.
        for (int i0 = 0; i0 < ATT_TILE / ATT_WARPS; i0 += ATT_ROWS) {
            float4 k[ATT_ROWS][ATT_MAX_CHUNKS];
#pragma unroll
            for (int u = 0; u < ATT_ROWS; u++) {
                const int jj = warp + ATT_WARPS * (i0 + u);
                const float4* row = (const float4*)(keys + (long long)sSlot[jj] * kvWidth);
#pragma unroll
                for (int c = 0; c < ATT_MAX_CHUNKS; c++)
                    k[u][c] = jj < count && lane + 32 * c < chunks ? row[lane + 32 * c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
            for (int g = 0; g < group; g++) {
                const float4* q = (const float4*)(sq + g * headDim);
                float4 qc[ATT_MAX_CHUNKS];
#pragma unroll
                for (int c = 0; c < ATT_MAX_CHUNKS; c++)
                    qc[c] = lane + 32 * c < chunks ? q[lane + 32 * c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
                for (int u = 0; u < ATT_ROWS; u++) {
                    float s = 0.0f;
#pragma unroll
                    for (int c = 0; c < ATT_MAX_CHUNKS; c++) s += dot4(k[u][c], qc[c]);
                    s = warp_sum(s);
                    const int jj = warp + ATT_WARPS * (i0 + u);
                    if (lane == 0) ss[g * ATT_TILE + jj] = jj < count ? s : -INFINITY;
                }
            }
        }
        __syncthreads();
        // 2. Online softmax update, one warp per head.
        for (int g = warp; g < group; g += ATT_WARPS) {
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
        // 3. acc = acc·alpha + Σ p·v over the warp's positions of the tile.
#pragma unroll
        for (int a = 0; a < ATT_LANE_OUT; a++) {
            const int g = a / ATT_MAX_CHUNKS;
            if (g < group) {
                const float alpha = sAlpha[g];
                acc[a].x *= alpha; acc[a].y *= alpha; acc[a].z *= alpha; acc[a].w *= alpha;
            }
        }
        for (int i0 = 0; i0 < ATT_TILE / ATT_WARPS; i0 += ATT_ROWS) {
            float4 v[ATT_ROWS][ATT_MAX_CHUNKS];
#pragma unroll
            for (int u = 0; u < ATT_ROWS; u++) {
                const int jj = warp + ATT_WARPS * (i0 + u);
                const float4* row = (const float4*)(values + (long long)sSlot[jj] * kvWidth);
#pragma unroll
                for (int c = 0; c < ATT_MAX_CHUNKS; c++)
                    v[u][c] = jj < count && lane + 32 * c < chunks ? row[lane + 32 * c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int u = 0; u < ATT_ROWS; u++) {
                const int jj = warp + ATT_WARPS * (i0 + u);
#pragma unroll
                for (int a = 0; a < ATT_LANE_OUT; a++) {
                    const int g = a / ATT_MAX_CHUNKS, c = a % ATT_MAX_CHUNKS;
                    if (g < group) {
                        const float p = ss[g * ATT_TILE + jj];
                        acc[a].x += p * v[u][c].x; acc[a].y += p * v[u][c].y;
                        acc[a].z += p * v[u][c].z; acc[a].w += p * v[u][c].w;
                    }
                }
            }
        }
        __syncthreads();
    }

    // Sum the warps' partial outputs in sq (free now), in a fixed order, then write.
    for (int w = ATT_WARPS - 1; w >= 0; w--) {
        if (warp == w) {
#pragma unroll
            for (int a = 0; a < ATT_LANE_OUT; a++) {
                const int g = a / ATT_MAX_CHUNKS, c = a % ATT_MAX_CHUNKS;
                if (g < group && lane + 32 * c < chunks) {
                    float4* dst = (float4*)(sq + g * headDim) + lane + 32 * c;
                    if (w == ATT_WARPS - 1) {
                        *dst = acc[a];
                    } else {
                        const float4 o = *dst;
                        *dst = make_float4(o.x + acc[a].x, o.y + acc[a].y, o.z + acc[a].z, o.w + acc[a].w);
                    }
                }
            }
        }
        __syncthreads();
    }
    for (int i = tid; i < group * headDim; i += ATT_THREADS) {
        const int g = i / headDim, d = i % headDim;
        const int head = h * group + g;
        if (splits == 1) {
            output[(long long)t * heads * headDim + (long long)head * headDim + d] = sq[i] / sSum[g];
        } else {
            partialOut[(((long long)t * heads + head) * splits + z) * headDim + d] = sq[i];
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
    pdl_start();
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
