/*
 * norm.c — RMSNorm with a weight (also used as OLMo-2's full-width QK-norm).
 *
 *   forward:  rstd[i] = 1 / sqrt(mean_j x[i,j]^2 + eps)
 *             out[i,j] = w[j] * (x[i,j] * rstd[i])                        (out may alias x)
 *   backward: xhat = x * rstd,  g = w * dout
 *             dx[i,j] = rstd[i] * (g[i,j] - xhat[i,j] * mean_j(g[i,:] * xhat[i,:]))
 *             dw[j]  += sum_i dout[i,j] * xhat[i,j]                        (dx may alias dout)
 *
 * Row statistics are fp32 (the ABI's rule) with a vectorized reduction. dw is computed first, by
 * column blocks walking rows in order (deterministic for any thread count), because dx may
 * overwrite dout afterwards.
 */
#include <math.h>

#include "internal.h"

int olmo_rmsnorm_forward(void* out_NC, float* rstd_N, const void* x_NC, const void* w_C, int64_t N,
                         int64_t C, float eps) {
  CHECK_NONNEG(N);
  CHECK_POS(C);
  CHECK_PTR_IF(out_NC, N);
  CHECK_PTR_IF(rstd_N, N);
  CHECK_PTR_IF(x_NC, N);
  CHECK_PTR(w_C);
  float* out = out_NC;
  const float* x = x_NC;
  const float* w = w_C;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float* xi = x + i * C;
    float* oi = out + i * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < C; j++) ss += xi[j] * xi[j];
    float r = 1.0f / sqrtf(ss / (float)C + eps);
    rstd_N[i] = r;
#pragma omp simd
    for (int64_t j = 0; j < C; j++) oi[j] = w[j] * (xi[j] * r);
  }
  return 0;
}

#define NORM_COLS 16

int olmo_rmsnorm_backward(void* dx_NC, float* dw_C, const void* dout_NC, const void* x_NC,
                          const void* w_C, const float* rstd_N, int64_t N, int64_t C) {
  CHECK_NONNEG(N);
  CHECK_POS(C);
  CHECK_PTR_IF(dx_NC, N);
  CHECK_PTR(dw_C);
  CHECK_PTR_IF(dout_NC, N);
  CHECK_PTR_IF(x_NC, N);
  CHECK_PTR(w_C);
  CHECK_PTR_IF(rstd_N, N);
  float* dx = dx_NC;
  const float* dout = dout_NC;
  const float* x = x_NC;
  const float* w = w_C;
  int64_t nblocks = (C + NORM_COLS - 1) / NORM_COLS;
  /* 1) dw before dx: dx may alias dout. */
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t blk = 0; blk < nblocks; blk++) {
    int64_t c0 = blk * NORM_COLS;
    int64_t c1 = c0 + NORM_COLS < C ? c0 + NORM_COLS : C;
    float acc[NORM_COLS] = {0};
    for (int64_t i = 0; i < N; i++) {
      const float* di = dout + i * C;
      const float* xi = x + i * C;
      float r = rstd_N[i];
      for (int64_t c = c0; c < c1; c++) acc[c - c0] += di[c] * (xi[c] * r);
    }
    for (int64_t c = c0; c < c1; c++) dw_C[c] += acc[c - c0];
  }
  /* 2) dx row by row. */
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float* di = dout + i * C;
    const float* xi = x + i * C;
    float* dxi = dx + i * C;
    float r = rstd_N[i];
    float dot = 0.0f; /* sum_j g*xhat */
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < C; j++) dot += w[j] * di[j] * (xi[j] * r);
    float mean = dot / (float)C;
#pragma omp simd
    for (int64_t j = 0; j < C; j++) dxi[j] = r * (w[j] * di[j] - (xi[j] * r) * mean);
  }
  return 0;
}
