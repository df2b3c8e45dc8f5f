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
//  * Work split: each projection's rows are cut evenly over the blocks (q/k/v in whole RoPE pairs, the attention output and
//    down in whole 32-row groups, so that their epilogue quantizes the next norm's input), and a block's rows into
//    tiles of at most PD_STAGE_BYTES of codes and scales (gate and up: the same rows of both in one tile), so every block
//    streams the same bytes a layer.
//  * Producer (warp PD_CONSUMER_WARPS, one lane): for each tile, waits until the consumers have released its stage (`empty`
//    mbarrier, one arrival a consumer warp), then copies the rows' codes [rows][K/2] and f16 scales [rows][K/32] with
//    cp.async.bulk, completing on the stage's `full` mbarrier; ahead of the q/k/v and the gate/up tiles, a stage with the
//    layer's norm weight. It never waits for activations.
//  * Consumers (PD_CONSUMER_WARPS warps): per stage of a layer, after the grid-wide barrier that makes its input complete,
//    (1) the input as int8 blocks in shared memory (values 0–15 and 16–31 of the blocks in two planes), everything a
//    thread reads asked for at once (one L2 round trip): copied as the blocks that made it quantized it (attention's
//    merge; the residual stages' epilogue, h·w with each block's Σh², whose sum gives the norm's r; gate/up's, SiLU·mul's
//    output, with a ticket a 32-row group two blocks share), or, for layer 0's norm, quantized here from the embedded token; (2) the tiles in units of two rows that share
//    their activation loads (a RoPE pair of q/k/v, two rows of the attention output or down, a row of gate with the same
//    row of up), warp w taking units w, w + 7, … of the stage: lane i adds blocks i, i + 32, … of both rows, the warp sums
//    them, and lane 0 stores q, the f16 K/V cache, SiLU(gate)·up, or h += product from the block's rows of h staged before
//    the tiles (each row has one owner: no atomics, and the same sums every run). A warp releases each tile's stage as it
//    passes it: no barrier of the consumers between tiles. (3) After a residual stage (whole 32-row groups a block), a
//    warp a group quantizes the next norm's input (foldNorm); after gate/up, its output (foldSilu).
//  * Attention: items (KV head, partition of the positions), one a block in turn; the block's warps take positions w, w + 7,
//    … two at a time with their own online softmax (exp2, scores scaled by 1/√d·log2 e) for the G query heads of the KV
//    head, merged over the warps in a tree through shared memory; partials (unnormalised out, max, sum) to
//    `partials`/`stats`. The block that completes a KV head's last partition (a ticket) merges that head group, a warp a
//    query head, into int8 blocks (the output projection's input): no grid barrier of its own.
//  * Grid-wide barrier: every block's thread 0, after a consumer barrier, adds 1 to `arrived` (red.release; zeroed by the
//    host before the launch), then spins until it reads the barrier's count × gridDim; a barrier of the consumers lets the
//    rest on. Data another block wrote is read with ld.global.cg (L2, never a stale L1 line). A wait longer than ~2 s traps
//    with a message naming the block and barrier, rather than hanging the GPU.
//  * Trace (optional): block 0 stamps the global timer at each stage's start, prologue end, work end and barrier, and its
//    producer counts the time it waited for a free stage (GpuCheck's "the persistent kernel's stages").
// Measured (H200, 2026-11-28, docs/performance.md "The persistent decode kernel, third round"): correct, but Llama-3-8B
// Q4_0 at batch 1 takes 1.87 ms a step against the layer-by-layer 1.58. The consumers set the pace, not the weight stream:
// with the producer's copies removed the kernel still takes 1.69 ms (each warp's serial chain a tile: wait, loads, warp
// sums, store, release), attention and its merge cost ~10 µs a layer, and a grid barrier ~1 µs plus the spread between
// blocks. Off by default.
#include "common.cuh"

// 7 consumer warps and the producer: 8 warps, 2 on each SM quadrant, so ptxas may give a thread 255 registers. With 8
// consumer warps (3 warps on a quadrant) it had 168 and spilled 96–560 bytes a thread; with 16, 96 registers and 240–700
// bytes. Spills go to L2 here (the block's shared memory leaves L1 a few KB, too little for 288 threads' stacks), and the
// step's time followed the spills more than anything else tried (H200, 2026-11-28).
#define PD_CONSUMER_WARPS 7
#define PD_CONSUMERS (PD_CONSUMER_WARPS * 32)
#define PD_THREADS (PD_CONSUMERS + 32)
#define PD_MERGE_SLOTS 4  // attention's tree merge over the warps: the largest power of two below PD_CONSUMER_WARPS
// One ring stage: 32 KB holds 14 rows of a 4,096-wide nibble matrix with their scales, or 4 of a 14,336-wide one; six of
// them fit beside Llama-3-8B's largest activation block (14,336 int8 codes and 448 scales) in the 227 KB an SM gives a block.
#define PD_STAGE_BYTES 32768
#define PD_MAX_STAGES 8
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

// How long a try_wait may suspend the thread before it returns unfinished (ns; the hardware wakes it as soon as the phase
// completes). Without a hint it returned after a short system-set time, and the producer's loop of try-wait, the watchdog's
// clock read and compares ran 7.7 M times a launch: 13 % of the kernel's instructions, issued on the scheduler the producer
// shares with a consumer warp (Nsight Compute, H200, 2026-11-28). The step's time did not follow: 1.871 ms with the hint,
// 1.867 without, in one call (H200, 2026-11-28) — those instructions were not on the consumers' chain.
#ifndef PD_SUSPEND_NS
#define PD_SUSPEND_NS 20000
#endif

// mbarrier_wait with the kernel's watchdog: a pipeline that stops (a bug, never a slow copy) traps instead of hanging.
__device__ __forceinline__ void mbarrier_wait_watched(unsigned bar, unsigned parity, const char* what, int tile) {
    const long long start = clock64();
    for (;;) {
        unsigned done;
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2, %3;\nselp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done) : "r"(bar), "r"(parity), "r"((unsigned)PD_SUSPEND_NS) : "memory");
        if (done) return;
        if (clock64() - start > PD_TIMEOUT_CYCLES) {
            printf("decode_persistent: block %d thread %d stuck on the %s barrier of tile %d\n", blockIdx.x, threadIdx.x, what, tile);
            __trap();
        }
    }
}

// A walker's place in the ring of stages: the slot of its next stage and the parity of that slot's round (a stage's `full`
// and `empty` mbarriers complete once a round). Advanced by a compare: `index % stages` and `index / stages` by the
// runtime stage count were ~30 dependent instructions before every tile, in every warp (Nsight Compute, H200, 2026-11-28);
// without them the step took 1.871 ms against 1.885 (one call, H200, 2026-11-28).
struct PdRing {
    int slot = 0;
    unsigned parity = 0;  // the round's, 0 in the first
    int index = 0;        // stages passed, for the watchdog's message
    int stages;
    __device__ __forceinline__ explicit PdRing(int count) : stages(count) {}
    __device__ __forceinline__ void advance() {
        index++;
        if (++slot == stages) {
            slot = 0;
            parity ^= 1;
        }
    }
};

// The optional trace (GpuCheck's "persistent kernel's stages"): block 0's thread 0 stamps the global timer (ns) at fixed
// points of each layer, its producer the time it waited for free stages. Null: no trace. Built with PD_TRACE_BLOCKS (a
// variant for diagnosis: compiled in, the per-block code made every step 0.02–0.06 ms slower, traced or not — H200,
// 2026-11-28), also every block's time from passing a grid barrier to arriving at the next, summed over the layers by
// stage, and the SM it ran on: what the barriers wait for, the slowest block of each stage.
#define PD_TRACE_PER_LAYER 20  // 5 stages × (start, prologue done, work done, barrier passed); attention has no prologue
#define PD_TRACE_PER_BLOCK 6   // the sums of q/k/v, attention, output, gate/up, down; the SM

__device__ __forceinline__ unsigned long long global_timer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ void trace_stamp(unsigned long long* trace, int i) {
    if (trace != nullptr && blockIdx.x == 0 && threadIdx.x == 0) trace[i] = global_timer();
}

// Every consumer of every block has finished what came before (its writes visible to all) once this returns. When
// tracing, `spent` (this block's sum for the stage) gains the time since `since`, the last barrier passed, and `since`
// moves to this one.
__device__ __forceinline__ void grid_sync(unsigned* arrived, unsigned barrier, unsigned long long* spent, unsigned long long& since) {
    consumer_sync();
    if (threadIdx.x == 0) {
        if (spent != nullptr) *spent += global_timer() - since;
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(arrived) : "memory");
        const unsigned target = barrier * gridDim.x;
        const long long start = clock64();
        while (load_acquire(arrived) < target) {
            if (clock64() - start > PD_TIMEOUT_CYCLES) {
                printf("decode_persistent: block %d stuck at grid barrier %u (%u of %u arrived)\n", blockIdx.x, barrier, load_acquire(arrived), target);
                __trap();
            }
        }
        if (spent != nullptr) since = global_timer();
    }
    consumer_sync();
}

// The rows of `stage` this block takes, [r0, r1) of the stage's rows (q/k/v: of q, k and v one after the other): an even
// split over the blocks, in whole RoPE pairs for q/k/v and whole 32-row groups for the residual stages (whose epilogue
// quantizes the next norm's input a group at a time).
struct PdSpan {
    int r0, r1, total, k, matrix, tileRows;
};

__device__ __forceinline__ PdSpan stage_span(const PdShape& s, int stage) {
    int total, unit = 1, k, matrix, tileRows;
    switch (stage) {
    case STAGE_QKV: total = s.qRows + 2 * s.kvRows; unit = 2; k = s.dim; matrix = 0; tileRows = s.tileQkv; break;
    case STAGE_O: total = s.dim; unit = 32; k = s.qRows; matrix = 3; tileRows = s.tileO; break;
    case STAGE_GATE_UP: total = s.ffn; k = s.dim; matrix = 4; tileRows = s.tileGateUp; break;
    default: total = s.dim; unit = 32; k = s.ffn; matrix = 6; tileRows = s.tileDown; break;
    }
    // Bounds rounded up, so that where there are fewer units than blocks block 0 is never one without work (its trace
    // stands for the grid).
    const long long units = total / unit, blocks = gridDim.x;
    return PdSpan{unit * (int)((units * blockIdx.x + blocks - 1) / blocks), unit * (int)((units * (blockIdx.x + 1) + blocks - 1) / blocks), total, k,
                  matrix, tileRows};
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

// The same block quantized by a warp, lane i holding value i (quantize_block_thread's arithmetic: the same codes, d and
// d·Σcodes), into a vector's planes in global memory: codes [n], values 0–15 of block b at b·16, values 16–31 at n/2 + b·16.
__device__ __forceinline__ void quantize_block_warp(float x, int b, int n, signed char* codes, float2* ds) {
    const int lane = threadIdx.x % 32;
    const float amax = warp_max(fabsf(x));
    const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int q = __float2int_rn(x * id);
    codes[(lane < 16 ? 0 : n / 2) + b * 16 + lane % 16] = (signed char)q;
    const int sum = warp_sum_int(q);
    if (lane == 0) ds[b] = make_float2(d, d * (float)sum);
}

__device__ __forceinline__ void load_block(const float* x, int b, float (&v)[32]) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const float4 f = __ldcg((const float4*)(x + b * 32) + i);
        v[4 * i] = f.x; v[4 * i + 1] = f.y; v[4 * i + 2] = f.z; v[4 * i + 3] = f.w;
    }
}

// Each block starts a row all blocks read at once at its own 32-value block, so that the 132 blocks ask different L2
// lines first (H200, 2026-11-28: a step 2.377 → 2.315 ms, the float prologue of down's input then 7.2 → 5.4 µs a layer).
__device__ __forceinline__ int first_block(int blocks) { return (int)((blockIdx.x * 37u) % (unsigned)blocks); }

// Layer 0's q/k/v input as int8 blocks in shared memory (xq, ds): RMSNorm(h)·w of the embedded token, the norm computed by
// every block from h (its width at most 32 · PD_CONSUMERS, one block a thread, held from the sum of squares to the
// quantization; every later input comes quantized, prepare_quantized). A thread takes a whole 32-value block with 16-byte
// loads and quantizes it alone (quantize_block's warp of shuffles a block, unrolled over a lane's many blocks, made ptxas
// spill at 96 registers a thread). The norm weight w is in a ring stage, the producer's copy of it ahead of the layer's
// tiles (read from HBM in the chain, it cost a round trip of microseconds); every warp waits for the stage and releases
// it once done.
__device__ __forceinline__ void prepare_normed(const float* h, const float* w, unsigned full, unsigned parity, unsigned empty, int tile, int n,
                                               float eps, signed char* xq, signed char* xqHigh, float2* ds, float* red) {
    const int blocks = n / 32, mine = threadIdx.x < blocks, b = mine ? (threadIdx.x + first_block(blocks)) % blocks : 0;
    float v[32];
    float squares = 0.0f;
    if (mine) {
        load_block(h, b, v);
#pragma unroll
        for (int i = 0; i < 32; i++) squares += v[i] * v[i];
    }
    squares = warp_sum(squares);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = squares;
    mbarrier_wait_watched(full, parity, "norm weight", tile);
    consumer_sync();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < PD_CONSUMER_WARPS; i++) total += red[i];
    const float r = rsqrtf(total / n + eps);
    if (mine) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const float4 f = *((const float4*)(w + b * 32) + i);
            v[4 * i] *= r * f.x; v[4 * i + 1] *= r * f.y; v[4 * i + 2] *= r * f.z; v[4 * i + 3] *= r * f.w;
        }
        quantize_block_thread(v, xq, xqHigh, ds, b);
    }
    __syncwarp();
    if (threadIdx.x % 32 == 0) mbarrier_arrive(empty);
    consumer_sync();
}

// The stage's activation row already quantized (quantize_block_warp's planes and {d, d·Σq}, written before the grid
// barrier by the blocks that made it) into shared memory: no float row to read and no quantization in the chain. With
// `partials` (a folded norm: the codes of h·w, which are those of r·h·w), r = rsqrt(Σ partials / n + ε) scales each d;
// the partials, one a block, are added in block order. Each thread's loads are asked for at once.
template <typename Stash>
__device__ __forceinline__ void prepare_quantized(const signed char* codes, const float2* dsGlobal, int n, const float* partials, float eps,
                                                  signed char* xq, signed char* xqHigh, float2* ds, float* red, Stash&& stash) {
    const int tid = threadIdx.x, lane = tid % 32, blocks = n / 32, chunks = n / 16;  // 16-byte chunks: the low plane's, then the high one's
    float p[8];  // lane i: partials i, i + 32, … (the first 256 blocks'), loaded with the rest and added after
#pragma unroll
    for (int k = 0; k < 8; k++) p[k] = partials != nullptr && tid < 32 && lane + 32 * k < gridDim.x ? __ldcg(partials + lane + 32 * k) : 0.0f;
    // A thread's blocks b and b + PD_CONSUMERS (the feed-forward row of Llama-3-8B has 448), and its four 16-byte chunks of
    // codes, all asked for before any is stored: one round trip. Wider rows loop.
    const float2 d = tid < blocks ? __ldcg(dsGlobal + tid) : make_float2(0.0f, 0.0f);
    const float2 d2 = tid + PD_CONSUMERS < blocks ? __ldcg(dsGlobal + tid + PD_CONSUMERS) : make_float2(0.0f, 0.0f);
    for (int t0 = tid; t0 < chunks; t0 += 4 * PD_CONSUMERS) {
        int4 c[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int t = t0 + u * PD_CONSUMERS;
            if (t < chunks) c[u] = __ldcg((const int4*)codes + t);
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int t = t0 + u * PD_CONSUMERS;
            if (t < chunks) *(int4*)((t < blocks ? xq : xqHigh - n / 2) + 16 * t) = c[u];
        }
    }
    // Rows wider than two blocks a thread have no norm (a normed row is at most 7,168 values): r = 1.
    for (int b = tid + 2 * PD_CONSUMERS; b < blocks; b += PD_CONSUMERS) ds[b] = __ldcg(dsGlobal + b);
    if (partials != nullptr) {
        float squares = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; k++) squares += p[k];
        if (tid < 32) {
            for (int i = 256 + lane; i < gridDim.x; i += 32) squares += __ldcg(partials + i);
        }
        squares = warp_sum(squares);
        if (tid == 0) red[0] = squares;
        consumer_sync();
    }
    const float r = partials != nullptr ? rsqrtf(red[0] / n + eps) : 1.0f;
    if (tid < blocks) ds[tid] = make_float2(r * d.x, r * d.y);
    if (tid + PD_CONSUMERS < blocks) ds[tid + PD_CONSUMERS] = make_float2(r * d2.x, r * d2.y);
    stash();
    consumer_sync();
}

// Two rows' dot products with the stage's activation (a unit of work: a RoPE pair of q/k/v, two rows of the attention
// output or down, a row of gate and the same row of up), both totals returned to every lane. Lane i takes blocks i, i + 32,
// … of the rows, one at a time: one activation block loaded from shared memory serves both rows. Two or four blocks of
// both rows loaded before any was used were slower (H200, 2026-11-28, Llama-3-8B Q4_0 a step: 1 block 2.210 ms, 2 blocks
// 2.407, 4 blocks 2.522): their registers made ptxas spill (16, 104 and 284 bytes), and 7 warps working their own units
// already hide the shared-memory latency. Each lane adds its blocks in order and the warp sums in a fixed tree: the same
// totals every run.
__device__ __forceinline__ float2 dot_two_rows(const unsigned char* codesA, const unsigned short* scalesA, const unsigned char* codesB,
                                               const unsigned short* scalesB, int k, const signed char* xq, const signed char* xqHigh,
                                               const float2* ds, float offset) {
    const int lane = threadIdx.x % 32, n = k / 1024;
    float a = 0.0f, b = 0.0f;
    for (int i = 0; i < n; i++) {
        const int block = i * 32 + lane;
        const int4 wa = *(const int4*)(codesA + block * 16), wb = *(const int4*)(codesB + block * 16);
        const float sa = half_to_float(scalesA[block]), sb = half_to_float(scalesB[block]);
        const int4 xa = *(const int4*)(xq + block * 16), xb = *(const int4*)(xqHigh + block * 16);
        const float2 d = ds[block];
        const BlockDot da = dot_nibbles(wa, xa, xb), db = dot_nibbles(wb, xa, xb);
        a += d.x * (sa * (float)(da.lo + da.hi)) - sa * offset * d.y;
        b += d.x * (sb * (float)(db.lo + db.hi)) - sb * offset * d.y;
    }
    return make_float2(warp_sum(a), warp_sum(b));
}

// A projection stage's tiles, as the consumers take them: the block's rows in units of two dot products (dot_two_rows),
// and warp w takes units w, w + 7, … of the stage in order. A warp waits for each tile's stage to fill, works its units in
// it and releases it (one arrival a warp on `empty`, also from a warp with no unit there, after its wait: an arrival never
// runs ahead of the stage's previous use), so the warps drift apart across tiles with no barrier of the consumers between
// them. store(tile, unit, total of the first row, total of the second) runs on lane 0; a tile's last unit of an odd row
// count has one row (its second total is the first row's again, not to be stored).
template <typename Store>
__device__ __forceinline__ void gemv_stage(const PdShape& s, int stage, PdRing& ring, const unsigned char* stages, unsigned full,
                                           unsigned empty, const signed char* xq, const signed char* xqHigh, const float2* ds, int offset,
                                           Store&& store) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool gated = stage == STAGE_GATE_UP;
    int before = 0;  // the stage's units in the tiles before this one
    for_each_tile(s, stage, [&](const PdTile& t) {
        const int slot = ring.slot, units = gated ? t.rows : (t.rows + 1) / 2;
        const unsigned char* tile = stages + slot * PD_STAGE_BYTES;
        const int rowBytes = t.k / 2, scaleBytes = t.k / 16, codeBytes = t.rows * rowBytes, matBytes = codeBytes + t.rows * scaleBytes;
        mbarrier_wait_watched(full + 8 * slot, ring.parity, "full", ring.index);
        for (int j = (warp - before % PD_CONSUMER_WARPS + PD_CONSUMER_WARPS) % PD_CONSUMER_WARPS; j < units; j += PD_CONSUMER_WARPS) {
            // gate/up: row j of gate and of up (the tile holds gate's rows, then the same rows of up); else rows 2j, 2j + 1.
            const int ra = gated ? j : 2 * j, rb = gated ? j : min(2 * j + 1, t.rows - 1);
            const int bOffset = gated ? matBytes : 0;
            const float2 v = dot_two_rows(tile + ra * rowBytes, (const unsigned short*)(tile + codeBytes + ra * scaleBytes),
                                          tile + bOffset + rb * rowBytes, (const unsigned short*)(tile + bOffset + codeBytes + rb * scaleBytes),
                                          t.k, xq, xqHigh, ds, (float)offset);
            if (lane == 0) store(t, j, v.x, v.y);
        }
        __syncwarp();
        if (lane == 0) mbarrier_arrive(empty + 8 * slot);
        before += units;
        ring.advance();
    });
}

// One attention item: the G query heads of KV head `kvHead` over positions [j0, j1), warps taking positions in turn, merged
// over the warps through `scratch` ([PD_MERGE_SLOTS][G][2 + headDim] floats); the block's result to partials/stats.
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
            q[h][d] = __ldcg(query + (kvHead * G + h) * HD + D * lane + d) * scaleLog2;
            o[h][d] = 0.0f;
        }
    }
    // The warp's positions j0 + warp + 7i: lane i looks up the slot of the i-th (the first 32 at once), and the rows of two
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
            const uint2 r = __ldcg((const uint2*)(cache + at));
            x[0] = half_to_float(r.x & 0xFFFF); x[1] = half_to_float(r.x >> 16); x[2] = half_to_float(r.y & 0xFFFF); x[3] = half_to_float(r.y >> 16);
        } else {
            const unsigned r = __ldcg((const unsigned*)(cache + at));
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
    // Tree merge: warps [half, 2·half) hand their state to warps [0, half) (from half = 4: warps 4–6 to 0–2, then 2–3 to 0–1,
    // then 1 to 0).
    constexpr int SLOT = G * (2 + HD);
    static_assert(PD_MERGE_SLOTS < PD_CONSUMER_WARPS && 2 * PD_MERGE_SLOTS >= PD_CONSUMER_WARPS, "PD_MERGE_SLOTS: the largest power of two below the warps");
    for (int half = PD_MERGE_SLOTS; half >= 1; half /= 2) {
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
        if (warp < half && warp + half < PD_CONSUMER_WARPS) {  // a partner handed its state over
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

// Query head h's partitions merged (out / L) by one warp and written as int8 blocks (attentionCodes, attentionDs: the
// output projection's input): lane p holds partition p's (max, sum), and each lane adds its headDim / 32 values over the
// partitions with their loads in flight.
template <int D>
__device__ __forceinline__ void merge_head(const PdShape& s, int h, const float* partials, const float* stats, signed char* attentionCodes,
                                           float2* attentionDs) {
    const int lane = threadIdx.x % 32;
    const float* st = stats + 2LL * h * s.partitions;
    const float m = lane < s.partitions ? __ldcg(st + 2 * lane) : -INFINITY;
    const float l = lane < s.partitions ? __ldcg(st + 2 * lane + 1) : 0.0f;
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
                for (int d = 0; d < D; d++) out[d] += wp * __ldcg(o + p * (32 * D) + 32 * d);
            }
        }
    }
#pragma unroll
    for (int d = 0; d < D; d++) quantize_block_warp(out[d] / total, h * D + d, s.qRows, attentionCodes, attentionDs);
}

// Attention's items (KV head, partition) a block in turn. The block that finishes a KV head's last partition (a ticket
// counted in `tickets`, zeroed by the host before the launch) merges that head group's partitions, a warp a query head,
// so the merge costs no grid barrier of its own.
template <int G, int D>
__device__ __forceinline__ void attention_stage(const PdShape& s, const unsigned short* keys, const unsigned short* values, const float* query,
                                                const int* table, int blockSize, int position, float scaleLog2, float* scratch,
                                                float* partials, float* stats, unsigned* tickets, signed char* attentionCodes,
                                                float2* attentionDs) {
    __shared__ int last;
    const int context = position + 1, length = (context + s.partitions - 1) / s.partitions;
    for (int item = blockIdx.x; item < s.kvHeads * s.partitions; item += gridDim.x) {
        const int kvHead = item / s.partitions, partition = item % s.partitions;
        const int j0 = min(context, partition * length), j1 = min(context, j0 + length);
        attention_item<G, D>(query, keys, values, table, blockSize, s.kvRows, kvHead, j0, j1, scaleLog2, scratch, partials, stats,
                             partition, s.partitions);
        consumer_sync();  // warp 0's partials are written
        if (threadIdx.x == 0) {
            // Release: this block's partials before its ticket; acquire: every other partition's before the merge reads them.
            unsigned ticket;
            asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(ticket) : "l"(tickets + kvHead) : "memory");
            last = ticket == (unsigned)s.partitions - 1;
        }
        consumer_sync();
        if (last) {
            for (int h = threadIdx.x / 32; h < G; h += PD_CONSUMER_WARPS) merge_head<D>(s, kvHead * G + h, partials, stats, attentionCodes, attentionDs);
        }
    }
}

extern "C" __global__ void __launch_bounds__(PD_THREADS, 1) decode_persistent_nibble(
    const PdLayer* layers, const unsigned long long* kvLayers, int layerCount, float* hidden, float* query, unsigned char* quantized, float* activated, float* partials,
    float* stats, unsigned* arrived, const float* ropeCos, const float* ropeSin, const int* positions, const int* slots,
    const int* blockTables, const int* sequenceOf, int maxBlocks, int blockSize, int dim, int ffn, int heads, int kvHeads,
    int headDim, int partitions, float eps, float scaleLog2, int offset, int tileQkv, int tileO, int tileGateUp, int tileDown,
    int stages, unsigned long long* trace) {
    __shared__ unsigned long long barriers[2 * PD_MAX_STAGES];  // full[stages], then empty[stages]
    __shared__ float red[PD_CONSUMER_WARPS];
    __shared__ float resid[PD_CONSUMERS];             // the block's rows of h, loaded before a residual stage's tiles
    __shared__ float rope[2][PD_MAX_PAIRS];           // cos, sin of the token's position
    __shared__ unsigned long long stageStart;         // tracing: when thread 0 passed the last grid barrier
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
        PdRing next(stages);
        for (int l = 0; l < layerCount; l++) {
            const PdLayer& L = layers[l];
            unsigned long long waited = 0;
            // The next free stage's slot (its copies complete on full + 8 · slot); the caller advances `next` past it.
            auto nextStage = [&]() {
                const int slot = next.slot;
                if (next.index >= stages) {  // from the second round on: free once the consumers released its last use
                    const unsigned long long before = tracing ? global_timer() : 0;
                    mbarrier_wait_watched(empty + 8 * slot, next.parity ^ 1, "empty", next.index);
                    if (tracing) waited += global_timer() - before;
                }
                return slot;
            };
            for (int stage = STAGE_QKV; stage <= STAGE_DOWN; stage++) {
                const int mats = stage == STAGE_GATE_UP ? 2 : 1;
                if (stage == STAGE_QKV || stage == STAGE_GATE_UP) {  // the norm weight ahead of the stage's tiles
                    const int slot = nextStage();
                    mbarrier_arrive_expect_tx(full + 8 * slot, dim * 4);
                    bulk_copy(ring + slot * PD_STAGE_BYTES, stage == STAGE_QKV ? L.attentionNorm : L.feedForwardNorm, dim * 4, full + 8 * slot);
                    next.advance();
                }
                for_each_tile(s, stage, [&](const PdTile& t) {
                    const int slot = nextStage();
                    const unsigned codeBytes = t.rows * (t.k / 2), scaleBytes = t.rows * (t.k / 16);
                    mbarrier_arrive_expect_tx(full + 8 * slot, mats * (codeBytes + scaleBytes));
                    unsigned to = ring + slot * PD_STAGE_BYTES;
                    for (int m = 0; m < mats; m++) {
                        bulk_copy(to, L.codes[t.matrix + m] + (long long)t.row * (t.k / 2), codeBytes, full + 8 * slot);
                        bulk_copy(to + codeBytes, L.scales[t.matrix + m] + (long long)t.row * (t.k / 32), scaleBytes, full + 8 * slot);
                        to += codeBytes + scaleBytes;
                    }
                    next.advance();
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
    // Activation rows quantized in global memory by the blocks that make them (prepare_quantized reads them): attention's
    // output (by its merge), the next norm's input h·w with each block's Σh² (by the residual stages' epilogue), and
    // SiLU·mul's output (by gate/up's).
    signed char* const attentionCodes = (signed char*)quantized;
    float2* const attentionDs = (float2*)(quantized + s.qRows);
    signed char* const normCodes = (signed char*)(quantized + s.qRows * 5 / 4);
    float2* const normDs = (float2*)(quantized + s.qRows * 5 / 4 + dim);
    signed char* const downCodes = (signed char*)(quantized + (s.qRows + dim) * 5 / 4);
    float2* const downDs = (float2*)(quantized + (s.qRows + dim) * 5 / 4 + ffn);
    float* const normPartials = (float*)(quantized + (s.qRows + dim + ffn) * 5 / 4);
    pdl_wait();  // hidden: the embedding written by the kernel before
    const int position = __ldg(positions), slot = __ldg(slots);
    const int* table = blockTables + (long long)__ldg(sequenceOf) * maxBlocks;
    const int group = heads / kvHeads, pairs = headDim / 2;
    if ((int)threadIdx.x < pairs) {  // cos and sin of the token's position, the same in every layer (visible after the first norm)
        rope[0][threadIdx.x] = __ldg(ropeCos + (long long)position * pairs + threadIdx.x);
        rope[1][threadIdx.x] = __ldg(ropeSin + (long long)position * pairs + threadIdx.x);
    }
#ifdef PD_TRACE_BLOCKS
    unsigned long long* const blockTrace =
        trace != nullptr ? trace + (PD_TRACE_PER_LAYER + 1) * layerCount + PD_TRACE_PER_BLOCK * blockIdx.x : nullptr;
#else
    unsigned long long* const blockTrace = nullptr;
#endif
    if (blockTrace != nullptr && threadIdx.x == 0) {
        for (int i = 0; i < 5; i++) blockTrace[i] = 0;
        unsigned sm;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        blockTrace[5] = sm;
        stageStart = global_timer();
    }
    unsigned barrier = 0;
    // The grid barrier after step stage `stage` (0–4: q/k/v, attention, output, gate/up, down).
    auto sync = [&](int stage) { grid_sync(arrived, ++barrier, blockTrace != nullptr ? blockTrace + stage : nullptr, stageStart); };
    PdRing next(stages);
    const unsigned char* const ringStages = pdShared;
    auto gemvStage = [&](int stage, auto&& store) {
        gemv_stage(s, stage, next, ringStages, full, empty, xq, xqHigh, ds, offset, store);
    };
    // Work-end stamps of a traced step wait for every warp (they drift apart over a stage's tiles); untraced steps do not.
    auto stampWorkDone = [&](unsigned long long* stamps, int i) {
        if (stamps != nullptr) {
            consumer_sync();
            trace_stamp(stamps, i);
        }
    };
    // The block's rows of h for a residual stage, into `resid` by the prologue (the epilogue then adds without a round
    // trip): loaded before the prologue's own loads, stored after them.
    auto prepareResidual = [&](int stage, auto&& prepare) {
        const PdSpan span = stage_span(s, stage);
        const bool mine = (int)threadIdx.x < span.r1 - span.r0;
        const float h = mine ? __ldcg(hidden + span.r0 + threadIdx.x) : 0.0f;
        prepare([&] {
            if (mine) resid[threadIdx.x] = h;
        });
        return span;
    };
    // RMSNorm(h)·w into the activation blocks, w from the ring stage the producer filled ahead of the stage's tiles.
    auto prepareNormed = [&]() {
        const int slot = next.slot;
        prepare_normed(hidden, (const float*)(ringStages + slot * PD_STAGE_BYTES), full + 8 * slot, next.parity, empty + 8 * slot,
                       next.index, dim, eps, xq, xqHigh, ds, red);
        next.advance();
    };
    // RMSNorm(h)·w from h·w's blocks and the blocks' Σh², which the residual stage before made (prepare_quantized).
    auto prepareFolded = [&]() { prepare_quantized(normCodes, normDs, dim, normPartials, eps, xq, xqHigh, ds, red, [] {}); };
    // h += the unit's rows of a projection (rows 2·unit and 2·unit + 1 of the tile; the second absent at an odd end); the
    // new h also into `resid`, for foldNorm.
    auto addResidual = [&](const PdTile& t, int unit, float v0, float v1, int r0) {
        const int row = t.row + 2 * unit;
        hidden[row] = resid[row - r0] = resid[row - r0] + v0;
        if (2 * unit + 1 < t.rows) hidden[row + 1] = resid[row + 1 - r0] = resid[row + 1 - r0] + v1;
    };
    // After a residual stage, the next norm's input from this block's rows (whole 32-row groups, a warp a group): h·w
    // quantized and Σh², with w the next norm's weight from the ring stage the producer put ahead of the next stage's
    // tiles. The norm's r is applied by the prologue that reads them, so the chain has no float row to read and quantize.
    auto foldNorm = [&](const PdSpan& span) {
        consumer_sync();  // every unit's new h is in resid
        const int slot = next.slot, warp = threadIdx.x / 32, lane = threadIdx.x % 32, groups = (span.r1 - span.r0) / 32;
        mbarrier_wait_watched(full + 8 * slot, next.parity, "norm weight", next.index);
        const float* w = (const float*)(ringStages + slot * PD_STAGE_BYTES);
        for (int g = warp; g < groups; g += PD_CONSUMER_WARPS) {
            const int row = span.r0 + 32 * g + lane;
            const float h = resid[32 * g + lane];
            quantize_block_warp(h * w[row], row / 32, dim, normCodes, normDs);
            const float squares = warp_sum(h * h);
            if (lane == 0) red[g] = squares;
        }
        __syncwarp();
        if (lane == 0) mbarrier_arrive(empty + 8 * slot);
        next.advance();
        consumer_sync();
        if (threadIdx.x == 0) {
            float total = 0.0f;
            for (int g = 0; g < groups; g++) total += red[g];
            normPartials[blockIdx.x] = total;
        }
    };
    // After gate/up, its output (SiLU·mul, also in `resid` by the block's rows) as int8 blocks for down. A block's rows are
    // not whole 32-row groups (108–109 of Llama-3-8B's 14,336): it quantizes the groups it holds whole, a warp a group,
    // and adds its share of each other group it touches to that group's ticket; the block whose share completes a group
    // quantizes it from `activated` (the ticket's acquire makes the other blocks' rows visible).
    auto foldSilu = [&](const PdSpan& span, unsigned* tickets) {
        consumer_sync();  // every unit's value is in resid and activated
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        for (int g = span.r0 / 32 + warp; g < (span.r1 + 31) / 32; g += PD_CONSUMER_WARPS) {
            const int first = 32 * g, row = first + lane;
            if (first >= span.r0 && first + 32 <= span.r1) {
                quantize_block_warp(resid[row - span.r0], g, ffn, downCodes, downDs);
                continue;
            }
            const unsigned share = min(span.r1, first + 32) - max(span.r0, first);
            unsigned before = 0;
            if (lane == 0) asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;" : "=r"(before) : "l"(tickets + g), "r"(share) : "memory");
            before = __shfl_sync(FULL_MASK, before, 0);
            __syncwarp();
            if (before + share == 32) quantize_block_warp(__ldcg(activated + row), g, ffn, downCodes, downDs);
        }
    };
    for (int l = 0; l < layerCount; l++) {
        unsigned short* const keys = (unsigned short*)kvLayers[2 * l];
        unsigned short* const values = (unsigned short*)kvLayers[2 * l + 1];
        unsigned long long* const stamps = trace != nullptr ? trace + PD_TRACE_PER_LAYER * l : nullptr;

        // q/k/v: RoPE on q and k, k and v into the cache (a unit is a RoPE pair).
        trace_stamp(stamps, 0);
        if (l == 0) {
            prepareNormed();  // from the embedded token
        } else {
            prepareFolded();
        }
        trace_stamp(stamps, 1);
        gemvStage(STAGE_QKV, [&](const PdTile& t, int unit, float v0, float v1) {
            const int row = t.row + 2 * unit;
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
        stampWorkDone(stamps, 2);
        sync(0);
        trace_stamp(stamps, 3);
        if (l == 0) pdl_launch_dependents();  // every block is resident now: the next kernel's blocks may take what is left

        trace_stamp(stamps, 4);
        unsigned* const tickets = arrived + 1 + l * kvHeads;
        switch (group * 8 + headDim / 32) {
        case 1 * 8 + 2: attention_stage<1, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        case 1 * 8 + 4: attention_stage<1, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        case 2 * 8 + 2: attention_stage<2, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        case 2 * 8 + 4: attention_stage<2, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        case 4 * 8 + 2: attention_stage<4, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        case 4 * 8 + 4: attention_stage<4, 4>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        default: attention_stage<8, 2>(s, keys, values, query, table, blockSize, position, scaleLog2, scratch, partials, stats, tickets, attentionCodes, attentionDs); break;
        }
        trace_stamp(stamps, 6);
        sync(1);
        trace_stamp(stamps, 7);

        // Attention output into the residual.
        trace_stamp(stamps, 8);
        PdSpan span = prepareResidual(STAGE_O, [&](auto&& stash) {
            prepare_quantized(attentionCodes, attentionDs, s.qRows, nullptr, eps, xq, xqHigh, ds, red, stash);
        });
        trace_stamp(stamps, 9);
        gemvStage(STAGE_O, [&](const PdTile& t, int unit, float v0, float v1) { addResidual(t, unit, v0, v1, span.r0); });
        foldNorm(span);
        stampWorkDone(stamps, 10);
        sync(2);
        trace_stamp(stamps, 11);

        // SiLU(gate)·up: a unit is a row of gate and the same row of up.
        trace_stamp(stamps, 12);
        prepareFolded();
        trace_stamp(stamps, 13);
        const PdSpan gateUp = stage_span(s, STAGE_GATE_UP);
        gemvStage(STAGE_GATE_UP, [&](const PdTile& t, int unit, float g, float u) {
            activated[t.row + unit] = resid[t.row + unit - gateUp.r0] = g / (1.0f + expf(-g)) * u;
        });
        foldSilu(gateUp, arrived + 1 + layerCount * kvHeads + l * (ffn / 32));
        stampWorkDone(stamps, 14);
        sync(3);
        trace_stamp(stamps, 15);

        // Down into the residual.
        trace_stamp(stamps, 16);
        span = prepareResidual(STAGE_DOWN, [&](auto&& stash) {
            prepare_quantized(downCodes, downDs, ffn, nullptr, eps, xq, xqHigh, ds, red, stash);
        });
        trace_stamp(stamps, 17);
        gemvStage(STAGE_DOWN, [&](const PdTile& t, int unit, float v0, float v1) { addResidual(t, unit, v0, v1, span.r0); });
        if (l + 1 < layerCount) foldNorm(span);
        stampWorkDone(stamps, 18);
        if (l + 1 < layerCount) {
            sync(4);
        } else if (blockTrace != nullptr) {  // the last layer's down stage ends the kernel, without a barrier
            consumer_sync();
            if (threadIdx.x == 0) blockTrace[4] += global_timer() - stageStart;
        }
        trace_stamp(stamps, 19);
    }
}
