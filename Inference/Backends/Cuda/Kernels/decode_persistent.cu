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
// (the ring) + workBytes (the activation's int8 codes and scales, or attention's merge scratch). PersistentDecodeGeometry
// (C#) plans it; CudaPersistentDecode launches it.
//  * Work split: each projection's rows are cut evenly over the blocks (q/k/v in whole RoPE pairs), and a block's rows into
//    tiles of at most PD_STAGE_BYTES of codes and scales (gate and up: the same rows of both in one tile), so every block
//    streams the same bytes a layer.
//  * Producer (warp PD_CONSUMER_WARPS, one lane): for each tile, waits until the consumers have released its stage (`empty`
//    mbarrier, one arrival a consumer warp), then copies the rows' codes [rows][K/2] and f16 scales [rows][K/32] with
//    cp.async.bulk, completing on the stage's `full` mbarrier. It never waits for activations.
//  * Consumers (PD_CONSUMER_WARPS warps): per stage of a layer, after the grid-wide barrier that makes its input complete,
//    (1) the input as int8 blocks in shared memory, a 32-value block a thread (for q/k/v and gate/up the RMS norm of h
//    first, computed by every block from h itself), values 0–15 and 16–31 of the blocks in two planes; (2) each tile:
//    warp w takes a consecutive run of its 32-block chunks (lane i block i of the chunk: one 16-byte unit of codes, the
//    activation's 32 codes, dp4a) and sums the warp once a row's run ends into `partial`; then a barrier of the consumers
//    and one thread a row (a RoPE pair for q/k/v) adds the row's partials in order and stores: q, the f16 K/V cache,
//    SiLU(gate)·up, or h += product from the block's rows of h staged before the tiles (each row has one owner: no atomics,
//    and the same sums every run).
//  * Attention: items (KV head, partition of the positions), one a block in turn; the block's warps take positions w, w + 8,
//    … two at a time with their own online softmax (exp2, scores scaled by 1/√d·log2 e) for the G query heads of the KV
//    head, merged over the warps in a tree through shared memory; partials (unnormalised out, max, sum) to
//    `partials`/`stats`. The block that completes a KV head's last partition (a ticket) merges that head group, a warp a
//    query head, into `attention`: no grid barrier of its own.
//  * Grid-wide barrier: every block's thread 0, after a consumer barrier, adds 1 to `arrived` (red.release; zeroed by the
//    host before the launch), then spins until it reads the barrier's count × gridDim; a barrier of the consumers lets the
//    rest on. Data another block wrote is read with ld.global.cg (L2, never a stale L1 line). A wait longer than ~2 s traps
//    with a message naming the block and barrier, rather than hanging the GPU.
//  * Trace (optional): block 0 stamps the global timer at each stage's start, prologue end, work end and barrier, and its
//    producer counts the time it waited for a free stage (GpuCheck's "the persistent kernel's stages").
// Measured (H200, 2026-11-28, docs/performance.md "The persistent decode kernel"): correct, but Llama-3-8B Q4_0 at batch 1
// takes 2.88 ms a step against the layer-by-layer 1.58: the consumers, not the copies, set the pace (the producer waits for
// a free stage ~80 % of the time), and each layer's chain of prologues and barriers is ~30 µs. Off by default.
#include "common.cuh"

// 8 consumer warps and the producer: 9 warps, at most 3 on an SM quadrant, so ptxas may give a thread 168 registers. With
// 16 (5 warps on a quadrant) it had 96 and spilled 240–700 bytes a thread. Spills go to L2 here (the block's shared memory
// leaves L1 a few KB), and the step's time followed the spills more than anything else tried (H200, 2026-11-28).
#define PD_CONSUMER_WARPS 8
#define PD_CONSUMERS (PD_CONSUMER_WARPS * 32)
#define PD_THREADS (PD_CONSUMERS + 32)
// One ring stage: 32 KB holds 14 rows of a 4,096-wide nibble matrix with their scales, or 4 of a 14,336-wide one; six of
// them fit beside Llama-3-8B's largest activation block (14,336 int8 codes and 448 scales) in the 227 KB an SM gives a block.
#define PD_STAGE_BYTES 32768
#define PD_MAX_STAGES 8
#define PD_MAX_CHUNKS (PD_STAGE_BYTES / 512)  // 32 blocks × 16 bytes of codes a chunk
#define PD_MAX_PAIRS 64  // RoPE pairs of a head: head dimensions up to 128
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
    int tileQkv, tileO, tileGateUp, tileDown;  // rows a tile, by stage (no array: a runtime index would put it on the stack)
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

// The optional trace (GpuCheck's "persistent kernel's stages"): block 0's thread 0 stamps the global timer (ns) at fixed
// points of each layer, its producer the time it waited for free stages. Null: no trace.
#define PD_TRACE_PER_LAYER 20  // 5 stages × (start, prologue done, work done, barrier passed); attention has no prologue

__device__ __forceinline__ unsigned long long global_timer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ void trace_stamp(unsigned long long* trace, int i) {
    if (trace != nullptr && blockIdx.x == 0 && threadIdx.x == 0) trace[i] = global_timer();
}

// Every consumer of every block has finished what came before (its writes visible to all) once this returns.
__device__ __forceinline__ void grid_sync(unsigned* arrived, unsigned barrier) {
    consumer_sync();
    if (threadIdx.x == 0) {
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(arrived) : "memory");
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

// The rows of `stage` this block takes, [r0, r1) of the stage's rows (q/k/v: of q, k and v one after the other): an even
// split over the blocks, in whole RoPE pairs for q/k/v.
struct PdSpan {
    int r0, r1, total, k, matrix, tileRows;
};

__device__ __forceinline__ PdSpan stage_span(const PdShape& s, int stage) {
    int total, unit = 1, k, matrix, tileRows;
    switch (stage) {
    case STAGE_QKV: total = s.qRows + 2 * s.kvRows; unit = 2; k = s.dim; matrix = 0; tileRows = s.tileQkv; break;
    case STAGE_O: total = s.dim; k = s.qRows; matrix = 3; tileRows = s.tileO; break;
    case STAGE_GATE_UP: total = s.ffn; k = s.dim; matrix = 4; tileRows = s.tileGateUp; break;
    default: total = s.dim; k = s.ffn; matrix = 6; tileRows = s.tileDown; break;
    }
    const long long units = total / unit;
    return PdSpan{unit * (int)(units * blockIdx.x / gridDim.x), unit * (int)(units * (blockIdx.x + 1) / gridDim.x), total, k, matrix, tileRows};
}

// The tiles of `stage` this block takes, in order, each given to f. Producer and consumers walk the same sequence.
template <typename F>
__device__ __forceinline__ void for_each_tile(const PdShape& s, int stage, F&& f) {
    const PdSpan span = stage_span(s, stage);
    const int r1 = span.r1, total = span.total, k = span.k, matrix = span.matrix;
    for (int r = span.r0; r < r1;) {
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
        const int end = min(min(r1, partEnd), r + span.tileRows);
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

__device__ __forceinline__ float4 load_cg4(const float* p) {
    float4 v;
    asm volatile("ld.global.cg.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p) : "memory");
    return v;
}

// 32 values as one int8 block (quantize_block's arithmetic: d = max|x| / 127, codes round(x / d) to nearest even, and
// d·Σcodes) by one thread: no shuffles.
__device__ __forceinline__ void quantize_block_thread(const float (&v)[32], signed char* xq, signed char* xqHigh, float2* ds, int b) {
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
    const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int packed[8], sum = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int q0 = __float2int_rn(v[4 * i] * id), q1 = __float2int_rn(v[4 * i + 1] * id);
        const int q2 = __float2int_rn(v[4 * i + 2] * id), q3 = __float2int_rn(v[4 * i + 3] * id);
        packed[i] = (q0 & 0xFF) | (q1 & 0xFF) << 8 | (q2 & 0xFF) << 16 | (int)((unsigned)(q3 & 0xFF) << 24);
        sum += q0 + q1 + q2 + q3;
    }
    // Values 0–15 of block b in the low plane, 16–31 in the high one: consecutive lanes then read consecutive 16 bytes (the
    // 32 bytes of a block together made lanes 4 apart share banks: two passes for every 16-byte load).
    *(int4*)(xq + b * 16) = make_int4(packed[0], packed[1], packed[2], packed[3]);
    *(int4*)(xqHigh + b * 16) = make_int4(packed[4], packed[5], packed[6], packed[7]);
    ds[b] = make_float2(d, d * (float)sum);
}

__device__ __forceinline__ void load_block(const float* x, int b, float (&v)[32]) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const float4 f = load_cg4(x + b * 32 + 4 * i);
        v[4 * i] = f.x; v[4 * i + 1] = f.y; v[4 * i + 2] = f.z; v[4 * i + 3] = f.w;
    }
}

// The stage's activation row as int8 blocks in shared memory (xq, ds): x itself (written by other blocks: attention's
// output, SiLU·mul's), or RMSNorm(h)·w, the norm computed by every block from h (its width at most 32 · PD_CONSUMERS, one
// block a thread, held from the sum of squares to the quantization). A thread takes whole 32-value blocks with 16-byte
// loads and quantizes each alone (quantize_block's warp of shuffles a block, unrolled over a lane's many blocks, made
// ptxas spill; two blocks a thread in flight at once spilled more).
__device__ __forceinline__ void prepare_normed(const float* h, const float* w, int n, float eps, signed char* xq, signed char* xqHigh, float2* ds,
                                               float* red) {
    const int tid = threadIdx.x, blocks = n / 32;
    float v[32];
    float squares = 0.0f;
    if (tid < blocks) {
        load_block(h, tid, v);
#pragma unroll
        for (int i = 0; i < 32; i++) squares += v[i] * v[i];
    }
    squares = warp_sum(squares);
    if (tid % 32 == 0) red[tid / 32] = squares;
    consumer_sync();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < PD_CONSUMER_WARPS; i++) total += red[i];
    const float r = rsqrtf(total / n + eps);
    if (tid < blocks) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const float4 f = __ldg((const float4*)(w + tid * 32) + i);
            v[4 * i] *= r * f.x; v[4 * i + 1] *= r * f.y; v[4 * i + 2] *= r * f.z; v[4 * i + 3] *= r * f.w;
        }
        quantize_block_thread(v, xq, xqHigh, ds, tid);
    }
    consumer_sync();
}

__device__ __forceinline__ void prepare_plain(const float* x, int n, signed char* xq, signed char* xqHigh, float2* ds) {
    for (int b = threadIdx.x; b < n / 32; b += PD_CONSUMERS) {
        float v[32];
        load_block(x, b, v);
        quantize_block_thread(v, xq, xqHigh, ds, b);
    }
    consumer_sync();
}

// The consumers' side of one tile: wait for its stage, dot products into partial, release the stage. Warp w takes the
// consecutive chunks [w·n/8, (w+1)·n/8) of the tile's n (a chunk: 32 blocks of one row, lane i block i), adding a run of
// chunks of one row in its lanes and summing the warp once a run (a warp sum a chunk cost 5 dependent shuffles each):
// partial[c] holds a run's sum at its last chunk c and 0 elsewhere, so a row's total is the same sum in the same order
// every run.
__device__ __forceinline__ void consume_tile(const PdTile& t, int mats, const unsigned char* stage, unsigned full, unsigned empty,
                                             unsigned parity, int tileIndex, const signed char* xq, const signed char* xqHigh,
                                             const float2* ds, int offset, float* partial) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int blocks = t.k / 32, chunksPerRow = blocks / 32, chunks = mats * t.rows * chunksPerRow;
    const int codeBytes = t.rows * (t.k / 2), matBytes = codeBytes + t.rows * (t.k / 16);
    const int c0 = warp * chunks / PD_CONSUMER_WARPS, c1 = (warp + 1) * chunks / PD_CONSUMER_WARPS;
    if (c0 < c1) mbarrier_wait_watched(full, parity, "full", tileIndex);
    // Row r and chunk g of c, stepped along rather than divided out each chunk (32-bit offsets: a stage is 32 KB). Four
    // chunks' dot products at a time made it slower (H200, 2026-11-28: gate/up 31.5 → 34.8 µs a layer; more spills).
    int r = c0 / chunksPerRow, g = c0 - r * chunksPerRow;
    float run = 0.0f;
    for (int c = c0; c < c1; c++) {
        const int m = r >= t.rows, rr = r - m * t.rows;  // gate/up: rows of up after those of gate
        const unsigned char* codes = stage + m * matBytes + rr * (t.k / 2);
        const unsigned short* scales = (const unsigned short*)(stage + m * matBytes + codeBytes + rr * (t.k / 16));
        const int b = g * 32 + lane;
        const int4 w = *(const int4*)(codes + b * 16);
        const float s = half_to_float(scales[b]);
        const float2 d = ds[b];
        int codes8[8];
        widen_nibbles(w, codes8);
        const BlockDot dot = dot_block(codes8, *(const int4*)(xq + b * 16), *(const int4*)(xqHigh + b * 16));
        run += d.x * (s * (float)(dot.lo + dot.hi)) - s * (float)offset * d.y;
        const bool runEnds = c + 1 == c1 || g + 1 == chunksPerRow;  // the same for the whole warp
        if (runEnds) run = warp_sum(run);
        if (lane == 0) partial[c] = runEnds ? run : 0.0f;
        if (runEnds) run = 0.0f;
        if (++g == chunksPerRow) {
            g = 0;
            r++;
        }
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
    // The warp's positions j0 + warp + 16i: lane i looks up the slot of the i-th (the first 32 at once), and the rows of two
    // positions are loaded before either is used, so that a position costs half an L2/HBM round trip, not two.
    const int mine = j1 > j0 + warp ? (j1 - j0 - warp + PD_CONSUMER_WARPS - 1) / PD_CONSUMER_WARPS : 0;
    auto slotOf = [&](int i) {
        const int j = j0 + warp + PD_CONSUMER_WARPS * i;
        return (long long)__ldg(table + j / blockSize) * blockSize + j % blockSize;
    };
    const long long slots = lane < mine ? slotOf(lane) : 0;
    auto loadRow = [&](const unsigned short* cache, long long slot, float (&x)[D]) {
        const long long at = slot * kvRows + kvHead * HD + D * lane;
        if constexpr (D == 4) {
            const uint2 r = load_cg2((const unsigned*)(cache + at));
            x[0] = half_to_float(r.x & 0xFFFF); x[1] = half_to_float(r.x >> 16); x[2] = half_to_float(r.y & 0xFFFF); x[3] = half_to_float(r.y >> 16);
        } else {
            const unsigned r = load_cg((const unsigned*)(cache + at));
            x[0] = half_to_float(r & 0xFFFF); x[1] = half_to_float(r >> 16);
        }
    };
    auto attend = [&](const float (&k)[D], const float (&v)[D]) {
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
    };
    for (int i = 0; i < mine; i += 2) {
        const long long s0 = i < 32 ? __shfl_sync(FULL_MASK, slots, i) : slotOf(i);
        const bool second = i + 1 < mine;
        const long long s1 = i + 1 < 32 ? __shfl_sync(FULL_MASK, slots, (i + 1) & 31) : slotOf(i + 1);
        float k0[D], v0[D], k1[D], v1[D];
        loadRow(keys, s0, k0);
        loadRow(values, s0, v0);
        if (second) {
            loadRow(keys, s1, k1);
            loadRow(values, s1, v1);
        }
        attend(k0, v0);
        if (second) attend(k1, v1);
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

// Query head h's partitions merged into `attention` (out / L) by one warp: lane p holds partition p's (max, sum), and each
// lane adds its headDim / 32 values over the partitions with their loads in flight.
template <int D>
__device__ __forceinline__ void merge_head(const PdShape& s, int h, const float* partials, const float* stats, float* attention) {
    const int lane = threadIdx.x % 32;
    const float* st = stats + 2LL * h * s.partitions;
    const float m = lane < s.partitions ? load_cg(st + 2 * lane) : -INFINITY;
    const float l = lane < s.partitions ? load_cg(st + 2 * lane + 1) : 0.0f;
    const float M = warp_max(l > 0.0f ? m : -INFINITY);
    const float weight = l > 0.0f ? exp2f(m - M) : 0.0f;
    const float total = warp_sum(weight * l);
    float out[D];
#pragma unroll
    for (int d = 0; d < D; d++) out[d] = 0.0f;
    const float* o = partials + (long long)h * s.partitions * (32 * D) + lane;
    for (int p0 = 0; p0 < s.partitions; p0 += 8) {
#pragma unroll
        for (int p = p0; p < p0 + 8; p++) {
            if (p < s.partitions) {  // the same for the whole warp
                const float wp = __shfl_sync(FULL_MASK, weight, p);
#pragma unroll
                for (int d = 0; d < D; d++) out[d] += wp * load_cg(o + p * (32 * D) + 32 * d);
            }
        }
    }
#pragma unroll
    for (int d = 0; d < D; d++) attention[h * (32 * D) + lane + 32 * d] = out[d] / total;
}

// Attention's items (KV head, partition) a block in turn. The block that finishes a KV head's last partition (a ticket
// counted in `tickets`, zeroed by the host before the launch) merges that head group's partitions into `attention`, so the
// merge costs no grid barrier of its own.
template <int G, int D>
__device__ __forceinline__ void attention_stage(const PdShape& s, const unsigned short* keys, const unsigned short* values, const float* query,
                                                const int* table, int blockSize, int position, float scaleLog2, float* scratch,
                                                float* partials, float* stats, unsigned* tickets, float* attention) {
    __shared__ int last;
    const int context = position + 1, length = (context + s.partitions - 1) / s.partitions;
    for (int item = blockIdx.x; item < s.kvHeads * s.partitions; item += gridDim.x) {
        const int kvHead = item / s.partitions, partition = item % s.partitions;
        const int j0 = min(context, partition * length), j1 = min(context, j0 + length);
        attention_item<G, D>(query, keys, values, table, blockSize, s.kvRows, kvHead, j0, j1, scaleLog2, scratch, partials, stats,
                             partition, s.partitions);
        consumer_sync();  // warp 0's partials are written
        if (threadIdx.x == 0) {
            __threadfence();
            last = atomicAdd(tickets + kvHead, 1u) == (unsigned)s.partitions - 1;
            if (last) __threadfence();
        }
        consumer_sync();
        const int warp = threadIdx.x / 32;
        if (last && warp < G) merge_head<D>(s, kvHead * G + warp, partials, stats, attention);
    }
}

extern "C" __global__ void __launch_bounds__(PD_THREADS, 1) decode_persistent_nibble(
    const PdLayer* layers, const unsigned long long* kvLayers, int layerCount, float* hidden, float* query, float* attention, float* activated, float* partials,
    float* stats, unsigned* arrived, const float* ropeCos, const float* ropeSin, const int* positions, const int* slots,
    const int* blockTables, const int* sequenceOf, int maxBlocks, int blockSize, int dim, int ffn, int heads, int kvHeads,
    int headDim, int partitions, float eps, float scaleLog2, int offset, int tileQkv, int tileO, int tileGateUp, int tileDown,
    int stages, unsigned long long* trace) {
    __shared__ unsigned long long barriers[2 * PD_MAX_STAGES];  // full[stages], then empty[stages]
    __shared__ float partial[2][PD_MAX_CHUNKS];                 // a tile's chunk sums, by tile parity
    __shared__ float red[PD_CONSUMER_WARPS];
    __shared__ float resid[PD_CONSUMERS];             // the block's rows of h, loaded before a residual stage's tiles
    __shared__ float rope[2][PD_MAX_PAIRS];           // cos, sin of the token's position
    extern __shared__ __attribute__((aligned(128))) unsigned char pdShared[];
    const PdShape s{dim, ffn, heads * headDim, kvHeads * headDim, heads, kvHeads, headDim, partitions, tileQkv, tileO, tileGateUp, tileDown};
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
        const bool tracing = trace != nullptr && blockIdx.x == 0;
        int index = 0;
        for (int l = 0; l < layerCount; l++) {
            const PdLayer& L = layers[l];
            unsigned long long waited = 0;
            for (int stage = STAGE_QKV; stage <= STAGE_DOWN; stage++) {
                const int mats = stage == STAGE_GATE_UP ? 2 : 1;
                for_each_tile(s, stage, [&](const PdTile& t) {
                    const int slot = index % stages;
                    if (index >= stages) {
                        const unsigned long long before = tracing ? global_timer() : 0;
                        mbarrier_wait_watched(empty + 8 * slot, (index / stages - 1) & 1, "empty", index);
                        if (tracing) waited += global_timer() - before;
                    }
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
            if (tracing) trace[PD_TRACE_PER_LAYER * layerCount + l] = waited;
        }
        return;
    }

    // The consumers. Inputs: the int8 blocks of the stage's activation row (or attention's merge scratch) in `work`.
    const int maxK = max(max(dim, ffn), s.qRows);
    signed char* xq = (signed char*)work;  // the low plane (values 0–15 of each block), then the high one
    signed char* xqHigh = xq + maxK / 2;
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
                         (index / stages) & 1, index, xq, xqHigh, ds, offset, part);
            store(t, part, t.k / 1024);
            index++;
        });
    };
    // The block's rows of h for a residual stage, into `resid` before its tiles (the epilogue then adds without a round trip).
    auto stageResidual = [&](int stage) {
        const PdSpan span = stage_span(s, stage);
        if ((int)threadIdx.x < span.r1 - span.r0) resid[threadIdx.x] = load_cg(hidden + span.r0 + threadIdx.x);
        return span.r0;
    };
    for (int l = 0; l < layerCount; l++) {
        const PdLayer& L = layers[l];
        unsigned short* const keys = (unsigned short*)kvLayers[2 * l];
        unsigned short* const values = (unsigned short*)kvLayers[2 * l + 1];
        unsigned long long* const stamps = trace != nullptr ? trace + PD_TRACE_PER_LAYER * l : nullptr;

        // q/k/v: RoPE on q and k, k and v into the cache. Thread i: the RoPE pair of rows 2i, 2i + 1.
        trace_stamp(stamps, 0);
        if ((int)threadIdx.x < pairs) {
            rope[0][threadIdx.x] = __ldg(ropeCos + (long long)position * pairs + threadIdx.x);
            rope[1][threadIdx.x] = __ldg(ropeSin + (long long)position * pairs + threadIdx.x);
        }
        prepare_normed(hidden, L.attentionNorm, dim, eps, xq, xqHigh, ds, red);
        trace_stamp(stamps, 1);
        gemvStage(STAGE_QKV, 1, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (2 * i >= t.rows) return;
            float v0 = row_sum(part, 2 * i, chunksPerRow), v1 = row_sum(part, 2 * i + 1, chunksPerRow);
            const int row = t.row + 2 * i;
            if (t.matrix < 2) {
                const int pair = (row % headDim) / 2;
                const float c = rope[0][pair], sn = rope[1][pair], x0 = v0;
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
        trace_stamp(stamps, 2);
        grid_sync(arrived, ++barrier);
        trace_stamp(stamps, 3);
        if (l == 0) pdl_launch_dependents();  // every block is resident now: the next kernel's blocks may take what is left

        trace_stamp(stamps, 4);
        unsigned* const tickets = arrived + 1 + l * kvHeads;
        switch (group * 8 + headDim / 32) {
        case 1 * 8 + 2: attention_stage<1, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        case 1 * 8 + 4: attention_stage<1, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        case 2 * 8 + 2: attention_stage<2, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        case 2 * 8 + 4: attention_stage<2, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        case 4 * 8 + 2: attention_stage<4, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        case 4 * 8 + 4: attention_stage<4, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        default: attention_stage<8, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attention); break;
        }
        trace_stamp(stamps, 6);
        grid_sync(arrived, ++barrier);
        trace_stamp(stamps, 7);

        // Attention output into the residual.
        trace_stamp(stamps, 8);
        int r0 = stageResidual(STAGE_O);
        prepare_plain(attention, s.qRows, xq, xqHigh, ds);
        trace_stamp(stamps, 9);
        gemvStage(STAGE_O, 1, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (i < t.rows) hidden[t.row + i] = resid[t.row - r0 + i] + row_sum(part, i, chunksPerRow);
        });
        trace_stamp(stamps, 10);
        grid_sync(arrived, ++barrier);
        trace_stamp(stamps, 11);

        // SiLU(gate)·up: tile rows 0…rows−1 are gate's, rows…2·rows−1 the same rows of up.
        trace_stamp(stamps, 12);
        prepare_normed(hidden, L.feedForwardNorm, dim, eps, xq, xqHigh, ds, red);
        trace_stamp(stamps, 13);
        gemvStage(STAGE_GATE_UP, 2, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (i >= t.rows) return;
            const float g = row_sum(part, i, chunksPerRow), u = row_sum(part, t.rows + i, chunksPerRow);
            activated[t.row + i] = g / (1.0f + expf(-g)) * u;
        });
        trace_stamp(stamps, 14);
        grid_sync(arrived, ++barrier);
        trace_stamp(stamps, 15);

        // Down into the residual.
        trace_stamp(stamps, 16);
        r0 = stageResidual(STAGE_DOWN);
        prepare_plain(activated, ffn, xq, xqHigh, ds);
        trace_stamp(stamps, 17);
        gemvStage(STAGE_DOWN, 1, [&](const PdTile& t, const float* part, int chunksPerRow) {
            const int i = threadIdx.x;
            if (i < t.rows) hidden[t.row + i] = resid[t.row - r0 + i] + row_sum(part, i, chunksPerRow);
        });
        trace_stamp(stamps, 18);
        if (l + 1 < layerCount) grid_sync(arrived, ++barrier);
        trace_stamp(stamps, 19);
    }
}
