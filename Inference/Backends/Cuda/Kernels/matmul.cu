// matmul.cu — output[rows × N] = input[rows × K] · weightᵀ for a weight [N × K] (K contiguous), every weight layout.
//
// Two paths, chosen by the host on the number of activation rows M (CudaLaunchGeometry.Gemv):
//  * GEMV (decode and small decode batches: M ≤ 32 for quantized weights, M ≤ 8 for float ones): memory-bound. Each warp
//    owns RW consecutive weight rows (4, or 2 for M ≤ 32); lane i reads 32-value blocks i, i + 32, … of every one of them
//    with 16-byte loads that bypass L1, so one activation block read from L1 serves RW weight rows; one warp reduction per
//    row and activation row. 4 warps per block: grid (ceil(N / (4·RW))), block 128. One launch can serve a group of up
//    to three weights that read the same activations (q/k/v, gate/up; IBackend.MatMulGroup).
//  * GEMM (M above those, prefill / large batches): compute-bound. Tiles of 64 weight rows × 64 activation rows in shared memory.
//    - quantized: int8 dot products (dp4a) of weight codes and int8 activations, per 32-value block scaled in float;
//      grid (ceil(N / 64), ceil(M / 64)), block 256, each thread 4 weight rows × 4 activation rows.
//    - F16 / BF16: tensor cores, mma.sync.m16n8k16 with float accumulation, activations rounded to the weight's type on
//      the way into shared memory; grid (ceil(N / 64), ceil(M / 64)), block 128 (4 warps of 32 × 32 outputs).
//    - F32: plain float FMA tiles; grid (ceil(N / 64), ceil(M / 64)), block 256.
//
// Quantized weights (LAYOUT_INT8 / LAYOUT_NIBBLE, see common.cuh) carry float scales per 32-value block ([N][K/32], or
// [N][K/16] for Q6_K: scalesPerBlock = 2), optional float mins [N][K/32] (Q4_K, Q5_K), and an unsigned code offset for
// nibbles (8 for Q4_0). Per block: Σ w·x = xd·(ws·Σ code·xq) − (ws·offset + wmin)·(xd·Σxq), where the activation side
// {xd, xd·Σxq} comes from quantize_q8. K is a multiple of 32 (checked by the host).
#include "common.cuh"

#define GEMV_WARPS 4

// Σ over one 32-value block of weight codes (8 ints of 4 int8) with activation codes: whole, and the two 16-value halves.
struct BlockDot {
    int lo, hi;
};

__device__ __forceinline__ BlockDot dot_block(const int (&w)[8], const int4 xa, const int4 xb) {
    BlockDot r;
    r.lo = dp4a(w[0], xa.x, dp4a(w[1], xa.y, dp4a(w[2], xa.z, dp4a(w[3], xa.w, 0))));
    r.hi = dp4a(w[4], xb.x, dp4a(w[5], xb.y, dp4a(w[6], xb.z, dp4a(w[7], xb.w, 0))));
    return r;
}

// Weights are read once per step: 16-byte loads that bypass L1 (ld.global.nc.L1::no_allocate), so the activations that
// every weight row reuses stay there.
__device__ __forceinline__ int4 load_weight16(const void* p) {
    int4 v;
    asm("ld.global.nc.L1::no_allocate.v4.s32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// Loads block b of a weight row as 8 ints of 4 codes each, in value order.
template <int LAYOUT>
__device__ __forceinline__ void load_codes(const unsigned char* rowCodes, int b, int (&w)[8]) {
    if (LAYOUT == LAYOUT_INT8) {
        const int4 a = load_weight16(rowCodes + 32 * b);
        const int4 c = load_weight16(rowCodes + 32 * b + 16);
        w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
        w[4] = c.x; w[5] = c.y; w[6] = c.z; w[7] = c.w;
    } else {
        const int4 v = load_weight16(rowCodes + 16 * b);
        w[0] = v.x & 0x0F0F0F0F; w[1] = v.y & 0x0F0F0F0F; w[2] = v.z & 0x0F0F0F0F; w[3] = v.w & 0x0F0F0F0F;
        w[4] = (v.x >> 4) & 0x0F0F0F0F; w[5] = (v.y >> 4) & 0x0F0F0F0F;
        w[6] = (v.z >> 4) & 0x0F0F0F0F; w[7] = (v.w >> 4) & 0x0F0F0F0F;
    }
}

// One GEMV launch serves a group of up to three weights of the same layout and K that read the same activations (q/k/v,
// gate/up): weight rows are numbered through the parts, and every part but the last holds a multiple of RW rows (checked
// by the host), so the RW rows of a warp lie in one part. A single weight passes n1 = n2 = 0.
struct GemvPart {
    const unsigned char* codes;
    const float* scales;
    const float* mins;
    float* y;
    int n;
};

// The part of the warp's first row (made relative to it), or false when the warp has no rows.
__device__ __forceinline__ bool gemv_part(int& row, GemvPart& p, const GemvPart& p0, const GemvPart& p1, const GemvPart& p2) {
    if (row < p0.n) { p = p0; return true; }
    row -= p0.n;
    if (row < p1.n) { p = p1; return true; }
    row -= p1.n;
    if (row < p2.n) { p = p2; return true; }
    return false;
}

// Quantized GEMV: warp w of the block owns RW consecutive weight rows; lane i reads 32-value blocks i, i + 32, … of each,
// U blocks per row and lane in flight before any arithmetic (RW·U·(32 + 4) bytes per lane for int8), and applies them to
// each of the m ≤ R activation rows: one activation block read from L1 serves RW weight rows.
template <int LAYOUT, int SCALES, bool MINS, int RW, int R, int U>
__device__ __forceinline__ void gemv_quant(const GemvPart p0, const GemvPart p1, const GemvPart p2, int offset,
                                           const signed char* xq, const float2* xds, int k, int m) {
    const int lane = threadIdx.x % 32;
    int row0 = (blockIdx.x * GEMV_WARPS + threadIdx.x / 32) * RW;
    GemvPart p;
    if (!gemv_part(row0, p, p0, p1, p2)) return;
    const int blocks = k / 32;
    const long long rowBytes = LAYOUT == LAYOUT_INT8 ? k : k / 2;
    float acc[RW][R];
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < R; t++) acc[r][t] = 0.0f;
    for (int b0 = lane; b0 < blocks; b0 += 32 * U) {
        int w[U][RW][8];
        float s0[U][RW], s1[U][RW], corr[U][RW];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int b = b0 + 32 * u;
#pragma unroll
            for (int r = 0; r < RW; r++) {
                // Rows past the weight's end (ragged N) re-read its last row; their sums are never stored.
                const long long row = min(row0 + r, p.n - 1);
                if (b < blocks) {
                    load_codes<LAYOUT>(p.codes + row * rowBytes, b, w[u][r]);
                    const long long sb = (row * blocks + b) * SCALES;
                    s0[u][r] = __ldg(p.scales + sb);
                    s1[u][r] = SCALES == 2 ? __ldg(p.scales + sb + 1) : s0[u][r];
                    corr[u][r] = s0[u][r] * (float)offset + (MINS ? __ldg(p.mins + row * blocks + b) : 0.0f);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int b = b0 + 32 * u;
            if (b >= blocks) break;
#pragma unroll
            for (int t = 0; t < R; t++) {
                if (t < m) {
                    const int4* x = (const int4*)(xq + (long long)t * k) + 2 * b;
                    const int4 xa = x[0], xb = x[1];
                    const float2 ds = xds[(long long)t * blocks + b];
#pragma unroll
                    for (int r = 0; r < RW; r++) {
                        const BlockDot d = dot_block(w[u][r], xa, xb);
                        acc[r][t] += ds.x * (s0[u][r] * (float)d.lo + s1[u][r] * (float)d.hi) - corr[u][r] * ds.y;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < R; t++) {
            if (t < m) {
                const float v = warp_sum(acc[r][t]);
                if (lane == 0 && row0 + r < p.n) p.y[(long long)t * p.n + row0 + r] = v;
            }
        }
}

// Float weights: the same shape, lane i reading 16-byte chunks i, i + 32, … (4 F32 or 8 F16/BF16 values) of each row.
template <int LAYOUT, int RW, int R, int U>
__device__ __forceinline__ void gemv_float(const GemvPart p0, const GemvPart p1, const GemvPart p2, const float* x, int k, int m) {
    const int lane = threadIdx.x % 32;
    int row0 = (blockIdx.x * GEMV_WARPS + threadIdx.x / 32) * RW;
    GemvPart p;
    if (!gemv_part(row0, p, p0, p1, p2)) return;
    const int per = LAYOUT == LAYOUT_F32 ? 4 : 8;
    const int chunks = k / per;
    const long long rowBytes = (long long)k * (LAYOUT == LAYOUT_F32 ? 4 : 2);
    float acc[RW][R];
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < R; t++) acc[r][t] = 0.0f;
    for (int c0 = lane; c0 < chunks; c0 += 32 * U) {
        int4 v[U][RW];
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < RW; r++) {
                const long long row = min(row0 + r, p.n - 1);
                if (c0 + 32 * u < chunks) v[u][r] = load_weight16(p.codes + row * rowBytes + 16LL * (c0 + 32 * u));
            }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int c = c0 + 32 * u;
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
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int t = 0; t < R; t++) {
            if (t < m) {
                const float s = warp_sum(acc[r][t]);
                if (lane == 0 && row0 + r < p.n) p.y[(long long)t * p.n + row0 + r] = s;
            }
        }
}

// Kernel variants by the number of activation rows m (host: CudaLaunchGeometry.Gemv): m = 1 (decode of one sequence),
// m ≤ 8, and m ≤ 32 (quantized only: a decode batch); grid (ceil(rows of all parts / (4·RW))), block 128.
// m = 1 shapes, from timing RW × U ∈ {4×2, 1×4, 2×4, 1×8, 2×2} side by side on an H200 (GpuCheck, 2026-11-26): int8 and
// F16/BF16 keep 4 rows × 2 blocks (the others were equal or up to 20% slower), nibbles take 2 rows × 4 blocks (4096 ×
// 14336 Q4_0: 16.5 µs against 33.2 µs, 4096 × 4096: 9.5 against 14.1).
#define GEMV_PARTS_PARAMS                                                                                               \
    const unsigned char *codes0, const float *scales0, const float *mins0, float *y0, int n0,                          \
    const unsigned char *codes1, const float *scales1, const float *mins1, float *y1, int n1,                          \
    const unsigned char *codes2, const float *scales2, const float *mins2, float *y2, int n2
#define GEMV_PARTS                                                                                                      \
    GemvPart{codes0, scales0, mins0, y0, n0}, GemvPart{codes1, scales1, mins1, y1, n1}, GemvPart{codes2, scales2, mins2, y2, n2}

#define GEMV_QUANT(NAME, LAYOUT, SCALES, MINS)                                                                          \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1(GEMV_PARTS_PARAMS, int offset, const signed char* xq,   \
                                                                const float2* xds, int k, int m) {                      \
        gemv_quant<LAYOUT, SCALES, MINS, LAYOUT == LAYOUT_NIBBLE ? 2 : 4, 1, LAYOUT == LAYOUT_NIBBLE ? 4 : 2>(           \
            GEMV_PARTS, offset, xq, xds, k, m);                                                                         \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m8(GEMV_PARTS_PARAMS, int offset, const signed char* xq,   \
                                                                const float2* xds, int k, int m) {                      \
        gemv_quant<LAYOUT, SCALES, MINS, 4, 8, 1>(GEMV_PARTS, offset, xq, xds, k, m);                                   \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m32(GEMV_PARTS_PARAMS, int offset, const signed char* xq,  \
                                                                 const float2* xds, int k, int m) {                     \
        gemv_quant<LAYOUT, SCALES, MINS, 2, 32, 1>(GEMV_PARTS, offset, xq, xds, k, m);                                  \
    }

GEMV_QUANT(gemv_int8, LAYOUT_INT8, 1, false)         // Q8_0, Q5_0
GEMV_QUANT(gemv_int8_mins, LAYOUT_INT8, 1, true)     // Q5_K
GEMV_QUANT(gemv_int8_halves, LAYOUT_INT8, 2, false)  // Q6_K
GEMV_QUANT(gemv_nibble, LAYOUT_NIBBLE, 1, false)     // Q4_0
GEMV_QUANT(gemv_nibble_mins, LAYOUT_NIBBLE, 1, true) // Q4_K

#define GEMV_FLOAT(NAME, LAYOUT)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m1(GEMV_PARTS_PARAMS, const float* x, int k, int m) {      \
        gemv_float<LAYOUT, 4, 1, 2>(GEMV_PARTS, x, k, m);                                                               \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(128) NAME##_m8(GEMV_PARTS_PARAMS, const float* x, int k, int m) {      \
        gemv_float<LAYOUT, 4, 8, 1>(GEMV_PARTS, x, k, m);                                                               \
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
__device__ __forceinline__ void gemm_quant(const unsigned char* codes, const float* scales, const float* mins, int offset,
                                           const signed char* xq, const float2* xds, float* y, int n, int k, int m) {
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
                const float s0 = row < n ? scales[sb] : 0.0f;
                sScale[r][0] = s0;
                sScale[r][1] = SCALES == 2 && row < n ? scales[sb + 1] : s0;
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
    extern "C" __global__ void __launch_bounds__(256) NAME(const unsigned char* codes, const float* scales,            \
        const float* mins, int offset, const signed char* xq, const float2* xds, float* y, int n, int k, int m) {       \
        gemm_quant<LAYOUT, SCALES, MINS>(codes, scales, mins, offset, xq, xds, y, n, k, m);                             \
    }

GEMM_QUANT(gemm_int8, LAYOUT_INT8, 1, false)
GEMM_QUANT(gemm_int8_mins, LAYOUT_INT8, 1, true)
GEMM_QUANT(gemm_int8_halves, LAYOUT_INT8, 2, false)
GEMM_QUANT(gemm_nibble, LAYOUT_NIBBLE, 1, false)
GEMM_QUANT(gemm_nibble_mins, LAYOUT_NIBBLE, 1, true)

// ---------------------------------------------------------------------------------------------------------------------
// F16 / BF16 GEMM on tensor cores. D[n][m] = Σk W[n][k]·X[m][k]: W is mma's A operand (row-major 16 × 16), X its B operand
// ("col" 16 × 8: column m holds k contiguously), so both tiles are read from shared memory as they lie. Tile 64 × 64 × 32,
// rows padded to 40 halves (20 words) so the fragment loads of a warp touch 32 distinct banks. Warp w owns weight rows
// 32·(w % 2)… and activation rows 32·(w / 2)…: 2 × 4 mma tiles of 16 × 8.
#define HT 64
#define HK 32
#define HPAD 40

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

template <bool BF16>
__device__ __forceinline__ void gemm_half(const unsigned short* w, const float* x, float* y, int n, int k, int m) {
    __shared__ __attribute__((aligned(16))) unsigned short sw[HT][HPAD];  // written and read as 32-bit words
    __shared__ __attribute__((aligned(16))) unsigned short sx[HT][HPAD];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t4 = lane % 4;
    const int n0 = blockIdx.x * HT, m0 = blockIdx.y * HT;
    const int wn = (warp % 2) * 32, wm = (warp / 2) * 32;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

    for (int k0 = 0; k0 < k; k0 += HK) {
        // Weights: 64 rows × 32 halves = 256 pieces of 16 bytes, two per thread.
#pragma unroll
        for (int p = 0; p < 2; p++) {
            const int piece = tid + p * 128, r = piece / 4, c = (piece % 4) * 8;
            int4 v = make_int4(0, 0, 0, 0);
            if (n0 + r < n) v = *(const int4*)(w + (long long)(n0 + r) * k + k0 + c);
            unsigned* dst = (unsigned*)&sw[r][c];
            dst[0] = v.x; dst[1] = v.y; dst[2] = v.z; dst[3] = v.w;
        }
        // Activations: 64 rows × 32 floats = 512 float4, four per thread, rounded to the weight's type.
#pragma unroll
        for (int p = 0; p < 4; p++) {
            const int piece = tid + p * 128, r = piece / 8, c = (piece % 8) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (m0 + r < m) v = *(const float4*)(x + (long long)(m0 + r) * k + k0 + c);
            unsigned* dst = (unsigned*)&sx[r][c];
            dst[0] = BF16 ? pack_bf162(v.x, v.y) : pack_half2(v.x, v.y);
            dst[1] = BF16 ? pack_bf162(v.z, v.w) : pack_half2(v.z, v.w);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < HK; kk += 16) {
            unsigned a[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int r = wn + 16 * i + g;
                a[i][0] = *(const unsigned*)&sw[r][kk + 2 * t4];
                a[i][1] = *(const unsigned*)&sw[r + 8][kk + 2 * t4];
                a[i][2] = *(const unsigned*)&sw[r][kk + 2 * t4 + 8];
                a[i][3] = *(const unsigned*)&sw[r + 8][kk + 2 * t4 + 8];
            }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int r = wm + 8 * j + g;
                const unsigned b0 = *(const unsigned*)&sx[r][kk + 2 * t4];
                const unsigned b1 = *(const unsigned*)&sx[r][kk + 2 * t4 + 8];
#pragma unroll
                for (int i = 0; i < 2; i++) mma_16816<BF16>(acc[i][j], a[i], b0, b1);
            }
        }
        __syncthreads();
    }
    // Accumulator e of tile (i, j): weight row wn + 16i + g (+8 for e ≥ 2), activation row wm + 8j + 2·t4 + (e & 1).
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n0 + wn + 16 * i + g + (e >= 2 ? 8 : 0);
                const int row = m0 + wm + 8 * j + 2 * t4 + (e & 1);
                if (col < n && row < m) y[(long long)row * n + col] = acc[i][j][e];
            }
}

extern "C" __global__ void __launch_bounds__(128) gemm_f16(const unsigned short* w, const float* x, float* y, int n, int k, int m) {
    gemm_half<false>(w, x, y, n, k, m);
}
extern "C" __global__ void __launch_bounds__(128) gemm_bf16(const unsigned short* w, const float* x, float* y, int n, int k, int m) {
    gemm_half<true>(w, x, y, n, k, m);
}

// F32 GEMM: 64 × 64 tiles, K steps of 32, rows padded to 33 floats; thread (tx, ty) owns weight rows ty + 16i and
// activation rows tx + 16j.
extern "C" __global__ void __launch_bounds__(256) gemm_f32(const float* w, const float* x, float* y, int n, int k, int m) {
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
