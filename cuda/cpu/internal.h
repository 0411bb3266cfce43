/*
 * internal.h — helpers shared by the CPU library's translation units (not part of the ABI).
 *
 *  - olmo_cpu_fail(fmt, ...) formats a message into the thread-local error buffer and returns 1,
 *    so a check reads:  if (x == NULL) return FAIL("x is NULL");
 *  - fast_expf(x): exp(x) in fp32, written so that gcc auto-vectorizes it (no libm call, no
 *    fast-math needed). Range reduction x = n*ln2 + r with |r| <= ln2/2, a degree-6 polynomial
 *    (FMA) for e^r and 2^n built in the exponent bits. Max relative error ~2 ulp; exactly 0
 *    below -87.3 (where softmax probabilities are 0 in fp32 anyway), +inf above ~88.4, NaN -> NaN.
 *  - f32x8: eight fp32 lanes for loops that hold running sums or maxima in registers.
 */
#ifndef OLMO_CPU_INTERNAL_H
#define OLMO_CPU_INTERNAL_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "olmo.h"

/* Without this, gcc refuses to if-convert float selects followed by arithmetic (it could raise an
 * FP exception on the untaken path), which kept fast_expf and the clamps out of SIMD. Nothing here
 * relies on FP traps; results are unchanged. */
#pragma GCC optimize("no-trapping-math")

int olmo_cpu_fail(const char* fn, const char* fmt, ...)
    __attribute__((format(printf, 2, 3), visibility("hidden")));
#define FAIL(...) olmo_cpu_fail(__func__, __VA_ARGS__)

/* The GEMM library chosen at build time: gemm_onednn.c (-DOLMO_GEMM_ONEDNN) or gemm_openblas.c.
 *  - olmo_cpu_gemm_name: "oneDNN" or "OpenBLAS" (olmo_device_name says it)
 *  - olmo_cpu_gemm_max_dim: the largest M, N or Kd its interface takes
 *  - olmo_cpu_gemm_setup(): idempotent; OpenBLAS is pinned to one thread (gemm.c splits C itself)
 *  - olmo_cpu_gemm_rowmajor(): C = op(A) op(B) + beta C, row-major; 0 or the library's error status */
extern const char olmo_cpu_gemm_name[] __attribute__((visibility("hidden")));
extern const int64_t olmo_cpu_gemm_max_dim __attribute__((visibility("hidden")));
void olmo_cpu_gemm_setup(void) __attribute__((visibility("hidden")));
int olmo_cpu_gemm_rowmajor(int transA, int transB, int64_t M, int64_t N, int64_t Kd, const float* A,
                           int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                           int64_t ldc) __attribute__((visibility("hidden")));

/* Argument checks; each returns from the calling function with a message naming the argument. */
#define CHECK_PTR(p) \
  do { if ((p) == NULL) return FAIL("%s is NULL", #p); } while (0)
#define CHECK_NONNEG(n) \
  do { if ((n) < 0) return FAIL("%s = %lld is negative", #n, (long long)(n)); } while (0)
#define CHECK_POS(n) \
  do { if ((n) <= 0) return FAIL("%s = %lld must be positive", #n, (long long)(n)); } while (0)
/* A pointer may be NULL only when the tensor it points to is empty. */
#define CHECK_PTR_IF(p, count) \
  do { if ((count) > 0 && (p) == NULL) return FAIL("%s is NULL", #p); } while (0)

/* Eight fp32 lanes (one AVX2 register) through GCC's vector extensions: element-wise operations
 * exactly like the scalar ones (a * b + c stays a multiply and an add under -ffp-contract=off), so
 * a loop that keeps running sums in these instead of in memory gives the same bits. A scalar
 * operand is broadcast. Loads and stores are unaligned. */
typedef float f32x8 __attribute__((vector_size(32)));
static inline f32x8 f32x8_load(const float* p) {
  f32x8 x;
  memcpy(&x, p, sizeof x);
  return x;
}
static inline void f32x8_store(float* p, f32x8 x) { memcpy(p, &x, sizeof x); }
typedef int32_t i32x8 __attribute__((vector_size(32)));

/* Elementwise loops below this size stay on one thread (thread wake-up costs more than the work). */
#define OLMO_PAR_MIN 32768

static inline float fast_expf(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  /* t = x*log2e + 1.5*2^23 rounds x*log2e to an integer n held in t's low mantissa bits, so n comes
   * out with integer ops (no float->int conversion, no float clamps for gcc to mis-vectorize). */
  float t = x * log2e + 12582912.0f;
  float n = t - 12582912.0f;
  int32_t ti;
  memcpy(&ti, &t, sizeof ti);
  int32_t ni = ti - 0x4B400000;
  ni = ni < -126 ? -126 : ni; /* below -87.3 the result is masked to 0 anyway */
  ni = ni > 128 ? 128 : ni;   /* 2^128 encodes +inf: overflow gives inf */
  float r = fmaf(n, -ln2_hi, x);
  r = fmaf(n, -ln2_lo, r);
  /* Cephes expf polynomial: e^r ~ 1 + r + r^2 * P(r),  |r| <= ln2/2 */
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  p = fmaf(p * r, r, r + 1.0f);
  int32_t bits = (ni + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  float res = p * scale;
  int32_t rb;
  memcpy(&rb, &res, sizeof rb);
  rb &= (int32_t)(x < -87.3f) - 1; /* exact 0 below -87.3 (no denormals); NaN stays NaN */
  memcpy(&res, &rb, sizeof res);
  return res;
}

/* fast_expf on eight lanes: the same operations in the same order, lane by lane (the FMAs are FMA
 * instructions, as fmaf compiles to under -march=x86-64-v3), so each lane's bits equal
 * fast_expf's. Written out because gcc's own vectorization of fast_expf in a 16-lane loop spilled
 * its constants to the stack and ran at ~2 cycles per element. */
static inline f32x8 fast_expf_x8(f32x8 x) {
  f32x8 t = x * 1.44269504088896341f + 12582912.0f;
  f32x8 n = t - 12582912.0f;
  i32x8 ni = (i32x8)t - 0x4B400000;
  /* the clamps: integer max/min are exactly `ni < -126 ? -126 : ni` and `ni > 128 ? 128 : ni` */
  ni = (i32x8)_mm256_max_epi32((__m256i)ni, _mm256_set1_epi32(-126));
  ni = (i32x8)_mm256_min_epi32((__m256i)ni, _mm256_set1_epi32(128));
  f32x8 r = (f32x8)_mm256_fmadd_ps((__m256)n, (__m256)((f32x8){0} - 0.693359375f), (__m256)x);
  r = (f32x8)_mm256_fmadd_ps((__m256)n, (__m256)((f32x8){0} + 2.12194440e-4f), (__m256)r);
#define FMA8(a, b, c) (f32x8) _mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)((f32x8){0} + (c)))
  f32x8 p = FMA8(r, (f32x8){0} + 1.9875691500e-4f, 1.3981999507e-3f);
  p = FMA8(p, r, 8.3334519073e-3f);
  p = FMA8(p, r, 4.1665795894e-2f);
  p = FMA8(p, r, 1.6666665459e-1f);
  p = FMA8(p, r, 5.0000001201e-1f);
#undef FMA8
  p = (f32x8)_mm256_fmadd_ps((__m256)(p * r), (__m256)r, (__m256)(r + 1.0f));
  f32x8 scale = (f32x8)((ni + 127) << 23);
  f32x8 res = p * scale;
  return (f32x8)((i32x8)res & ~(x < -87.3f)); /* exact 0 below -87.3; NaN stays NaN */
}

#endif /* OLMO_CPU_INTERNAL_H */
