// gemm_hopper.cu — F16 / BF16 GEMM on Hopper's warpgroup tensor cores (wgmma): y[m][n] = Σk X[m][k]·W[n][k], for the
// prefill and large decode batches of F16/BF16 weights. build-ptx: sm_90a only.
//
// wgmma exists only in the arch-specific sm_90a target (PTX of it runs on compute capability 9.0 alone), so this file is a
// module of its own, built for that target only; CudaKernels loads it on 9.0 devices and the host takes it over matmul.cu's
// gemm_half_tc (mma.sync, every GPU since Ampere) where CudaLaunchGeometry.WarpgroupGemm says so. X arrives rounded to the
// weight's type (round_to_half, elementwise.cu), as for gemm_half_tc, so both operands travel global → shared by cp.async.
//
// Operands: X is wgmma's A (M × K, K contiguous: "K-major"), W its B (N × K, K contiguous), both read from shared memory
// through matrix descriptors, neither transposed. D[m][n] in registers, float.
// Tile: BM activation rows (128 or 256) × BN weight rows (128 or 256), K in stages of 64 halves: one stage row is 128 bytes, the width
// of the 128-byte swizzle, in which 16-byte chunk c of row r sits at chunk c ^ (r % 8) of its row within each 1024-byte
// group of 8 rows (the layout the tensor core reads without bank conflicts; written here by cp.async, as the bulk tensor
// copy would write it). STAGES stages in flight (cp.async.cg 16-byte copies, zero-filled past the matrix).
// Block: BM / 64 warpgroups (256 or 512 threads); warpgroup g multiplies activation rows 64g…64g+63 of the tile by all BN
// weight rows, as BN / 128 wgmma.m64n128k16 per 16 of K (4 per stage). Every thread also copies: stage loads are spread
// over all of them. The 256 × 128 tile is for decode batches of a few hundred rows and the narrow (split-K) products:
// per 4.2 MFLOP an SM copies 48 KB where two 128 × 128 blocks copy 64 KB. A Llama-3-8B BF16 batch-256 step went 3.2 %
// faster with it than with 128 × 128 tiles (19,224 against 18,630 tok/s, eager, same process, H100, 2026-11-28), though
// each product timed alone is the same within the bench's noise: the gain is in how the launches overlap.
// Per stage s: wait for its copies, fence.proxy.async (wgmma reads shared memory through the async proxy: writes by the
// generic proxy must be fenced before the barrier that publishes them), barrier, issue the copies of stage s + AHEAD into
// the buffer that stage s + AHEAD − STAGES was multiplied from, then the wgmmas of stage s, and wait until at most KEEP
// stages' wgmmas still run. With KEEP = 1 (AHEAD = STAGES − 2) the tensor cores work through the barrier and the copies
// of the next stage; the buffer overwritten is free because every warpgroup waited for that stage's wgmmas before the
// barrier. KEEP = 0 (AHEAD = STAGES − 1) waits for each stage's wgmmas.
// Gated (gemm_*_wgmma_gated_*, the feed-forward's gate and up in one launch): see gemm_half_wgmma's GATED.
// Split K: as gemm_half_tc — block z takes stages [z·S/Z, (z+1)·S/Z) and writes partial[z][M][N], summed by sum_splits.
// grid (ceil(M / BM), ceil(N / BN), splits), block BM / 64 · 128 — activation tiles fastest, so that the blocks resident at once
// share a few weight tiles, each read from memory once and reused from L2 by every activation tile: with weight tiles
// fastest each row of activation tiles streamed the whole weight again (an 8B prefill's gate and up, 235 MB, once per 128
// tokens), and the gated kernel ran at 351 TFLOP/s against 480 for the plain ones (H100, 2026-11-27). Dynamic
// shared memory STAGES × (BM + BN) × 128 bytes + 1 KB (the buffer is aligned to 1024 bytes by hand: the swizzle pattern
// repeats every 1024 and the descriptors assume it).
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
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

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

// GATED (gemm_*_wgmma_gated_*): the tile's BN weight rows are BN / 2 rows of `w` (the gate) and the same BN / 2 rows of
// `up`, so each thread holds gate and up of the same outputs, and the epilogue writes y = SiLU(gate)·up (silu_mul's
// formula) — the feed-forward's gate/up products never reach memory — and, when `halves` is given, y rounded to f16/bf16
// for the half GEMM of the down projection (round_to_half's work). n is then the gate's rows (y's width); no split K.
template <bool BF16, int BM, int BN, int STAGES, int KEEP, bool GATED>
__device__ __forceinline__ void gemm_half_wgmma(const unsigned short* w, const unsigned short* up, const unsigned short* x,
                                                float* y, float* partial, unsigned short* halves, int halvesBf16, int n,
                                                int k, int m, int partRow) {
    constexpr int J = BN / 128;                          // wgmma instructions per 16 of K
    constexpr int THREADS = BM / 64 * 128;               // a warpgroup per 64 activation rows
    constexpr int AHEAD = STAGES - 1 - KEEP;             // stages copied ahead of the one multiplied
    constexpr int STAGE_BYTES = (BM + BN) * WG_BK * 2;
    constexpr int PART = GATED ? BN / 2 : BN;            // weight rows of one matrix in a tile, and y's columns
    extern __shared__ unsigned char wgmmaShared[];
    const unsigned base = (shared_address(wgmmaShared) + 1023) & ~1023u;
    unsigned char* tiles = wgmmaShared + (base - shared_address(wgmmaShared));  // [STAGES][X: BM rows | W: BN rows][128 B]
    const int tid = threadIdx.x, group = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;
    const int n0 = blockIdx.y * PART - partRow, m0 = blockIdx.x * BM;
    const int first = (int)((long long)(k / WG_BK) * blockIdx.z / gridDim.z);
    const int stages = (int)((long long)(k / WG_BK) * (blockIdx.z + 1) / gridDim.z) - first;

    // Stage s (counted from `first`) into buffer b: each row's 8 chunks of 16 bytes, chunk q of row r to chunk q ^ (r % 8).
    // Thread tid copies chunks tid, tid + THREADS, … (row c / 8, chunk c % 8): 8 consecutive threads read one row's 128 bytes.
    auto loadWeights = [&](int s, int b) {
#pragma unroll
        for (int p = 0; p < BN * 8 / THREADS; p++) {
            const int c = tid + THREADS * p, r = c / 8, q = c % 8, row = n0 + r % PART;
            const unsigned short* matrix = GATED && r >= PART ? up : w;
            cp_async16(tiles + b * STAGE_BYTES + (BM + r) * 128 + ((q ^ (r % 8)) * 16),
                       matrix + (long long)min(row, n - 1) * k + (first + s) * WG_BK + 8 * q, row < n);
        }
    };
    auto loadActivations = [&](int s, int b) {
#pragma unroll
        for (int p = 0; p < BM * 8 / THREADS; p++) {
            const int c = tid + THREADS * p, r = c / 8, q = c % 8, row = m0 + r;
            cp_async16(tiles + b * STAGE_BYTES + r * 128 + ((q ^ (r % 8)) * 16),
                       x + (long long)min(row, m - 1) * k + (first + s) * WG_BK + 8 * q, row < m);
        }
    };

    // Weights first (no kernel writes them), then wait for the previous kernel (pdl_wait, common.cuh) before activations.
    for (int s = 0; s < AHEAD; s++)
        if (s < stages) loadWeights(s, s);
    pdl_start();
    for (int s = 0; s < AHEAD; s++) {
        if (s < stages) loadActivations(s, s);
        cp_async_commit();
    }

    float d[J][64];
#pragma unroll
    for (int j = 0; j < J; j++)
#pragma unroll
        for (int e = 0; e < 64; e++) d[j][e] = 0.0f;

    for (int s = 0; s < stages; s++) {
        cp_async_wait<AHEAD - 1>();
        fence_proxy_async();
        __syncthreads();  // stage s is in for every warpgroup; all are done with the buffer the next copies overwrite
        const int next = s + AHEAD;
        if (next < stages) {
            loadWeights(next, next % STAGES);
            loadActivations(next, next % STAGES);
        }
        cp_async_commit();
        const unsigned stage = base + (s % STAGES) * STAGE_BYTES;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < WG_BK / 16; kk++) {
            const unsigned long long a = wgmma_descriptor(stage + group * 64 * 128 + kk * 32);
#pragma unroll
            for (int j = 0; j < J; j++)
                wgmma_m64n128k16<BF16>(d[j], a, wgmma_descriptor(stage + (BM + j * 128) * 128 + kk * 32));
        }
        wgmma_commit();
        wgmma_wait<KEEP>();
    }
    wgmma_wait<0>();

    // d[j][4i + e]: activation row 64·group + 16·warp + lane / 4 (+8 for e ≥ 2), weight row 128j + 8i + 2·(lane % 4) + (e & 1).
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

// 128 × 128 with 3 stages (97 KB of shared memory, 2 blocks an SM; each block waits for its wgmmas, the other block's
// keep the tensor cores busy meanwhile), 128 × 256 and 256 × 128 with 4 (193 KB, one block an SM, one stage's wgmmas kept
// running).
// One launch serves a group of up to three weights of the same type and K that read the same activations (q/k/v, as the
// GEMVs do): weight rows are numbered through the parts, every part but the last a whole number of tiles (the host checks),
// so a tile's rows lie in one part; a single weight passes n1 = n2 = 0. Split K: part p's partials start after those of
// the parts before it ([parts][splits][M][N_p]), each part summed by its own sum_splits.
#define GEMM_WGMMA(NAME, BF16, BM, BN, STAGES, KEEP, BLOCKS_PER_SM)                                                     \
    extern "C" __global__ void __launch_bounds__(BM / 64 * 128, BLOCKS_PER_SM)                                          \
        NAME(const unsigned short* w0, const unsigned short* w1, const unsigned short* w2, float* y0, float* y1, float* y2, \
             int n0, int n1, int n2, const unsigned short* x, float* partial, int k, int m) {                           \
        const int row = blockIdx.y * BN, p = row < n0 ? 0 : row < n0 + n1 ? 1 : 2;                                      \
        const int first = p == 0 ? 0 : p == 1 ? n0 : n0 + n1;                                                          \
        gemm_half_wgmma<BF16, BM, BN, STAGES, KEEP, false>(p == 0 ? w0 : p == 1 ? w1 : w2, nullptr, x, p == 0 ? y0 : p == 1 ? y1 : y2, \
                                                           partial ? partial + (long long)first * m * gridDim.z : nullptr, nullptr, 0, \
                                                           p == 0 ? n0 : p == 1 ? n1 : n2, k, m, first);                \
    }
GEMM_WGMMA(gemm_f16_wgmma_n128, false, 128, 128, 3, 0, 2)
GEMM_WGMMA(gemm_f16_wgmma_n256, false, 128, 256, 4, 1, 1)
GEMM_WGMMA(gemm_f16_wgmma_m256_n128, false, 256, 128, 4, 1, 1)
GEMM_WGMMA(gemm_bf16_wgmma_n128, true, 128, 128, 3, 0, 2)
GEMM_WGMMA(gemm_bf16_wgmma_n256, true, 128, 256, 4, 1, 1)
GEMM_WGMMA(gemm_bf16_wgmma_m256_n128, true, 256, 128, 4, 1, 1)

// y = SiLU(x · gateᵀ) · (x · upᵀ) (the GATED epilogue above); grid (ceil(m / BM), ceil(n / (BN / 2))), block BM / 64 · 128.
#define GEMM_WGMMA_GATED(NAME, BF16, BM, BN, STAGES, KEEP, BLOCKS_PER_SM)                                               \
    extern "C" __global__ void __launch_bounds__(BM / 64 * 128, BLOCKS_PER_SM)                                          \
        NAME(const unsigned short* gate, const unsigned short* up, const unsigned short* x, float* y,                   \
             unsigned short* halves, int halvesBf16, int n, int k, int m) {                                             \
        gemm_half_wgmma<BF16, BM, BN, STAGES, KEEP, true>(gate, up, x, y, nullptr, halves, halvesBf16, n, k, m, 0);     \
    }
GEMM_WGMMA_GATED(gemm_f16_wgmma_gated_n128, false, 128, 128, 3, 0, 2)
GEMM_WGMMA_GATED(gemm_f16_wgmma_gated_n256, false, 128, 256, 4, 1, 1)
GEMM_WGMMA_GATED(gemm_f16_wgmma_gated_m256_n128, false, 256, 128, 4, 1, 1)
GEMM_WGMMA_GATED(gemm_bf16_wgmma_gated_n128, true, 128, 128, 3, 0, 2)
GEMM_WGMMA_GATED(gemm_bf16_wgmma_gated_n256, true, 128, 256, 4, 1, 1)
GEMM_WGMMA_GATED(gemm_bf16_wgmma_gated_m256_n128, true, 256, 128, 4, 1, 1)
