/*
 * adamw.c — global gradient norm and the AdamW update.
 *
 * olmo_norm_squared:  out[0] (+)= sum_i x_i^2, accumulated in double over fixed 64K-element
 *   blocks, the block sums added in order: bitwise reproducible for any thread count.
 * olmo_adamw (decoupled weight decay; bc1/bc2 from the caller, PyTorch's operation order):
 *   g = grad * grad_scale
 *   p *= 1 - lr * wd
 *   m = b1 m + (1 - b1) g;      v = b2 v + (1 - b2) g^2
 *   p += -(lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 *   param_act (if given and distinct; act == f32 here) receives a copy of p.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define NSQ_BLOCK 65536

int olmo_norm_squared(float* out, const float* x, int64_t n, int accumulate) {
  CHECK_PTR(out);
  CHECK_NONNEG(n);
  CHECK_PTR_IF(x, n);
  int64_t nb = (n + NSQ_BLOCK - 1) / NSQ_BLOCK;
  double stack_parts[64];
  double* parts = nb <= 64 ? stack_parts : malloc((size_t)nb * sizeof(double));
  if (!parts) return FAIL("out of host memory (%lld blocks)", (long long)nb);
#pragma omp parallel for schedule(static) if (nb > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t i0 = b * NSQ_BLOCK, i1 = i0 + NSQ_BLOCK < n ? i0 + NSQ_BLOCK : n;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < i1; i++) s += (double)x[i] * (double)x[i];
    parts[b] = s;
  }
  double total = accumulate ? (double)out[0] : 0.0;
  for (int64_t b = 0; b < nb; b++) total += parts[b];
  if (parts != stack_parts) free(parts);
  out[0] = (float)total;
  return 0;
}

int olmo_adamw(float* param, void* param_act, const float* grad, float* m, float* v, int64_t n,
               float lr, float beta1, float beta2, float eps, float weight_decay, float bc1,
               float bc2, float grad_scale) {
  CHECK_NONNEG(n);
  CHECK_PTR_IF(param, n);
  CHECK_PTR_IF(grad, n);
  CHECK_PTR_IF(m, n);
  CHECK_PTR_IF(v, n);
  if (!(bc1 > 0.0f) || !(bc2 > 0.0f))
    return FAIL("bias corrections must be positive (bc1=%g, bc2=%g)", (double)bc1, (double)bc2);
  const float decay = 1.0f - lr * weight_decay;
  const float step = lr / bc1;
  const float sqrt_bc2 = sqrtf(bc2);
  float* act = (param_act != NULL && param_act != (void*)param) ? param_act : NULL;
  /* Eight elements at a time, each lane the scalar tail's operations: gcc left the plain loop
   * scalar (sqrtf's errno branch is control flow), ~3x slower than memory. The vector square
   * root and division are IEEE exact like the scalar ones, so the bits are the same. */
  const int64_t n8 = n / 8 * 8;
#pragma omp parallel for schedule(static) if (n > OLMO_PAR_MIN)
  for (int64_t i = 0; i < n8; i += 8) {
    f32x8 g = f32x8_load(grad + i) * grad_scale;
    f32x8 p = f32x8_load(param + i) * decay;
    f32x8 mi = beta1 * f32x8_load(m + i) + (1.0f - beta1) * g;
    f32x8 vi = beta2 * f32x8_load(v + i) + (1.0f - beta2) * g * g;
    f32x8_store(m + i, mi);
    f32x8_store(v + i, vi);
    p += -step * (mi / ((f32x8)_mm256_sqrt_ps((__m256)vi) / sqrt_bc2 + eps));
    f32x8_store(param + i, p);
  }
  for (int64_t i = n8; i < n; i++) {
    float g = grad[i] * grad_scale;
    float p = param[i] * decay;
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p += -step * (mi / (sqrtf(vi) / sqrt_bc2 + eps));
    param[i] = p;
  }
  if (act) memcpy(act, param, (size_t)n * sizeof(float));
  return 0;
}
