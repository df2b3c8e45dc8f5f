// attention.cu — paged causal attention over the KV cache: flash-decoding for decode tokens, FlashAttention-2 for prefill.
//
// Token t (position p, sequence s) attends to positions 0…p of its sequence; position j lives at slot
// table[s][j / blockSize] · blockSize + j % blockSize, keys/values of one layer laid out [slot][kvHeads][headDim] (float32).
// Grouped-query attention: query head h reads KV head h / (heads / kvHeads). Scores are scaled by 1/√headDim·log2(e) and
// exponentiated with exp2; online softmax in fp32. Every new token's key/value is already in the cache when attention runs
// (rope_store_kv runs first), so a prefill chunk is a batch of tokens at consecutive positions, each attending causally over
// the cached prefix and the chunk's earlier tokens.
//
// attention_partition (decode tokens, short chunks; any head dimension ≤ 256): grid (splits, kvHeads, tokens), block 128
//   (4 warps). The G = heads / kvHeads query heads that share a KV head are computed together, so each key and value is
//   read once per group. Block (z, h, i) serves token t = tokenList[i] (t = i when the list is null) and covers positions
//   [z·partition, min((z+1)·partition, p+1)) in tiles of 64. Warp w takes positions w, w + 4, … of a tile, four at a
//   time, and its lanes split the head dimension (lane l holds float4 chunks l and l + 32 of a K/V row), so every K and
//   V row is one coalesced warp load and four rows are in flight per warp: (1) scores of the G queries (held in shared
//   memory) by warp reductions; (2) each head's running max / sum updated by one warp per head; (3) the warp's partial
//   output Σ p·v in registers (G ≤ 8 heads × headDim ≤ 256). The four warps' partials are summed through shared memory at
//   the end. With one split the normalised output is written directly; otherwise the unnormalised partial output and
//   its (max, sum) go to a workspace and attention_reduce combines them (flash-decoding's second pass).
// attention_reduce: grid (heads, tokens), block 128; token list as attention_partition's.
// attention_prefill (runs of ≥ CudaLaunchGeometry.PrefillMinRun tokens; headDim a multiple of 16, ≤ 128): see its comment.
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
    const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats, int heads, int kvHeads,
    int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2) {
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

    const int z = blockIdx.x, h = blockIdx.y, t = tokenList ? tokenList[blockIdx.z] : blockIdx.z;
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

// Combines the partitions of head blockIdx.x of token t (tokenList[blockIdx.y], or blockIdx.y without a list):
// out = Σ 2^(mᵢ−M)·oᵢ / Σ 2^(mᵢ−M)·lᵢ.
extern "C" __global__ void attention_reduce(const float* partialOut, const float2* partialStats, const int* positions,
                                            const int* tokenList, float* output, int heads, int headDim, int partition,
                                            int splits) {
    pdl_start();
    const int head = blockIdx.x, t = tokenList ? tokenList[blockIdx.y] : blockIdx.y;
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

// attention_prefill — FlashAttention-2 forward on tensor cores for prefill runs, causal, over the paged fp32 KV cache.
//
// Computes, for each query token t of a query tile and query head h: out[t][h·headDim + d] = Σ_j softmax_j(q·k_j / √headDim)
// · v_j[d] over the positions j = 0…p_t of t's sequence, like attention_partition, but 64 query rows at a time with
// mma.sync.m16n8k16 (f16 operands, fp32 accumulation).
// A query tile (host: CudaLaunchGeometry.BuildQueryTiles) is (first token, count): count ≤ 128 consecutive tokens of the
// batch of one sequence at consecutive positions p0…p0+count−1. queryTiles holds [tileCount][2] ints.
// grid (tileCount, heads), block 256 = 8 warps; warp w owns query rows 16w…16w+15 of the tile. 8 warps of 16 rows rather
// than 4: each K/V tile loaded and converted serves twice the queries, and the register prefetch of a tile is 8 float4 a
// thread instead of 16 (with 4 warps ptxas capped the kernel at 255 registers and spilled 852 bytes). Dynamic shared memory
// (CudaLaunchGeometry.PrefillSharedBytes): K and V tiles [64][headDim + 8] f16 — the 8 halves of padding make each row
// start 4 banks after the previous one modulo 32, so the eight 16-byte rows an ldmatrix phase reads hit 32 distinct banks —
// and the slots of two K/V tiles [2][64] int.
//   - Q, pre-scaled by scaleLog2 and rounded to f16, lives in registers as mma A fragments for the whole kernel.
//   - K/V tiles of 64 positions, 0 … p0+count−1 (causal: later positions are never read). Threads load them with 16-byte
//     loads (a warp reads 512 contiguous bytes of a row), convert to f16 and store them to shared memory. Pipelined through
//     registers: V of tile i loads while S = Q·Kᵀ and the softmax of tile i run, K of tile i+1 while P·V of tile i runs.
//   - S = Q·Kᵀ: K rows are the "col" B operand as they lie (ldmatrix). Online softmax per row in registers: each row's 64
//     scores sit in the 4 lanes of a quad (max and sum across them with __shfl_xor 1, 2); keys after the row's position are
//     masked to −inf. P is rounded to f16 and used directly as the A operand of P·V (the C fragment layout of S is the A
//     fragment layout of P); the row sums add the rounded p, so the output is an exact convex combination of what the
//     mma multiplied. V is the B operand of P·V through ldmatrix.trans. O accumulates in fp32, divided by the row sum at
//     the end and written as float32.
//   - Warps whose rows all precede a K/V tile (the causal diagonal) or lie past the tile's count skip its arithmetic.
// Blocks are taken in reverse tile order: the host lists a run's tiles by position, and later tiles have longer contexts,
// so the longest blocks start first.
// f16 range: q·scaleLog2, k, v and p must stay below 65504 in magnitude (p ≤ 1; activations of the models served are far
// below); rounding costs ≤ 2⁻¹¹ relative per value (GpuCheck's bound for this path is derived from it).
#define PF_THREADS 256
#define PF_ROWS 128     // query rows per block: 8 warps × 16
#define PF_KEYS 64      // positions per K/V tile
#define PF_MAX_DIM 128  // largest head dimension (checked by the host)
#define PF_PAD 8        // halves of padding per shared row
#define PF_MAX_PIECES (PF_KEYS * PF_MAX_DIM / 4 / PF_THREADS)  // float4 pieces of a K/V tile per thread

__device__ __forceinline__ unsigned smem_address(const void* p) {
    unsigned long long a;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
    return (unsigned)a;
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_address(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_address(p)));
}

__device__ __forceinline__ void mma_f16(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                        unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The piece → (row, float4 column) map of a K/V tile: piece i of thread tid is tid + 128·i, row-major over [64][chunks].
// The same for every tile, so it is stepped incrementally instead of dividing per piece.
struct TilePieces {
    int row, col, rowStep, colStep, chunks, pieces;
    __device__ __forceinline__ TilePieces(int tid, int chunks_) : chunks(chunks_), pieces(PF_KEYS * chunks_) {
        row = tid / chunks;
        col = tid % chunks;
        rowStep = PF_THREADS / chunks;
        colStep = PF_THREADS % chunks;
    }
    __device__ __forceinline__ void next() {
        row += rowStep;
        col += colStep;
        if (col >= chunks) {
            col -= chunks;
            row++;
        }
    }
};

// Loads the thread's pieces of one K or V tile (positions whose slot is −1 read as zeros).
__device__ __forceinline__ void prefill_load(float4 (&r)[PF_MAX_PIECES], const float* base, const int* slots, int kvWidth,
                                             int tid, int chunks) {
    TilePieces p(tid, chunks);
#pragma unroll
    for (int i = 0; i < PF_MAX_PIECES; i++) {
        if (tid + PF_THREADS * i < p.pieces) {
            const int slot = slots[p.row];
            r[i] = slot >= 0 ? ((const float4*)(base + (long long)slot * kvWidth))[p.col] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        p.next();
    }
}

// Stores the loaded pieces, rounded to f16, into a [64][stride] tile.
__device__ __forceinline__ void prefill_store(unsigned short* tile, const float4 (&r)[PF_MAX_PIECES], int stride, int tid,
                                              int chunks) {
    TilePieces p(tid, chunks);
#pragma unroll
    for (int i = 0; i < PF_MAX_PIECES; i++) {
        if (tid + PF_THREADS * i < p.pieces) {
            uint2 h;
            h.x = pack_half2(r[i].x, r[i].y);
            h.y = pack_half2(r[i].z, r[i].w);
            *(uint2*)(tile + p.row * stride + 4 * p.col) = h;  // one 8-byte store
        }
        p.next();
    }
}

extern "C" __global__ void __launch_bounds__(PF_THREADS) attention_prefill(
    const float* query, const float* keyCache, const float* valueCache, const int* blockTables, const int* sequenceOf,
    const int* positions, const int* queryTiles, float* output, int tileCount, int heads, int kvHeads, int headDim,
    int blockSize, int maxBlocks, float scaleLog2) {
    pdl_start();
    extern __shared__ __attribute__((aligned(16))) unsigned char prefillShared[];
    const int stride = headDim + PF_PAD;
    unsigned short* sK = (unsigned short*)prefillShared;  // [PF_KEYS][stride]
    unsigned short* sV = sK + PF_KEYS * stride;           // [PF_KEYS][stride]
    int* sSlot = (int*)(sV + PF_KEYS * stride);           // [2][PF_KEYS]: tile i's slots in sSlot[i & 1]

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t4 = lane % 4;
    const int tile = tileCount - 1 - blockIdx.x, h = blockIdx.y;
    const int first = queryTiles[2 * tile], count = queryTiles[2 * tile + 1];
    const int p0 = positions[first];
    const int* table = blockTables + (long long)sequenceOf[first] * maxBlocks;
    const int kvEnd = p0 + count;  // positions 0 … kvEnd − 1 are read
    const int kvTiles = (kvEnd + PF_KEYS - 1) / PF_KEYS;
    const int kvWidth = kvHeads * headDim;
    const int kvHead = h / (heads / kvHeads);
    const float* keys = keyCache + (long long)kvHead * headDim;
    const float* values = valueCache + (long long)kvHead * headDim;
    const int chunks = headDim / 4, kSteps = headDim / 16, dTiles = headDim / 8;

    // This warp's rows: r0 = 16·warp + g and r1 = r0 + 8 (the C fragment's two rows), at positions p0 + r.
    const int r0 = 16 * warp + g, r1 = r0 + 8;
    const bool warpHasRows = 16 * warp < count;
    const int warpLastPosition = p0 + min(16 * warp + 15, count - 1);

    // Q as A fragments: qf[k] covers head dimensions 16k…16k+15 (a0: row r0, dims 2·t4, +1; a1: row r1; a2, a3: dims + 8).
    unsigned qf[PF_MAX_DIM / 16][4];
#pragma unroll
    for (int k = 0; k < PF_MAX_DIM / 16; k++) {
        if (k < kSteps) {
            const int d = 16 * k + 2 * t4;
            float2 q[4] = {make_float2(0.0f, 0.0f), make_float2(0.0f, 0.0f), make_float2(0.0f, 0.0f), make_float2(0.0f, 0.0f)};
            if (r0 < count) {
                const float* row = query + (long long)(first + r0) * heads * headDim + (long long)h * headDim;
                q[0] = *(const float2*)(row + d);
                q[2] = *(const float2*)(row + d + 8);
            }
            if (r1 < count) {
                const float* row = query + (long long)(first + r1) * heads * headDim + (long long)h * headDim;
                q[1] = *(const float2*)(row + d);
                q[3] = *(const float2*)(row + d + 8);
            }
#pragma unroll
            for (int e = 0; e < 4; e++) qf[k][e] = pack_half2(q[e].x * scaleLog2, q[e].y * scaleLog2);
        }
    }

    float o[PF_MAX_DIM / 8][4];  // O fragments: o[n] covers head dimensions 8n…8n+7
#pragma unroll
    for (int n = 0; n < PF_MAX_DIM / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[n][e] = 0.0f;
    float max0 = -INFINITY, max1 = -INFINITY;  // running row maxima (rows r0, r1), the same in the 4 lanes of a quad
    float sum0 = 0.0f, sum1 = 0.0f;            // this lane's share of the running row sums

    // Slot of position j of the run's sequence, −1 past the last position read.
    auto slotOf = [&](int j) { return j < kvEnd ? table[j / blockSize] * blockSize + j % blockSize : -1; };
    if (tid < PF_KEYS) sSlot[tid] = slotOf(tid);
    __syncthreads();
    float4 kr[PF_MAX_PIECES], vr[PF_MAX_PIECES];
    prefill_load(kr, keys, sSlot, kvWidth, tid, chunks);

    for (int i = 0; i < kvTiles; i++) {
        const int kv0 = i * PF_KEYS;
        const int* slots = sSlot + (i & 1) * PF_KEYS;
        __syncthreads();  // every warp is done with sK and sV of tile i − 1
        prefill_store(sK, kr, stride, tid, chunks);
        if (tid < PF_KEYS && i + 1 < kvTiles) sSlot[((i + 1) & 1) * PF_KEYS + tid] = slotOf(kv0 + PF_KEYS + tid);
        prefill_load(vr, values, slots, kvWidth, tid, chunks);
        __syncthreads();  // sK of tile i and the slots of tile i + 1 are visible
        const bool active = warpHasRows && kv0 <= warpLastPosition;

        // S = Q·Kᵀ for the warp's 16 rows × 64 keys: s[n] covers keys kv0 + 8n … + 7.
        unsigned pf[PF_KEYS / 8][2];  // P rounded to f16: pf[n][0] row r0 keys 8n + 2·t4, +1; pf[n][1] row r1
        if (active) {
            float s[PF_KEYS / 8][4];
#pragma unroll
            for (int n = 0; n < PF_KEYS / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[n][e] = 0.0f;
#pragma unroll
            for (int k = 0; k < PF_MAX_DIM / 16; k++) {
                if (k < kSteps) {
#pragma unroll
                    for (int n = 0; n < PF_KEYS / 8; n += 2) {
                        // Matrices: keys 8n…+7 × dims 16k…+7, × dims 16k+8…+15, then the same for keys 8(n+1)…
                        const int m = lane / 8;
                        unsigned b[4];
                        ldmatrix_x4(b, sK + (8 * n + 8 * (m / 2) + lane % 8) * stride + 16 * k + 8 * (m % 2));
                        mma_f16(s[n], qf[k][0], qf[k][1], qf[k][2], qf[k][3], b[0], b[1]);
                        mma_f16(s[n + 1], qf[k][0], qf[k][1], qf[k][2], qf[k][3], b[2], b[3]);
                    }
                }
            }
            // Causal mask where the tile reaches past the warp's first row.
            if (kv0 + PF_KEYS - 1 > p0 + 16 * warp) {
#pragma unroll
                for (int n = 0; n < PF_KEYS / 8; n++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int key = kv0 + 8 * n + 2 * t4 + (e & 1);
                        if (key > p0 + (e < 2 ? r0 : r1)) s[n][e] = -INFINITY;
                    }
            }
            float tileMax0 = -INFINITY, tileMax1 = -INFINITY;
#pragma unroll
            for (int n = 0; n < PF_KEYS / 8; n++) {
                tileMax0 = fmaxf(tileMax0, fmaxf(s[n][0], s[n][1]));
                tileMax1 = fmaxf(tileMax1, fmaxf(s[n][2], s[n][3]));
            }
#pragma unroll
            for (int x = 1; x <= 2; x <<= 1) {
                tileMax0 = fmaxf(tileMax0, __shfl_xor_sync(FULL_MASK, tileMax0, x));
                tileMax1 = fmaxf(tileMax1, __shfl_xor_sync(FULL_MASK, tileMax1, x));
            }
            // Every row sees position 0 in tile 0, so the maxima are finite from there on: no −inf − (−inf).
            const float next0 = fmaxf(max0, tileMax0), next1 = fmaxf(max1, tileMax1);
            const float alpha0 = exp2f(max0 - next0), alpha1 = exp2f(max1 - next1);  // 0 on tile 0 (max = −inf)
            max0 = next0;
            max1 = next1;
            float add0 = 0.0f, add1 = 0.0f;
#pragma unroll
            for (int n = 0; n < PF_KEYS / 8; n++) {
                pf[n][0] = pack_half2(exp2f(s[n][0] - next0), exp2f(s[n][1] - next0));  // exp2(−inf) = 0 where masked
                pf[n][1] = pack_half2(exp2f(s[n][2] - next1), exp2f(s[n][3] - next1));
                add0 += half_to_float(pf[n][0] & 0xffff) + half_to_float(pf[n][0] >> 16);
                add1 += half_to_float(pf[n][1] & 0xffff) + half_to_float(pf[n][1] >> 16);
            }
            sum0 = sum0 * alpha0 + add0;
            sum1 = sum1 * alpha1 + add1;
#pragma unroll
            for (int n = 0; n < PF_MAX_DIM / 8; n++) {
                o[n][0] *= alpha0; o[n][1] *= alpha0;
                o[n][2] *= alpha1; o[n][3] *= alpha1;
            }
        }

        prefill_store(sV, vr, stride, tid, chunks);
        if (i + 1 < kvTiles) prefill_load(kr, keys, sSlot + ((i + 1) & 1) * PF_KEYS, kvWidth, tid, chunks);
        __syncthreads();  // sV of tile i is visible

        // O += P·V: key steps of 16 (A = P of S tiles 2k, 2k + 1), dimension tiles of 8 two at a time.
        if (active) {
#pragma unroll
            for (int k = 0; k < PF_KEYS / 16; k++) {
#pragma unroll
                for (int n = 0; n < PF_MAX_DIM / 8; n += 2) {
                    if (n < dTiles) {
                        // Matrices (transposed): keys 16k…+7 × dims 8n…+7, keys 16k+8…+15 × the same, then dims 8(n+1)…
                        const int m = lane / 8;
                        unsigned b[4];
                        ldmatrix_x4_trans(b, sV + (16 * k + 8 * (m % 2) + lane % 8) * stride + 8 * n + 8 * (m / 2));
                        mma_f16(o[n], pf[2 * k][0], pf[2 * k][1], pf[2 * k + 1][0], pf[2 * k + 1][1], b[0], b[1]);
                        mma_f16(o[n + 1], pf[2 * k][0], pf[2 * k][1], pf[2 * k + 1][0], pf[2 * k + 1][1], b[2], b[3]);
                    }
                }
            }
        }
    }

    if (!warpHasRows) return;
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
        sum0 += __shfl_xor_sync(FULL_MASK, sum0, x);
        sum1 += __shfl_xor_sync(FULL_MASK, sum1, x);
    }
    const float inverse0 = 1.0f / sum0, inverse1 = 1.0f / sum1;
    float* out0 = output + (long long)(first + r0) * heads * headDim + (long long)h * headDim;
    float* out1 = output + (long long)(first + r1) * heads * headDim + (long long)h * headDim;
#pragma unroll
    for (int n = 0; n < PF_MAX_DIM / 8; n++) {
        if (n < dTiles) {
            const int d = 8 * n + 2 * t4;
            if (r0 < count) *(float2*)(out0 + d) = make_float2(o[n][0] * inverse0, o[n][1] * inverse0);
            if (r1 < count) *(float2*)(out1 + d) = make_float2(o[n][2] * inverse1, o[n][3] * inverse1);
        }
    }
}
