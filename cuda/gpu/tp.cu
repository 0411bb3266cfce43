/*
 * tp.cu — the tensor-parallel kernels (math in olmo.h "tensor parallelism"; CPU twin cuda/cpu/tp.c).
 * Simple kernels: one block per row for the row reductions, grid-stride loops elsewhere. All
 * statistics are fp32. dw of olmo_rmsnorm_bwd_finish is deterministic: one thread per column walks
 * the rows in order. embedding_backward_range: one thread per (column) walks tokens in order.
 */
#include "common.cuh"

#define TP_THREADS 256

__global__ void tp_row_sumsq_kernel(float* ss, const bf16* x, int64_t C) {
  __shared__ float sh[32];
  const int64_t row = blockIdx.x;
  const bf16* xr = x + row * C;
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float v = bf2f(xr[c]);
    s += v * v;
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) ss[row] = s;
}

__global__ void tp_rmsnorm_apply_kernel(bf16* out, float* rstd, const bf16* x, const bf16* w, const float* ss,
                                        int64_t C, int64_t Cfull, float eps) {
  const int64_t row = blockIdx.x;
  const float r = rsqrtf(ss[row] / (float)Cfull + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    out[row * C + c] = f2bf(bf2f(w[c]) * (bf2f(x[row * C + c]) * r));
}

__global__ void tp_rmsnorm_dot_kernel(float* dot, const bf16* dout, const bf16* x, const bf16* w, const float* rstd,
                                      int64_t C) {
  __shared__ float sh[32];
  const int64_t row = blockIdx.x;
  const float r = rstd[row];
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    s += bf2f(w[c]) * bf2f(dout[row * C + c]) * (bf2f(x[row * C + c]) * r);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) dot[row] = s;
}

__global__ void tp_rmsnorm_dw_kernel(float* dw, const bf16* dout, const bf16* x, const float* rstd, int64_t N,
                                     int64_t C) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C; c += (int64_t)gridDim.x * blockDim.x) {
    float acc = 0.f;
    for (int64_t i = 0; i < N; i++) acc += bf2f(dout[i * C + c]) * (bf2f(x[i * C + c]) * rstd[i]);
    dw[c] += acc;
  }
}

__global__ void tp_rmsnorm_dx_kernel(bf16* dx, const bf16* dout, const bf16* x, const bf16* w, const float* rstd,
                                     const float* dot, int64_t C, int64_t Cfull) {
  const int64_t row = blockIdx.x;
  const float r = rstd[row];
  const float mean = dot[row] / (float)Cfull;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xh = bf2f(x[row * C + c]) * r;
    dx[row * C + c] = f2bf(r * (bf2f(w[c]) * bf2f(dout[row * C + c]) - xh * mean));
  }
}

__global__ void tp_ce_stats_kernel(float* mx_out, float* se_out, float* tgt_out, const bf16* logits,
                                   const int32_t* targets, int64_t Vloc, int64_t v0, int64_t V, unsigned int* err) {
  __shared__ float sh[32];
  const int64_t row = blockIdx.x;
  const bf16* x = logits + row * Vloc;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < Vloc; j += blockDim.x) m = fmaxf(m, bf2f(x[j]));
  m = block_max(m, sh);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < Vloc; j += blockDim.x) s += __expf(bf2f(x[j]) - m);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) {
    const int64_t t = targets[row];
    if (t >= V) atomicOr(err, OLMO_ERRBIT_TARGET);
    mx_out[row] = m;
    se_out[row] = s;
    tgt_out[row] = (t >= v0 && t < v0 + Vloc) ? bf2f(x[t - v0]) : 0.f;
  }
}

__global__ void tp_ce_finish_kernel(bf16* logits, float* ce, float* lse_out, const float* lse_in, const float* tgt,
                                    const int32_t* targets, int64_t Vloc, int64_t v0, float z, float gs, int write) {
  const int64_t row = blockIdx.x;
  bf16* x = logits + row * Vloc;
  const int64_t t = targets[row];
  if (t < 0) {
    if (threadIdx.x == 0) { ce[row] = 0.f; lse_out[row] = 0.f; }
    if (write) for (int64_t j = threadIdx.x; j < Vloc; j += blockDim.x) x[j] = f2bf(0.f);
    return;
  }
  const float lse = lse_in[row];
  if (threadIdx.x == 0) { ce[row] = lse - tgt[row]; lse_out[row] = lse; }
  if (!write) return;
  const float f = gs * (1.f + 2.f * z * lse);
  for (int64_t j = threadIdx.x; j < Vloc; j += blockDim.x) {
    float g = __expf(bf2f(x[j]) - lse) * f;
    if (j + v0 == t) g -= gs;
    x[j] = f2bf(g);
  }
}

__global__ void tp_emb_fwd_kernel(bf16* out, const int32_t* tokens, const bf16* wte, int64_t N, int64_t C,
                                  int64_t Vloc, int64_t v0, int64_t V, unsigned int* err) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < N * C; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / C, c = e % C;
    const int64_t t = tokens[i];
    if (t < 0 || t >= V) { atomicOr(err, OLMO_ERRBIT_TOKEN); continue; }
    out[e] = (t >= v0 && t < v0 + Vloc) ? wte[(t - v0) * C + c] : f2bf(0.f);
  }
}

__global__ void tp_emb_bwd_kernel(float* dwte, const bf16* dout, const int32_t* tokens, int64_t N, int64_t C,
                                  int64_t Vloc, int64_t v0, int64_t V, unsigned int* err) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C; c += (int64_t)gridDim.x * blockDim.x) {
    for (int64_t i = 0; i < N; i++) {
      const int64_t t = tokens[i];
      if (t < 0 || t >= V) { atomicOr(err, OLMO_ERRBIT_TOKEN); continue; }
      if (t >= v0 && t < v0 + Vloc) dwte[(t - v0) * C + c] += bf2f(dout[i * C + c]);
    }
  }
}

extern "C" {

int olmo_row_sumsq(float* ss_N, const void* x_NC, int64_t N, int64_t C) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && C > 0, "olmo_row_sumsq: bad shape N=%lld C=%lld", (long long)N, (long long)C);
  if (N == 0) return 0;
  tp_row_sumsq_kernel<<<(unsigned int)N, TP_THREADS, 0, g_state.stream>>>(ss_N, (const bf16*)x_NC, C);
  OLMO_LAUNCH_CHECK("tp_row_sumsq_kernel");
  return 0;
}

int olmo_rmsnorm_apply(void* out_NC, float* rstd_N, const void* x_NC, const void* w_C, const float* ss_N, int64_t N,
                       int64_t C, int64_t Cfull, float eps) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && C > 0 && Cfull > 0, "olmo_rmsnorm_apply: bad shape");
  if (N == 0) return 0;
  tp_rmsnorm_apply_kernel<<<(unsigned int)N, TP_THREADS, 0, g_state.stream>>>(
      (bf16*)out_NC, rstd_N, (const bf16*)x_NC, (const bf16*)w_C, ss_N, C, Cfull, eps);
  OLMO_LAUNCH_CHECK("tp_rmsnorm_apply_kernel");
  return 0;
}

int olmo_rmsnorm_bwd_dot(float* dot_N, const void* dout_NC, const void* x_NC, const void* w_C, const float* rstd_N,
                         int64_t N, int64_t C) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && C > 0, "olmo_rmsnorm_bwd_dot: bad shape");
  if (N == 0) return 0;
  tp_rmsnorm_dot_kernel<<<(unsigned int)N, TP_THREADS, 0, g_state.stream>>>(
      dot_N, (const bf16*)dout_NC, (const bf16*)x_NC, (const bf16*)w_C, rstd_N, C);
  OLMO_LAUNCH_CHECK("tp_rmsnorm_dot_kernel");
  return 0;
}

int olmo_rmsnorm_bwd_finish(void* dx_NC, float* dw_C, const void* dout_NC, const void* x_NC, const void* w_C,
                            const float* rstd_N, const float* dot_N, int64_t N, int64_t C, int64_t Cfull) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && C > 0 && Cfull > 0, "olmo_rmsnorm_bwd_finish: bad shape");
  if (N == 0) return 0;
  /* dw before dx: dx may alias dout (same stream, so ordered). */
  tp_rmsnorm_dw_kernel<<<olmo_grid(C, TP_THREADS), TP_THREADS, 0, g_state.stream>>>(
      dw_C, (const bf16*)dout_NC, (const bf16*)x_NC, rstd_N, N, C);
  OLMO_LAUNCH_CHECK("tp_rmsnorm_dw_kernel");
  tp_rmsnorm_dx_kernel<<<(unsigned int)N, TP_THREADS, 0, g_state.stream>>>(
      (bf16*)dx_NC, (const bf16*)dout_NC, (const bf16*)x_NC, (const bf16*)w_C, rstd_N, dot_N, C, Cfull);
  OLMO_LAUNCH_CHECK("tp_rmsnorm_dx_kernel");
  return 0;
}

int olmo_ce_stats(float* max_N, float* sumexp_N, float* tgt_N, const void* logits_NV, const int32_t* targets_N,
                  int64_t N, int64_t Vloc, int64_t v0, int64_t V) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && Vloc > 0 && v0 >= 0 && v0 + Vloc <= V, "olmo_ce_stats: bad shard");
  if (N == 0) return 0;
  tp_ce_stats_kernel<<<(unsigned int)N, TP_THREADS, 0, g_state.stream>>>(
      max_N, sumexp_N, tgt_N, (const bf16*)logits_NV, targets_N, Vloc, v0, V, g_state.err_word);
  OLMO_LAUNCH_CHECK("tp_ce_stats_kernel");
  return 0;
}

int olmo_ce_finish(void* logits_NV, float* ce_N, float* lse_N, const float* lse_in_N, const float* tgt_N,
                   const int32_t* targets_N, int64_t N, int64_t Vloc, int64_t v0, int64_t V, float z_mult,
                   float grad_scale) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && Vloc > 0 && v0 >= 0 && v0 + Vloc <= V, "olmo_ce_finish: bad shard");
  if (N == 0) return 0;
  tp_ce_finish_kernel<<<(unsigned int)N, TP_THREADS, 0, g_state.stream>>>(
      (bf16*)logits_NV, ce_N, lse_N, lse_in_N, tgt_N, targets_N, Vloc, v0, z_mult, grad_scale, grad_scale != 0.f);
  OLMO_LAUNCH_CHECK("tp_ce_finish_kernel");
  return 0;
}

int olmo_embedding_forward_range(void* out_NC, const int32_t* tokens_N, const void* wte_loc, int64_t N, int64_t C,
                                 int64_t Vloc, int64_t v0, int64_t V) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && C >= 0 && Vloc >= 0 && v0 >= 0 && v0 + Vloc <= V, "olmo_embedding_forward_range: bad shard");
  if (N * C == 0) return 0;
  tp_emb_fwd_kernel<<<olmo_grid(N * C, TP_THREADS), TP_THREADS, 0, g_state.stream>>>(
      (bf16*)out_NC, tokens_N, (const bf16*)wte_loc, N, C, Vloc, v0, V, g_state.err_word);
  OLMO_LAUNCH_CHECK("tp_emb_fwd_kernel");
  return 0;
}

int olmo_embedding_backward_range(float* dwte_loc, const void* dout_NC, const int32_t* tokens_N, int64_t N, int64_t C,
                                  int64_t Vloc, int64_t v0, int64_t V) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(N >= 0 && C >= 0 && Vloc >= 0 && v0 >= 0 && v0 + Vloc <= V, "olmo_embedding_backward_range: bad shard");
  if (N * C == 0) return 0;
  tp_emb_bwd_kernel<<<olmo_grid(C, TP_THREADS), TP_THREADS, 0, g_state.stream>>>(
      dwte_loc, (const bf16*)dout_NC, tokens_N, N, C, Vloc, v0, V, g_state.err_word);
  OLMO_LAUNCH_CHECK("tp_emb_bwd_kernel");
  return 0;
}

}  // extern "C"
