/*
 * rows.h — loops that more than one kernel file runs, so each piece of math has one source:
 *   RMSNorm rows and the dw column blocks   norm.c (fused) and tp.c (split across TP ranks)
 *   embedding gather / scatter-add          embedding.c (whole table) and tp.c (a vocab shard)
 *   token and target checks                 embedding.c, loss.c and tp.c
 *   softmax(scores) @ V for one query row   attention.c (forward) and attention_decode.c
 * All static inline: each caller compiles the same loops in its own context, so the fused kernels
 * and their splits keep the operation order they had when each spelled the loops out (bitwise).
 */
#ifndef OLMO_CPU_ROWS_H
#define OLMO_CPU_ROWS_H

#include "internal.h"

/* ---- RMSNorm ---- */

static inline float row_sumsq(const float* x, int64_t C) {
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (int64_t j = 0; j < C; j++) ss += x[j] * x[j];
  return ss;
}

/* out = w * (x * r); out may alias x. */
static inline void rms_scale_row(float* out, const float* x, const float* w, float r, int64_t C) {
#pragma omp simd
  for (int64_t j = 0; j < C; j++) out[j] = w[j] * (x[j] * r);
}

/* sum_j g*xhat with g = w*dout, xhat = x*r */
static inline float rms_bwd_dot_row(const float* dout, const float* x, const float* w, float r, int64_t C) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < C; j++) dot += w[j] * dout[j] * (x[j] * r);
  return dot;
}

/* dx = r * (g - xhat * mean); dx may alias dout. */
static inline void rms_bwd_dx_row(float* dx, const float* dout, const float* x, const float* w, float r, float mean,
                                  int64_t C) {
#pragma omp simd
  for (int64_t j = 0; j < C; j++) dx[j] = r * (w[j] * dout[j] - (x[j] * r) * mean);
}

#define NORM_COLS 16

/* dw[c] += sum_i dout[i,c] * x[i,c] * rstd[i]: threads own column blocks and walk rows in order, so
 * the sum is the same for any thread count. Runs before dx is written (dx may alias dout). */
static inline void rms_dw_cols(float* dw_C, const float* dout, const float* x, const float* rstd_N, int64_t N,
                               int64_t C) {
  int64_t nblocks = (C + NORM_COLS - 1) / NORM_COLS;
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
}

/* ---- embedding over table rows [v0, v0+Vloc) (the whole table: v0 = 0, Vloc = V) ---- */

static inline int check_tokens(const char* fn, const int32_t* tokens, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      return olmo_cpu_fail(fn, "token id %d at position %lld is out of range [0, V=%lld)", tokens[i], (long long)i,
                           (long long)V);
  return 0;
}

/* out[i,:] = wte[tok-v0,:] for tokens in the shard, else 0 */
static inline void embedding_gather(float* out, const int32_t* tokens_N, const float* wte, int64_t N, int64_t C,
                                    int64_t v0, int64_t Vloc) {
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    int64_t t = tokens_N[i];
    if (t >= v0 && t < v0 + Vloc) memcpy(out + i * C, wte + (t - v0) * C, (size_t)C * sizeof(float));
    else memset(out + i * C, 0, (size_t)C * sizeof(float));
  }
}

/* Column block width: 16 floats = one 64-byte cache line, so threads never share a line. */
#define EMB_COLS 16

/* dwte[tok-v0,:] += dout[i,:] for tokens in the shard; threads own column blocks and walk the
 * tokens in order (deterministic for any thread count, no atomics). */
static inline void embedding_scatter_add(float* dwte, const float* dout, const int32_t* tokens_N, int64_t N,
                                         int64_t C, int64_t v0, int64_t Vloc) {
  int64_t nblocks = (C + EMB_COLS - 1) / EMB_COLS;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t blk = 0; blk < nblocks; blk++) {
    int64_t c0 = blk * EMB_COLS;
    int64_t c1 = c0 + EMB_COLS < C ? c0 + EMB_COLS : C;
    for (int64_t i = 0; i < N; i++) {
      int64_t t = tokens_N[i];
      if (t < v0 || t >= v0 + Vloc) continue;
      float* dst = dwte + (t - v0) * C;
      const float* src = dout + i * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  }
}

/* ---- cross-entropy ---- */

static inline int check_targets(const char* fn, const int32_t* t, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++)
    if (t[i] >= V)
      return olmo_cpu_fail(fn, "target %d at row %lld is out of range: must be < V=%lld (or negative to ignore)", t[i],
                           (long long)i, (long long)V);
  return 0;
}

/* ---- attention ---- */

/* Softmax numerator of the n scores sc in place: sc[s] = exp(sc[s] - max). Returns max; *sum gets
 * the sum of the exps. */
static inline float softmax_exp_row(float* sc, int64_t n, float* sum_out) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t s = 0; s < n; s++) mx = sc[s] > mx ? sc[s] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t s = 0; s < n; s++) {
    float p = fast_expf(sc[s] - mx);
    sc[s] = p;
    sum += p;
  }
  *sum_out = sum;
  return mx;
}

/* out[d] = (sum over s < n ascending of p[s] v_s[d], from 0) * inv, row s of v at v + s*vstride:
 * the same operations per element as one d at a time, with 32 or 8 outputs' sums held in vector
 * registers while s runs; acc is D floats of scratch for the last D mod 8. */
static inline void pv_row(float* out, const float* p, float inv, float* acc, const float* v, int64_t vstride,
                          int64_t n, int64_t D) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    f32x8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t s = 0; s < n; s++) {
      float ps = p[s];
      const float* vs = v + s * vstride + d0;
      a0 += ps * f32x8_load(vs);
      a1 += ps * f32x8_load(vs + 8);
      a2 += ps * f32x8_load(vs + 16);
      a3 += ps * f32x8_load(vs + 24);
    }
    f32x8_store(out + d0, a0 * inv);
    f32x8_store(out + d0 + 8, a1 * inv);
    f32x8_store(out + d0 + 16, a2 * inv);
    f32x8_store(out + d0 + 24, a3 * inv);
  }
  for (; d0 + 8 <= D; d0 += 8) {
    f32x8 a = {0};
    for (int64_t s = 0; s < n; s++) a += p[s] * f32x8_load(v + s * vstride + d0);
    f32x8_store(out + d0, a * inv);
  }
  for (int64_t d = d0; d < D; d++) acc[d] = 0.0f;
  for (int64_t s = 0; s < n; s++) {
    float ps = p[s];
    const float* vs = v + s * vstride;
    for (int64_t d = d0; d < D; d++) acc[d] += ps * vs[d];
  }
  for (int64_t d = d0; d < D; d++) out[d] = acc[d] * inv;
}

/* Softmax of the n scores sc in place (sc becomes exp(s - max)), then out = sum_s P_s v_s with row s
 * of v at v + s*vstride; acc is D floats of scratch. Returns the row's log-sum-exp. */
static inline float softmax_times_v(float* out, float* sc, float* acc, const float* v, int64_t vstride, int64_t n,
                                    int64_t D) {
  float sum;
  float mx = softmax_exp_row(sc, n, &sum);
  pv_row(out, sc, 1.0f / sum, acc, v, vstride, n, D);
  return mx + logf(sum);
}

#endif /* OLMO_CPU_ROWS_H */
