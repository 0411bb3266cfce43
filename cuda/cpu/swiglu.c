/*
 * swiglu.c — SwiGLU on a fused [gate | up] projection.
 *
 * gu is [N, 2F]: gate = gu[i, 0:F], up = gu[i, F:2F].
 *   forward:  out[i,j] = silu(g) * u,   silu(g) = g * sigmoid(g),  sigmoid(g) = 1/(1+e^-g)
 *   backward: dg = dout * u * sigmoid(g) * (1 + g * (1 - sigmoid(g)))     (d silu / dg)
 *             du = dout * silu(g)
 */
#include "internal.h"

int olmo_swiglu_forward(void* out_NF, const void* gu_N2F, int64_t N, int64_t F) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(F);
  CHECK_PTR_IF(out_NF, N * F);
  CHECK_PTR_IF(gu_N2F, N * F);
  float* out = out_NF;
  const float* gu = gu_N2F;
#pragma omp parallel for schedule(static) if (N * F > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float* g = gu + i * 2 * F;
    const float* u = g + F;
    float* o = out + i * F;
#pragma omp simd
    for (int64_t j = 0; j < F; j++) {
      float sig = 1.0f / (1.0f + fast_expf(-g[j]));
      o[j] = g[j] * sig * u[j];
    }
  }
  return 0;
}

int olmo_swiglu_backward(void* dgu_N2F, const void* dout_NF, const void* gu_N2F, int64_t N,
                         int64_t F) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(F);
  CHECK_PTR_IF(dgu_N2F, N * F);
  CHECK_PTR_IF(dout_NF, N * F);
  CHECK_PTR_IF(gu_N2F, N * F);
  float* dgu = dgu_N2F;
  const float* dout = dout_NF;
  const float* gu = gu_N2F;
#pragma omp parallel for schedule(static) if (N * F > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float* g = gu + i * 2 * F;
    const float* u = g + F;
    const float* d = dout + i * F;
    float* dg = dgu + i * 2 * F;
    float* du = dg + F;
#pragma omp simd
    for (int64_t j = 0; j < F; j++) {
      float sig = 1.0f / (1.0f + fast_expf(-g[j]));
      float silu = g[j] * sig;
      float gj = g[j], uj = u[j], dj = d[j]; /* read before writing: dgu may alias gu */
      dg[j] = dj * uj * sig * (1.0f + gj * (1.0f - sig));
      du[j] = dj * silu;
    }
  }
  return 0;
}
