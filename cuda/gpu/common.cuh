/*
 * common.cuh — shared state and helpers of libolmo_cuda.so.
 *
 * Error model: every exported function returns 0 or a nonzero status and sets a thread-local
 * message (olmo_set_error). CUDA runtime calls go through OLMO_CUDA(...), which converts a failing
 * cudaError_t into status 1 plus "file:line: call: cudaErrorName: description". Kernel launches
 * are asynchronous; OLMO_LAUNCH_CHECK() catches launch-configuration errors right away, errors that
 * happen while a kernel runs surface at olmo_synchronize(). Kernels that detect bad input (a token
 * id outside [0,V), a target >= V) set a flag in a device error word (g_state.err_word) that
 * olmo_synchronize() reads and clears.
 *
 * Math helpers: bf16 <-> fp32 conversions (round-to-nearest-even via cuda_bf16.h), 128-bit
 * packed loads of 8 bf16, warp/block sum and max reductions (fp32, shuffles then shared memory).
 */
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <stddef.h>
#include "olmo.h"

typedef __nv_bfloat16 bf16;

/* Device error word bits (OR-ed by kernels, read at olmo_synchronize). */
#define OLMO_ERRBIT_TOKEN 1u  /* embedding: token id outside [0, V) */
#define OLMO_ERRBIT_TARGET 2u /* cross-entropy: target >= V */

struct OlmoState {
  bool initialized = false;
  int device = -1;
  cudaStream_t stream = nullptr;
  void* workspace = nullptr; /* cuBLASLt workspace */
  size_t workspace_bytes = 0;
  unsigned int* err_word = nullptr; /* device, 1 word */
  int num_sms = 0;
  size_t max_smem_optin = 0;
};
#define OLMO_INTERNAL __attribute__((visibility("hidden")))
extern OlmoState g_state OLMO_INTERNAL;

/* Thread-local error message; always returns status (1 unless given). */
OLMO_INTERNAL int olmo_set_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
OLMO_INTERNAL int olmo_cuda_error(cudaError_t e, const char* what, const char* file, int line);

#define OLMO_CUDA(call)                                                     \
  do {                                                                      \
    cudaError_t olmo_e_ = (call);                                           \
    if (olmo_e_ != cudaSuccess) return olmo_cuda_error(olmo_e_, #call, __FILE__, __LINE__); \
  } while (0)

/* After a <<<>>> launch: configuration errors (too much smem, bad grid) show up here. */
#define OLMO_LAUNCH_CHECK(name)                                             \
  do {                                                                      \
    cudaError_t olmo_e_ = cudaGetLastError();                               \
    if (olmo_e_ != cudaSuccess) return olmo_cuda_error(olmo_e_, name, __FILE__, __LINE__); \
  } while (0)

/* Every kernel launcher starts with this: the library must be initialized. */
#define OLMO_REQUIRE_INIT()                                                 \
  do {                                                                      \
    if (!g_state.initialized) return olmo_set_error("olmo_init() has not been called"); \
  } while (0)

#define OLMO_REQUIRE(cond, ...)                                             \
  do {                                                                      \
    if (!(cond)) return olmo_set_error(__VA_ARGS__);                        \
  } while (0)

/* Grid size for a grid-stride loop over n items with `threads` per block. */
static inline unsigned int olmo_grid(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  int64_t cap = (int64_t)(g_state.num_sms > 0 ? g_state.num_sms : 132) * 32;
  if (b > cap) b = cap;
  if (b < 1) b = 1;
  return (unsigned int)b;
}

static inline bool olmo_aligned16(const void* p) { return ((uintptr_t)p & 15u) == 0; }

/* ------------------------------------------------------------------ device helpers */
__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16_rn(x); }

/* 8 bf16 in one 128-bit word. */
struct __align__(16) bf16x8 {
  bf16 v[8];
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Block-wide sum; every thread gets the result. `sh` holds >= 32 floats. blockDim.x % 32 == 0. */
__device__ __forceinline__ float block_sum(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads(); /* sh may still be read from a previous call */
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  float r = lane < nw ? sh[lane] : 0.f;
  return warp_sum(r);
}
__device__ __forceinline__ float block_max(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  float r = lane < nw ? sh[lane] : -INFINITY;
  return warp_max(r);
}

/* Library-owned scratch buffers, grown on demand (growth synchronizes the stream once).
 * slot: a small constant per user so buffers do not collide. */
enum { OLMO_SCRATCH_RMSNORM = 0, OLMO_SCRATCH_NORMSQ = 1, OLMO_SCRATCH_ATTN = 2, OLMO_SCRATCH_ATTN2 = 3,
       OLMO_SCRATCH_SLOTS = 4 };
OLMO_INTERNAL int olmo_scratch(int slot, size_t bytes, void** out);
