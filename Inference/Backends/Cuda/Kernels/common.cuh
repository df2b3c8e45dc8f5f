// common.cuh — helpers shared by every kernel file of the CUDA backend.
//
// Written so that both nvcc (which makes the committed PTX, target sm_80) and clang's CUDA front end (the CPU-side syntax
// check, tools/gpu/check-syntax.sh) compile it: conversions, dp4a and mma go through inline PTX rather than cuda_fp16.h /
// mma.h, so no toolkit header is needed. Every kernel is extern "C" so the host finds it by its plain name.
#pragma once

#define FULL_MASK 0xffffffffu

// Programmatic dependent launch (Hopper, sm_90+). On such devices the host launches every kernel with the
// programmatic-stream-serialization attribute (CudaKernel.Launch), so a kernel may start while the one before it in the
// stream is still running. The rule that keeps that correct: every kernel calls pdl_wait() before it reads anything an
// earlier kernel wrote or writes anything an earlier kernel reads. griddepcontrol.wait returns once the previous kernel
// has finished and its writes are visible, and since that kernel waited in turn, "everything before has finished" holds
// down the whole stream. Only loads of what no kernel writes (weights) may come first: the GEMVs issue their first weight
// loads before waiting, which hides the previous kernel's tail and this kernel's ramp-up; in a decode-only step the
// tensor-core decode attention copies earlier steps' keys and values first (attention.cu, earlyKv), which only earlier
// steps wrote, and the step's metadata, copied in before its first kernel. Right after the wait each kernel
// calls pdl_launch_dependents(), letting the next kernel's blocks become resident and begin their own prologue (one
// kernel ahead, not a cascade: the next one cannot pass its own wait, and so cannot trigger, before this one ends; two
// ahead where a small kernel lets its dependent in before its own wait, pdl_start(true) below).
// Both are no-ops in the sm_80 build and when a kernel is launched without the attribute.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
#else
__device__ __forceinline__ void pdl_wait() {}
__device__ __forceinline__ void pdl_launch_dependents() {}
#endif

// The start of every kernel that has nothing to load before the previous kernel ends.
__device__ __forceinline__ void pdl_start() {
    pdl_wait();
    pdl_launch_dependents();
}

// pdl_start with the next kernel let in before the wait (dependentsFirst): for the small kernels between two weight
// GEMVs (attention_reduce, silu_mul), so that the GEMV after them becomes resident and streams its weights while the
// kernel before them still runs (attention, the gate/up GEMV's last wave), not only while they do. Still correct: that
// GEMV reads nothing but weights before its own wait, which returns only once this kernel has ended, and this one ends
// only after its own wait. Two kernels ahead at most: the GEMV lets its dependents in only after its wait. Safe for
// residency because this kernel starts only once every block of the one before it has started (or ended).
__device__ __forceinline__ void pdl_start(bool dependentsFirst) {
    if (dependentsFirst) pdl_launch_dependents();
    pdl_wait();
    if (!dependentsFirst) pdl_launch_dependents();
}

// Weight layouts on the device (CudaWeightLayout in C# carries the same numbers).
#define LAYOUT_F32 0
#define LAYOUT_F16 1
#define LAYOUT_BF16 2
#define LAYOUT_INT8 3    // 32 signed int8 codes per block, code offset already subtracted (Q8_0, Q5_0, Q5_K, Q6_K)
#define LAYOUT_NIBBLE 4  // 16 bytes per 32-code block, byte j = code j | code (j+16) << 4, unsigned (Q4_0, Q4_K)

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// c ? a : b as one selp. Written in PTX because clang turns the select of two array elements into a load through a
// selected address, which keeps the array in local memory.
__device__ __forceinline__ float select_float(bool c, float a, float b) {
    float r;
    asm("{\n\t.reg .pred c;\n\tsetp.ne.b32 c, %3, 0;\n\tselp.f32 %0, %1, %2, c;\n\t}" : "=f"(r) : "f"(a), "f"(b), "r"((int)c));
    return r;
}

// Sums N partial values per lane (v[i]: row i) over the warp so that lane l ends with row l / (32 / N)'s total
// (replicated in 32 / N lanes): log2 N transpose steps, each sending half of the remaining values to the partner lane and
// keeping the other half, then plain xor steps over the lanes that share a row. N + … + 2 + log2(32 / N) shuffles (9 for
// 8 rows, where 8 warp_sums take 40). Each total adds the same pairs in the same tree as warp_sum of that row: bit for bit.
template <int N>
__device__ __forceinline__ float transpose_sum(float (&v)[N], int lane) {
#pragma unroll
    for (int n = N, offset = 16; n > 1; n /= 2, offset /= 2) {
        const bool upper = lane & offset;  // the upper lane keeps rows n/2…n−1 of the remaining ones
#pragma unroll
        for (int i = 0; i < n / 2; i++) {
            const float send = select_float(upper, v[i], v[i + n / 2]);
            const float keep = select_float(upper, v[i + n / 2], v[i]);
            v[i] = keep + __shfl_xor_sync(FULL_MASK, send, offset);
        }
    }
#pragma unroll
    for (int offset = 16 / N; offset > 0; offset /= 2) v[0] += __shfl_xor_sync(FULL_MASK, v[0], offset);
    return v[0];
}

__device__ __forceinline__ int warp_sum_int(int v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// Activations to int8 blocks of 32 (llama.cpp's q8_1 idea), one block per warp, lane j holding value j: d = max|x| / 127,
// codes round(x / d) (to nearest even, as the CPU's cvtps2dq), and d·Σcodes, which undoes weight code offsets and K-quant
// mins. codes [rows][columns] int8; scaleSums [rows][columns / 32] float2 {d, d·Σq}.
__device__ __forceinline__ void quantize_block(float x, signed char* codes, float2* scaleSums, long long block) {
    const int lane = threadIdx.x % 32;
    const float amax = warp_max(fabsf(x));
    const float d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int q = __float2int_rn(x * id);
    codes[block * 32 + lane] = (signed char)q;
    const int sum = warp_sum_int(q);
    if (lane == 0) scaleSums[block] = make_float2(d, d * (float)sum);
}

// quantize_block with 4 consecutive values per lane, 8 lanes a block (lane groups 0–7, 8–15, …, every lane of a group
// active): the same d, codes and d·Σcodes, for kernels that hold their outputs as float4 (attention_reduce).
// value: the index of v.x in the row-major [rows][columns] output, a multiple of 4.
__device__ __forceinline__ void quantize_block4(float4 v, signed char* codes, float2* scaleSums, long long value) {
    const unsigned group = 0xFFu << (threadIdx.x % 32 & 24);
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(group, amax, o));
    const float d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int q0 = __float2int_rn(v.x * id), q1 = __float2int_rn(v.y * id), q2 = __float2int_rn(v.z * id), q3 = __float2int_rn(v.w * id);
    ((int*)codes)[value / 4] = (q0 & 0xFF) | (q1 & 0xFF) << 8 | (q2 & 0xFF) << 16 | (int)((unsigned)(q3 & 0xFF) << 24);
    int sum = q0 + q1 + q2 + q3;
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) sum += __shfl_xor_sync(group, sum, o);
    if ((threadIdx.x & 7) == 0) scaleSums[value / 32] = make_float2(d, d * (float)sum);
}

__device__ __forceinline__ float half_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ float bf16_to_float(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }

// OCP FP8 E4M3 (the "fn" variant: bias 7, 3 mantissa bits, no infinities, 0x7F/0xFF NaN, largest finite ±448), the
// element of an fp8 KV cache (vLLM's unscaled `fp8`). The same steps as the CPU's Float8E4M3Row.Round, so both backends
// store the same codes: NaN stays NaN, magnitudes from 448 up saturate to ±448, subnormals (multiples of 2⁻⁹) round to
// nearest even as an integer, normals keep 3 mantissa bits rounding to nearest even through the carry. Written with integer
// operations rather than cvt.rn.satfinite.e4m3x2.f32, which needs sm_89 (the sm_80 build runs everywhere).
__device__ __forceinline__ unsigned char fp8_e4m3_round(float x) {
    const unsigned bits = __float_as_uint(x);
    const unsigned sign = (bits >> 24) & 0x80;
    const unsigned magnitude = bits & 0x7FFFFFFF;
    if (magnitude > 0x7F800000) return (unsigned char)(sign | 0x7F);
    const float m = __uint_as_float(magnitude);
    if (m >= 448.0f) return (unsigned char)(sign | 0x7E);
    if (m < 0.015625f) return (unsigned char)(sign | (unsigned)__float2int_rn(m * 512.0f));
    const int code = (int)((magnitude + 0x7FFFF + ((magnitude >> 20) & 1)) >> 20) - ((127 - 7) << 3);
    return (unsigned char)(sign | (unsigned)min(code, 0x7E));
}

// An E4M3 code as float, exactly: exponent and mantissa moved into float position and scaled by 2¹²⁰ (the difference of
// the biases, which also makes E4M3 subnormals come out right); NaN codes give NaN.
__device__ __forceinline__ float fp8_e4m3_to_float(unsigned code) {
    const unsigned magnitude = code & 0x7F;
    const float v = magnitude == 0x7F ? __uint_as_float(0x7FC00000) : __uint_as_float(magnitude << 20) * __uint_as_float(0x7B800000);
    return code & 0x80 ? -v : v;
}

// Two floats to a packed f16x2 / bf16x2 register (round to nearest even), the operand format of mma.sync.
__device__ __forceinline__ unsigned pack_half2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

__device__ __forceinline__ unsigned pack_bf162(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// One value rounded (to nearest even) to f16, or bf16 when bf16 != 0: the 16 bits of the half GEMM's operands.
__device__ __forceinline__ unsigned short round_half(float x, int bf16) {
    return (unsigned short)((bf16 ? pack_bf162(x, 0.0f) : pack_half2(x, 0.0f)) & 0xFFFF);
}

// One adjacent-pair RoPE rotation, (x0, x1) -> (x0·c − x1·s, x0·s + x1·c), with the roundings pinned (mul.rn/sub.rn/fma.rn
// are never re-contracted by nvcc or ptxas): rope_store_kv_body and the q/k/v GEMV's epilogue give the same bits.
__device__ __forceinline__ float rope_first(float x0, float x1, float c, float s) { return __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)); }
__device__ __forceinline__ float rope_second(float x0, float x1, float c, float s) { return __fmaf_rn(x0, s, __fmul_rn(x1, c)); }

// Four int8 products summed into an int32 (sm_61+).
__device__ __forceinline__ int dp4a(int a, int b, int c) {
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
// The same with a's four bytes unsigned (0–255).
__device__ __forceinline__ int dp4a_us(unsigned a, int b, int c) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

// A quantized weight's block scales: f16 where a block has one scale and no min (Q8_0, Q5_0, Q4_0: ggml's own f16 d,
// stored as it is in the file, 2 bytes a block rather than 4), float32 otherwise (the K-quants' products of an f16 d and
// a 6-bit sub-scale, and Q6_K's two scales a block). CudaWeight.HasHalfScales is the host's side of the same rule.
__host__ __device__ constexpr bool half_scales(int scalesPerBlock, bool hasMins) { return scalesPerBlock == 1 && !hasMins; }

template <bool HALF>
__device__ __forceinline__ float load_scale(const void* scales, long long i) {
    if constexpr (HALF) return half_to_float(__ldg((const unsigned short*)scales + i));
    else return __ldg((const float*)scales + i);
}

// One value of a weight row in any layout (embedding lookup; slow paths).
__device__ __forceinline__ float weight_value(const unsigned char* codes, const void* scales, const float* mins, int layout,
                                              int scalesPerBlock, int offset, long long row, int columns, int i) {
    switch (layout) {
    case LAYOUT_F32: return ((const float*)codes)[row * columns + i];
    case LAYOUT_F16: return half_to_float(((const unsigned short*)codes)[row * columns + i]);
    case LAYOUT_BF16: return bf16_to_float(((const unsigned short*)codes)[row * columns + i]);
    default: break;
    }
    const int blocks = columns / 32;
    const int block = i / 32, j = i % 32;
    int code;
    if (layout == LAYOUT_INT8) {
        code = (int)((const signed char*)codes)[row * columns + i];
    } else {
        const unsigned char b = codes[(row * blocks + block) * 16 + (j & 15)];
        code = (j < 16 ? (b & 15) : (b >> 4)) - offset;
    }
    const long long s = (row * blocks + block) * scalesPerBlock + (scalesPerBlock == 2 ? j / 16 : 0);
    const float scale = half_scales(scalesPerBlock, mins) ? load_scale<true>(scales, s) : load_scale<false>(scales, s);
    const float min = mins ? mins[row * blocks + block] : 0.0f;
    return scale * (float)code - min;
}

// A generic pointer to shared memory as the 32-bit shared-window address cp.async takes.
__device__ __forceinline__ unsigned shared_address(const void* p) {
    unsigned long long a;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
    return (unsigned)a;
}

// cp.async (sm_80+): copies global → shared memory without passing through registers, in groups the thread commits
// and later waits for (all but the newest N groups complete); a false `valid` copies nothing and zero-fills the destination.
__device__ __forceinline__ void cp_async16_shared(unsigned shared, const void* global, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared), "l"(global), "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp_async16(void* shared, const void* global, bool valid) {
    cp_async16_shared(shared_address(shared), global, valid);
}

__device__ __forceinline__ void cp_async4(void* shared, const void* global, bool valid) {
    const unsigned s = shared_address(shared);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(s), "l"(global), "r"(valid ? 4 : 0));
}

__device__ __forceinline__ void cp_async8(void* shared, const void* global, bool valid) {
    const unsigned s = shared_address(shared);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(s), "l"(global), "r"(valid ? 8 : 0));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

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

// A nibble unit (one 32-code block, 16 bytes: byte i holds code i in its low nibble, code 16 + i in its high one) dotted
// with an activation block (xa: values 0–15, xb: 16–31): dot_block's sums, bit for bit. The high nibbles are masked where
// they are, read as unsigned bytes (16 × the code) and their sum shifted back by 4: exact, as every product is a multiple
// of 16 and |Σ| ≤ 16 · 240 · 128 fits an int; one shift a block where moving each word's nibbles down took four. Done
// where the codes are used, not where they are loaded: units in flight are held as their 4 loaded ints, not 8 (the one-row
// nibble kernel: 124 → 89 registers, 5 blocks an SM instead of 4).
__device__ __forceinline__ BlockDot dot_nibbles(const int4 v, const int4 xa, const int4 xb) {
    constexpr int LOW = 0x0F0F0F0F;
    constexpr unsigned HIGH = 0xF0F0F0F0u;
    BlockDot r;
    r.lo = dp4a(v.x & LOW, xa.x, dp4a(v.y & LOW, xa.y, dp4a(v.z & LOW, xa.z, dp4a(v.w & LOW, xa.w, 0))));
    r.hi = dp4a_us(v.x & HIGH, xb.x, dp4a_us(v.y & HIGH, xb.y, dp4a_us(v.z & HIGH, xb.z, dp4a_us(v.w & HIGH, xb.w, 0)))) >> 4;
    return r;
}

// mbarriers and bulk copies (sm_90: the Hopper GEMM's and the persistent decode kernel's pipelines; only those files,
// built for sm_90a alone, use them).
__device__ __forceinline__ void mbarrier_init(unsigned bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// The producer's arrival, announcing `bytes` the stage's copies will deliver.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase of the given parity (0 for its 1st, 3rd, … completion) has completed.
__device__ __forceinline__ void mbarrier_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n.reg .pred done;\nWAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                 "@!done bra WAIT;\n}" ::"r"(bar), "r"(parity) : "memory");
}

// `bytes` (a multiple of 16, both addresses 16-byte aligned) from global memory into shared memory at `to` by the copy
// engine, completing on the mbarrier `bar` (whose expected transaction bytes the caller has raised by as much).
__device__ __forceinline__ void bulk_copy(unsigned to, const void* from, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(to), "l"(from), "r"(bytes), "r"(bar) : "memory");
}
