/*
 * tp.c — the kernels tensor parallelism adds (see olmo.h "tensor parallelism"):
 *
 *   split RMSNorm (the full-width QK-norm when a rank holds C of the Cfull columns):
 *     olmo_row_sumsq:        ss[i] = sum_j x[i,j]^2                       (all-reduced over TP)
 *     olmo_rmsnorm_apply:    rstd[i] = 1/sqrt(ss[i]/Cfull + eps), out = w * x * rstd
 *     olmo_rmsnorm_bwd_dot:  dot[i] = sum_j w[j]*dout[i,j]*x[i,j]*rstd[i] (all-reduced over TP)
 *     olmo_rmsnorm_bwd_finish: dw += sum_i dout*xhat; dx = rstd*(w*dout - xhat*dot/Cfull)
 *   With Cfull = C and no all-reduce these are exactly olmo_rmsnorm_forward / _backward: both run
 *   the row loops in rows.h, so the reduction order is the same (bitwise equal).
 *
 *   vocab-parallel cross-entropy over a logit shard [N, Vloc] holding columns [v0, v0+Vloc):
 *     olmo_ce_stats:  m = max_j x_j, s = sum_j exp(x_j - m), tgt = x[t-v0] if t in the shard else 0
 *     olmo_ce_finish: given lse (combined over ranks) and tgt (summed over ranks):
 *                     ce = lse - tgt, lse_out = lse, logits <- grad_scale*(exp(x-lse)(1+2z lse) - [j+v0==t])
 *
 *   vocab-parallel embedding over rows [v0, v0+Vloc) of a [V, C] table:
 *     forward:  out[i,:] = wte_loc[tok-v0,:] if tok in the shard else 0   (sum over ranks = full)
 *     backward: dwte_loc[tok-v0,:] += dout[i,:] for tokens in the shard
 *   (the same gather / scatter-add as embedding.c, from rows.h)
 */
#include <math.h>

#include "rows.h"

/* The vocab shard [v0, v0+Vloc) must lie inside [0, V). */
static int check_shard(const char* fn, int64_t Vloc, int64_t v0, int64_t V) {
  if (v0 < 0) return olmo_cpu_fail(fn, "v0 = %lld is negative", (long long)v0);
  if (v0 + Vloc > V)
    return olmo_cpu_fail(fn, "shard [%lld, %lld) exceeds V=%lld", (long long)v0, (long long)(v0 + Vloc), (long long)V);
  return 0;
}

int olmo_row_sumsq(float* ss_N, const void* x_NC, int64_t N, int64_t C) {
  CHECK_NONNEG(N);
  CHECK_POS(C);
  CHECK_PTR_IF(ss_N, N);
  CHECK_PTR_IF(x_NC, N);
  const float* x = x_NC;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) ss_N[i] = row_sumsq(x + i * C, C);
  return 0;
}

int olmo_rmsnorm_apply(void* out_NC, float* rstd_N, const void* x_NC, const void* w_C, const float* ss_N,
                       int64_t N, int64_t C, int64_t Cfull, float eps) {
  CHECK_NONNEG(N);
  CHECK_POS(C);
  CHECK_POS(Cfull);
  CHECK_PTR_IF(out_NC, N);
  CHECK_PTR_IF(rstd_N, N);
  CHECK_PTR_IF(x_NC, N);
  CHECK_PTR_IF(ss_N, N);
  CHECK_PTR(w_C);
  float* out = out_NC;
  const float* x = x_NC;
  const float* w = w_C;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    float r = 1.0f / sqrtf(ss_N[i] / (float)Cfull + eps);
    rstd_N[i] = r;
    rms_scale_row(out + i * C, x + i * C, w, r, C);
  }
  return 0;
}

int olmo_rmsnorm_bwd_dot(float* dot_N, const void* dout_NC, const void* x_NC, const void* w_C,
                         const float* rstd_N, int64_t N, int64_t C) {
  CHECK_NONNEG(N);
  CHECK_POS(C);
  CHECK_PTR_IF(dot_N, N);
  CHECK_PTR_IF(dout_NC, N);
  CHECK_PTR_IF(x_NC, N);
  CHECK_PTR_IF(rstd_N, N);
  CHECK_PTR(w_C);
  const float* dout = dout_NC;
  const float* x = x_NC;
  const float* w = w_C;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) dot_N[i] = rms_bwd_dot_row(dout + i * C, x + i * C, w, rstd_N[i], C);
  return 0;
}

int olmo_rmsnorm_bwd_finish(void* dx_NC, float* dw_C, const void* dout_NC, const void* x_NC, const void* w_C,
                            const float* rstd_N, const float* dot_N, int64_t N, int64_t C, int64_t Cfull) {
  CHECK_NONNEG(N);
  CHECK_POS(C);
  CHECK_POS(Cfull);
  CHECK_PTR_IF(dx_NC, N);
  CHECK_PTR(dw_C);
  CHECK_PTR_IF(dout_NC, N);
  CHECK_PTR_IF(x_NC, N);
  CHECK_PTR_IF(rstd_N, N);
  CHECK_PTR_IF(dot_N, N);
  CHECK_PTR(w_C);
  float* dx = dx_NC;
  const float* dout = dout_NC;
  const float* x = x_NC;
  const float* w = w_C;
  rms_dw_cols(dw_C, dout, x, rstd_N, N, C); /* dw first: dx may alias dout */
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    float mean = dot_N[i] / (float)Cfull;
    rms_bwd_dx_row(dx + i * C, dout + i * C, x + i * C, w, rstd_N[i], mean, C);
  }
  return 0;
}

int olmo_ce_stats(float* max_N, float* sumexp_N, float* tgt_N, const void* logits_NV, const int32_t* targets_N,
                  int64_t N, int64_t Vloc, int64_t v0, int64_t V) {
  CHECK_NONNEG(N);
  if (N == 0) return 0;
  CHECK_POS(Vloc);
  if (check_shard(__func__, Vloc, v0, V)) return 1;
  CHECK_PTR(max_N);
  CHECK_PTR(sumexp_N);
  CHECK_PTR(tgt_N);
  CHECK_PTR(logits_NV);
  CHECK_PTR(targets_N);
  if (check_targets(__func__, targets_N, N, V)) return 1;
  const float* logits = logits_NV;
#pragma omp parallel for schedule(static) if (N * Vloc > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    const float* x = logits + i * Vloc;
    float mx = -INFINITY;
    for (int64_t j = 0; j < Vloc; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0.0;
    for (int64_t j = 0; j < Vloc; j++) s += (double)fast_expf(x[j] - mx);
    max_N[i] = mx;
    sumexp_N[i] = (float)s;
    int64_t t = targets_N[i];
    tgt_N[i] = (t >= v0 && t < v0 + Vloc) ? x[t - v0] : 0.0f;
  }
  return 0;
}

int olmo_ce_finish(void* logits_NV, float* ce_N, float* lse_N, const float* lse_in_N, const float* tgt_N,
                   const int32_t* targets_N, int64_t N, int64_t Vloc, int64_t v0, int64_t V, float z_mult,
                   float grad_scale) {
  CHECK_NONNEG(N);
  if (N == 0) return 0;
  CHECK_POS(Vloc);
  if (check_shard(__func__, Vloc, v0, V)) return 1;
  CHECK_PTR(logits_NV);
  CHECK_PTR(ce_N);
  CHECK_PTR(lse_N);
  CHECK_PTR(lse_in_N);
  CHECK_PTR(tgt_N);
  CHECK_PTR(targets_N);
  if (check_targets(__func__, targets_N, N, V)) return 1;
  float* logits = logits_NV;
  const int write_grad = grad_scale != 0.0f;
#pragma omp parallel for schedule(static) if (N * Vloc > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    float* x = logits + i * Vloc;
    int64_t t = targets_N[i];
    if (t < 0) {
      ce_N[i] = 0.0f;
      lse_N[i] = 0.0f;
      if (write_grad) memset(x, 0, (size_t)Vloc * sizeof(float));
      continue;
    }
    float lse = lse_in_N[i];
    ce_N[i] = lse - tgt_N[i];
    lse_N[i] = lse;
    if (write_grad) {
      float f = (float)((double)grad_scale * (1.0 + 2.0 * (double)z_mult * (double)lse));
#pragma omp simd
      for (int64_t j = 0; j < Vloc; j++) x[j] = fast_expf(x[j] - lse) * f;
      if (t >= v0 && t < v0 + Vloc) x[t - v0] -= grad_scale;
    }
  }
  return 0;
}

int olmo_embedding_forward_range(void* out_NC, const int32_t* tokens_N, const void* wte_loc, int64_t N, int64_t C,
                                 int64_t Vloc, int64_t v0, int64_t V) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(C);
  CHECK_NONNEG(Vloc);
  if (check_shard(__func__, Vloc, v0, V)) return 1;
  CHECK_PTR_IF(tokens_N, N);
  CHECK_PTR_IF(out_NC, N * C);
  CHECK_PTR_IF(wte_loc, Vloc * C);
  if (check_tokens(__func__, tokens_N, N, V)) return 1;
  embedding_gather(out_NC, tokens_N, wte_loc, N, C, v0, Vloc);
  return 0;
}

int olmo_embedding_backward_range(float* dwte_loc, const void* dout_NC, const int32_t* tokens_N, int64_t N, int64_t C,
                                  int64_t Vloc, int64_t v0, int64_t V) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(C);
  CHECK_NONNEG(Vloc);
  if (check_shard(__func__, Vloc, v0, V)) return 1;
  CHECK_PTR_IF(tokens_N, N);
  CHECK_PTR_IF(dout_NC, N * C);
  CHECK_PTR_IF(dwte_loc, Vloc * C);
  if (check_tokens(__func__, tokens_N, N, V)) return 1;
  embedding_scatter_add(dwte_loc, dout_NC, tokens_N, N, C, v0, Vloc);
  return 0;
}
