// Lets clang's CUDA front end (no CUDA toolkit installed) parse the kernel sources for a syntax and type check on the CPU
// machine: the attribute macros, vector types and builtin variables that nvcc's headers would provide.
// Used only by tools/gpu/check-syntax.sh; the committed PTX always comes from nvcc (tools/gpu/build-ptx.sh).
#include <stddef.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#define __host__ __attribute__((host))
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __grid_constant__  // nvcc: a kernel parameter read in place (by address); clang-14 lacks the attribute
#define CUDA_VERSION 11050
#include "vector_types.h"
typedef unsigned int cuuint32_t;
#include <__clang_cuda_builtin_vars.h>
#include <__clang_cuda_libdevice_declares.h>
#include <__clang_cuda_device_functions.h>
#include <__clang_cuda_math.h>
#include <__clang_cuda_intrinsics.h>
static __device__ __forceinline__ float2 make_float2(float x, float y) { return float2{x, y}; }
static __device__ __forceinline__ float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static __device__ __forceinline__ int2 make_int2(int x, int y) { return int2{x, y}; }
static __device__ __forceinline__ int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static __device__ __forceinline__ uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
static __device__ __forceinline__ float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
static __device__ __forceinline__ int atomicMax(int* p, int v) { return __nvvm_atom_max_gen_i(p, v); }
static __device__ __forceinline__ unsigned atomicAdd(unsigned* p, unsigned v) { return (unsigned)__nvvm_atom_add_gen_i((int*)p, (int)v); }
extern "C" __device__ int printf(const char*, ...);  // nvcc's device printf (vprintf underneath)
static __device__ __forceinline__ unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return (unsigned long long)__nvvm_atom_add_gen_ll((long long*)p, (long long)v);
}
// nvcc's cache-global loads (ld.global.cg), which clang-14's headers lack: one overload a type, by its component count.
#define SHIM_LDCG1(T, TYPE, C)                                                                                          \
    static __device__ __forceinline__ T __ldcg(const T* p) {                                                           \
        T v;                                                                                                            \
        asm("ld.global.cg." TYPE " %0, [%1];" : "=" C(v) : "l"(p));                                                     \
        return v;                                                                                                       \
    }
#define SHIM_LDCG2(T, TYPE, C)                                                                                          \
    static __device__ __forceinline__ T __ldcg(const T* p) {                                                           \
        T v;                                                                                                            \
        asm("ld.global.cg.v2." TYPE " {%0, %1}, [%2];" : "=" C(v.x), "=" C(v.y) : "l"(p));                              \
        return v;                                                                                                       \
    }
#define SHIM_LDCG4(T, TYPE, C)                                                                                          \
    static __device__ __forceinline__ T __ldcg(const T* p) {                                                           \
        T v;                                                                                                            \
        asm("ld.global.cg.v4." TYPE " {%0, %1, %2, %3}, [%4];" : "=" C(v.x), "=" C(v.y), "=" C(v.z), "=" C(v.w) : "l"(p)); \
        return v;                                                                                                       \
    }
SHIM_LDCG1(float, "f32", "f")
SHIM_LDCG1(unsigned, "u32", "r")
SHIM_LDCG2(uint2, "u32", "r")
SHIM_LDCG2(float2, "f32", "f")
SHIM_LDCG4(float4, "f32", "f")
SHIM_LDCG4(int4, "s32", "r")
