// matmul.cu — output[rows × N] = input[rows × K] · weightᵀ for a weight [N × K] (K contiguous), every weight layout.
//
// Two paths, chosen by the host on the number of activation rows M (CudaLaunchGeometry.Gemv):
//  * GEMV (decode and small decode batches: M ≤ 32 for quantized weights, M ≤ 8 for float ones): memory-bound. Each warp
//    owns RW consecutive weight rows (4, or 2 for M ≤ 32); lane i reads 32-value blocks i, i + 32, … of every one of them
//    with 16-byte loads that bypass L1, so one activation block read from L1 serves RW weight rows; one warp reduction per
//    row and activation row. 4 warps per block: grid (ceil(N / (4·RW))), block 128. One launch can serve a group of up
//    to three weights that read the same activations (q/k/v, gate/up; IBackend.MatMulGroup). For one activation row the
//    _m1_split variants (CudaLaunchGeometry.Gemv) let the block's 4 warps share 4 rows (8 for nibbles), each warp taking
//    every fourth 512-byte stretch of them: four times the blocks (twice for nibbles), so that narrow matrices (attention
//    output, q/k/v, tensor-parallel shards) keep every multiprocessor streaming; grid (ceil(N / 4)), (ceil(N / 8)).
//    A split GEMV of more than a wave of blocks over weights with one f16 scale a block (Q8_0, Q5_0, Q4_0) runs as one
//    wave of _m1_split_strided instead: each block takes every grid-th group of the same rows, the next pass's weights in
//    flight while it works one (gemv_quant_strided).
//    At one token the split GEMV over q/k/v can also rotate q and k (adjacent-pair RoPE) and store k and v into an f16
//    KV cache in its epilogue (_m1_split_rope, CudaBackend.ProjectQueryKeyValue): no rope_store_kv launch. Over float
//    gate and up weights, _m1_split_gated gives each block the same 4 rows of both and stores SiLU(gate)·up in its
//    epilogue (CudaBackend.GatedMatMul): no silu_mul launch (the down GEMV after it reads floats: no half copy made).
//    The RMS norm between a block's projection back into the residual stream and the next block's projections can ride
//    in the one-row GEMVs around it (CudaBackend.MatMulAddRmsNorm, one activation row): the producer (_m1_residual:
//    attention output or down, nibble layouts; under tensor parallelism the all-reduce, collectives.cu) has blocks of
//    16 warps × 2 rows = 32 output rows, adds them to the residual in place, and writes for its 32 rows h·normWeight as
//    floats, as an int8 block where the output has an int8 copy, and Σh²; the consumer (q/k/v, gate/up: any one-row GEMV
//    given norm_sums) multiplies each sum by r = rsqrt(Σ Σh² / K + ε). Quantizing h·w instead of r·h·w gives the same
//    codes (r > 0 scales the block's max with it), so W·norm(h) = r · W·(h·w) with no norm launch. grid (N / 32),
//    block 512.
//  * GEMM (M above those, prefill / large batches): compute-bound, tiles in shared memory.
//    - quantized: int8 dot products (dp4a) of weight codes and int8 activations, per 32-value block scaled in float;
//      grid (ceil(N / 64), ceil(M / 64)), block 256, each thread 4 weight rows × 4 activation rows. Int8 layouts with
//      one scale per block take gemm_int8_tc (int8 tensor cores) instead.
//    - F16 / BF16: tensor cores, mma.sync.m16n8k16 with float accumulation over activations rounded to the weight's type
//      beforehand; 128 weight rows × 32 to 256 activation rows per tile, 4-stage cp.async pipeline, split K (gemm_half_tc).
//    - F32: plain float FMA tiles; grid (ceil(N / 64), ceil(M / 64)), block 256.
//
// Quantized weights (LAYOUT_INT8 / LAYOUT_NIBBLE, see common.cuh) carry float scales per 32-value block ([N][K/32], or
// [N][K/16] for Q6_K: scalesPerBlock = 2), optional float mins [N][K/32] (Q4_K, Q5_K), and an unsigned code offset for
// nibbles (8 for Q4_0). Per block: Σ w·x = xd·(ws·Σ code·xq) − (ws·offset + wmin)·(xd·Σxq), where the activation side
// {xd, xd·Σxq} comes from quantize_q8. K is a multiple of 32 (checked by the host).
#include "common.cuh"

#define GEMV_WARPS 4

// Weights are read once per step: 16-byte loads that bypass L1 (ld.global.nc.L1::no_allocate), so the activations that
// every weight row reuses stay there. Volatile, so the compiler keeps a GEMV's first weight loads where they are written:
// ahead of pdl_wait() (a non-volatile asm may be moved past it).
__device__ __forceinline__ int4 load_weight16(const void* p) {
    int4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.s32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// One GEMV launch serves a group of up to three weights of the same layout and K that read the same activations (q/k/v,
// gate/up): weight rows are numbered through the parts, and every part but the last holds a multiple of RW rows (checked
// by the host), so the RW rows of a warp lie in one part. A single weight passes n1 = n2 = 0.
struct GemvPart {
    const unsigned char* codes;
    const void* scales;  // f16 or float32 (half_scales, common.cuh)
    const float* mins;
    float* y;
    int n;
};

// The norm folded into the GEMVs (see the top of this file). A consumer reads sums (null: no norm to finish); a producer
// (RESIDUAL) writes values, codes, scaleSums and sumsOut for its 32 rows.
struct GemvNorm {
    const float* sums;  // consumer: Σh² per 32 values of its input, K / 32 of them
    float eps;
    const float* weight;  // producer: the norm weight [N]
    float* values;        // producer: h · weight [N]
    signed char* codes;   // producer: its int8 codes [N], or null (the output has no int8 copy)
    float2* scaleSums;    // producer: {d, d·Σq} per 32 values
    float* sumsOut;       // producer: Σh² per 32 rows
};

// A consumer's lane's share of the producer's sums (the warp adds them at the end: norm_scale).
__device__ __forceinline__ float norm_sum_part(const GemvNorm& norm, int k) {
    float s = 0.0f;
    if (norm.sums)
        for (int i = threadIdx.x % 32; i < k / 32; i += 32) s += norm.sums[i];
    return s;
}

// r = rsqrt(mean h² + ε) from the lanes' shares, or 1 without a norm (the sums then multiply by exactly 1).
__device__ __forceinline__ float norm_scale(const GemvNorm& norm, float part, int k) {
    return norm.sums ? rsqrtf(warp_sum(part) / k + norm.eps) : 1.0f;
}

// The part of the warp's first row (made relative to it): its index, or −1 when the warp has no rows.
__device__ __forceinline__ int gemv_part(int& row, GemvPart& p, const GemvPart& p0, const GemvPart& p1, const GemvPart& p2) {
    if (row < p0.n) { p = p0; return 0; }
    row -= p0.n;
    if (row < p1.n) { p = p1; return 1; }
    row -= p1.n;
    if (row < p2.n) { p = p2; return 2; }
    return -1;
}

// RoPE and the KV store in the epilogue of a one-row split GEMV over q/k/v (parts 0, 1, 2; CudaBackend.ProjectQueryKeyValue):
// adjacent-pair rotation (rows 2i, 2i + 1 of a head, which the block's RW rows hold whole), the token's position and cache
// slot, an f16 cache. What rope_store_kv_f16 does after the GEMV, in the same arithmetic. cos null: none.
struct GemvRope {
    const float* cos;  // [positions][headDim / 2]
    const float* sin;
    const int* position;  // the one token's
    const int* slot;
    unsigned short* keys;  // this layer's f16 cache, [slots][kvHeads · headDim]
    unsigned short* values;
    int headDim;
};

// Sums each row's per-lane accumulators and stores them. A warp that owns its rows sums over its lanes; under SPLIT the
// block's warps share RW rows (each took every fourth 512-byte stretch of them), and their warp sums are added in warp
// order through shared memory (deterministic). The nibble split (RW = 8) sums its 8 rows together (transpose_sum,
// common.cuh: the same sums as a warp_sum a row, 9 shuffles instead of 40; no measurable change by itself).
// How many split blocks share an SM follows from ptxas's register count, and 6 ran faster than 7 (H100, Llama-3-8B,
// 2026-11-28): with any other tail tried here (transpose_sum for it too, or no t < m test) the int8 split took 72
// registers instead of 80 and every int8 split GEMV ran ~15 % slower (gate/up 1.328 → 1.559 ms), while a nibble tail
// without the t < m test took 79 instead of 72 (gate/up 0.758 → 0.745 ms; down as a split GEMV 0.451 → 0.417). This tail
// keeps int8 at 80 registers and nibbles at 72; CudaBackend.GemvSplitBlocksPerMultiprocessor sets the number on purpose
// (off by default until GpuCheck's sweep has measured it).
template <int RW, int R, bool SPLIT>
__device__ __forceinline__ void gemv_store(float (&acc)[RW][R], const GemvPart& p, int row0, int m, float scale,
                                           const GemvRope& rope = GemvRope{}, int part = 0) {
    const int lane = threadIdx.x % 32;
    if constexpr (SPLIT) {
        __shared__ float partial[GEMV_WARPS][RW][R];
        if constexpr (RW == 8 && R == 1) {
            float rows[RW];
#pragma unroll
            for (int r = 0; r < RW; r++) rows[r] = acc[r][0];
            const float sum = transpose_sum(rows, lane);
            if (lane % (32 / RW) == 0) partial[threadIdx.x / 32][lane / (32 / RW)][0] = sum;
        } else {
#pragma unroll
            for (int r = 0; r < RW; r++)
#pragma unroll
                for (int t = 0; t < R; t++) {
                    const float v = warp_sum(acc[r][t]);
                    if (lane == 0) partial[threadIdx.x / 32][r][t] = v;
                }
        }
        __syncthreads();
        const int r = threadIdx.x / R, t = threadIdx.x % R;
        if (r < RW && t < m && row0 + r < p.n) {
            float v = partial[0][r][t];
#pragma unroll
            for (int w = 1; w < GEMV_WARPS; w++) v += partial[w][r][t];
            v *= scale;
            if (R == 1 && rope.cos) {
                // Threads 0 … RW − 1 of warp 0 hold whole rotation pairs (RW even, parts of whole heads: the host checks).
                const int row = row0 + r, pairs = rope.headDim / 2, i = (row % rope.headDim) / 2;
                const long long position = *rope.position, slot = *rope.slot;
                if (part < 2) {  // q, k: x0 = row 2i, x1 = row 2i + 1, rotated as rope_store_kv does
                    const float other = __shfl_xor_sync((1u << RW) - 1, v, 1);
                    const float c = rope.cos[position * pairs + i], sn = rope.sin[position * pairs + i];
                    v = (r & 1) == 0 ? rope_first(v, other, c, sn) : rope_second(other, v, c, sn);
                }
                if (part > 0) (part == 1 ? rope.keys : rope.values)[slot * p.n + row] = round_half(v, 0);
            }
            p.y[(long long)t * p.n + row0 + r] = v;
        }
    } else {
#pragma unroll
        for (int r = 0; r < RW; r++)
#pragma unroll
            for (int t = 0; t < R; t++) {
                if (t < m) {
                    const float v = warp_sum(acc[r][t]);
                    if (lane == 0 && row0 + r < p.n) p.y[(long long)t * p.n + row0 + r] = v * scale;
                }
            }
    }
}

// The producer's store (RESIDUAL): its 32 rows h = residual + Σ written back in place (the same float sum as
// rms_norm_rows' residual + delta), then one warp quantizes h · weight as one int8 block and writes Σh².
template <int RW, int WARPS>
__device__ __forceinline__ void gemv_store_residual(float (&acc)[RW][1], const GemvPart& p, int row0, const float (&residual)[RW],
                                                    float normWeight, const GemvNorm& norm) {
    static_assert(RW * WARPS == 32, "a producer block owns one 32-value block of the norm's output");
    __shared__ float h[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
    for (int r = 0; r < RW; r++) {
        const float v = warp_sum(acc[r][0]);
        if (lane == 0) {
            const float x = residual[r] + v;
            p.y[row0 + r] = x;
            h[warp * RW + r] = x;
        }
    }
    __syncthreads();
    if (warp == 0) {
        const float x = h[lane], v = x * normWeight;
        norm.values[blockIdx.x * 32 + lane] = v;
        if (norm.codes) quantize_block(v, norm.codes, norm.scaleSums, blockIdx.x);
        const float squares = warp_sum(x * x);
        if (lane == 0) norm.sumsOut[blockIdx.x] = squares;
    }
}

// The gated store (GATED): the block's RW rows are RW / 2 rows of gate (p0) and the same rows of up (p1). Each row summed
// as gemv_store sums a split row (transpose_sum is warp_sum's tree; the warps added in warp order), then SiLU(gate)·up in
// silu_mul's arithmetic (elementwise.cu): bit for bit the split GEMV and silu_mul after it.
template <int RW>
__device__ __forceinline__ void gemv_store_gated(float (&acc)[RW][1], const GemvPart& gate, int row0, float scale) {
    static_assert(RW == 8, "the gated split holds 4 rows of gate and 4 of up");
    __shared__ float partial[GEMV_WARPS][RW];
    const int lane = threadIdx.x % 32;
    float rows[RW];
#pragma unroll
    for (int r = 0; r < RW; r++) rows[r] = acc[r][0];
    const float sum = transpose_sum(rows, lane);
    if (lane % (32 / RW) == 0) partial[threadIdx.x / 32][lane / (32 / RW)] = sum;
    __syncthreads();
    const int r = threadIdx.x;
    if (r < RW / 2 && row0 + r < gate.n) {
        float g = partial[0][r], u = partial[0][r + RW / 2];
#pragma unroll
        for (int w = 1; w < GEMV_WARPS; w++) {
            g += partial[w][r];
            u += partial[w][r + RW / 2];
        }
        g *= scale;
        u *= scale;
        gate.y[row0 + r] = g / (1.0f + expf(-g)) * u;
    }
}

// One 16-byte unit of weight codes against its activations, as both quantized GEMVs add it: an int8 unit is half a block
// (16 codes against xa, scale s0), a nibble unit a whole block (low codes against xa scaled by s0, high against xb by s1).
// The caller adds xd · this − corr · xd·Σxq (the block's offset/min correction, once a block).
template <bool HALVES>
__device__ __forceinline__ float unit_dot(const int4 v, const int4 xa, const int4 xb, float s0, float s1) {
    if constexpr (HALVES) {
        return s0 * (float)dp4a(v.x, xa.x, dp4a(v.y, xa.y, dp4a(v.z, xa.z, dp4a(v.w, xa.w, 0))));
    } else {
        const BlockDot d = dot_nibbles(v, xa, xb);
        return s0 * (float)d.lo + s1 * (float)d.hi;
    }
}

// Quantized GEMV: warp w of the block owns RW consecutive weight rows; lane i reads 16-byte units i, i + 32, … of each
// (a unit is half a block of int8 codes, a whole block of nibbles), so every warp load is 512 contiguous bytes of a row.
// Lanes reading 32-byte int8 blocks as two strided 16-byte loads moved each 32-byte sector from L2 twice; the Q8_0 GEMV
// then reached 73 % of copy bandwidth on an H100 where BF16's contiguous loads reached 88 %. U units per row and lane are
// in flight before any arithmetic, and each is applied to the m ≤ R activation rows: one activation unit read from L1
// serves RW weight rows. A block's offset/min correction (−(ws·offset + wmin)·xd·Σxq) is applied by the lane holding its
// first half; Q6_K's two scales per block are exactly the two halves' scales.
// WARPS: warps a block (GEMV_WARPS but for the producer of a folded norm, RESIDUAL, whose block owns 32 rows).
template <int LAYOUT, int SCALES, bool MINS, int RW, int R, int U, bool SPLIT, int WARPS = GEMV_WARPS, bool RESIDUAL = false>
__device__ __forceinline__ void gemv_quant(const GemvPart p0, const GemvPart p1, const GemvPart p2, int offset,
                                           const signed char* xq, const float2* xds, int k, int m, const GemvNorm norm,
                                           const GemvRope rope = GemvRope{}) {
    constexpr bool HALVES = LAYOUT == LAYOUT_INT8;  // a unit is half a block
    constexpr bool HALF_SCALES = half_scales(SCALES, MINS);
    static_assert(!SPLIT || WARPS == GEMV_WARPS, "split blocks have GEMV_WARPS warps");
    const int first = SPLIT ? threadIdx.x : threadIdx.x % 32;  // this thread's first unit of each row
    constexpr int STRIDE = SPLIT ? 32 * GEMV_WARPS : 32;  // threads that share a row's units
    int row0 = (SPLIT ? blockIdx.x : blockIdx.x * WARPS + threadIdx.x / 32) * RW;
    GemvPart p;
    const int part = gemv_part(row0, p, p0, p1, p2);
    if (part < 0) return;  // SPLIT: the whole block returns together
    // The producer's norm weight is never written by a kernel: loaded before the wait, as the weights are.
    const float normWeight = RESIDUAL && threadIdx.x < 32 ? __ldg(norm.weight + blockIdx.x * 32 + threadIdx.x) : 0.0f;
    // What is read once the previous kernel has ended: the producer's residual rows, the consumer's norm sums.
    float residual[RW];
    float normPart = 0.0f;
    const auto afterWait = [&] {
        if constexpr (RESIDUAL) {
#pragma unroll
            for (int r = 0; r < RW; r++) residual[r] = p.y[row0 + r];
        } else {
            normPart = norm_sum_part(norm, k);
        }
    };
    const int blocks = k / 32;
    const int units = HALVES ? 2 * blocks : blocks;
    const long long rowBytes = LAYOUT == LAYOUT_INT8 ? k : k / 2;
    float acc[RW][R];
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < R; t++) acc[r][t] = 0.0f;
    for (int u0 = first; u0 < units; u0 += STRIDE * U) {
        int4 w[U][RW];  // a unit's 16 bytes of codes: a half block of int8, a block of nibbles (dot_nibbles masks them at use)
        float s0[U][RW], s1[U][RW], corr[U][RW];
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int u = u0 + STRIDE * j, b = HALVES ? u / 2 : u;
#pragma unroll
            for (int r = 0; r < RW; r++) {
                // Rows past the weight's end (ragged N) re-read its last row; their sums are never stored.
                const long long row = min(row0 + r, p.n - 1);
                if (u < units) {
                    w[j][r] = load_weight16(p.codes + row * rowBytes + 16 * u);
                    const long long sb = (row * blocks + b) * SCALES;
                    const float first = load_scale<HALF_SCALES>(p.scales, sb);
                    s0[j][r] = SCALES == 2 && HALVES && (u & 1) ? load_scale<HALF_SCALES>(p.scales, sb + 1) : first;
                    s1[j][r] = SCALES == 2 && !HALVES ? load_scale<HALF_SCALES>(p.scales, sb + 1) : s0[j][r];
                    corr[j][r] = HALVES && (u & 1) ? 0.0f : first * (float)offset + (MINS ? __ldg(p.mins + row * blocks + b) : 0.0f);
                }
            }
        }
        // Weights are never written by a kernel: the first iteration's loads go out before the previous kernel has
        // finished (pdl_wait, common.cuh); the activations are read only after it.
        if (u0 == first) {
            pdl_start();
            afterWait();
        }
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int u = u0 + STRIDE * j, b = HALVES ? u / 2 : u;
            if (u >= units) break;
#pragma unroll
            for (int t = 0; t < R; t++) {
                if (t < m) {
                    const int4* x = (const int4*)(xq + (long long)t * k) + (HALVES ? u : 2 * u);
                    const int4 xa = x[0];
                    const float2 ds = xds[(long long)t * blocks + b];
                    const int4 xb = HALVES ? xa : x[1];
#pragma unroll
                    for (int r = 0; r < RW; r++)
                        acc[r][t] += ds.x * unit_dot<HALVES>(w[j][r], xa, xb, s0[j][r], s1[j][r]) - corr[j][r] * ds.y;
                }
            }
        }
    }
    if (first >= units) {  // lanes that had no unit (k < 32 · 16)
        pdl_start();
        afterWait();
    }
    if constexpr (RESIDUAL) {
        gemv_store_residual<RW, WARPS>(acc, p, row0, residual, normWeight, norm);
    } else {
        gemv_store<RW, R, SPLIT>(acc, p, row0, m, norm_scale(norm, normPart, k), rope, part);
    }
}

// The one-row split GEMV over one wave of blocks (_m1_split_strided; CudaBackend.StridedSplitGemvs): block b takes the
// groups of RW rows b, b + gridDim.x, …, each in passes of 128 · U units (one for rows of up to 4,096 values), and the
// next pass's weights are in flight while it works the current one. Why: the plain split GEMV of a matrix larger than a
// wave runs as waves of short blocks, each a burst of loads, a wait, the sums and an exit before the block after it can
// load. Over one wave with the next pass in flight, Llama-3-8B's projections alone (H200, 2026-11-28, copy 4,208 GB/s):
// Q8_0 gate/up 1.013 → 0.941 ms (4,244 GB/s), down 0.603 → 0.523, attention output 0.204 → 0.161; Q4_0 gate/up 0.621 →
// 0.533; the steps +4.6 % (Q8_0) and +2.4 % (Q4_0). Each layout takes its split's shape (int8: 4 rows × 2 half-block units
// a thread and pass; nibbles: 8 rows × 1 block) and the same units, sums and order: bit for bit its output.
// Only the layouts with the file's f16 block scale and no min (Q8_0, Q5_0, Q4_0): over float scales the same kernel lost
// in every step timed (Q5_K and Q4_K, with mins, 154–156 registers: −29 % and −28 %; Q6_K, two scales a block: −6 %).
template <int LAYOUT, int RW, int U>
__device__ __forceinline__ void gemv_quant_strided(const GemvPart p0, const GemvPart p1, const GemvPart p2, int offset,
                                                   const signed char* xq, const float2* xds, int k, const GemvNorm norm) {
    constexpr bool HALVES = LAYOUT == LAYOUT_INT8;  // a unit is half a block of int8, a whole block of nibbles
    constexpr int STRIDE = 32 * GEMV_WARPS;
    constexpr int XU = HALVES ? 1 : 2;  // activation int4s a unit: 16 int8 values, or the block's 32
    const int blocks = k / 32, units = HALVES ? 2 * blocks : blocks, passes = (units + STRIDE * U - 1) / (STRIDE * U);
    const long long rowBytes = HALVES ? k : k / 2;
    const int groups = (p0.n + p1.n + p2.n + RW - 1) / RW;
    // A pass's weights as loaded: codes and the scales' f16 bits. Nothing is computed from them here: an instruction that
    // read one would wait for its load, and the next pass's loads would no longer overlap the current pass's work.
    struct Loaded {
        int4 w[U][RW];
        unsigned short s[U][RW];
    };
    // A block's place in its work: a group of rows and a pass over them.
    struct Item {
        int group, pass;
    };
    const int step = gridDim.x;
    const auto next = [&](Item i) { return ++i.pass == passes ? Item{i.group + step, 0} : i; };
    auto load = [&](Item item, Loaded& l) {
        if (item.group >= groups) return;
        int row0 = item.group * RW;
        GemvPart p;
        gemv_part(row0, p, p0, p1, p2);
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int u = threadIdx.x + STRIDE * (j + U * item.pass), b = HALVES ? u / 2 : u;
#pragma unroll
            for (int r = 0; r < RW; r++) {
                const long long row = min(row0 + r, p.n - 1);
                if (u < units) {
                    l.w[j][r] = load_weight16(p.codes + row * rowBytes + 16 * u);
                    l.s[j][r] = __ldg((const unsigned short*)p.scales + row * blocks + b);
                }
            }
        }
    };
    // Weights first, the block's first two passes, before the previous kernel has ended (pdl_wait).
    Item current{(int)blockIdx.x, 0}, following = next(current);
    Loaded a, b;
    load(current, a);
    load(following, b);
    pdl_start();
    const float normR = norm_scale(norm, norm_sum_part(norm, k), k);
    // Rows of one pass read the same activation units in every group: loaded once, here. Loaded in each pass instead, the
    // L1 round trip on every group's chain took Llama-3-8B Q8_0's gate/up alone from 0.937 to 1.042 ms (H200, 2026-11-28),
    // and a nibble version so lost to the plain split (Q4_0 gate/up 0.702 against 0.621 ms) where this one wins.
    int4 x0[U][XU];
    float2 ds0[U];
#pragma unroll
    for (int j = 0; j < U; j++) {
        const int u = threadIdx.x + STRIDE * j;
        if (passes == 1 && u < units) {
#pragma unroll
            for (int i = 0; i < XU; i++) x0[j][i] = ((const int4*)xq)[XU * u + i];
            ds0[j] = xds[HALVES ? u / 2 : u];
        }
    }
    float acc[RW][1];
#pragma unroll
    for (int r = 0; r < RW; r++) acc[r][0] = 0.0f;
    // A pass added into acc; after a group's last, its rows stored and acc cleared.
    auto work = [&](Item item, const Loaded& l) {
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int u = threadIdx.x + STRIDE * (j + U * item.pass);
            if (u >= units) break;
            const int4* x = (const int4*)xq + XU * u;
            const int4 xa = passes == 1 ? x0[j][0] : x[0];
            const int4 xb = HALVES ? xa : passes == 1 ? x0[j][XU - 1] : x[XU - 1];
            const float2 ds = passes == 1 ? ds0[j] : xds[HALVES ? u / 2 : u];
#pragma unroll
            for (int r = 0; r < RW; r++) {
                const float s = half_to_float(l.s[j][r]);
                // The block's offset correction, once a block: by its first half's unit (int8), by every unit (nibbles).
                const float corr = HALVES && (u & 1) ? 0.0f : s * (float)offset;
                acc[r][0] += ds.x * unit_dot<HALVES>(l.w[j][r], xa, xb, s, s) - corr * ds.y;
            }
        }
        if (item.pass == passes - 1) {
            int row0 = item.group * RW;
            GemvPart p;
            const int part = gemv_part(row0, p, p0, p1, p2);
            gemv_store<RW, 1, true>(acc, p, row0, 1, normR, GemvRope{}, part);
            __syncthreads();  // gemv_store's shared sums are read before the next group writes them
#pragma unroll
            for (int r = 0; r < RW; r++) acc[r][0] = 0.0f;
        }
    };
    // Two buffers in turn: the pass after next loads into the one just worked, while the other's pass is worked.
    while (current.group < groups) {
        work(current, a);
        current = next(following);
        load(current, a);
        if (following.group >= groups) break;
        work(following, b);
        following = next(current);
        load(following, b);
    }
}

// Float weights: the same shape, lane i reading 16-byte chunks i, i + 32, … (4 F32 or 8 F16/BF16 values) of each row.
// GATED (split, RW = 8): rows r < 4 are gate's (p0) and r ≥ 4 the same rows of up (p1), stored as SiLU(gate)·up into p0's
// output (gemv_store_gated); each lane takes the same chunks in the same order as the plain split's 4 rows × 2 chunks.
template <int LAYOUT, int RW, int R, int U, bool SPLIT, bool GATED = false>
__device__ __forceinline__ void gemv_float(const GemvPart p0, const GemvPart p1, const GemvPart p2, const float* x, int k, int m,
                                           const GemvNorm norm, const GemvRope rope = GemvRope{}) {
    static_assert(!GATED || (SPLIT && RW == 8 && R == 1), "the gated variant is the one-row split of 4 + 4 rows");
    const int first = SPLIT ? threadIdx.x : threadIdx.x % 32;
    constexpr int STRIDE = SPLIT ? 32 * GEMV_WARPS : 32;
    constexpr int ROWS = GATED ? RW / 2 : RW;  // rows of the output a block or warp covers
    int row0 = (SPLIT ? blockIdx.x : blockIdx.x * GEMV_WARPS + threadIdx.x / 32) * ROWS;
    GemvPart p;
    const int part = gemv_part(row0, p, p0, p1, p2);
    if (part < 0) return;
    const int per = LAYOUT == LAYOUT_F32 ? 4 : 8;
    const int chunks = k / per;
    const long long rowBytes = (long long)k * (LAYOUT == LAYOUT_F32 ? 4 : 2);
    float normPart = 0.0f;
    float acc[RW][R];
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < R; t++) acc[r][t] = 0.0f;
    for (int c0 = first; c0 < chunks; c0 += STRIDE * U) {
        int4 v[U][RW];
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < RW; r++) {
                const long long row = min(row0 + r % ROWS, p.n - 1);
                const unsigned char* codes = GATED && r >= ROWS ? p1.codes : p.codes;
                if (c0 + STRIDE * u < chunks) v[u][r] = load_weight16(codes + row * rowBytes + 16LL * (c0 + STRIDE * u));
            }
        if (c0 == first) {  // as in gemv_quant: weights first, activations (and a folded norm's sums) after the previous kernel
            pdl_start();
            normPart = norm_sum_part(norm, k);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int c = c0 + STRIDE * u;
            if (c >= chunks) break;
#pragma unroll
            for (int r = 0; r < RW; r++) {
                float f[8];
                if (LAYOUT == LAYOUT_F32) {
                    f[0] = __int_as_float(v[u][r].x); f[1] = __int_as_float(v[u][r].y);
                    f[2] = __int_as_float(v[u][r].z); f[3] = __int_as_float(v[u][r].w);
                } else {
                    const unsigned q[4] = {(unsigned)v[u][r].x, (unsigned)v[u][r].y, (unsigned)v[u][r].z, (unsigned)v[u][r].w};
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        f[2 * i] = LAYOUT == LAYOUT_F16 ? half_to_float((unsigned short)(q[i] & 0xFFFF)) : bf16_to_float((unsigned short)(q[i] & 0xFFFF));
                        f[2 * i + 1] = LAYOUT == LAYOUT_F16 ? half_to_float((unsigned short)(q[i] >> 16)) : bf16_to_float((unsigned short)(q[i] >> 16));
                    }
                }
#pragma unroll
                for (int t = 0; t < R; t++) {
                    if (t < m) {
                        const float4* xr = (const float4*)(x + (long long)t * k + (long long)c * per);
                        const float4 a = xr[0];
                        float s = f[0] * a.x + f[1] * a.y + f[2] * a.z + f[3] * a.w;
                        if (LAYOUT != LAYOUT_F32) {
                            const float4 b = xr[1];
                            s += f[4] * b.x + f[5] * b.y + f[6] * b.z + f[7] * b.w;
                        }
                        acc[r][t] += s;
                    }
                }
            }
        }
    }
    if (first >= chunks) {
        pdl_start();
        normPart = norm_sum_part(norm, k);
    }
    if constexpr (GATED) {
        gemv_store_gated<RW>(acc, p, row0, norm_scale(norm, normPart, k));
    } else {
        gemv_store<RW, R, SPLIT>(acc, p, row0, m, norm_scale(norm, normPart, k), rope, part);
    }
}

// Kernel variants by the number of activation rows m (host: CudaLaunchGeometry.Gemv): m = 1 (decode of one sequence),
// m ≤ 8, and m ≤ 32 (quantized only: a decode batch); grid (ceil(rows of all parts / (4·RW))), block 128.
// m = 1 shapes, from timing RW × U ∈ {4×2, 1×4, 2×4, 1×8, 2×2} side by side on an H200 (GpuCheck, 2026-11-26): int8 and
// F16/BF16 keep 4 rows × 2 blocks (the others were equal or up to 20% slower; int8 now counts in half blocks, so 4 units),
// nibbles take 2 rows × 4 blocks (4096 × 14336 Q4_0: 16.5 µs against 33.2 µs, 4096 × 4096: 9.5 against 14.1).
// _m1_split: rows shared by the block's 4 warps, 4 with 2 units per row and thread in flight (int8, float), 8 with one
// unit (nibbles: a first nibble split of 4 rows × 2 units, 127 registers, half its unit slots empty at K = 4096, was
// slower than the whole kernel in every Llama-3-8B shape; H100, 2026-11-27: q/k/v 2,069 → 1,650 GB/s, gate/up 2,595 →
// 1,820).
#define GEMV_PARTS_PARAMS                                                                                               \
    const unsigned char *codes0, const void *scales0, const float *mins0, float *y0, int n0,                           \
    const unsigned char *codes1, const void *scales1, const float *mins1, float *y1, int n1,                           \
    const unsigned char *codes2, const void *scales2, const float *mins2, float *y2, int n2
#define GEMV_PARTS                                                                                                      \
    GemvPart{codes0, scales0, mins0, y0, n0}, GemvPart{codes1, scales1, mins1, y1, n1}, GemvPart{codes2, scales2, mins2, y2, n2}

// Every quantized variant ends with the consumer's side of a folded norm (norm_sums null: none; GemvNorm above).
#define GEMV_QUANT_PARAMS GEMV_PARTS_PARAMS, int offset, const signed char *xq, const float2 *xds, int k, int m,         \
                          const float *norm_sums, float norm_eps
#define GEMV_CONSUMER GemvNorm{norm_sums, norm_eps, nullptr, nullptr, nullptr, nullptr, nullptr}
// The split variants' _rope entries end with RoPE and the KV store of q/k/v (GemvRope above).
#define GEMV_ROPE_PARAMS const float *rope_cos, const float *rope_sin, const int *rope_position, const int *rope_slot,      \
                         unsigned short *rope_keys, unsigned short *rope_values, int rope_head_dim
#define GEMV_ROPE GemvRope{rope_cos, rope_sin, rope_position, rope_slot, rope_keys, rope_values, rope_head_dim}

#define GEMV_QUANT(NAME, LAYOUT, SCALES, MINS)                                                                          \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1(GEMV_QUANT_PARAMS) {                                    \
        gemv_quant<LAYOUT, SCALES, MINS, LAYOUT == LAYOUT_NIBBLE ? 2 : 4, 1, 4, false>(GEMV_PARTS, offset, xq, xds, k, m,\
                                                                                      GEMV_CONSUMER);                  \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m8(GEMV_QUANT_PARAMS) {                                    \
        gemv_quant<LAYOUT, SCALES, MINS, 4, 8, LAYOUT == LAYOUT_NIBBLE ? 1 : 2, false>(GEMV_PARTS, offset, xq, xds, k, m,\
                                                                                      GEMV_CONSUMER);                  \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m32(GEMV_QUANT_PARAMS) {                                   \
        gemv_quant<LAYOUT, SCALES, MINS, 2, 32, LAYOUT == LAYOUT_NIBBLE ? 1 : 2, false>(GEMV_PARTS, offset, xq, xds, k, \
                                                                                       m, GEMV_CONSUMER);              \
    }

// The split variants: int8 layouts 4 rows × 2 half-block units a thread (96 registers; held to 64, 8 blocks an SM, it
// spilled and fell to 1.8 TB/s); nibbles 8 rows × 1 block, so that a 4096-wide row is one unit for each of the block's
// 128 threads and one activation unit serves 8 weight rows.
#define GEMV_QUANT_SPLIT(NAME, LAYOUT, SCALES, MINS)                                                                    \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1_split(GEMV_QUANT_PARAMS) {                              \
        gemv_quant<LAYOUT, SCALES, MINS, LAYOUT == LAYOUT_NIBBLE ? 8 : 4, 1, LAYOUT == LAYOUT_NIBBLE ? 1 : 2, true>(    \
            GEMV_PARTS, offset, xq, xds, k, m, GEMV_CONSUMER);                                                          \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1_split_rope(GEMV_QUANT_PARAMS, GEMV_ROPE_PARAMS) {       \
        gemv_quant<LAYOUT, SCALES, MINS, LAYOUT == LAYOUT_NIBBLE ? 8 : 4, 1, LAYOUT == LAYOUT_NIBBLE ? 1 : 2, true>(    \
            GEMV_PARTS, offset, xq, xds, k, m, GEMV_CONSUMER, GEMV_ROPE);                                               \
    }

// The strided split (layouts with one f16 scale a block and no min): int8 4 rows × 2 half-block units a thread and pass,
// nibbles 8 rows × 1 block, as their _m1_split.
#define GEMV_QUANT_STRIDED(NAME, LAYOUT)                                                                                \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1_split_strided(GEMV_QUANT_PARAMS) {                      \
        gemv_quant_strided<LAYOUT, LAYOUT == LAYOUT_NIBBLE ? 8 : 4, LAYOUT == LAYOUT_NIBBLE ? 1 : 2>(                   \
            GEMV_PARTS, offset, xq, xds, k, GEMV_CONSUMER);                                                             \
    }

// The producer of a folded norm (nibble layouts, the m = 1 kernel's 2 rows × 4 units a lane): one weight, N a multiple of
// 32, its output added to `residual` in place; 16 warps a block so that a block owns one 32-row int8 block of the norm.
#define GEMV_QUANT_RESIDUAL(NAME, LAYOUT, SCALES, MINS)                                                                 \
    extern "C" __global__ void __launch_bounds__(512) NAME##_m1_residual(                                               \
        const unsigned char *codes, const void *scales, const float *mins, float *residual, int n, int offset,           \
        const signed char *xq, const float2 *xds, int k, const float *norm_weight, float *norm_values,                  \
        signed char *norm_codes, float2 *norm_scale_sums, float *norm_sums) {                                            \
        const GemvPart none{nullptr, nullptr, nullptr, nullptr, 0};                                                     \
        gemv_quant<LAYOUT, SCALES, MINS, 2, 1, 4, false, 16, true>(GemvPart{codes, scales, mins, residual, n}, none, none,\
                                                                   offset, xq, xds, k, 1,                               \
                                                                   GemvNorm{nullptr, 0.0f, norm_weight, norm_values,    \
                                                                            norm_codes, norm_scale_sums, norm_sums});   \
    }

GEMV_QUANT(gemv_int8, LAYOUT_INT8, 1, false)         // Q8_0, Q5_0
GEMV_QUANT(gemv_int8_mins, LAYOUT_INT8, 1, true)     // Q5_K
GEMV_QUANT(gemv_int8_halves, LAYOUT_INT8, 2, false)  // Q6_K
GEMV_QUANT_SPLIT(gemv_int8, LAYOUT_INT8, 1, false)
GEMV_QUANT_SPLIT(gemv_int8_mins, LAYOUT_INT8, 1, true)
GEMV_QUANT_SPLIT(gemv_int8_halves, LAYOUT_INT8, 2, false)
GEMV_QUANT_STRIDED(gemv_int8, LAYOUT_INT8)
GEMV_QUANT(gemv_nibble, LAYOUT_NIBBLE, 1, false)     // Q4_0
GEMV_QUANT(gemv_nibble_mins, LAYOUT_NIBBLE, 1, true) // Q4_K
GEMV_QUANT_SPLIT(gemv_nibble, LAYOUT_NIBBLE, 1, false)
GEMV_QUANT_SPLIT(gemv_nibble_mins, LAYOUT_NIBBLE, 1, true)
GEMV_QUANT_STRIDED(gemv_nibble, LAYOUT_NIBBLE)
GEMV_QUANT_RESIDUAL(gemv_nibble, LAYOUT_NIBBLE, 1, false)
GEMV_QUANT_RESIDUAL(gemv_nibble_mins, LAYOUT_NIBBLE, 1, true)

#define GEMV_FLOAT_PARAMS GEMV_PARTS_PARAMS, const float *x, int k, int m, const float *norm_sums, float norm_eps
#define GEMV_FLOAT(NAME, LAYOUT)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1(GEMV_FLOAT_PARAMS) {                                    \
        gemv_float<LAYOUT, 4, 1, 2, false>(GEMV_PARTS, x, k, m, GEMV_CONSUMER);                                         \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1_split(GEMV_FLOAT_PARAMS) {                              \
        gemv_float<LAYOUT, 4, 1, 2, true>(GEMV_PARTS, x, k, m, GEMV_CONSUMER);                                          \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1_split_rope(GEMV_FLOAT_PARAMS, GEMV_ROPE_PARAMS) {       \
        gemv_float<LAYOUT, 4, 1, 2, true>(GEMV_PARTS, x, k, m, GEMV_CONSUMER, GEMV_ROPE);                               \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m8(GEMV_FLOAT_PARAMS) {                                    \
        gemv_float<LAYOUT, 4, 8, 1, false>(GEMV_PARTS, x, k, m, GEMV_CONSUMER);                                         \
    }                                                                                                                   \
    /* Parts 0 and 1: gate (its output: SiLU(gate)·up) and up. */                                                     \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1_split_gated(GEMV_FLOAT_PARAMS) {                        \
        gemv_float<LAYOUT, 8, 1, 1, true, true>(GEMV_PARTS, x, k, m, GEMV_CONSUMER);                                    \
    }

GEMV_FLOAT(gemv_f32, LAYOUT_F32)
GEMV_FLOAT(gemv_f16, LAYOUT_F16)
GEMV_FLOAT(gemv_bf16, LAYOUT_BF16)

// ---------------------------------------------------------------------------------------------------------------------
// Quantized GEMM with dp4a. Shared tiles hold one 32-value block of 64 weight rows and 64 activation rows as int8 (nibbles
// widened to bytes, unsigned; the offset is undone through xd·Σxq). Rows padded to 12 ints so that 16 threads reading
// 16 bytes of consecutive activation rows hit distinct banks. Thread (tx, ty) owns weight rows ty + 16i and activation
// rows tx + 16j.
#define QT 64
#define QPAD 12

template <int LAYOUT, int SCALES, bool MINS>
__device__ __forceinline__ void gemm_quant(const unsigned char* codes, const void* scales, const float* mins, int offset,
                                           const signed char* xq, const float2* xds, float* y, int n, int k, int m) {
    pdl_start();
    __shared__ __attribute__((aligned(16))) int sw[QT][QPAD];  // read as int4
    __shared__ __attribute__((aligned(16))) int sx[QT][QPAD];
    __shared__ float sScale[QT][2];
    __shared__ float sCorr[QT];
    __shared__ float2 sXds[QT];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int n0 = blockIdx.x * QT, m0 = blockIdx.y * QT;
    const int blocks = k / 32;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int b = 0; b < blocks; b++) {
        // Weight tile: 64 rows × 32 codes. Thread tid loads row tid / 4, ints 2·(tid % 4) and 2·(tid % 4) + 1.
        {
            const int r = tid / 4, q = tid % 4;
            const int row = n0 + r;
            int w0 = 0, w1 = 0;
            if (row < n) {
                if (LAYOUT == LAYOUT_INT8) {
                    const int2 v = ((const int2*)(codes + (long long)row * k + b * 32))[q];
                    w0 = v.x; w1 = v.y;
                } else {
                    // 16 bytes per block: ints q of the low-nibble half (values 4q…4q+3 → ints 0–3) and the high half.
                    const int v = ((const int*)(codes + (long long)row * (k / 2) + b * 16))[q];
                    w0 = v & 0x0F0F0F0F;
                    w1 = (v >> 4) & 0x0F0F0F0F;
                }
            }
            if (LAYOUT == LAYOUT_INT8) {
                sw[r][2 * q] = w0;
                sw[r][2 * q + 1] = w1;
            } else {
                sw[r][q] = w0;
                sw[r][4 + q] = w1;
            }
            if (q == 0) {
                const long long sb = ((long long)row * blocks + b) * SCALES;
                constexpr bool HALF_SCALES = half_scales(SCALES, MINS);
                const float s0 = row < n ? load_scale<HALF_SCALES>(scales, sb) : 0.0f;
                sScale[r][0] = s0;
                sScale[r][1] = SCALES == 2 && row < n ? load_scale<HALF_SCALES>(scales, sb + 1) : s0;
                sCorr[r] = row < n ? s0 * (float)offset + (MINS ? mins[(long long)row * blocks + b] : 0.0f) : 0.0f;
            }
        }
        // Activation tile: 64 rows × 32 codes, same split.
        {
            const int r = tid / 4, q = tid % 4;
            const int row = m0 + r;
            int2 v = make_int2(0, 0);
            if (row < m) v = ((const int2*)(xq + (long long)row * k + b * 32))[q];
            sx[r][2 * q] = v.x;
            sx[r][2 * q + 1] = v.y;
            if (q == 0) sXds[r] = row < m ? xds[(long long)row * blocks + b] : make_float2(0.0f, 0.0f);
        }
        __syncthreads();
        int wv[4][8];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int4 a = *(const int4*)&sw[ty + 16 * i][0];
            const int4 c = *(const int4*)&sw[ty + 16 * i][4];
            wv[i][0] = a.x; wv[i][1] = a.y; wv[i][2] = a.z; wv[i][3] = a.w;
            wv[i][4] = c.x; wv[i][5] = c.y; wv[i][6] = c.z; wv[i][7] = c.w;
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int xr = tx + 16 * j;
            const int4 xa = *(const int4*)&sx[xr][0];
            const int4 xb = *(const int4*)&sx[xr][4];
            const float2 ds = sXds[xr];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int wr = ty + 16 * i;
                const BlockDot d = dot_block(wv[i], xa, xb);
                acc[i][j] += ds.x * (sScale[wr][0] * (float)d.lo + sScale[wr][1] * (float)d.hi) - sCorr[wr] * ds.y;
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int row = m0 + tx + 16 * j;
        if (row >= m) continue;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int col = n0 + ty + 16 * i;
            if (col < n) y[(long long)row * n + col] = acc[i][j];
        }
    }
}

#define GEMM_QUANT(NAME, LAYOUT, SCALES, MINS)                                                                          \
    extern "C" __global__ void __launch_bounds__(256) NAME(const unsigned char* codes, const void* scales,             \
        const float* mins, int offset, const signed char* xq, const float2* xds, float* y, int n, int k, int m) {       \
        gemm_quant<LAYOUT, SCALES, MINS>(codes, scales, mins, offset, xq, xds, y, n, k, m);                             \
    }

GEMM_QUANT(gemm_int8, LAYOUT_INT8, 1, false)
GEMM_QUANT(gemm_int8_mins, LAYOUT_INT8, 1, true)
GEMM_QUANT(gemm_int8_halves, LAYOUT_INT8, 2, false)
GEMM_QUANT(gemm_nibble, LAYOUT_NIBBLE, 1, false)
GEMM_QUANT(gemm_nibble_mins, LAYOUT_NIBBLE, 1, true)

// ---------------------------------------------------------------------------------------------------------------------
// Quantized GEMM on int8 tensor cores, for the layouts with one scale per 32-value block (Q8_0, Q5_0, Q5_K; nibbles:
// Q4_0, Q4_K): the 32-value quantization block is exactly one mma.sync.m16n8k32.s8 step, so each block's int32 products
// come out of the tensor core whole and are scaled in float once per block:
// Σ w·x += (ws·xd)·Σ(code·xq) − (ws·offset + wmin)·(xd·Σxq).
// Nibble weights stay packed in shared memory (16 bytes a block): the A fragment of m16n8k32 gives a thread values
// 4t…4t+3 and 16+4t…16+4t+3 of its rows, which are exactly the low and the high nibbles of the block's bytes 4t…4t+3, so
// one 32-bit load and two masks make both registers; unsigned codes 0–15 are valid s8 operands, and the offset is undone by
// the correction term as in the GEMV.
// Tile: 64 weight rows × 64 activation rows, K in stages of 64 (two blocks), 3 stages in flight through cp.async (16-byte
// copies, zero-filled past the matrix). 4 warps: warp w owns weight rows 16w…16w+15 (the A operand, one m16 fragment) and
// all 64 activation rows (the B operand, eight n8 fragments). Shared rows are 80 bytes (64 + 16 of padding), so the
// 32-bit fragment loads of a warp (8 rows × 4 words) hit 32 distinct banks. Needs K % 64 == 0 (the host checks).
// Split K: a decode batch of ≤ 64 rows gives one row of tiles (64 blocks for a 4096-row weight), and each block walks
// all of K one 12 KB stage at a time, so the step was latency-bound (the same 26.6 ms for 32 and 64 rows of Llama-3-8B
// Q8_0 on an H100). Block z of gridDim.z then takes stages [z·S/Z, (z+1)·S/Z) and writes its partial sums to
// partial[z][M][N]; sum_splits adds them in split order (deterministic; CudaLaunchGeometry.TensorCoreSplits), or, for a
// product into the residual, rms_norm_rows (elementwise.cu) in the same order.
// grid (ceil(N / 64), ceil(M / 64), splits), block 128.
#define MT 64        // weight rows and activation rows per tile
#define MK 64        // K per stage: two quantization blocks
#define MSTAGES 3
#define MROW 80      // bytes per shared row

__device__ __forceinline__ void mma_s8_16832(int (&d)[4], const int (&a)[4], int b0, int b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <bool MINS, bool NIBBLES = false>
__device__ __forceinline__ void gemm_int8_tc(const signed char* codes, const void* scales, const float* mins, int offset,
                                             const signed char* xq, const float2* xds, float* y, float* partial, int n,
                                             int k, int m) {
    __shared__ __attribute__((aligned(16))) signed char sw[MSTAGES][MT][MROW];
    __shared__ __attribute__((aligned(16))) signed char sx[MSTAGES][MT][MROW];
    // The two blocks' scales of a stage: f16 without mins (Q8_0, Q5_0), float32 with them (Q5_K; half_scales).
    __shared__ __attribute__((aligned(16))) float sScale[MSTAGES][MT][2];
    __shared__ __attribute__((aligned(16))) unsigned short sScaleHalf[MSTAGES][MT][2];
    __shared__ __attribute__((aligned(16))) float sMin[MSTAGES][MT][2];
    __shared__ __attribute__((aligned(16))) float2 sXds[MSTAGES][MT][2];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
    const int n0 = blockIdx.x * MT, m0 = blockIdx.y * MT;
    const int blocks = k / 32;
    const int first = (int)((long long)(k / MK) * blockIdx.z / gridDim.z);
    const int stages = (int)((long long)(k / MK) * (blockIdx.z + 1) / gridDim.z) - first;

    // Stage s (of this block's, counted from `first`) of K: thread tid copies 16-byte chunks tid and tid + 128 of each 64 × 64-byte tile (row c / 4, chunk c % 4),
    // and threads 0–63 the scales (and mins) of weight row tid, 64–127 the scale-sums of activation row tid − 64.
    // Nibbles: half the bytes, 2 chunks a row (rows of k / 2 bytes).
    constexpr int CHUNKS = NIBBLES ? 2 : 4;
    constexpr int STAGE_ROW_BYTES = 16 * CHUNKS;  // a weight row's bytes in one stage of MK values
    const long long rowBytes = NIBBLES ? k / 2 : k;
    auto loadWeights = [&](int s, int buffer) {
        for (int c = tid; c < MT * CHUNKS; c += 128) {
            const int r = c / CHUNKS, q = c % CHUNKS, row = n0 + r;
            cp_async16(&sw[buffer][r][16 * q], codes + (long long)min(row, n - 1) * rowBytes + (first + s) * STAGE_ROW_BYTES + 16 * q, row < n);
        }
        if (tid < MT) {
            const int row = n0 + tid;
            const long long at = (long long)min(row, n - 1) * blocks + 2 * (first + s);
            if (MINS) cp_async8(&sScale[buffer][tid][0], (const float*)scales + at, row < n);
            else cp_async4(&sScaleHalf[buffer][tid][0], (const unsigned short*)scales + at, row < n);
            if (MINS) cp_async8(&sMin[buffer][tid][0], mins + at, row < n);
        }
    };
    auto loadActivations = [&](int s, int buffer) {
        for (int c = tid; c < MT * 4; c += 128) {
            const int r = c / 4, q = c % 4, row = m0 + r;
            cp_async16(&sx[buffer][r][16 * q], xq + (long long)min(row, m - 1) * k + (first + s) * MK + 16 * q, row < m);
        }
        if (tid >= 64) {
            const int r = tid - 64, row = m0 + r;
            cp_async16(&sXds[buffer][r][0], xds + (long long)min(row, m - 1) * blocks + 2 * (first + s), row < m);
        }
    };

    // Weights first (no kernel writes them), then wait for the previous kernel (pdl_wait, common.cuh) before activations.
    for (int s = 0; s < MSTAGES - 1; s++)
        if (s < stages) loadWeights(s, s);
    pdl_start();
    for (int s = 0; s < MSTAGES - 1; s++) {
        if (s < stages) loadActivations(s, s);
        cp_async_commit();
    }

    float acc[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[j][e] = 0.0f;
    const int wr = 16 * warp + g;  // the warp's fragment rows wr and wr + 8 within the tile

    for (int s = 0; s < stages; s++) {
        cp_async_wait<MSTAGES - 2>();
        __syncthreads();  // stage s is in; every warp is done with the buffer the next load overwrites
        const int next = s + MSTAGES - 1;
        if (next < stages) {
            loadWeights(next, next % MSTAGES);
            loadActivations(next, next % MSTAGES);
        }
        cp_async_commit();
        const int buffer = s % MSTAGES;
#pragma unroll
        for (int qb = 0; qb < 2; qb++) {
            int a[4];
            if constexpr (NIBBLES) {
                const int w0 = *(const int*)&sw[buffer][wr][16 * qb + 4 * t4];
                const int w1 = *(const int*)&sw[buffer][wr + 8][16 * qb + 4 * t4];
                a[0] = w0 & 0x0F0F0F0F;
                a[1] = w1 & 0x0F0F0F0F;
                a[2] = (w0 >> 4) & 0x0F0F0F0F;
                a[3] = (w1 >> 4) & 0x0F0F0F0F;
            } else {
                a[0] = *(const int*)&sw[buffer][wr][32 * qb + 4 * t4];
                a[1] = *(const int*)&sw[buffer][wr + 8][32 * qb + 4 * t4];
                a[2] = *(const int*)&sw[buffer][wr][32 * qb + 16 + 4 * t4];
                a[3] = *(const int*)&sw[buffer][wr + 8][32 * qb + 16 + 4 * t4];
            }
            const float ws0 = MINS ? sScale[buffer][wr][qb] : half_to_float(sScaleHalf[buffer][wr][qb]);
            const float ws1 = MINS ? sScale[buffer][wr + 8][qb] : half_to_float(sScaleHalf[buffer][wr + 8][qb]);
            const float c0 = ws0 * (float)offset + (MINS ? sMin[buffer][wr][qb] : 0.0f);
            const float c1 = ws1 * (float)offset + (MINS ? sMin[buffer][wr + 8][qb] : 0.0f);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const int xr = 8 * j + g;
                const int b0 = *(const int*)&sx[buffer][xr][32 * qb + 4 * t4];
                const int b1 = *(const int*)&sx[buffer][xr][32 * qb + 16 + 4 * t4];
                int d[4] = {0, 0, 0, 0};
                mma_s8_16832(d, a, b0, b1);
                // d[e]: weight row wr (+8 for e ≥ 2), activation row 8j + 2·t4 + (e & 1).
                const float2 x0 = sXds[buffer][8 * j + 2 * t4][qb], x1 = sXds[buffer][8 * j + 2 * t4 + 1][qb];
                acc[j][0] += ws0 * x0.x * (float)d[0] - c0 * x0.y;
                acc[j][1] += ws0 * x1.x * (float)d[1] - c0 * x1.y;
                acc[j][2] += ws1 * x0.x * (float)d[2] - c1 * x0.y;
                acc[j][3] += ws1 * x1.x * (float)d[3] - c1 * x1.y;
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int col = n0 + wr + (e >= 2 ? 8 : 0);
            const int row = m0 + 8 * j + 2 * t4 + (e & 1);
            if (col < n && row < m) {
                if (gridDim.z == 1) y[(long long)row * n + col] = acc[j][e];
                else partial[((long long)blockIdx.z * m + row) * n + col] = acc[j][e];
            }
        }
}

extern "C" __global__ void __launch_bounds__(128) gemm_int8_tc(const unsigned char* codes, const void* scales, const float* mins,
    int offset, const signed char* xq, const float2* xds, float* y, float* partial, int n, int k, int m) {
    gemm_int8_tc<false>((const signed char*)codes, scales, mins, offset, xq, xds, y, partial, n, k, m);
}
extern "C" __global__ void __launch_bounds__(128) gemm_int8_mins_tc(const unsigned char* codes, const void* scales,
    const float* mins, int offset, const signed char* xq, const float2* xds, float* y, float* partial, int n, int k, int m) {
    gemm_int8_tc<true>((const signed char*)codes, scales, mins, offset, xq, xds, y, partial, n, k, m);
}
extern "C" __global__ void __launch_bounds__(128) gemm_nibble_tc(const unsigned char* codes, const void* scales, const float* mins,
    int offset, const signed char* xq, const float2* xds, float* y, float* partial, int n, int k, int m) {
    gemm_int8_tc<false, true>((const signed char*)codes, scales, mins, offset, xq, xds, y, partial, n, k, m);
}
extern "C" __global__ void __launch_bounds__(128) gemm_nibble_mins_tc(const unsigned char* codes, const void* scales,
    const float* mins, int offset, const signed char* xq, const float2* xds, float* y, float* partial, int n, int k, int m) {
    gemm_int8_tc<true, true>((const signed char*)codes, scales, mins, offset, xq, xds, y, partial, n, k, m);
}

// y_p[i] = Σ over z of partial_p[z][i], z in order (deterministic), for up to three outputs in one launch: a split-K
// GEMM's product, or the parts of a group (q/k/v: partials [parts][splits][M][N_p], part p after the parts before it;
// count_p = M·N_p, 0 for a missing part). Four outputs a thread, as float4 loads and stores where every count is a
// multiple of 4 (so every part starts 16-byte aligned). One launch for q, k and v instead of three: each summed 256 × 1024
// or 256 × 4096 outputs in 5–7 µs, mostly launch and ramp (8B batch 256: 96 launches, 0.62 ms a step, H100 2026-11-28).
// grid (ceil(Σ ceil(count_p / 4) / 256)), block 256.
extern "C" __global__ void sum_splits(const float* partial, int splits, float* y0, float* y1, float* y2, long long count0,
                                      long long count1, long long count2) {
    pdl_start();
    long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // this thread's quad of outputs
    const long long quads0 = (count0 + 3) / 4, quads1 = (count1 + 3) / 4, quads2 = (count2 + 3) / 4;
    const float* part = partial;
    float* y = y0;
    long long count = count0;
    if (q >= quads0) {
        q -= quads0, part += splits * count0, y = y1, count = count1;
        if (q >= quads1) {
            q -= quads1, part += splits * count1, y = y2, count = count2;
            if (q >= quads2) return;
        }
    }
    const long long i = 4 * q;
    if (((count0 | count1 | count2) & 3) == 0) {
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int z = 0; z < splits; z++) {
            const float4 p = *(const float4*)(part + z * count + i);
            v.x += p.x, v.y += p.y, v.z += p.z, v.w += p.w;
        }
        *(float4*)(y + i) = v;
    } else {
        for (long long e = i; e < i + 4 && e < count; e++) {
            float v = 0.0f;
            for (int z = 0; z < splits; z++) v += part[z * count + e];
            y[e] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// F16 / BF16 GEMM on tensor cores: y[m][n] = Σk W[n][k]·X[m][k], with X already rounded to the weight's type (round_to_half,
// elementwise.cu), so both operands travel global → shared by cp.async alone.
// W is mma's A operand (row-major 16 × 16: weight rows are the M of the mma), X its B operand ("col" 16 × 8: activation
// row m holds k contiguously), so both tiles are read from shared memory as they lie, with ldmatrix.
// Tile: 128 weight rows × BM activation rows, K in stages of 32, 4 stages in flight (cp.async.cg, 16-byte copies,
// zero-filled past the matrix). 8 warps in a grid of (8 / (BM / WM)) along the weight rows × (BM / WM) along the
// activation rows; a warp owns WN = 128 / that many weight rows and WM activation rows: (WN / 16) × (WM / 8) mma tiles of
// 16 × 8, and per 16 of K loads WN / 16 A and WM / 16 B ldmatrix.x4. Variants by the batch (host:
// CudaLaunchGeometry.HalfGemmRows): BM = 32, 64 (decode batches: a 128-row tile would spend 4× or 2× the tensor work on
// zero rows, which made a batch of 32 compute-bound), 128 (warps of 64 × 32), 256 (prefill: warps of 64 × 64, half the
// shared-memory reads per mma). On an H100 (2026-11-27) the 256-row tile made the matmuls of an 8B prefill of 2048 tokens
// 109.5 ms (280.8 TFLOP/s) against 127.8 ms with 128 rows, though a lone 2048 × 4096 × 4096 product timed the same.
// Shared rows are 40 halves (80 bytes: 64 + 16 of padding), so the 8 row addresses of each ldmatrix phase fall on 8
// distinct 16-byte bank groups. Dynamic shared memory: 4 stages × (128 + BM) rows × 80 bytes (80 KB at BM = 128: two
// blocks per SM; 120 KB at 256: one).
// Split K: where the tiles alone leave multiprocessors idle (a 4096-row weight at 256 rows is 64 tiles on 132 SMs),
// block z takes stages [z·S/Z, (z+1)·S/Z) and writes partial[z][M][N]; sum_splits adds them in split order
// (CudaLaunchGeometry.HalfGemmSplits), or rms_norm_rows for a product into the residual.
// grid (ceil(N / 128), ceil(M / BM), splits), block 256.
#define HG_N 128
#define HG_K 32
#define HG_STAGES 4
#define HG_ROW 40  // halves per shared row

template <bool BF16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 × 8 matrices of 16-bit values from shared memory: lane l gives the row address of matrix l / 8, row l % 8, and
// receives of matrix i the two values of row l / 4, columns 2·(l % 4) and +1, in r[i].
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
}

template <bool BF16, int BM, int WM>
__device__ __forceinline__ void gemm_half_tc(const unsigned short* w, const unsigned short* x, float* y, float* partial, int n,
                                             int k, int m) {
    constexpr int WARPS_M = BM / WM, WARPS_N = 8 / WARPS_M, WN = HG_N / WARPS_N;
    constexpr int I = WN / 16, J = WM / 8;  // mma tiles of a warp along the weight and activation rows
    extern __shared__ __attribute__((aligned(16))) unsigned short halfTiles[];
    unsigned short* sw = halfTiles;                               // [HG_STAGES][HG_N][HG_ROW]
    unsigned short* sx = halfTiles + HG_STAGES * HG_N * HG_ROW;  // [HG_STAGES][BM][HG_ROW]
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
    const int n0 = blockIdx.x * HG_N, m0 = blockIdx.y * BM;
    const int wn = (warp % WARPS_N) * WN, wm = (warp / WARPS_N) * WM;
    const int first = (int)((long long)(k / HG_K) * blockIdx.z / gridDim.z);
    const int stages = (int)((long long)(k / HG_K) * (blockIdx.z + 1) / gridDim.z) - first;

    // Stage s (of this block's, counted from `first`): rows × 64 bytes of each operand in 16-byte chunks; thread tid copies
    // chunks tid, tid + 256, … (row c / 4, chunk c % 4).
    auto loadWeights = [&](int s, int buffer) {
#pragma unroll
        for (int p = 0; p < HG_N * 4 / 256; p++) {
            const int c = tid + 256 * p, r = c / 4, q = c % 4, row = n0 + r;
            cp_async16(sw + (buffer * HG_N + r) * HG_ROW + 8 * q, w + (long long)min(row, n - 1) * k + (first + s) * HG_K + 8 * q, row < n);
        }
    };
    auto loadActivations = [&](int s, int buffer) {
#pragma unroll
        for (int p = 0; p < (BM * 4 + 255) / 256; p++) {
            const int c = tid + 256 * p, r = c / 4, q = c % 4, row = m0 + r;
            if (c < BM * 4)
                cp_async16(sx + (buffer * BM + r) * HG_ROW + 8 * q, x + (long long)min(row, m - 1) * k + (first + s) * HG_K + 8 * q, row < m);
        }
    };

    // Weights first (no kernel writes them), then wait for the previous kernel (pdl_wait, common.cuh) before activations.
    for (int s = 0; s < HG_STAGES - 1; s++)
        if (s < stages) loadWeights(s, s);
    pdl_start();
    for (int s = 0; s < HG_STAGES - 1; s++) {
        if (s < stages) loadActivations(s, s);
        cp_async_commit();
    }

    float acc[I][J][4];
#pragma unroll
    for (int i = 0; i < I; i++)
#pragma unroll
        for (int j = 0; j < J; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
    // ldmatrix row addresses of this lane. A (weights, 16 × 16 per fragment): matrices (rows 0–7 | 8–15) × (k 0–7 | 8–15)
    // in the order a0…a3 of mma. B (activations, two n8 fragments per x4): (rows 0–7, k 0–7), (0–7, 8–15), (8–15, 0–7),
    // (8–15, 8–15) = b0, b1 of fragment j, then of j + 1.
    const int aRow = wn + lane % 8 + 8 * ((lane / 8) % 2), aCol = 8 * (lane / 16);
    const int bRow = wm + lane % 8 + 8 * (lane / 16), bCol = 8 * ((lane / 8) % 2);

    for (int s = 0; s < stages; s++) {
        cp_async_wait<HG_STAGES - 2>();
        __syncthreads();  // stage s is in; every warp is done with the buffer the next load overwrites
        const int next = s + HG_STAGES - 1;
        if (next < stages) {
            loadWeights(next, next % HG_STAGES);
            loadActivations(next, next % HG_STAGES);
        }
        cp_async_commit();
        const unsigned short* tw = sw + (s % HG_STAGES) * HG_N * HG_ROW;
        const unsigned short* tx = sx + (s % HG_STAGES) * BM * HG_ROW;
#pragma unroll
        for (int kk = 0; kk < HG_K; kk += 16) {
            unsigned a[I][4], b[J][2];
#pragma unroll
            for (int i = 0; i < I; i++) ldmatrix_x4(a[i], tw + (aRow + 16 * i) * HG_ROW + kk + aCol);
#pragma unroll
            for (int jj = 0; jj < J / 2; jj++) {
                unsigned r[4];
                ldmatrix_x4(r, tx + (bRow + 16 * jj) * HG_ROW + kk + bCol);
                b[2 * jj][0] = r[0];
                b[2 * jj][1] = r[1];
                b[2 * jj + 1][0] = r[2];
                b[2 * jj + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < I; i++)
#pragma unroll
                for (int j = 0; j < J; j++) mma_16816<BF16>(acc[i][j], a[i], b[j][0], b[j][1]);
        }
    }
    // Accumulator e of tile (i, j): weight row wn + 16i + g (+8 for e ≥ 2), activation row wm + 8j + 2·t4 + (e & 1).
    float* out = gridDim.z == 1 ? y : partial + (long long)blockIdx.z * m * n;
#pragma unroll
    for (int i = 0; i < I; i++)
#pragma unroll
        for (int j = 0; j < J; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n0 + wn + 16 * i + g + (e >= 2 ? 8 : 0);
                const int row = m0 + wm + 8 * j + 2 * t4 + (e & 1);
                if (col < n && row < m) out[(long long)row * n + col] = acc[i][j][e];
            }
}

#define GEMM_HALF(NAME, BF16, BM, WM)                                                                                   \
    extern "C" __global__ void __launch_bounds__(256) NAME(const unsigned short* w, const unsigned short* x, float* y,  \
                                                           float* partial, int n, int k, int m) {                       \
        gemm_half_tc<BF16, BM, WM>(w, x, y, partial, n, k, m);                                                          \
    }
GEMM_HALF(gemm_f16_m32, false, 32, 32)
GEMM_HALF(gemm_f16_m64, false, 64, 32)
GEMM_HALF(gemm_f16_m128, false, 128, 32)
GEMM_HALF(gemm_f16_m256, false, 256, 64)
GEMM_HALF(gemm_bf16_m32, true, 32, 32)
GEMM_HALF(gemm_bf16_m64, true, 64, 32)
GEMM_HALF(gemm_bf16_m128, true, 128, 32)
GEMM_HALF(gemm_bf16_m256, true, 256, 64)

// F32 GEMM: 64 × 64 tiles, K steps of 32, rows padded to 33 floats; thread (tx, ty) owns weight rows ty + 16i and
// activation rows tx + 16j.
extern "C" __global__ void __launch_bounds__(256) gemm_f32(const float* w, const float* x, float* y, int n, int k, int m) {
    pdl_start();
    __shared__ float sw[64][33];
    __shared__ float sx[64][33];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int n0 = blockIdx.x * 64, m0 = blockIdx.y * 64;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < k; k0 += 32) {
#pragma unroll
        for (int p = 0; p < 8; p++) {
            const int e = tid + p * 256, r = e / 32, c = e % 32;
            sw[r][c] = n0 + r < n ? w[(long long)(n0 + r) * k + k0 + c] : 0.0f;
            sx[r][c] = m0 + r < m ? x[(long long)(m0 + r) * k + k0 + c] : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int c = 0; c < 32; c++) {
            float wv[4], xv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) wv[i] = sw[ty + 16 * i][c];
#pragma unroll
            for (int j = 0; j < 4; j++) xv[j] = sx[tx + 16 * j][c];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += wv[i] * xv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int row = m0 + tx + 16 * j;
        if (row >= m) continue;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int col = n0 + ty + 16 * i;
            if (col < n) y[(long long)row * n + col] = acc[i][j];
        }
    }
}
