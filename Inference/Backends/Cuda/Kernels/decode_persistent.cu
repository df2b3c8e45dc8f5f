// build-ptx: sm_90a only
// decode_persistent.cu — every transformer block of a one-token decode step in one launch: a persistent kernel.
//
// What it computes: for a Llama-shaped model whose seven projections are nibble weights with one f16 scale a block
// (Q4_0: LAYOUT_NIBBLE, code offset 8, no mins) over an f16 KV cache, each layer's
//   x = RMSNorm(h)·w_attn → q, k, v = x·Wq/k/vᵀ, RoPE (adjacent pairs) on q and k, k and v stored at the token's slot →
//   attention of the token over positions 0…p (flash-decoding: partitions, then their merge) → h += attention·Woᵀ →
//   x = RMSNorm(h)·w_ffn → a = SiLU(x·Wgateᵀ)·(x·Wupᵀ) → h += a·Wdownᵀ
// — what the layer-by-layer step computes (matmul.cu's one-row GEMVs, attention.cu's decode kernels), with its ~7 kernel
// boundaries a layer replaced by grid-wide barriers. The residual stream h (`hidden`) holds the embedded token on entry and
// the last layer's output on return; the final norm and the logits stay the host's ordinary launches.
//
// Why: at batch 1 each launch of the layer-by-layer step ramps up and drains (~1.5–2 µs each), and HBM idles through the
// small kernels between the GEMVs (docs/performance.md, "The whole table on an H200"). Here no weight byte waits for an
// activation: a producer warp streams the block's share of every layer's weights, in the order the consumers use them, into
// a ring of shared-memory stages, and runs ahead of them by the whole ring while they wait at a barrier or compute attention.
//
// Launch: grid = the multiprocessor count, one block an SM, all resident at once (the barriers need every block running: the
// host checks the occupancy); block (PD_CONSUMER_WARPS + 1) × 32 threads; dynamic shared memory = stages · PD_STAGE_BYTES
// (the ring) + workBytes (the activations' int8 codes and scales, or attention's merge scratch).
//  * Work split: each projection's rows are cut evenly over the blocks (q/k/v in whole RoPE pairs), and a block's rows into
//    tiles of at most PD_STAGE_BYTES of codes and scales (CudaLaunchGeometry.PersistentDecodeTileRows; gate and up: the same
//    rows of both in one tile), so every block streams the same bytes a layer.
//  * Producer (warp PD_CONSUMER_WARPS, one lane): for each tile, waits until the consumers have released its stage (`empty`
//    mbarrier, one arrival a consumer warp), then copies the rows' codes [rows][K/2] and f16 scales [rows][K/32] with
//    cp.async.bulk, completing on the stage's `full` mbarrier. It never waits for activations.
//  * Consumers (PD_CONSUMER_WARPS warps): per stage of a layer, after the grid-wide barrier that makes its input complete,
//    (1) the input's int8 blocks into shared memory (quantize_block: for q/k/v and gate/up the RMS norm of h first, computed by
//    every block from h itself), (2) each tile: warp w takes 32-block chunks w, w + 16, … of its rows (lane i block i of the
//    chunk: one 16-byte unit of codes, the activation's 32 codes, dp4a), one warp sum a chunk into `partial`; then a barrier
//    of the consumers and one thread a row (a RoPE pair for q/k/v) adds the row's chunks in order and stores: q, the f16 K/V
//    cache, SiLU(gate)·up, or h += product (each row has one owner: no atomics, and the same sums every run).
//  * Attention: items (KV head, partition of the positions), one a block in turn; the block's warps take positions w, w + 16,
//    … with their own online softmax (exp2, scores scaled by 1/√d·log2 e) for the G query heads of the KV head, merged over
//    the warps in a tree through shared memory; partials (unnormalised out, max, sum) to `partials`/`stats`, merged a query
//    head a thread group after the next barrier into `attention`.
//  * Grid-wide barrier: every block's thread 0, after a consumer barrier, fences and adds 1 to `arrived` (zeroed by the host
//    before the launch), then spins until it reads the barrier's count × gridDim; a barrier of the consumers lets the rest on.
//    Data another block wrote is read with ld.global.cg (L2, never a stale L1 line). A wait longer than ~2 s traps with a
//    message naming the block and barrier, rather than hanging the GPU.
#include "common.cuh"

#define PD_CONSUMER_WARPS 16
#define PD_CONSUMERS (PD_CONSUMER_WARPS * 32)
#define PD_THREADS (PD_CONSUMERS + 32)
// One ring stage: 32 KB holds 14 rows of a 4,096-wide nibble matrix with their scales, or 4 of a 14,336-wide one; six of
// them fit beside Llama-3-8B's largest activation block (14,336 int8 codes and 448 scales) in the 227 KB an SM gives a block.
#define PD_STAGE_BYTES 32768
#define PD_MAX_STAGES 8
#define PD_MAX_CHUNKS (PD_STAGE_BYTES / 512)  // 32 blocks × 16 bytes of codes a chunk
#define PD_MAX_GROUP 8
#define PD_TIMEOUT_CYCLES 4000000000LL  // ~2 s at 2 GHz

#define STAGE_QKV 0
#define STAGE_O 1
#define STAGE_GATE_UP 2
#define STAGE_DOWN 3

// One layer's weights, as CudaPersistentDecode uploads them. Matrices 0–6: q, k, v, attention output, gate, up, down. The
// layer's f16 KV cache ([slots][kvHeads · headDim]) comes from the cache's own table (CudaKvCache.LayerPointers: keys, values).
struct PdLayer {
    const unsigned char* codes[7];    // nibble codes [N][K/2]
    const unsigned short* scales[7];  // f16 block scales [N][K/32]
    const float* attentionNorm;
    const float* feedForwardNorm;
};

struct PdShape {
    int dim, ffn, qRows, kvRows, heads, kvHeads, headDim, partitions;
    int tileRows[4];  // by stage
};

struct PdTile {
    int matrix;  // first matrix of the tile (gate/up: gate, and up is matrix + 1)
    int row;     // first row, within the matrix
    int rows;
    int k;
};

__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;" ::"n"(PD_CONSUMERS) : "memory"); }

__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// Loads of what other blocks of this launch wrote: ld.global.cg reads L2, never a line this SM's L1 kept from before.
__device__ __forceinline__ float load_cg(const float* p) {
    float v;
    asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ unsigned load_cg(const unsigned* p) {
    unsigned v;
    asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ uint2 load_cg2(const unsigned* p) {
    uint2 v;
    asm volatile("ld.global.cg.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ bool mbarrier_try_wait(unsigned bar, unsigned parity) {
    unsigned done;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    return done != 0;
}

// mbarrier_wait with the kernel's watchdog: a pipeline that stops (a bug, never a slow copy) traps instead of hanging.
__device__ __forceinline__ void mbarrier_wait_watched(unsigned bar, unsigned parity, const char* what, int tile) {
    const long long start = clock64();
    while (!mbarrier_try_wait(bar, parity)) {
        if (clock64() - start > PD_TIMEOUT_CYCLES) {
            printf("decode_persistent: block %d thread %d stuck on the %s barrier of tile %d\n", blockIdx.x, threadIdx.x, what, tile);
            __trap();
        }
    }
}

// Every consumer of every block has finished what came before (its writes visible to all) once this returns.
__device__ __forceinline__ void grid_sync(unsigned* arrived, unsigned barrier) {
    consumer_sync();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(arrived, 1u);
        const unsigned target = barrier * gridDim.x;
        const long long start = clock64();
        while (load_acquire(arrived) < target) {
            if (clock64() - start > PD_TIMEOUT_CYCLES) {
                printf("decode_persistent: block %d stuck at grid barrier %u (%u of %u arrived)\n", blockIdx.x, barrier, load_acquire(arrived), target);
                __trap();
            }
        }
    }
    consumer_sync();
}

// The tiles of `stage` this block takes, in order, each given to f. Producer and consumers walk the same sequence.
template <typename F>
__device__ __forceinline__ void for_each_tile(const PdShape& s, int stage, F&& f) {
    int total, unit = 1, k, matrix;
    switch (stage) {
    case STAGE_QKV: total = s.qRows + 2 * s.kvRows; unit = 2; k = s.dim; matrix = 0; break;
    case STAGE_O: total = s.dim; k = s.qRows; matrix = 3; break;
    case STAGE_GATE_UP: total = s.ffn; k = s.dim; matrix = 4; break;
    default: total = s.dim; k = s.ffn; matrix = 6; break;
    }
    const long long units = total / unit;
    const int r1 = unit * (int)(units * (blockIdx.x + 1) / gridDim.x);
    for (int r = unit * (int)(units * blockIdx.x / gridDim.x); r < r1;) {
        int m = matrix, local = r, partEnd = total;
        if (stage == STAGE_QKV) {
            if (r < s.qRows) {
                partEnd = s.qRows;
            } else if (r < s.qRows + s.kvRows) {
                m = 1; local = r - s.qRows; partEnd = s.qRows + s.kvRows;
            } else {
                m = 2; local = r - s.qRows - s.kvRows;
            }
        }
        const int end = min(min(r1, partEnd), r + s.tileRows[stage]);
        f(PdTile{m, local, end - r, k});
        r = end;
    }
}

// Sum of row r's chunk partials, in chunk order.
__device__ __forceinline__ float row_sum(const float* partial, int r, int chunksPerRow) {
    float v = 0.0f;
    for (int g = 0; g < chunksPerRow; g++) v += partial[r * chunksPerRow + g];
    return v;
}

// x = RMSNorm(h)·w as int8 blocks into shared memory (xq, ds: quantize_block's codes and {d, d·Σq}).
__device__ __forceinline__ void prepare_normed(const float* h, const float* w, int n, float eps, signed char* xq, float2* ds, float* red) {
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    float squares = 0.0f;
    for (int i = tid; i < n; i += PD_CONSUMERS) {
        const float x = load_cg(h + i);
        squares += x * x;
    }
    squares = warp_sum(squares);
    if (lane == 0) red[warp] = squares;
    consumer_sync();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < PD_CONSUMER_WARPS; i++) total += red[i];
    const float r = rsqrtf(total / n + eps);
    for (int b = warp; b < n / 32; b += PD_CONSUMER_WARPS) {
        const int i = b * 32 + lane;
        quantize_block(load_cg(h + i) * r * __ldg(w + i), xq, ds, b);
    }
    consumer_sync();
}

// x (written by other blocks) as int8 blocks into shared memory.
__device__ __forceinline__ void prepare_plain(const float* x, int n, signed char* xq, float2* ds) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int b = warp; b < n / 32; b += PD_CONSUMER_WARPS) quantize_block(load_cg(x + b * 32 + lane), xq, ds, b);
    consumer_sync();
}

// The consumers' side of one tile: wait for its stage, dot products a chunk a warp into partial, release the stage.
__device__ __forceinline__ void consume_tile(const PdTile& t, int mats, const unsigned char* stage, unsigned full, unsigned empty,
                                             unsigned parity, int tileIndex, const signed char* xq, const float2* ds, int offset,
                                             float* partial) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int blocks = t.k / 32, chunksPerRow = blocks / 32, chunks = mats * t.rows * chunksPerRow;
    const int codeBytes = t.rows * (t.k / 2), matBytes = codeBytes + t.rows * (t.k / 16);
    if (warp < chunks) mbarrier_wait_watched(full, parity, "full", tileIndex);
    for (int c = warp; c < chunks; c += PD_CONSUMER_WARPS) {
        const int r = c / chunksPerRow, g = c % chunksPerRow, m = r / t.rows, rr = r % t.rows;
        const unsigned char* codes = stage + m * matBytes;
        const unsigned short* scales = (const unsigned short*)(codes + codeBytes);
        const int b = g * 32 + lane;
        const int4 w = *(const int4*)(codes + ((long long)rr * blocks + b) * 16);
        const float s = half_to_float(scales[rr * blocks + b]);
        const int4* x = (const int4*)(xq + b * 32);
        const float2 d = ds[b];
        int codes8[8];
        widen_nibbles(w, codes8);
        const BlockDot dot = dot_block(codes8, x[0], x[1]);
        const float v = warp_sum(d.x * (s * (float)(dot.lo + dot.hi)) - s * (float)offset * d.y);
        if (lane == 0) partial[c] = v;
    }
    __syncwarp();
    if (lane == 0) mbarrier_arrive(empty);
    consumer_sync();
}

// One attention item: the G query heads of KV head `kvHead` over positions [j0, j1), warps taking positions in turn, merged
// over the warps through `scratch` ([PD_CONSUMER_WARPS / 2][G][2 + headDim] floats); the block's result to partials/stats.
template <int G, int D>
__device__ __forceinline__ void attention_item(const float* query, const unsigned short* keys, const unsigned short* values,
                                               const int* table, int blockSize, int kvRows, int kvHead, int j0, int j1,
                                               float scaleLog2, float* scratch, float* partials, float* stats, int partition,
                                               int partitions) {
    constexpr int HD = 32 * D;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float q[G][D], o[G][D], m[G], l[G];
#pragma unroll
    for (int h = 0; h < G; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int d = 0; d < D; d++) {
            q[h][d] = load_cg(query + (kvHead * G + h) * HD + D * lane + d) * scaleLog2;
            o[h][d] = 0.0f;
        }
    }
    for (int j = j0 + warp; j < j1; j += PD_CONSUMER_WARPS) {
        const long long slot = (long long)__ldg(table + j / blockSize) * blockSize + j % blockSize;
        const long long at = slot * kvRows + kvHead * HD + D * lane;
        float k[D], v[D];
        if constexpr (D == 4) {
            const uint2 kr = load_cg2((const unsigned*)(keys + at)), vr = load_cg2((const unsigned*)(values + at));
            k[0] = half_to_float(kr.x & 0xFFFF); k[1] = half_to_float(kr.x >> 16); k[2] = half_to_float(kr.y & 0xFFFF); k[3] = half_to_float(kr.y >> 16);
            v[0] = half_to_float(vr.x & 0xFFFF); v[1] = half_to_float(vr.x >> 16); v[2] = half_to_float(vr.y & 0xFFFF); v[3] = half_to_float(vr.y >> 16);
        } else {
            const unsigned kr = load_cg((const unsigned*)(keys + at)), vr = load_cg((const unsigned*)(values + at));
            k[0] = half_to_float(kr & 0xFFFF); k[1] = half_to_float(kr >> 16);
            v[0] = half_to_float(vr & 0xFFFF); v[1] = half_to_float(vr >> 16);
        }
#pragma unroll
        for (int h = 0; h < G; h++) {
            float s = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) s += q[h][d] * k[d];
            s = warp_sum(s);
            const float mNew = fmaxf(m[h], s), alpha = exp2f(m[h] - mNew), p = exp2f(s - mNew);
            l[h] = l[h] * alpha + p;
#pragma unroll
            for (int d = 0; d < D; d++) o[h][d] = o[h][d] * alpha + p * v[d];
            m[h] = mNew;
        }
    }
    // Tree merge: warps [half, 2·half) hand their state to warps [0, half).
    constexpr int SLOT = G * (2 + HD);
    for (int half = PD_CONSUMER_WARPS / 2; half >= 1; half /= 2) {
        if (warp >= half && warp < 2 * half) {
            float* to = scratch + (warp - half) * SLOT;
#pragma unroll
            for (int h = 0; h < G; h++) {
                if (lane == 0) {
                    to[h * (2 + HD)] = m[h];
                    to[h * (2 + HD) + 1] = l[h];
                }
#pragma unroll
                for (int d = 0; d < D; d++) to[h * (2 + HD) + 2 + D * lane + d] = o[h][d];
            }
        }
        consumer_sync();
        if (warp < half) {
            const float* from = scratch + warp * SLOT;
#pragma unroll
            for (int h = 0; h < G; h++) {
                const float m2 = from[h * (2 + HD)], l2 = from[h * (2 + HD) + 1], mNew = fmaxf(m[h], m2);
                // A side that saw no position has m = −∞ (and nothing to add): its weight is 0, never 2^(−∞ + ∞).
                const float a = m[h] == -INFINITY ? 0.0f : exp2f(m[h] - mNew), b = m2 == -INFINITY ? 0.0f : exp2f(m2 - mNew);
                l[h] = l[h] * a + l2 * b;
#pragma unroll
                for (int d = 0; d < D; d++) o[h][d] = o[h][d] * a + from[h * (2 + HD) + 2 + D * lane + d] * b;
                m[h] = mNew;
            }
        }
        consumer_sync();
    }
    if (warp == 0) {
#pragma unroll
        for (int h = 0; h < G; h++) {
            const long long at = (long long)(kvHead * G + h) * partitions + partition;
#pragma unroll
            for (int d = 0; d < D; d++) partials[at * HD + D * lane + d] = o[h][d];
            if (lane == 0) {
                stats[2 * at] = m[h];
                stats[2 * at + 1] = l[h];
            }
        }
    }
}

template <int G, int D>
__device__ __forceinline__ void attention_stage(const PdShape& s, const unsigned short* keys, const unsigned short* values, const float* query, const int* table, int blockSize,
                                                int position, float scaleLog2, float* scratch, float* partials, float* stats) {
    const int context = position + 1, length = (context + s.partitions - 1) / s.partitions;
    for (int item = blockIdx.x; item < s.kvHeads * s.partitions; item += gridDim.x) {
        const int kvHead = item / s.partitions, partition = item % s.partitions;
        const int j0 = min(context, partition * length), j1 = min(context, j0 + length);
        attention_item<G, D>(query, keys, values, table, blockSize, s.kvRows, kvHead, j0, j1, scaleLog2, scratch, partials, stats,
                             partition, s.partitions);
    }
}

// The partitions of each query head merged into `attention` (out / L): a thread a value, PD_CONSUMERS / headDim heads at once.
__device__ __forceinline__ void merge_partitions(const PdShape& s, const float* partials, const float* stats, float* attention) {
    const int perBlock = PD_CONSUMERS / s.headDim;
    const int h0 = threadIdx.x / s.headDim, d = threadIdx.x % s.headDim;
    if (h0 >= perBlock) return;
    for (int h = blockIdx.x * perBlock + h0; h < s.heads; h += gridDim.x * perBlock) {
        const float* st = stats + 2LL * h * s.partitions;
        float M = -INFINITY;
        for (int p = 0; p < s.partitions; p++)
            if (load_cg(st + 2 * p + 1) > 0.0f) M = fmaxf(M, load_cg(st + 2 * p));
        float out = 0.0f, total = 0.0f;
        for (int p = 0; p < s.partitions; p++) {
            const float l = load_cg(st + 2 * p + 1);
            if (l > 0.0f) {
                const float w = exp2f(load_cg(st + 2 * p) - M);
                total += w * l;
                out += w * load_cg(partials + ((long long)h * s.partitions + p) * s.headDim + d);
            }
        }
        attention[h * s.headDim + d] = out / total;
    }
}

extern "C" __global__ void __launch_bounds__(PD_THREADS, 1) decode_persistent_nibble(
    const PdLayer* layers, const unsigned long long* kvLayers, int layerCount, float* hidden, float* query, float* attention, float* activated, float* partials,
    float* stats, unsigned* arrived, const float* ropeCos, const float* ropeSin, const int* positions, const int* slots,
    const int* blockTables, const int* sequenceOf, int maxBlocks, int blockSize, int dim, int ffn, int heads, int kvHeads,
    int headDim, int partitions, float eps, float scaleLog2, int offset, int tileQkv, int tileO, int tileGateUp, int tileDown,
    int stages) {
    __shared__ unsigned long long barriers[2 * PD_MAX_STAGES];  // full[stages], then empty[stages]
    __shared__ float partial[2][PD_MAX_CHUNKS];                 // a tile's chunk sums, by tile parity
    __shared__ float red[PD_CONSUMER_WARPS];
    extern __shared__ __attribute__((aligned(128))) unsigned char pdShared[];
    const PdShape s{dim, ffn, heads * headDim, kvHeads * headDim, heads, kvHeads, headDim, partitions, {tileQkv, tileO, tileGateUp, tileDown}};
    const unsigned full = shared_address(barriers), empty = full + 8 * PD_MAX_STAGES;
    const unsigned ring = shared_address(pdShared);
    unsigned char* work = pdShared + stages * PD_STAGE_BYTES;
    if (threadIdx.x == 0) {
        for (int b = 0; b < stages; b++) {
            mbarrier_init(full + 8 * b, 1);
            mbarrier_init(empty + 8 * b, PD_CONSUMER_WARPS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");  // visible to the copy engine
    }
    __syncthreads();

    if (threadIdx.x >= PD_CONSUMERS) {
        // The producer: weights only, so it starts before the kernel ahead has ended.
        if (threadIdx.x != PD_CONSUMERS) return;
        int index = 0;
        for (int l = 0; l < layerCount; l++) {
            const PdLayer& L = layers[l];
            for (int stage = STAGE_QKV; stage <= STAGE_DOWN; stage++) {
                const int mats = stage == STAGE_GATE_UP ? 2 : 1;
                for_each_tile(s, stage, [&](const PdTile& t) {
                    const int slot = index % stages;
                    if (index >= stages) mbarrier_wait_watched(empty + 8 * slot, (index / stages - 1) & 1, "empty", index);
                    const unsigned codeBytes = t.rows * (t.k / 2), scaleBytes = t.rows * (t.k / 16);
                    mbarrier_arrive_expect_tx(full + 8 * slot, mats * (codeBytes + scaleBytes));
                    unsigned to = ring + slot * PD_STAGE_BYTES;
                    for (int m = 0; m < mats; m++) {
                        bulk_copy(to, L.codes[t.matrix + m] + (long long)t.row * (t.k / 2), codeBytes, full + 8 * slot);
                        bulk_copy(to + codeBytes, L.scales[t.matrix + m] + (long long)t.row * (t.k / 32), scaleBytes, full + 8 * slot);
                        to += codeBytes + scaleBytes;
                    }
                    index++;
                });
            }
        }
        return;
    }

    // The consumers. Inputs: the int8 blocks of the stage's activation row (or attention's merge scratch) in `work`.
    const int maxK = max(max(dim, ffn), s.qRows);
    signed char* xq = (signed char*)work;
    float2* ds = (float2*)(work + ((maxK + 15) & ~15));
    float* scratch = (float*)work;
    pdl_wait();  // hidden: the embedding written by the kernel before
    const int position = __ldg(positions), slot = __ldg(slots);
    const int* table = blockTables + (long long)__ldg(sequenceOf) * maxBlocks;
    const int group = heads / kvHeads, pairs = headDim / 2;
    unsigned barrier = 0;
    int index = 0;
    auto gemvStage = [&](int stage, int mats, auto&& store) {
        for_each_tile(s, stage, [&](const PdTile& t) {
            const int slotIndex = index % stages;
            float* part = partial[index & 1];
            consume_tile(t, mats, pdShared + slotIndex * PD_STAGE_BYTES, full + 8 * slotIndex, empty + 8 * slotIndex,
                         (index / stages) & 1, index, xq, ds, offset, part);
            store(t, part, t.k / 1024);
            index++;
        });
    };
    for (int l = 0; l < layerCount; l++) {
        const PdLayer& L = layers[l];
        unsigned short* const keys = (unsigned short*)kvLayers[2 * l];
        unsigned short* const values = (unsigned short*)kvLayers[2 * l + 1];
        // q/k/v: RoPE on q and k, k and v into the cache. Thread i: the RoPE pair of rows 2i, 2i + 1.
        prepare_normed(hidden, L.attentionNorm, dim, eps, xq, ds, red);
        gemvStage(STAGE_QKV, 1, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (2 * i >= t.rows) return;
            float v0 = row_sum(part, 2 * i, chunksPerRow), v1 = row_sum(part, 2 * i + 1, chunksPerRow);
            const int row = t.row + 2 * i;
            if (t.matrix < 2) {
                const long long at = (long long)position * pairs + (row % headDim) / 2;
                const float c = __ldg(ropeCos + at), sn = __ldg(ropeSin + at);
                const float x0 = v0;
                v0 = rope_first(x0, v1, c, sn);
                v1 = rope_second(x0, v1, c, sn);
            }
            if (t.matrix == 0) {
                query[row] = v0;
                query[row + 1] = v1;
            } else {
                unsigned short* cache = (t.matrix == 1 ? keys : values) + (long long)slot * s.kvRows + row;
                *(unsigned*)cache = round_half(v0, 0) | (unsigned)round_half(v1, 0) << 16;
            }
        });
        grid_sync(arrived, ++barrier);
        if (l == 0) pdl_launch_dependents();  // every block is resident now: the next kernel's blocks may take what is left

        switch (group * 8 + headDim / 32) {
        case 1 * 8 + 2: attention_stage<1, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        case 1 * 8 + 4: attention_stage<1, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        case 2 * 8 + 2: attention_stage<2, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        case 2 * 8 + 4: attention_stage<2, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        case 4 * 8 + 2: attention_stage<4, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        case 4 * 8 + 4: attention_stage<4, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        case 8 * 8 + 2: attention_stage<8, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        default: attention_stage<8, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats); break;
        }
        grid_sync(arrived, ++barrier);
        merge_partitions(s, partials, stats, attention);
        grid_sync(arrived, ++barrier);

        // Attention output into the residual.
        prepare_plain(attention, s.qRows, xq, ds);
        gemvStage(STAGE_O, 1, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (i < t.rows) hidden[t.row + i] = load_cg(hidden + t.row + i) + row_sum(part, i, chunksPerRow);
        });
        grid_sync(arrived, ++barrier);

        // SiLU(gate)·up: tile rows 0…rows−1 are gate's, rows…2·rows−1 the same rows of up.
        prepare_normed(hidden, L.feedForwardNorm, dim, eps, xq, ds, red);
        gemvStage(STAGE_GATE_UP, 2, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (i >= t.rows) return;
            const float g = row_sum(part, i, chunksPerRow), u = row_sum(part, t.rows + i, chunksPerRow);
            activated[t.row + i] = g / (1.0f + expf(-g)) * u;
        });
        grid_sync(arrived, ++barrier);

        // Down into the residual.
        prepare_plain(activated, ffn, xq, ds);
        gemvStage(STAGE_DOWN, 1, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (i < t.rows) hidden[t.row + i] = load_cg(hidden + t.row + i) + row_sum(part, i, chunksPerRow);
        });
        if (l + 1 < layerCount) grid_sync(arrived, ++barrier);
    }
}
