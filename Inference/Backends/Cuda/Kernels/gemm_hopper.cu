// gemm_hopper.cu — F16 / BF16 GEMM on Hopper's warpgroup tensor cores (wgmma), its tiles loaded by the tensor memory
// accelerator (TMA): y[m][n] = Σk X[m][k]·W[n][k], for the prefill and large decode batches of F16/BF16 weights.
// build-ptx: sm_90a only.
//
// wgmma exists only in the arch-specific sm_90a target (PTX of it runs on compute capability 9.0 alone), so this file is a
// module of its own, built for that target only; CudaKernels loads it on 9.0 devices and the host takes it over matmul.cu's
// gemm_half_tc (mma.sync, every GPU since Ampere) where CudaLaunchGeometry.UseWarpgroupGemm says so. X arrives rounded to
// the weight's type (round_to_half, elementwise.cu), as for gemm_half_tc.
//
// Operands: X is wgmma's A (M × K, K contiguous: "K-major"), W its B (N × K, K contiguous), both read from shared memory
// through matrix descriptors, neither transposed. D[m][n] in registers, float.
// Tile: BM activation rows (128 or 256) × BN weight rows (128 or 256), K in stages of 64 halves: one stage row is 128
// bytes, the width of the 128-byte swizzle, in which 16-byte chunk c of row r sits at chunk c ^ (r % 8) of its row within
// each 1024-byte group of 8 rows (the layout the tensor core reads without bank conflicts, and the one the bulk tensor
// copy writes with CU_TENSOR_MAP_SWIZZLE_128B). STAGES stage buffers.
// Block: BM / 64 consumer warpgroups and one producer warp (288 or 544 threads). Consumer warpgroup g multiplies activation
// rows 64g…64g+63 of the tile by all BN weight rows, as BN / 128 wgmma.m64n128k16 per 16 of K (4 per stage). One thread
// of the producer warp issues every copy: cp.async.bulk.tensor boxes of 64 halves × 64 rows (8 KB) through tensor maps the
// host built (cuTensorMapEncodeTiled, CudaTensorMap.HalfMatrix; 128-byte __grid_constant__ parameters); rows past the
// matrix arrive as zeros. Each stage buffer has two mbarriers: `full` (the producer arrives with the stage's byte count,
// the copies complete it) and `empty` (one arrival per consumer warp once its warpgroup's wgmmas of the stage have
// finished). Consumers wait on `full`, issue the stage's wgmmas, wait until only those still run and release the stage
// before; the producer refills a buffer as soon as it is released. So copies run STAGES − 1 stages ahead, no block-wide
// barrier per stage, and no consumer spends issue slots on copies. This replaced cp.async copies from every thread with a
// barrier per stage (two stages ahead): a Llama-3-8B BF16 step at batch 256 went from 18,797 to 20,655 tok/s (+9.9 %), at
// 128 from 12,839 to 13,540; the 2048-row products from 458–524 to 668–773 TFLOP/s (H100, 2026-11-28, docs/performance.md).
// Tiles: 256 × 128 for decode batches of a few hundred rows and the narrow (split-K) products (per 4.2 MFLOP an SM copies
// 48 KB where two 128 × 128 blocks copy 64 KB); 128 × 256 where such tiles fill the GPU (prefill; gate/up at 256 rows).
// Gated (gemm_*_wgmma_gated_*, the feed-forward's gate and up in one launch): see gemm_half_wgmma's GATED.
// Split K: block z takes stages [z·S/Z, (z+1)·S/Z) and writes partial[z][M][N], summed by sum_splits, or by rms_norm_rows
// for a product into the residual (elementwise.cu).
// grid (ceil(M / BM), ceil(N / BN), splits) — activation tiles fastest, so that the blocks resident at once share a few
// weight tiles, each read from memory once and reused from L2 by every activation tile: with weight tiles fastest each row
// of activation tiles streamed the whole weight again (an 8B prefill's gate and up, 235 MB, once per 128 tokens), and the
// gated kernel ran at 351 TFLOP/s against 480 for the plain ones (H100, 2026-11-27). Dynamic shared memory
// STAGES × (BM + BN) × 128 bytes + 1 KB (the buffer is aligned to 1024 bytes by hand: the swizzle pattern repeats every
// 1024 and the descriptors assume it).
#include "common.cuh"

#define WG_BK 64  // halves of K per stage: one 128-byte swizzled row

// A shared-memory matrix descriptor for a K-major operand in the 128-byte swizzle: start address / 16 (bits 0–13), leading
// byte offset 16 / 16 (unused by this layout, 1 by convention), stride byte offset 1024 / 16 (from one group of 8 rows to
// the next, bits 32–45), swizzle mode 1 = 128 bytes (bits 62–63). Advancing K by 16 halves inside the 128-byte row is
// adding 32 bytes to the start address: the hardware applies the swizzle to the address it forms.
__device__ __forceinline__ unsigned long long wgmma_descriptor(unsigned sharedAddress) {
    return (unsigned long long)((sharedAddress & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
// Waits until at most N committed groups of this warpgroup's wgmmas are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

// d (64 floats a thread) += A (64 × 16 at descriptor a) · B (128 × 16 at descriptor b)ᵀ. Accumulator d[4i + e] of thread t
// of the warpgroup: row 16·(t / 32) + (t % 32) / 4 (+8 for e ≥ 2), column 8i + 2·(t % 4) + (e & 1).
#define WGMMA_D8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define WGMMA_M64N128K16(TYPE)                                                                                              \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                             \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " "                                           \
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                                  \
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "                         \
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "                          \
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "                        \
                 "%64, %65, p, 1, 1, 0, 0;\n}"                                                                          \
                 : WGMMA_D8(0), WGMMA_D8(8), WGMMA_D8(16), WGMMA_D8(24), WGMMA_D8(32), WGMMA_D8(40), WGMMA_D8(48), WGMMA_D8(56) \
                 : "l"(a), "l"(b), "n"(1))

template <bool BF16>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], unsigned long long a, unsigned long long b) {
    if (BF16)
        WGMMA_M64N128K16("bf16");
    else
        WGMMA_M64N128K16("f16");
}

// A tensor map (CUtensorMap: 128 bytes, 64-byte aligned), passed by value as a __grid_constant__ kernel parameter; the
// bulk copy reads it through its generic address.
struct alignas(64) TensorMap {
    unsigned long long opaque[16];
};

// Box (column, row) of the tensor map (64 halves × 64 rows: 8 KB) into shared memory at `to`, completing on `bar`.
__device__ __forceinline__ void tma_load(unsigned to, const TensorMap& map, int column, int row, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 ::"r"(to), "l"((unsigned long long)&map), "r"(column), "r"(row), "r"(bar) : "memory");
}

#define TMA_BOX_ROWS 64

// The tile's accumulators to memory. d[j][4i + e] of thread `lane` of warp `warp` in warpgroup `group`: activation row
// 64·group + 16·warp + lane / 4 (+8 for e ≥ 2), weight row 128j + 8i + 2·(lane % 4) + (e & 1). Plain: to y, or with split K
// (gridDim.z > 1) to partial[blockIdx.z]. GATED: y = SiLU(gate)·up, and its half copy where `halves` is given.
template <int BM, int BN, bool GATED>
__device__ __forceinline__ void wgmma_store(float (&d)[BN / 128][64], int group, int warp, int lane, float* y, float* partial,
                                            unsigned short* halves, int halvesBf16, int n, int m, int m0, int n0) {
    constexpr int J = BN / 128;
    constexpr int PART = GATED ? BN / 2 : BN;
    if (GATED) {
        // Gate n8 block t (of the tile's first PART rows) and its up block t + PART / 8 hold the same outputs.
#pragma unroll
        for (int t = 0; t < PART / 8; t++) {
            const int tu = t + PART / 8;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int row = m0 + 64 * group + 16 * warp + lane / 4 + 8 * h;
                const int col = n0 + 8 * t + 2 * (lane % 4);
                if (row >= m) continue;
                float v[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float g = d[t / 16][4 * (t % 16) + 2 * h + e], u = d[tu / 16][4 * (tu % 16) + 2 * h + e];
                    v[e] = g / (1.0f + expf(-g)) * u;
                }
                const long long at = (long long)row * n + col;
                if (col + 1 < n && n % 2 == 0) {  // pairs need an even row length
                    *(float2*)(y + at) = make_float2(v[0], v[1]);
                    if (halves) *(unsigned*)(halves + at) = halvesBf16 ? pack_bf162(v[0], v[1]) : pack_half2(v[0], v[1]);
                } else {
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        if (col + e >= n) continue;
                        y[at + e] = v[e];
                        if (halves) halves[at + e] = (unsigned short)((halvesBf16 ? pack_bf162(v[e], 0.0f) : pack_half2(v[e], 0.0f)) & 0xFFFF);
                    }
                }
            }
        }
        return;
    }
    float* out = gridDim.z == 1 ? y : partial + (long long)blockIdx.z * m * n;
#pragma unroll
    for (int j = 0; j < J; j++)
#pragma unroll
        for (int i = 0; i < 16; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int row = m0 + 64 * group + 16 * warp + lane / 4 + 8 * h;
                const int col = n0 + 128 * j + 8 * i + 2 * (lane % 4);
                if (row >= m) continue;
                float* o = out + (long long)row * n + col;
                if (col + 1 < n && n % 2 == 0) {  // float2 stores need an even row length
                    *(float2*)o = make_float2(d[j][4 * i + 2 * h], d[j][4 * i + 2 * h + 1]);
                } else {
                    if (col < n) o[0] = d[j][4 * i + 2 * h];
                    if (col + 1 < n) o[1] = d[j][4 * i + 2 * h + 1];
                }
            }
}

// GATED (gemm_*_wgmma_gated_*): the tile's BN weight rows are BN / 2 rows of `w` (the gate) and the same BN / 2 rows of
// `up`, so each thread holds gate and up of the same outputs, and the epilogue writes y = SiLU(gate)·up (silu_mul's
// formula) — the feed-forward's gate/up products never reach memory — and, when `halves` is given, y rounded to f16/bf16
// for the half GEMM of the down projection (round_to_half's work). n is then the gate's rows (y's width); no split K.
template <bool BF16, int BM, int BN, int STAGES, bool GATED>
__device__ __forceinline__ void gemm_half_wgmma(const TensorMap& w, const TensorMap& up, const TensorMap& x, float* y,
                                                float* partial, unsigned short* halves, int halvesBf16, int n, int k, int m,
                                                int partRow) {
    constexpr int J = BN / 128;
    constexpr int CONSUMERS = BM / 64 * 128;             // consumer threads; the producer warp follows them
    constexpr int STAGE_BYTES = (BM + BN) * WG_BK * 2;
    constexpr int PART = GATED ? BN / 2 : BN;
    __shared__ unsigned long long barriers[2 * STAGES];  // full[STAGES], then empty[STAGES]
    extern __shared__ unsigned char wgmmaShared[];
    const unsigned base = (shared_address(wgmmaShared) + 1023) & ~1023u;
    const unsigned full = shared_address(barriers), empty = full + 8 * STAGES;
    const int tid = threadIdx.x;
    const int n0 = blockIdx.y * PART - partRow, m0 = blockIdx.x * BM;
    const int first = (int)((long long)(k / WG_BK) * blockIdx.z / gridDim.z);
    const int stages = (int)((long long)(k / WG_BK) * (blockIdx.z + 1) / gridDim.z) - first;
    if (tid == 0) {
        for (int b = 0; b < STAGES; b++) {
            mbarrier_init(full + 8 * b, 1);
            mbarrier_init(empty + 8 * b, CONSUMERS / 32);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");  // visible to the copy engine
    }
    __syncthreads();

    if (tid >= CONSUMERS) {
        if (tid == CONSUMERS) {
            // Stage s into buffer b: the tile's weight rows (BN of w, or PART of the gate and PART of up), then its activations.
            auto weights = [&](int s, int b) {
                const unsigned to = base + b * STAGE_BYTES + BM * 128, bar = full + 8 * b;
#pragma unroll
                for (int r = 0; r < PART; r += TMA_BOX_ROWS) {
                    tma_load(to + r * 128, w, (first + s) * WG_BK, n0 + r, bar);
                    if (GATED) tma_load(to + (PART + r) * 128, up, (first + s) * WG_BK, n0 + r, bar);
                }
            };
            auto activations = [&](int s, int b) {
#pragma unroll
                for (int r = 0; r < BM; r += TMA_BOX_ROWS)
                    tma_load(base + b * STAGE_BYTES + r * 128, x, (first + s) * WG_BK, m0 + r, full + 8 * b);
            };
            const int ahead = min(STAGES, stages);
            for (int s = 0; s < ahead; s++) {
                mbarrier_arrive_expect_tx(full + 8 * s, STAGE_BYTES);
                weights(s, s);
            }
            pdl_start();
            for (int s = 0; s < ahead; s++) activations(s, s);
            for (int s = STAGES; s < stages; s++) {
                const int b = s % STAGES;
                mbarrier_wait(empty + 8 * b, (s / STAGES - 1) & 1);  // every consumer warp is done with stage s − STAGES
                mbarrier_arrive_expect_tx(full + 8 * b, STAGE_BYTES);
                weights(s, b);
                activations(s, b);
            }
        } else {
            pdl_start();
        }
        return;
    }

    pdl_start();
    const int group = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;
    float d[J][64];
#pragma unroll
    for (int j = 0; j < J; j++)
#pragma unroll
        for (int e = 0; e < 64; e++) d[j][e] = 0.0f;

    for (int s = 0; s < stages; s++) {
        const int b = s % STAGES;
        mbarrier_wait(full + 8 * b, (s / STAGES) & 1);
        const unsigned stage = base + b * STAGE_BYTES;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < WG_BK / 16; kk++) {
            const unsigned long long a = wgmma_descriptor(stage + group * 64 * 128 + kk * 32);
#pragma unroll
            for (int j = 0; j < J; j++)
                wgmma_m64n128k16<BF16>(d[j], a, wgmma_descriptor(stage + (BM + j * 128) * 128 + kk * 32));
        }
        wgmma_commit();
        wgmma_wait<1>();  // stage s − 1's wgmmas have finished: its buffer is free
        if (s > 0 && lane == 0) mbarrier_arrive(empty + 8 * ((s - 1) % STAGES));
    }
    wgmma_wait<0>();
    wgmma_store<BM, BN, GATED>(d, group, warp, lane, y, partial, halves, halvesBf16, n, m, m0, n0);
}

// The kernels. Tiles: 128 × 128 with 3 stages (97 KB of shared memory, 2 blocks an SM), 128 × 256 and 256 × 128 with 4
// (193 KB, one block an SM). WGMMA_TILES(X) lists (suffix, BM, BN, STAGES, blocks an SM).
#define WGMMA_TILES(X)          \
    X(_n128, 128, 128, 3, 2)    \
    X(_n256, 128, 256, 4, 1)    \
    X(_m256_n128, 256, 128, 4, 1)

// One launch serves a group of up to three weights of the same type and K that read the same activations (q/k/v, as the
// GEMVs do): weight rows are numbered through the parts, every part but the last a whole number of tiles (the host checks),
// so a tile's rows lie in one part; a single weight passes n1 = n2 = 0 (and unused maps). Split K: part p's partials start
// after those of the parts before it ([parts][splits][M][N_p]).
#define GEMM_WGMMA(TYPE, BF16, SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)                                                   \
    extern "C" __global__ void __launch_bounds__(BM / 64 * 128 + 32, BLOCKS_PER_SM)                                     \
        gemm_##TYPE##_wgmma##SUFFIX(const __grid_constant__ TensorMap w0, const __grid_constant__ TensorMap w1,         \
                                    const __grid_constant__ TensorMap w2, const __grid_constant__ TensorMap x,          \
                                    float* y0, float* y1, float* y2, int n0, int n1, int n2, float* partial, int k,     \
                                    int m) {                                                                            \
        const int row = blockIdx.y * BN, p = row < n0 ? 0 : row < n0 + n1 ? 1 : 2;                                      \
        const int first = p == 0 ? 0 : p == 1 ? n0 : n0 + n1;                                                           \
        gemm_half_wgmma<BF16, BM, BN, STAGES, false>(p == 0 ? w0 : p == 1 ? w1 : w2, w0, x, p == 0 ? y0 : p == 1 ? y1 : y2, \
                                                     partial ? partial + (long long)first * m * gridDim.z : nullptr,    \
                                                     nullptr, 0, p == 0 ? n0 : p == 1 ? n1 : n2, k, m, first);          \
    }

// y = SiLU(x · gateᵀ) · (x · upᵀ) (the GATED epilogue); grid (ceil(m / BM), ceil(n / (BN / 2))), no split K.
#define GEMM_WGMMA_GATED(TYPE, BF16, SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)                                             \
    extern "C" __global__ void __launch_bounds__(BM / 64 * 128 + 32, BLOCKS_PER_SM)                                     \
        gemm_##TYPE##_wgmma_gated##SUFFIX(const __grid_constant__ TensorMap gate, const __grid_constant__ TensorMap up,  \
                                          const __grid_constant__ TensorMap x, float* y, unsigned short* halves,        \
                                          int halvesBf16, int n, int k, int m) {                                        \
        gemm_half_wgmma<BF16, BM, BN, STAGES, true>(gate, up, x, y, nullptr, halves, halvesBf16, n, k, m, 0);           \
    }

#define F16_KERNELS(SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)         \
    GEMM_WGMMA(f16, false, SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)  \
    GEMM_WGMMA_GATED(f16, false, SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)
#define BF16_KERNELS(SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)        \
    GEMM_WGMMA(bf16, true, SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)  \
    GEMM_WGMMA_GATED(bf16, true, SUFFIX, BM, BN, STAGES, BLOCKS_PER_SM)
WGMMA_TILES(F16_KERNELS)
WGMMA_TILES(BF16_KERNELS)
