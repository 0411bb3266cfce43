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
 * overwrite dout afterwards. The row loops live in rows.h: tp.c's split RMSNorm (tensor
 * parallelism) runs the same ones, so the two agree bitwise.
 */
#include <math.h>

#include "rows.h"

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
    float r = 1.0f / sqrtf(row_sumsq(xi, C) / (float)C + eps);
    rstd_N[i] = r;
    rms_scale_row(out + i * C, xi, w, r, C);
  }
  return 0;
}

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
  rms_dw_cols(dw_C, dout, x, rstd_N, N, C); /* 1) dw before dx: dx may alias dout. */
  /* 2) dx row by row. */
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float* di = dout + i * C;
    const float* xi = x + i * C;
    float r = rstd_N[i];
    float mean = rms_bwd_dot_row(di, xi, w, r, C) / (float)C;
    rms_bwd_dx_row(dx + i * C, di, xi, w, r, mean, C);
  }
  return 0;
}
