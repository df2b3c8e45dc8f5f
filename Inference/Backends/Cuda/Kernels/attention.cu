// attention.cu — paged causal attention over the KV cache: flash-decoding for decode tokens, FlashAttention-2 for prefill.
//
// Token t (position p, sequence s) attends to positions 0…p of its sequence; position j lives at slot
// table[s][j / blockSize] · blockSize + j % blockSize, keys/values of one layer laid out [slot][kvHeads][headDim] in the
// cache's element type: float32, f16 (IEEE half) for the _f16 variants (attention_partition_f16, attention_prefill_f16),
// which read the same rows at half the bytes and convert them to float (decode) or use them as they are (prefill's f16 tiles),
// or FP8 E4M3 for the _fp8 variants (attention_partition_fp8, attention_prefill_fp8), which widen each code exactly (to
// float for decode, to f16 for prefill's tiles: every E4M3 value is an f16 value).
// Grouped-query attention: query head h reads KV head h / (heads / kvHeads). Scores are scaled by 1/√headDim·log2(e) and
// exponentiated with exp2; online softmax in fp32. Every new token's key/value is already in the cache when attention runs
// (rope_store_kv runs first), so a prefill chunk is a batch of tokens at consecutive positions, each attending causally over
// the cached prefix and the chunk's earlier tokens.
//
// attention_partition (decode tokens, short chunks; head dimensions ≤ 256 whose rows are whole 16-byte copies): flash-
//   decoding with warp-independent online softmax. grid (splits, kvHeads, tokens), block 128 (4 warps). Block (z, h, i)
//   serves token t = tokenList[i] (t = i when the list is null) for the G = heads / kvHeads ≤ 8 query heads that share KV
//   head h (each key and value is read once per group) over positions [z·partition, min((z+1)·partition, p+1)).
//   - Tiles of 4 warps × ROWS positions (ROWS = 8 for head dimensions ≤ 128, 4 for ≤ 256) are staged through shared memory
//     by cp.async, 4 tiles in flight over an f16 cache and 2 over float32 (64 KB either way): every thread issues its
//     16-byte copies of the tile STAGES − 1 ahead right after the barrier that frees its stage, so the loads in flight no
//     longer depend on registers (the register-pipelined kernel before it kept 4–8 KB a warp in flight and reached 30 % of
//     the copy bandwidth at batch 32; this one 88–97 % over float32). Rows past the partition's end are zero-filled.
//   - Warp w takes rows w·ROWS… of each tile; lane l holds float4 chunk l (and l + 32) of each row, read from shared
//     memory (an f16 row's 4 values as one 8-byte load, converted). Each warp keeps its OWN running (max, sum, Σ p·v) per
//     head: one block barrier per tile, none inside the arithmetic.
//   - Scores: for each head, the lane's ROWS partial dot products are summed by a transpose butterfly (each xor step sends
//     half the values and keeps the other half: 4 + 2 + 1 shuffles leave each lane one row's sum over 4 lanes, then 2
//     plain steps finish it: 9 shuffles for 8 rows instead of 40). Lane l then holds row l / 4's score (l / 8 with 4
//     rows). Online softmax: the tile max over the rows (3 shuffles), alpha = 2^(m−m'), p = 2^(s−m'); each lane keeps its
//     own row's share of the running sum (summed over the rows at the end). The p of every row goes through a 64-float
//     per-warp scratch in shared memory, read back as float4 broadcasts for acc += p·v.
//   - Registers per lane: K 8 + V 8 float4, acc 8 float4 (8 heads × 1 piece, or 4 heads × 2 pieces: a group of more than
//     4 heads of dimension > 128 walks the partition once per 4 heads), 8 max + 8 sum, 8 partial scores.
//   - At the end the 4 warps' (max, sum, acc) are merged through shared memory (over the drained stages) in warp order
//     (deterministic): M = max m_w, out = Σ_w 2^(m_w−M)·acc_w, L = Σ_w 2^(m_w−M)·l_w. With one split the block writes
//     out / L; otherwise the unnormalised out and (M, L) go to a workspace and attention_reduce combines the partitions.
//   Over an f16 cache this kernel is bound by its arithmetic (~1,000 instructions a warp per 8 KB of rows: 49–54 % of the
//   copy bandwidth at batch 32), so the geometries attention_decode_f16_tc serves take that kernel instead.
//   Dynamic shared memory (CudaLaunchGeometry.AttentionSharedBytes): the scaled queries [G][W] float4 (W = 32 per piece,
//   zero past the head dimension), p scratch [4][64], stats [4][8], then the stages [STAGES][K, V][tile rows][headDim].
// attention_decode_f16_tc (what attention_partition does, over an f16 cache on tensor cores; head dimensions a multiple of
//   16 up to 128): see its comment.
// attention_reduce: grid (heads, tokens), block 128; token list as attention_partition's; see its comment.
// attention_prefill (runs of ≥ CudaLaunchGeometry.PrefillMinRun tokens; headDim a multiple of 16, ≤ 128): see its comment.
#include "common.cuh"

#define ATT_THREADS 128
#define ATT_WARPS 4
#define ATT_MAX_GROUP 8   // query heads per KV head (checked by the host)
#define ATT_SCRATCH 64    // p scratch floats per warp: heads per pass × rows per batch = 64 / pieces²

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

__device__ __forceinline__ float4 fma4(float p, float4 v, float4 a) {
    return make_float4(fmaf(p, v.x, a.x), fmaf(p, v.y, a.y), fmaf(p, v.z, a.z), fmaf(p, v.w, a.w));
}

__device__ __forceinline__ float4 scale4(float4 a, float s) { return make_float4(a.x * s, a.y * s, a.z * s, a.w * s); }

// Values 4c … 4c + 3 of a cache row as a float4: one 16-byte load from a float32 cache, one 8-byte load (two f16x2) from an
// f16 cache.
__device__ __forceinline__ float4 load_kv4(const float* row, int c) { return ((const float4*)row)[c]; }

__device__ __forceinline__ float4 load_kv4(const unsigned short* row, int c) {
    const uint2 h = ((const uint2*)row)[c];
    return make_float4(half_to_float(h.x & 0xFFFF), half_to_float(h.x >> 16), half_to_float(h.y & 0xFFFF),
                       half_to_float(h.y >> 16));
}

// From an fp8 (E4M3) cache: one 4-byte load, each code widened exactly.
__device__ __forceinline__ float4 load_kv4(const unsigned char* row, int c) {
    const unsigned q = ((const unsigned*)row)[c];
    return make_float4(fp8_e4m3_to_float(q & 0xFF), fp8_e4m3_to_float((q >> 8) & 0xFF), fp8_e4m3_to_float((q >> 16) & 0xFF),
                       fp8_e4m3_to_float(q >> 24));
}

// The cp.async staging of K/V tiles through the block table (attention_partition_body, KvTileCopies). A thread's copies
// cover chunks tid, tid + THREADS, … of a tile's [rows][rowChunks] 16-byte chunks, so its rows only grow from one copy to
// the next: their (row, chunk) and their positions' (table block, offset) are stepped from the first copy's instead of
// divided out for each, and every table entry is loaded before the first copy is issued. Written per copy (a division by
// blockSize, the entry's load, then the copy), this was half of attention_decode_f16_tc's instructions and stall samples
// at batch 1 (Nsight Compute, Llama-3-8B Q4_0 at contexts 128 and 2,048 on an H100): each copy waited out its own entry's
// trip to L2 after the one before.

// Row and chunk of copy u of thread tid over a tile of `rows` rows of rowChunks chunks (rows: no copy).
template <int THREADS, int N>
__device__ __forceinline__ void tile_chunks(int tid, int rowChunks, int rows, int (&row)[N], int (&chunk)[N]) {
    const int rowStep = THREADS / rowChunks, chunkStep = THREADS - rowStep * rowChunks;
    int r = tid / rowChunks, c = tid - r * rowChunks;
#pragma unroll
    for (int u = 0; u < N; u++) {
        row[u] = min(r, rows);
        chunk[u] = c;
        r += rowStep;
        c += chunkStep;
        if (c >= rowChunks) c -= rowChunks, r++;
    }
}

// The block-table entry of position first + row[u] (row non-decreasing in u) and the position's offset in its block;
// entry −1 where row[u] ≥ rows (no copy) or the position is at or past end.
template <int N>
__device__ __forceinline__ void table_entries(const int (&row)[N], int rows, int first, int end, const int* table,
                                              int blockSize, int (&entry)[N], int (&offset)[N]) {
    int block = (first + row[0]) / blockSize, at = first + row[0] - block * blockSize;
#pragma unroll
    for (int u = 0; u < N; u++) {
        if (u > 0) {
            at += row[u] - row[u - 1];
            while (at >= blockSize) at -= blockSize, block++;
        }
        offset[u] = at;
        entry[u] = row[u] < rows && first + row[u] < end ? __ldg(table + block) : -1;
    }
}

// Copy u of each of a tile's K and V rows (u with row[u] < rows): position first + row[u]'s 16-byte chunk chunk[u], from
// its cache block (blockBytes a block of one layer, kvWidthBytes a position) to row[u] · strideBytes + 16 · chunk[u] of the
// shared K and V stages; positions at or past end are zero-filled.
template <int N>
__device__ __forceinline__ void issue_tile_copies(const int (&row)[N], const int (&chunk)[N], int rows, int first, int end,
                                                  const int* table, int blockSize, const char* keys, const char* values,
                                                  long long blockBytes, int kvWidthBytes, unsigned sK, unsigned sV, int strideBytes) {
    int entry[N], offset[N];
    table_entries(row, rows, first, end, table, blockSize, entry, offset);
#pragma unroll
    for (int u = 0; u < N; u++) {
        if (row[u] < rows) {
            const bool valid = entry[u] >= 0;
            const long long from = (long long)max(entry[u], 0) * blockBytes + (offset[u] * kvWidthBytes + 16 * chunk[u]);
            const unsigned at = row[u] * strideBytes + 16 * chunk[u];
            cp_async16_shared(sK + at, keys + from, valid);
            cp_async16_shared(sV + at, values + from, valid);
        }
    }
}

// K and V rows of one tile: ATT_WARPS · ROWS consecutive positions of the partition, staged by cp.async.
// STAGES tiles in flight; a stage holds the tile's K rows then its V rows, each row the cache's headDim elements as stored.
template <int P, typename KV>
struct AttentionStages {
    static constexpr int ROWS = 8 / P;                   // rows per warp in a tile
    static constexpr int TILE = ATT_WARPS * ROWS;        // rows per tile: 32 (P = 1) or 16 (P = 2)
    static constexpr int STAGES = sizeof(KV) == 4 ? 2 : 4;  // ≤ 64 KB of stages: float32 32 KB a tile, f16 16, fp8 8
    static constexpr int MAX_CHUNKS = TILE * 128 * P * (int)sizeof(KV) / 16 / ATT_THREADS;  // 16-byte copies per thread
};

// The body of attention_partition for rows of P pieces (P = 1: head dimension ≤ 128; 2: ≤ 256) over a cache of KV elements.
template <int P, typename KV>
__device__ __forceinline__ void attention_partition_body(
    const float* query, const KV* keyCache, const KV* valueCache, const int* blockTables, const int* sequenceOf,
    const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats, int heads, int kvHeads,
    int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2) {
    using Stages = AttentionStages<P, KV>;
    constexpr int ROWS = Stages::ROWS;
    constexpr int TILE = Stages::TILE;
    constexpr int STAGES = Stages::STAGES;
    constexpr int HEADS = 8 / P;      // heads per pass: acc is HEADS × P float4 per lane
    constexpr int WIDTH = 32 * P;     // float4 chunks of a zero-padded row
    constexpr int SHARE = 32 / ROWS;  // lanes that hold one row's score after transpose_sum
    extern __shared__ float4 attentionShared[];
    const int group = heads / kvHeads;
    const int chunks = headDim / 4;
    const int rowBytes = headDim * (int)sizeof(KV);
    const int stageBytes = 2 * TILE * rowBytes;
    float4* sQ = attentionShared;                              // [group][WIDTH]
    float* sP = (float*)(sQ + group * WIDTH);                  // [ATT_WARPS][ATT_SCRATCH]
    float2* sStats = (float2*)(sP + ATT_WARPS * ATT_SCRATCH);  // [ATT_WARPS][ATT_MAX_GROUP]
    char* sStage = (char*)(sStats + ATT_WARPS * ATT_MAX_GROUP);  // [STAGES][K, V][TILE][rowBytes]
    float4* sAcc = (float4*)sStage;  // [ATT_WARPS][HEADS][WIDTH], over the stages once a pass has drained them

    const int z = blockIdx.x, h = blockIdx.y, t = tokenList ? tokenList[blockIdx.z] : blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int length = positions[t] + 1;
    const int start = z * partition;
    if (start >= length) return;
    const int end = min(length, start + partition);
    const int tiles = (end - start + TILE - 1) / TILE;
    const int* table = blockTables + (long long)sequenceOf[t] * maxBlocks;
    const int kvWidthBytes = kvHeads * rowBytes;            // a slot's bytes
    const int blockBytes = blockSize * kvWidthBytes;        // a cache block's bytes (of one layer: a few hundred KB at most)
    const char* keys = (const char*)keyCache + (long long)h * rowBytes;
    const char* values = (const char*)valueCache + (long long)h * rowBytes;

    const float* q = query + (long long)t * heads * headDim + (long long)h * group * headDim;
    for (int i = tid; i < group * WIDTH; i += ATT_THREADS) {
        const int g = i / WIDTH, c = i % WIDTH;
        sQ[i] = c < chunks ? scale4(((const float4*)(q + (long long)g * headDim))[c], scaleLog2) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }

    // This thread's 16-byte copies of a tile: copy u is chunk tid + u·ATT_THREADS of the tile's K (and V) rows.
    int copyRow[Stages::MAX_CHUNKS], copyChunk[Stages::MAX_CHUNKS];
    tile_chunks<ATT_THREADS>(tid, rowBytes / 16, TILE, copyRow, copyChunk);
    auto issue = [&](int tile) {
        if (tile < tiles) {
            const unsigned sK = shared_address(sStage + (tile % STAGES) * stageBytes);
            issue_tile_copies(copyRow, copyChunk, TILE, start + tile * TILE, end, table, blockSize, keys, values, blockBytes,
                              kvWidthBytes, sK, sK + TILE * rowBytes, rowBytes);
        }
        cp_async_commit();  // an empty group past the last tile keeps the wait counts uniform
    };

    for (int g0 = 0; g0 < group; g0 += HEADS) {
        const int passHeads = min(HEADS, group - g0);
        float4 acc[HEADS][P];
        float m[HEADS], l[HEADS];
#pragma unroll
        for (int g = 0; g < HEADS; g++) {
            m[g] = -INFINITY;
            l[g] = 0.0f;
#pragma unroll
            for (int piece = 0; piece < P; piece++) acc[g][piece] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }

#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) issue(s);
        for (int tile = 0; tile < tiles; tile++) {
            cp_async_wait<STAGES - 2>();
            __syncthreads();  // tile `tile` has landed for every thread, and tile − 1's stage is free for tile + STAGES − 1
            issue(tile + STAGES - 1);
            const int valid = min(ROWS, end - start - tile * TILE - warp * ROWS);
            if (valid <= 0) continue;  // warp-uniform: this warp's rows are past the partition's end
            const char* stage = sStage + (tile % STAGES) * stageBytes;
            const KV* kRows = (const KV*)(stage + warp * ROWS * rowBytes);
            const KV* vRows = (const KV*)(stage + (TILE + warp * ROWS) * rowBytes);
            float4 k[ROWS * P], v[ROWS * P];
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
#pragma unroll
                for (int piece = 0; piece < P; piece++) {
                    const int c = lane + 32 * piece;
                    const bool inside = c < chunks;
                    k[r * P + piece] = inside ? load_kv4(kRows + r * headDim, c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                    v[r * P + piece] = inside ? load_kv4(vRows + r * headDim, c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                }
            }
            const int row = lane / SHARE;  // the row whose score this lane holds after transpose_sum
            __syncwarp();                  // every lane has read the previous tile's p from the scratch
            // Scores and the online-softmax update, head by head (rows past the end were zero-filled and are masked here).
#pragma unroll
            for (int g = 0; g < HEADS; g++) {
                if (g < passHeads) {
                    float s[ROWS];
#pragma unroll
                    for (int r = 0; r < ROWS; r++) s[r] = 0.0f;
#pragma unroll
                    for (int piece = 0; piece < P; piece++) {
                        const float4 qc = sQ[(g0 + g) * WIDTH + 32 * piece + lane];
#pragma unroll
                        for (int r = 0; r < ROWS; r++) s[r] += dot4(k[r * P + piece], qc);
                    }
                    const float total = transpose_sum<ROWS>(s, lane);  // every lane shuffles: outside any condition
                    const float score = row < valid ? total : -INFINITY;
                    float tileMax = score;
#pragma unroll
                    for (int offset = SHARE; offset < 32; offset *= 2)
                        tileMax = fmaxf(tileMax, __shfl_xor_sync(FULL_MASK, tileMax, offset));
                    const float next = fmaxf(m[g], tileMax);  // finite: the warp's first row here is valid
                    const float alpha = exp2f(m[g] - next);   // 0 on the warp's first tile (m = −inf)
                    const float p = exp2f(score - next);      // 0 for rows past the partition
                    m[g] = next;
                    l[g] = l[g] * alpha + p;
#pragma unroll
                    for (int piece = 0; piece < P; piece++) acc[g][piece] = scale4(acc[g][piece], alpha);
                    if (lane % SHARE == 0) sP[warp * ATT_SCRATCH + g * ROWS + row] = p;
                }
            }
            __syncwarp();  // the scratch's p are visible
            // acc += p·v.
#pragma unroll
            for (int g = 0; g < HEADS; g++) {
                if (g < passHeads) {
                    const float4* p4 = (const float4*)(sP + warp * ATT_SCRATCH + g * ROWS);
#pragma unroll
                    for (int r4 = 0; r4 < ROWS / 4; r4++) {
                        const float4 p = p4[r4];
#pragma unroll
                        for (int piece = 0; piece < P; piece++) {
                            acc[g][piece] = fma4(p.x, v[(4 * r4 + 0) * P + piece], acc[g][piece]);
                            acc[g][piece] = fma4(p.y, v[(4 * r4 + 1) * P + piece], acc[g][piece]);
                            acc[g][piece] = fma4(p.z, v[(4 * r4 + 2) * P + piece], acc[g][piece]);
                            acc[g][piece] = fma4(p.w, v[(4 * r4 + 3) * P + piece], acc[g][piece]);
                        }
                    }
                }
            }
        }
        cp_async_wait<0>();  // only empty groups remain; the stages become sAcc
        __syncthreads();

        // Merge the warps' states in warp order. Warp 0 always has rows, so M is finite; warps without any add 0.
#pragma unroll
        for (int g = 0; g < HEADS; g++) {
#pragma unroll
            for (int offset = SHARE; offset < 32; offset *= 2) l[g] += __shfl_xor_sync(FULL_MASK, l[g], offset);
#pragma unroll
            for (int piece = 0; piece < P; piece++) sAcc[(warp * HEADS + g) * WIDTH + 32 * piece + lane] = acc[g][piece];
            if (lane == 0) sStats[warp * ATT_MAX_GROUP + g] = make_float2(m[g], l[g]);
        }
        __syncthreads();
        for (int i = tid; i < passHeads * chunks; i += ATT_THREADS) {
            const int g = i / chunks, c = i % chunks;
            float maxAll = -INFINITY;
#pragma unroll
            for (int w = 0; w < ATT_WARPS; w++) maxAll = fmaxf(maxAll, sStats[w * ATT_MAX_GROUP + g].x);
            float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float sum = 0.0f;
#pragma unroll
            for (int w = 0; w < ATT_WARPS; w++) {
                const float2 st = sStats[w * ATT_MAX_GROUP + g];
                const float e = exp2f(st.x - maxAll);
                sum += e * st.y;
                o = fma4(e, sAcc[(w * HEADS + g) * WIDTH + c], o);
            }
            const int head = h * group + g0 + g;
            if (splits == 1) {
                ((float4*)(output + (long long)t * heads * headDim + (long long)head * headDim))[c] = scale4(o, 1.0f / sum);
            } else {
                const long long at = ((long long)t * heads + head) * splits + z;
                ((float4*)(partialOut + at * headDim))[c] = o;
                if (c == 0) partialStats[at] = make_float2(maxAll, sum);
            }
        }
        __syncthreads();  // sAcc (the stages) and sStats are reused by the next pass
    }
}

// attention_partition_body for the head dimension: one piece per lane up to 128, two up to 256.
template <typename KV>
__device__ __forceinline__ void attention_partition_rows(
    const float* query, const KV* keyCache, const KV* valueCache, const int* blockTables, const int* sequenceOf,
    const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats, int heads, int kvHeads,
    int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2) {
    if (headDim <= 32 * 4)
        attention_partition_body<1>(query, keyCache, valueCache, blockTables, sequenceOf, positions, tokenList, output,
                                    partialOut, partialStats, heads, kvHeads, headDim, blockSize, maxBlocks, partition, splits,
                                    scaleLog2);
    else
        attention_partition_body<2>(query, keyCache, valueCache, blockTables, sequenceOf, positions, tokenList, output,
                                    partialOut, partialStats, heads, kvHeads, headDim, blockSize, maxBlocks, partition, splits,
                                    scaleLog2);
}

// The entries of attention_partition_rows, one a cache element type (C linkage has no templates): float32, f16 (keys and
// values as IEEE half, read as uint2 and converted to float4) and fp8 E4M3.
#define ATTENTION_PARTITION(NAME, KV)                                                                                    \
    extern "C" __global__ void __launch_bounds__(ATT_THREADS) NAME(                                                     \
        const float* query, const KV* keyCache, const KV* valueCache, const int* blockTables, const int* sequenceOf,    \
        const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats, int heads,   \
        int kvHeads, int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2) {           \
        pdl_start();                                                                                                     \
        attention_partition_rows(query, keyCache, valueCache, blockTables, sequenceOf, positions, tokenList, output,    \
                                 partialOut, partialStats, heads, kvHeads, headDim, blockSize, maxBlocks, partition,    \
                                 splits, scaleLog2);                                                                     \
    }

ATTENTION_PARTITION(attention_partition, float)
ATTENTION_PARTITION(attention_partition_f16, unsigned short)
ATTENTION_PARTITION(attention_partition_fp8, unsigned char)

// Combines the partitions of head blockIdx.x of token t (tokenList[blockIdx.y], or blockIdx.y without a list):
// out = Σ 2^(mᵢ−M)·oᵢ / Σ 2^(mᵢ−M)·lᵢ. The split policy gives batch-1 decode tens of partitions, so they are spread over
// the block rather than walked by every thread: M and the denominator by block reductions over the partitions, then warp
// w sums partitions w, w + 4, … in that order (lanes over float4 chunks) and the 4 warps' sums are added in warp order
// (deterministic). Every load is issued before the first reduction: a thread's partition statistics, and the first
// REDUCE_LOADS partitions of each lane's chunk, which need no M until they are summed — the kernel is a chain of L2 trips
// (Nsight Compute, batch 1 at context 2,048: 22 cycles an instruction), and the partitions' loads no longer wait behind
// the two reductions and, past 16 partitions a block, behind each other. With codes (head dimension a multiple of 32,
// checked by the host) the output is also quantized as quantize_q8 does, for the quantized attention-output projection
// that reads it (one launch fewer a layer). dependentsFirst: see pdl_start (common.cuh).
#define REDUCE_LOADS 12  // partitions a lane holds in flight: one round for up to 48 partitions (context 3,072 at 64)

extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_reduce(
    const float* partialOut, const float2* partialStats, const int* positions, const int* tokenList, float* output, int heads,
    int headDim, int partition, int splits, signed char* codes, float2* scaleSums, int dependentsFirst) {
    pdl_start(dependentsFirst);
    __shared__ float sReduce[ATT_WARPS];
    __shared__ float4 sSum[ATT_WARPS][64];  // head dimension ≤ 256
    const int head = blockIdx.x, t = tokenList ? tokenList[blockIdx.y] : blockIdx.y;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int used = (positions[t] + partition) / partition;  // ⌈(p + 1) / partition⌉
    const float2* stats = partialStats + ((long long)t * heads + head) * splits;
    const int chunks = headDim / 4;
    const float4* parts = (const float4*)(partialOut + ((long long)t * heads + head) * splits * headDim);
    float4 x[REDUCE_LOADS];  // partitions warp + 4k, k < REDUCE_LOADS, of chunk `lane`
    float mz[REDUCE_LOADS];
    auto load = [&](int c, int k0) {
#pragma unroll
        for (int k = 0; k < REDUCE_LOADS; k++) {
            const int z = warp + ATT_WARPS * (k0 + k);
            x[k] = z < used ? parts[(long long)z * chunks + c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            mz[k] = z < used ? stats[z].x : -INFINITY;
        }
    };
    if (lane < chunks) load(lane, 0);
    const float2 own = tid < used ? stats[tid] : make_float2(-INFINITY, 0.0f);
    float m = own.x;
    for (int z = tid + ATT_THREADS; z < used; z += ATT_THREADS) m = fmaxf(m, stats[z].x);
    m = warp_max(m);
    if (lane == 0) sReduce[warp] = m;
    __syncthreads();
    m = fmaxf(fmaxf(sReduce[0], sReduce[1]), fmaxf(sReduce[2], sReduce[3]));
    __syncthreads();  // sReduce is reused
    float total = tid < used ? exp2f(own.x - m) * own.y : 0.0f;
    for (int z = tid + ATT_THREADS; z < used; z += ATT_THREADS) total += exp2f(stats[z].x - m) * stats[z].y;
    total = warp_sum(total);
    if (lane == 0) sReduce[warp] = total;
    for (int c = lane; c < chunks; c += 32) {
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int k0 = 0; warp + ATT_WARPS * k0 < used; k0 += REDUCE_LOADS) {
            if (c != lane || k0 > 0) load(c, k0);  // the first round of the first chunk is already in flight
#pragma unroll
            for (int k = 0; k < REDUCE_LOADS; k++) o = fma4(exp2f(mz[k] - m), x[k], o);
        }
        sSum[warp][c] = o;
    }
    __syncthreads();
    const float inverse = 1.0f / (((sReduce[0] + sReduce[1]) + sReduce[2]) + sReduce[3]);
    for (int c = tid; c < chunks; c += ATT_THREADS) {
        float4 o = sSum[0][c];
#pragma unroll
        for (int w = 1; w < ATT_WARPS; w++) {
            const float4 v = sSum[w][c];
            o = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
        }
        const long long value = (long long)t * heads * headDim + (long long)head * headDim + 4 * c;
        o = scale4(o, inverse);
        *(float4*)(output + value) = o;
        if (codes) quantize_block4(o, codes, scaleSums, value);  // 8 threads of consecutive chunks a block
    }
}

// attention_prefill — FlashAttention-2 forward on tensor cores for prefill runs, causal, over the paged KV cache (float32;
// attention_prefill_f16 over an f16 cache).
//
// Computes, for each query token t of a query tile and query head h: out[t][h·headDim + d] = Σ_j softmax_j(q·k_j / √headDim)
// · v_j[d] over the positions j = 0…p_t of t's sequence, like attention_partition, but 64 query rows at a time with
// mma.sync.m16n8k16 (f16 operands, fp32 accumulation).
// A query tile (host: CudaLaunchGeometry.BuildQueryTiles) is (first token, count): count ≤ 128 consecutive tokens of the
// batch of one sequence at consecutive positions p0…p0+count−1. queryTiles holds [tileCount][2] ints.
// grid (tileCount, heads), block 256 = 8 warps; warp w owns query rows 16w…16w+15 of the tile. 8 warps of 16 rows rather
// than 4: each K/V tile loaded and converted serves twice the queries, and the register prefetch of a tile is 8 float4 a
// thread instead of 16 (with 4 warps ptxas capped the kernel at 255 registers and spilled 852 bytes). Shared K and V tiles
// are [64][headDim + 8] f16 — the 8 halves of padding make each row start 4 banks after the previous one modulo 32, so the
// eight 16-byte rows an ldmatrix phase reads hit 32 distinct banks.
//   - Q, pre-scaled by scaleLog2 and rounded to f16, lives in registers as mma A fragments for the whole kernel.
//   - K/V tiles of 64 positions, 0 … p0+count−1 (causal: later positions are never read). From a float32 cache
//     (attention_prefill) threads load them with 16-byte loads (a warp reads 512 contiguous bytes of a row), convert to
//     f16 and store them to one shared K and V tile, pipelined through registers: V of tile i loads while S = Q·Kᵀ and the
//     softmax of tile i run, K of tile i+1 while P·V of tile i runs (dynamic shared memory: the tiles and the slots of two
//     tiles [2][64] int, CudaLaunchGeometry.PrefillSharedBytes). From an f16 cache (attention_prefill_f16) cp.async copies
//     the rows as they lie into 3 shared stages (see that kernel), so the tile's values are exactly the cache's.
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
// below); rounding costs ≤ 2⁻¹¹ relative per value (GpuCheck's bound for this path is derived from it). An f16 cache holds
// K and V already rounded the same way (rope_store_kv_f16), so this kernel computes the same from either cache.
#define PF_THREADS 256
#define PF_ROWS 128     // query rows per block: 8 warps × 16
#define PF_KEYS 64      // positions per K/V tile
#define PF_MAX_DIM 128  // largest head dimension (checked by the host)
#define PF_PAD 8        // halves of padding per shared row
#define PF_MAX_PIECES (PF_KEYS * PF_MAX_DIM / 4 / PF_THREADS)  // float4 pieces of a K/V tile per thread

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(p)));
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

// Loads the thread's pieces (float4) of one K or V tile of the float32 cache (positions whose slot is −1 read as zeros).
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

// Stores the loaded pieces rounded (to nearest even) to f16 into a [64][stride] tile, 8 bytes a piece.
__device__ __forceinline__ void prefill_store(unsigned short* tile, const float4 (&r)[PF_MAX_PIECES], int stride, int tid,
                                              int chunks) {
    TilePieces p(tid, chunks);
#pragma unroll
    for (int i = 0; i < PF_MAX_PIECES; i++) {
        if (tid + PF_THREADS * i < p.pieces) {
            uint2 h;
            h.x = pack_half2(r[i].x, r[i].y);
            h.y = pack_half2(r[i].z, r[i].w);
            *(uint2*)(tile + p.row * stride + 4 * p.col) = h;
        }
        p.next();
    }
}

// Q of the warp's rows r0 and r1 = r0 + 8 as A fragments, pre-scaled by scaleLog2 and rounded to f16: qf[k] covers head
// dimensions 16k…16k+15 (a0: row r0, dims 2·t4, +1; a1: row r1; a2, a3: dims + 8); rows past the tile's count are zero.
__device__ __forceinline__ void prefill_query(unsigned (&qf)[PF_MAX_DIM / 16][4], const float* query, int first, int count,
                                              int r0, int r1, int h, int heads, int headDim, int t4, float scaleLog2) {
#pragma unroll
    for (int k = 0; k < PF_MAX_DIM / 16; k++) {
        if (16 * k < headDim) {
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
}

// One K tile against the warp's 16 rows: S = Q·Kᵀ over the 64 keys kv0… of sK ([64][stride] f16), the causal mask, and
// the online softmax's step — running maxima and sums updated, O rescaled — leaving P rounded to f16 in pf (pf[n][0]:
// row r0, keys 8n + 2·t4, +1; pf[n][1]: row r1). Rows are at positions p0 + r0 and p0 + r1.
__device__ __forceinline__ void prefill_scores(const unsigned short* sK, int stride, const unsigned (&qf)[PF_MAX_DIM / 16][4],
                                               int headDim, int kv0, int p0, int warp, int lane, int r0, int r1,
                                               float& max0, float& max1, float& sum0, float& sum1,
                                               float (&o)[PF_MAX_DIM / 8][4], unsigned (&pf)[PF_KEYS / 8][2]) {
    const int t4 = lane % 4;
    float s[PF_KEYS / 8][4];  // s[n] covers keys kv0 + 8n … + 7
#pragma unroll
    for (int n = 0; n < PF_KEYS / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[n][e] = 0.0f;
#pragma unroll
    for (int k = 0; k < PF_MAX_DIM / 16; k++) {
        if (16 * k < headDim) {
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
    // The sums are formed with explicit roundings (no multiply-add contraction left to the compiler), so that the float32
    // and f16 cache kernels, whose code around this differs, compute them identically (GpuCheck compares them bit for bit).
    float add0 = 0.0f, add1 = 0.0f;
#pragma unroll
    for (int n = 0; n < PF_KEYS / 8; n++) {
        pf[n][0] = pack_half2(exp2f(s[n][0] - next0), exp2f(s[n][1] - next0));  // exp2(−inf) = 0 where masked
        pf[n][1] = pack_half2(exp2f(s[n][2] - next1), exp2f(s[n][3] - next1));
        add0 = __fadd_rn(add0, __fadd_rn(half_to_float(pf[n][0] & 0xffff), half_to_float(pf[n][0] >> 16)));
        add1 = __fadd_rn(add1, __fadd_rn(half_to_float(pf[n][1] & 0xffff), half_to_float(pf[n][1] >> 16)));
    }
    sum0 = __fadd_rn(__fmul_rn(sum0, alpha0), add0);
    sum1 = __fadd_rn(__fmul_rn(sum1, alpha1), add1);
#pragma unroll
    for (int n = 0; n < PF_MAX_DIM / 8; n++) {
        o[n][0] *= alpha0; o[n][1] *= alpha0;
        o[n][2] *= alpha1; o[n][3] *= alpha1;
    }
}

// O += P·V for one V tile (sV: [64][stride] f16): key steps of 16 (A = P of S tiles 2k, 2k + 1), dimension tiles of 8
// two at a time.
__device__ __forceinline__ void prefill_values(const unsigned short* sV, int stride, int headDim, int lane,
                                               const unsigned (&pf)[PF_KEYS / 8][2], float (&o)[PF_MAX_DIM / 8][4]) {
#pragma unroll
    for (int k = 0; k < PF_KEYS / 16; k++) {
#pragma unroll
        for (int n = 0; n < PF_MAX_DIM / 8; n += 2) {
            if (8 * n < headDim) {
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

// The warp's rows of O divided by their row sums (summed over the quad here), written as float32.
__device__ __forceinline__ void prefill_write(float* output, const float (&o)[PF_MAX_DIM / 8][4], float sum0, float sum1,
                                              int first, int count, int r0, int r1, int h, int heads, int headDim, int t4) {
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
        if (8 * n < headDim) {
            const int d = 8 * n + 2 * t4;
            if (r0 < count) *(float2*)(out0 + d) = make_float2(o[n][0] * inverse0, o[n][1] * inverse0);
            if (r1 < count) *(float2*)(out1 + d) = make_float2(o[n][2] * inverse1, o[n][3] * inverse1);
        }
    }
}

// The float32 and fp8 caches: tiles staged through registers (widened to f16 on the way to shared memory), single-buffered.
// What a prefill block works on: query tile tileCount − 1 − blockIdx.x (the longest contexts start first) of query head
// blockIdx.y, the positions 0 … kvEnd − 1 of its sequence read through the block table, in the KV head the query head
// shares (kvOffset into a cache row). Warp w owns query rows r0 = 16w + g and r1 = r0 + 8 (the C fragment's two rows),
// at positions p0 + r.
struct PrefillBlock {
    int first, count, p0, h, kvEnd, kvTiles, kvWidth, warp, r0, r1, warpLastPosition;
    bool warpHasRows;
    long long kvOffset;
    const int* table;

    __device__ __forceinline__ PrefillBlock(const int* queryTiles, const int* positions, const int* sequenceOf,
                                            const int* blockTables, int tileCount, int heads, int kvHeads, int headDim,
                                            int maxBlocks) {
        const int tile = tileCount - 1 - blockIdx.x;
        h = blockIdx.y;
        first = queryTiles[2 * tile];
        count = queryTiles[2 * tile + 1];
        p0 = positions[first];
        table = blockTables + (long long)sequenceOf[first] * maxBlocks;
        kvEnd = p0 + count;
        kvTiles = (kvEnd + PF_KEYS - 1) / PF_KEYS;
        kvWidth = kvHeads * headDim;
        kvOffset = (long long)(h / (heads / kvHeads)) * headDim;
        warp = threadIdx.x / 32;
        r0 = 16 * warp + (threadIdx.x % 32) / 4;
        r1 = r0 + 8;
        warpHasRows = 16 * warp < count;
        warpLastPosition = p0 + min(16 * warp + 15, count - 1);
    }
};

// The float32 cache: tiles staged through registers (rounded to f16 on the way to shared memory), single-buffered.
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

    const int tid = threadIdx.x, lane = tid % 32, t4 = lane % 4;
    const PrefillBlock b(queryTiles, positions, sequenceOf, blockTables, tileCount, heads, kvHeads, headDim, maxBlocks);
    const int first = b.first, count = b.count, p0 = b.p0, h = b.h, warp = b.warp, r0 = b.r0, r1 = b.r1;
    const int kvEnd = b.kvEnd, kvTiles = b.kvTiles, kvWidth = b.kvWidth;
    const int* table = b.table;
    const float* keys = keyCache + b.kvOffset;
    const float* values = valueCache + b.kvOffset;
    const int chunks = headDim / 4;
    unsigned qf[PF_MAX_DIM / 16][4];
    prefill_query(qf, query, first, count, r0, r1, h, heads, headDim, t4, scaleLog2);

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
        const bool active = b.warpHasRows && kv0 <= b.warpLastPosition;
        unsigned pf[PF_KEYS / 8][2];
        if (active) prefill_scores(sK, stride, qf, headDim, kv0, p0, warp, lane, r0, r1, max0, max1, sum0, sum1, o, pf);
        prefill_store(sV, vr, stride, tid, chunks);
        if (i + 1 < kvTiles) prefill_load(kr, keys, sSlot + ((i + 1) & 1) * PF_KEYS, kvWidth, tid, chunks);
        __syncthreads();  // sV of tile i is visible
        if (active) prefill_values(sV, stride, headDim, lane, pf, o);
    }

    if (b.warpHasRows) prefill_write(output, o, sum0, sum1, first, count, r0, r1, h, heads, headDim, t4);
}

// The f16 and fp8 caches: K and V rows are copied as they lie (cp.async, 16 bytes a copy) into PF_STAGES shared stages,
// tiles i + 1 and i + 2 in flight while tile i is multiplied, one barrier a tile. The float32 kernel's register staging
// left each tile waiting for its loads (8B prefill attention at 67 TFLOP/s on an H100). fp8: the block widens each
// staged tile of codes into one f16 tile (exactly: every E4M3 value is an f16) behind a second barrier, so the result is
// attention_prefill_f16's over a cache holding the codes' values — and so attention_prefill's over a float32 one.
// Dynamic shared memory (CudaLaunchGeometry.PrefillCpAsyncSharedBytes): f16 [PF_STAGES][K, V][64][headDim + 8] halves;
// fp8 [PF_STAGES][K, V][64][headDim] codes, then the widened [K, V][64][headDim + 8] halves.
#define PF_STAGES 3

// Two E4M3 codes (the low byte first) as an f16x2 register, exactly.
__device__ __forceinline__ unsigned fp8x2_to_half2(unsigned two) {
#if __CUDA_ARCH__ >= 890
    unsigned r;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"((unsigned short)two));
    return r;
#else
    return pack_half2(fp8_e4m3_to_float(two & 0xFF), fp8_e4m3_to_float((two >> 8) & 0xFF));
#endif
}

// The 16-byte cp.async copies by which a block of THREADS threads stages a tile of 64 positions of a 16-bit (f16) or 8-bit
// (fp8) cache's keys and values into [K, V][64][stride] elements of shared memory (attention_prefill_f16,
// attention_decode_tc): copy u of thread tid is chunk tid + u·THREADS of the tile's [64][headDim / PER_COPY] chunks.
// Positions at or past `end` are zero-filled (the callers mask them); each position's row is found through the sequence's
// block table (tile_chunks, table_entries).
template <int THREADS, typename KV>
struct KvTileCopies {
    static constexpr int PER_COPY = 16 / sizeof(KV);                              // elements a copy moves
    static constexpr int COPIES = 64 * PF_MAX_DIM / PER_COPY / THREADS;          // per thread, for each of K and V
    int row[COPIES], chunk[COPIES];

    __device__ __forceinline__ KvTileCopies(int tid, int headDim) { tile_chunks<THREADS>(tid, headDim / PER_COPY, 64, row, chunk); }

    // Positions first … first + 63 of the sequence into `stage`.
    __device__ __forceinline__ void issue(KV* stage, int stride, const KV* keys, const KV* values, const int* table,
                                          int blockSize, int kvWidth, int first, int end) const {
        const int strideBytes = stride * (int)sizeof(KV), kvWidthBytes = kvWidth * (int)sizeof(KV);
        const unsigned sK = shared_address(stage);
        issue_tile_copies(row, chunk, 64, first, end, table, blockSize, (const char*)keys, (const char*)values,
                          (long long)blockSize * kvWidthBytes, kvWidthBytes, sK, sK + 64 * strideBytes, strideBytes);
    }
};

template <typename KV>
__device__ __forceinline__ void attention_prefill_cp_async(
    const float* query, const KV* keyCache, const KV* valueCache, const int* blockTables, const int* sequenceOf,
    const int* positions, const int* queryTiles, float* output, int tileCount, int heads, int kvHeads, int headDim,
    int blockSize, int maxBlocks, float scaleLog2) {
    constexpr bool FP8 = sizeof(KV) == 1;
    extern __shared__ __attribute__((aligned(16))) unsigned char prefillShared[];
    const int stride = headDim + PF_PAD;               // halves per f16 row
    const int stageStride = FP8 ? headDim : stride;    // elements per staged row
    const int stageElements = 2 * PF_KEYS * stageStride;
    KV* sStage = (KV*)prefillShared;                   // [PF_STAGES][K, V][PF_KEYS][stageStride]
    unsigned short* sWide = (unsigned short*)(prefillShared + PF_STAGES * stageElements * sizeof(KV));  // fp8: [K, V][64][stride]

    const int tid = threadIdx.x, lane = tid % 32, t4 = lane % 4;
    const PrefillBlock b(queryTiles, positions, sequenceOf, blockTables, tileCount, heads, kvHeads, headDim, maxBlocks);
    const int first = b.first, count = b.count, p0 = b.p0, h = b.h, warp = b.warp, r0 = b.r0, r1 = b.r1;
    const int kvEnd = b.kvEnd, kvTiles = b.kvTiles, kvWidth = b.kvWidth;
    const int* table = b.table;
    const KV* keys = keyCache + b.kvOffset;
    const KV* values = valueCache + b.kvOffset;
    unsigned qf[PF_MAX_DIM / 16][4];
    prefill_query(qf, query, first, count, r0, r1, h, heads, headDim, t4, scaleLog2);

    // Past kvEnd the copies are zeros, which the causal mask hides.
    const KvTileCopies<PF_THREADS, KV> copies(tid, headDim);
    auto issue = [&](int i) {
        if (i < kvTiles)
            copies.issue(sStage + (i % PF_STAGES) * stageElements, stageStride, keys, values, table, blockSize, kvWidth,
                         i * PF_KEYS, kvEnd);
        cp_async_commit();  // an empty group past the last tile keeps the wait counts uniform
    };

    float o[PF_MAX_DIM / 8][4];
#pragma unroll
    for (int n = 0; n < PF_MAX_DIM / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[n][e] = 0.0f;
    float max0 = -INFINITY, max1 = -INFINITY, sum0 = 0.0f, sum1 = 0.0f;

#pragma unroll
    for (int s = 0; s < PF_STAGES - 1; s++) issue(s);
    for (int i = 0; i < kvTiles; i++) {
        cp_async_wait<PF_STAGES - 2>();
        __syncthreads();  // tile i has landed for every thread, and tile i − 1's stage is free for tile i + PF_STAGES − 1
        issue(i + PF_STAGES - 1);
        const unsigned short* sK;
        if constexpr (FP8) {
            // The tile's K and V codes, 8 at a time (consecutive across the threads), to 16-byte f16 stores.
            const unsigned char* codes = (const unsigned char*)sStage + (i % PF_STAGES) * stageElements;
            const int rowPieces = headDim / 8;
            for (int piece = tid; piece < 2 * PF_KEYS * rowPieces; piece += PF_THREADS) {
                const int row = piece / rowPieces, col = 8 * (piece - row * rowPieces);  // row: K's 0…63, then V's
                const uint2 c = *(const uint2*)(codes + row * headDim + col);
                *(uint4*)(sWide + row * stride + col) =
                    make_uint4(fp8x2_to_half2(c.x), fp8x2_to_half2(c.x >> 16), fp8x2_to_half2(c.y), fp8x2_to_half2(c.y >> 16));
            }
            __syncthreads();  // the widened tile is visible; the next tile's widening waits for the barrier above
            sK = sWide;
        } else {
            sK = sStage + (i % PF_STAGES) * stageElements;
        }
        if (b.warpHasRows && i * PF_KEYS <= b.warpLastPosition) {
            unsigned pf[PF_KEYS / 8][2];
            prefill_scores(sK, stride, qf, headDim, i * PF_KEYS, p0, warp, lane, r0, r1, max0, max1, sum0, sum1, o, pf);
            prefill_values(sK + PF_KEYS * stride, stride, headDim, lane, pf, o);
        }
    }
    cp_async_wait<0>();  // only empty groups remain

    if (b.warpHasRows) prefill_write(output, o, sum0, sum1, first, count, r0, r1, h, heads, headDim, t4);
}

extern "C" __global__ void __launch_bounds__(PF_THREADS) attention_prefill_f16(
    const float* query, const unsigned short* keyCache, const unsigned short* valueCache, const int* blockTables,
    const int* sequenceOf, const int* positions, const int* queryTiles, float* output, int tileCount, int heads, int kvHeads,
    int headDim, int blockSize, int maxBlocks, float scaleLog2) {
    pdl_start();
    attention_prefill_cp_async(query, keyCache, valueCache, blockTables, sequenceOf, positions, queryTiles, output, tileCount,
                               heads, kvHeads, headDim, blockSize, maxBlocks, scaleLog2);
}

extern "C" __global__ void __launch_bounds__(PF_THREADS) attention_prefill_fp8(
    const float* query, const unsigned char* keyCache, const unsigned char* valueCache, const int* blockTables,
    const int* sequenceOf, const int* positions, const int* queryTiles, float* output, int tileCount, int heads, int kvHeads,
    int headDim, int blockSize, int maxBlocks, float scaleLog2) {
    pdl_start();
    attention_prefill_cp_async(query, keyCache, valueCache, blockTables, sequenceOf, positions, queryTiles, output, tileCount,
                               heads, kvHeads, headDim, blockSize, maxBlocks, scaleLog2);
}

// attention_decode_f16_tc / attention_decode_fp8_tc — attention_partition_f16 / _fp8 on tensor cores, for an f16 or fp8
// (E4M3) cache and head dimensions that are a multiple of 16 up to 128 (CudaLaunchGeometry.DecodeTensorCoreSupports).
// Same grid (splits, kvHeads, tokens), block (4 warps), token list, partition and outputs (the result, or partials and
// (max, sum) for attention_reduce).
//   - The G ≤ 8 query heads of KV head h are the rows of mma.sync.m16n8k16's A operand (rows G…15 are zero): Q, scaled by
//     scaleLog2 and rounded to f16, sits in registers as A fragments for the whole kernel (lane l holds head l / 4).
//   - Tiles of 64 positions, 16 per warp (one k-step of P·V), staged through shared memory by cp.async, 3 tiles in
//     flight; rows padded to headDim + 8 halves so that the eight 16-byte rows an ldmatrix phase reads hit distinct banks.
//   - Per warp and tile: S = Q·Kᵀ (K rows are the "col" B operand as they lie), an online softmax per head row in the
//     4 lanes of a quad (positions past the partition masked), P rounded to f16 as the A operand of P·V (the C fragment
//     layout of S), V through ldmatrix.trans. So a 16-row slice costs ~100 instructions a warp where the CUDA-core kernel
//     spent ~1,000 on the same 8 KB (it reached half the copy bandwidth at batch 32, bound by issue, not bytes).
//   - A's rows 8…15 are zero, so the accumulators of C rows g + 8 are dropped (mma_f16_rows8): 2 floats a fragment.
//   - fp8: the stages hold the codes as they lie (half the bytes, rows padded by 16 bytes). K's B fragments are widened
//     straight from them (cvt.rn.f16x2.e4m3x2 on sm_89+, exact: every E4M3 value is an f16) with the head dimensions
//     permuted in Q and K alike — k-step k of lane t4 takes dims t4·headDim/4 + 4k … + 3, so a lane's codes of a row
//     are one run of bytes (16-byte loads) — a dot product being the same sum in any order, up to the mma's rounding.
//     V, which P·V reads across rows (ldmatrix.trans), is widened per warp into 16 f16 rows of its own. A first version
//     that widened K too through shared memory issued 37 % more instructions than the f16 kernel and read its cache at
//     a third of copy (Nsight Compute: latency-bound at 8 warps an SM); this one is 73 KB a block, 3 blocks an SM.
//   - Each warp keeps its own (max, sum, O); at the end they are merged in warp order through shared memory, as in
//     attention_partition. Numerics are attention_prefill's: q, k, v and p in f16 (k and v exactly the cache's), fp32
//     accumulation, the row sums adding the rounded p.
#define DT_TILE 64    // positions per tile: 16 per warp
static_assert(DT_TILE == 64 && PF_KEYS == 64, "KvTileCopies stages tiles of 64 positions");
#define DT_STAGES 3   // f16: 3 × 34 KB at headDim 128, two blocks per SM on an H100 (fp8: 3 × 18 KB + 17 KB, three)
#define DT_FP8_PAD 16 // bytes after each staged fp8 row: a quad's 16-byte loads of rows g and g + 1 hit distinct banks

// mma.sync.m16n8k16 for A fragments whose rows 8…15 are zero (a1 = a3 = 0): C's rows g + 8 go in as zeros and come out
// unused, so the caller keeps d[0], d[1] (row g) only.
__device__ __forceinline__ void mma_f16_rows8(float (&d)[2], unsigned a0, unsigned a2, unsigned b0, unsigned b1) {
    float unused0, unused1;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%5}, {%7,%8}, {%0,%1,%9,%9};"
                 : "+f"(d[0]), "+f"(d[1]), "=f"(unused0), "=f"(unused1)
                 : "r"(a0), "r"(0u), "r"(a2), "r"(b0), "r"(b1), "f"(0.0f));
}

template <typename KV>
__device__ __forceinline__ void attention_decode_tc(
    const float* query, const KV* keyCache, const KV* valueCache, const int* blockTables,
    const int* sequenceOf, const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats,
    int heads, int kvHeads, int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2, int earlyKv) {
    constexpr bool FP8 = sizeof(KV) == 1;
    extern __shared__ __attribute__((aligned(16))) unsigned char decodeShared[];
    const int stride = headDim + PF_PAD;                          // halves per f16 row
    const int stageStride = FP8 ? headDim + DT_FP8_PAD : stride;  // elements per staged row
    const int stageElements = 2 * DT_TILE * stageStride;
    KV* sStage = (KV*)decodeShared;                     // [DT_STAGES][K, V][DT_TILE][stageStride]
    // fp8: the warps' widened V rows [ATT_WARPS][16][stride] halves, after the stages.
    unsigned short* sWide = (unsigned short*)(decodeShared + DT_STAGES * stageElements * sizeof(KV));
    float* sAcc = (float*)decodeShared;                 // [ATT_WARPS][ATT_MAX_GROUP][headDim], once drained
    float2* sStats = (float2*)(decodeShared + DT_STAGES * stageElements * sizeof(KV)
                               + (FP8 ? ATT_WARPS * 16 * stride * 2 : 0));  // [ATT_WARPS][ATT_MAX_GROUP]

    const int z = blockIdx.x, h = blockIdx.y, t = tokenList ? tokenList[blockIdx.z] : blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
    const int group = heads / kvHeads;
    const int length = positions[t] + 1;
    const int start = z * partition;
    if (start >= length) return;
    const int end = min(length, start + partition);
    const int tiles = (end - start + DT_TILE - 1) / DT_TILE;
    const int* table = blockTables + (long long)sequenceOf[t] * maxBlocks;
    const int kvWidth = kvHeads * headDim;
    const KV* keys = keyCache + (long long)h * headDim;
    const KV* values = valueCache + (long long)h * headDim;
    const int kSteps = headDim / 16, dTiles = headDim / 8;

    const KvTileCopies<ATT_THREADS, KV> copies(tid, headDim);
    auto issue = [&](int tile) {
        if (tile < tiles)
            copies.issue(sStage + (tile % DT_STAGES) * stageElements, stageStride, keys, values, table, blockSize, kvWidth,
                         start + tile * DT_TILE, end);
        cp_async_commit();  // an empty group past the last tile keeps the wait counts uniform
    };
    // earlyKv (the host's: every token of the step is its sequence's only one): a partition that ends before the token's
    // own position holds keys and values of earlier steps alone, which no kernel of this step writes, so its first tiles
    // are copied before the wait, under the q/k/v GEMV's tail; the metadata read so far was copied in before the step.
    const bool early = earlyKv && end < length;
    if (early)
#pragma unroll
        for (int s = 0; s < DT_STAGES - 1; s++) issue(s);
    pdl_start();

    // Q as A fragments of rows g (a0: dims 16k + 2·t4, +1; a2: + 8 — fp8: dims t4·headDim/4 + 4k, +1 and +2, +3); rows
    // g + 8 (a1, a3) are zero.
    unsigned qf[PF_MAX_DIM / 16][2];
    const float* q = query + (long long)t * heads * headDim + (long long)(h * group + g) * headDim;
#pragma unroll
    for (int k = 0; k < PF_MAX_DIM / 16; k++) {
        float2 lo = make_float2(0.0f, 0.0f), hi = make_float2(0.0f, 0.0f);
        if (k < kSteps && g < group) {
            if constexpr (FP8) {
                const float4 four = *(const float4*)(q + t4 * (headDim / 4) + 4 * k);
                lo = make_float2(four.x, four.y);
                hi = make_float2(four.z, four.w);
            } else {
                lo = *(const float2*)(q + 16 * k + 2 * t4);
                hi = *(const float2*)(q + 16 * k + 2 * t4 + 8);
            }
        }
        qf[k][0] = pack_half2(lo.x * scaleLog2, lo.y * scaleLog2);
        qf[k][1] = pack_half2(hi.x * scaleLog2, hi.y * scaleLog2);
    }

    float o[PF_MAX_DIM / 8][2];  // O fragments: o[n] covers dims 8n + 2·t4, +1 of head g
#pragma unroll
    for (int n = 0; n < PF_MAX_DIM / 8; n++) o[n][0] = o[n][1] = 0.0f;
    float m = -INFINITY, l = 0.0f;  // head g's running max (the same in the quad) and this lane's share of its sum

    if (!early)
#pragma unroll
        for (int s = 0; s < DT_STAGES - 1; s++) issue(s);
    for (int tile = 0; tile < tiles; tile++) {
        cp_async_wait<DT_STAGES - 2>();
        __syncthreads();  // tile `tile` has landed for every thread, and tile − 1's stage is free for tile + DT_STAGES − 1
        issue(tile + DT_STAGES - 1);
        const int valid = min(16, end - start - tile * DT_TILE - 16 * warp);
        if (valid <= 0) continue;  // warp-uniform: this warp's rows are past the partition's end
        const int mat = lane / 8;
        const unsigned short* sV;
        float s[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};  // S = Q·Kᵀ: s[n] covers positions 8n + 2·t4, +1 of the slice
        if constexpr (FP8) {
            const unsigned char* codes = (const unsigned char*)sStage + (tile % DT_STAGES) * stageElements + 16 * warp * stageStride;
            // Widen the warp's 16 V rows: 8 codes (8 bytes, consecutive across the lanes) to one 16-byte f16 store.
            // Zero-filled rows past the end widen to zeros.
            unsigned short* wide = sWide + warp * 16 * stride;
            const int rowPieces = headDim / 8;
            __syncwarp();  // every lane is done with the previous tile's rows
#pragma unroll
            for (int u = 0; u < 16 * PF_MAX_DIM / 8 / 32; u++) {
                const int i = lane + 32 * u;
                if (i < 16 * rowPieces) {
                    const int row = i / rowPieces, col = 8 * (i - row * rowPieces);
                    const uint2 p = *(const uint2*)(codes + (DT_TILE + row) * stageStride + col);
                    *(uint4*)(wide + row * stride + col) =
                        make_uint4(fp8x2_to_half2(p.x), fp8x2_to_half2(p.x >> 16), fp8x2_to_half2(p.y), fp8x2_to_half2(p.y >> 16));
                }
            }
            // K's codes of positions g and g + 8, dims t4·headDim/4 … + headDim/4 − 1: 4 a k-step (b0: the low pair,
            // b1: the high pair), in 16-byte loads where the run is whole sixteens.
            unsigned kc[2][PF_MAX_DIM / 16];
            const unsigned char* kRow = codes + g * stageStride + t4 * (headDim / 4);
#pragma unroll
            for (int r = 0; r < 2; r++)
#pragma unroll
                for (int k = 0; k < PF_MAX_DIM / 16; k += 4) {
                    const unsigned char* at = kRow + r * 8 * stageStride + 4 * k;
                    if (headDim % 64 == 0 && k < kSteps) {
                        const uint4 v = *(const uint4*)at;
                        kc[r][k] = v.x, kc[r][k + 1] = v.y, kc[r][k + 2] = v.z, kc[r][k + 3] = v.w;
                    } else {
#pragma unroll
                        for (int j = 0; j < 4; j++)
                            if (k + j < kSteps) kc[r][k + j] = *(const unsigned*)(at + 4 * j);
                    }
                }
#pragma unroll
            for (int k = 0; k < PF_MAX_DIM / 16; k++) {
                if (k < kSteps) {
                    mma_f16_rows8(s[0], qf[k][0], qf[k][1], fp8x2_to_half2(kc[0][k]), fp8x2_to_half2(kc[0][k] >> 16));
                    mma_f16_rows8(s[1], qf[k][0], qf[k][1], fp8x2_to_half2(kc[1][k]), fp8x2_to_half2(kc[1][k] >> 16));
                }
            }
            __syncwarp();  // the widened V rows are visible to the warp
            sV = wide;
        } else {
            const unsigned short* sK = sStage + (tile % DT_STAGES) * stageElements + 16 * warp * stride;
            sV = sK + DT_TILE * stride;
#pragma unroll
            for (int k = 0; k < PF_MAX_DIM / 16; k++) {
                if (k < kSteps) {
                    // Matrices: positions 0…7 × dims 16k…+7, × dims 16k+8…+15, then the same for positions 8…15.
                    unsigned b[4];
                    ldmatrix_x4(b, sK + (8 * (mat / 2) + lane % 8) * stride + 16 * k + 8 * (mat % 2));
                    mma_f16_rows8(s[0], qf[k][0], qf[k][1], b[0], b[1]);
                    mma_f16_rows8(s[1], qf[k][0], qf[k][1], b[2], b[3]);
                }
            }
        }
        float tileMax = -INFINITY;
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                if (8 * n + 2 * t4 + e >= valid) s[n][e] = -INFINITY;  // past the partition (zero-filled rows)
                tileMax = fmaxf(tileMax, s[n][e]);
            }
        tileMax = fmaxf(tileMax, __shfl_xor_sync(FULL_MASK, tileMax, 1));
        tileMax = fmaxf(tileMax, __shfl_xor_sync(FULL_MASK, tileMax, 2));
        const float next = fmaxf(m, tileMax);  // finite: the slice's first position is valid
        const float alpha = exp2f(m - next);   // 0 on the warp's first tile (m = −inf)
        m = next;
        unsigned pf[2];  // P rounded to f16: pf[n] = positions 8n + 2·t4, +1 of head g
        float add = 0.0f;
#pragma unroll
        for (int n = 0; n < 2; n++) {
            pf[n] = pack_half2(exp2f(s[n][0] - next), exp2f(s[n][1] - next));  // exp2(−inf) = 0 where masked
            add += half_to_float(pf[n] & 0xffff) + half_to_float(pf[n] >> 16);
        }
        l = l * alpha + add;

        // O = alpha·O + P·V: dimension tiles of 8, two at a time.
#pragma unroll
        for (int n = 0; n < PF_MAX_DIM / 8; n += 2) {
            if (n < dTiles) {
                o[n][0] *= alpha; o[n][1] *= alpha;
                o[n + 1][0] *= alpha; o[n + 1][1] *= alpha;
                // Matrices (transposed): positions 0…7 × dims 8n…+7, positions 8…15 × the same, then dims 8(n+1)…
                unsigned b[4];
                ldmatrix_x4_trans(b, sV + (8 * (mat % 2) + lane % 8) * stride + 8 * n + 8 * (mat / 2));
                mma_f16_rows8(o[n], pf[0], pf[1], b[0], b[1]);
                mma_f16_rows8(o[n + 1], pf[0], pf[1], b[2], b[3]);
            }
        }
    }
    cp_async_wait<0>();  // only empty groups remain; the stages become sAcc
    __syncthreads();

    // Merge the warps' states in warp order. Warp 0 always has positions, so M is finite; warps without any add 0.
    l += __shfl_xor_sync(FULL_MASK, l, 1);
    l += __shfl_xor_sync(FULL_MASK, l, 2);
    if (g < group) {
        float* acc = sAcc + (warp * ATT_MAX_GROUP + g) * headDim;
#pragma unroll
        for (int n = 0; n < PF_MAX_DIM / 8; n++)
            if (n < dTiles) *(float2*)(acc + 8 * n + 2 * t4) = make_float2(o[n][0], o[n][1]);
        if (t4 == 0) sStats[warp * ATT_MAX_GROUP + g] = make_float2(m, l);
    }
    __syncthreads();
    const int chunks = headDim / 4;
    for (int i = tid; i < group * chunks; i += ATT_THREADS) {
        const int head = i / chunks, c = i % chunks;
        float maxAll = -INFINITY;
#pragma unroll
        for (int w = 0; w < ATT_WARPS; w++) maxAll = fmaxf(maxAll, sStats[w * ATT_MAX_GROUP + head].x);
        float4 out = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < ATT_WARPS; w++) {
            const float2 st = sStats[w * ATT_MAX_GROUP + head];
            const float e = exp2f(st.x - maxAll);
            sum += e * st.y;
            out = fma4(e, ((const float4*)(sAcc + (w * ATT_MAX_GROUP + head) * headDim))[c], out);
        }
        const int queryHead = h * group + head;
        if (splits == 1) {
            ((float4*)(output + (long long)t * heads * headDim + (long long)queryHead * headDim))[c] = scale4(out, 1.0f / sum);
        } else {
            const long long at = ((long long)t * heads + queryHead) * splits + z;
            ((float4*)(partialOut + at * headDim))[c] = out;
            if (c == 0) partialStats[at] = make_float2(maxAll, sum);
        }
    }
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_decode_f16_tc(
    const float* query, const unsigned short* keyCache, const unsigned short* valueCache, const int* blockTables,
    const int* sequenceOf, const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats,
    int heads, int kvHeads, int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2, int earlyKv) {
    attention_decode_tc(query, keyCache, valueCache, blockTables, sequenceOf, positions, tokenList, output, partialOut,
                        partialStats, heads, kvHeads, headDim, blockSize, maxBlocks, partition, splits, scaleLog2, earlyKv);
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS, 3) attention_decode_fp8_tc(
    const float* query, const unsigned char* keyCache, const unsigned char* valueCache, const int* blockTables,
    const int* sequenceOf, const int* positions, const int* tokenList, float* output, float* partialOut, float2* partialStats,
    int heads, int kvHeads, int headDim, int blockSize, int maxBlocks, int partition, int splits, float scaleLog2, int earlyKv) {
    attention_decode_tc(query, keyCache, valueCache, blockTables, sequenceOf, positions, tokenList, output, partialOut,
                        partialStats, heads, kvHeads, headDim, blockSize, maxBlocks, partition, splits, scaleLog2, earlyKv);
}
