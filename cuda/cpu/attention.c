/*
 * attention.c — causal scaled-dot-product attention with grouped-query heads, fp32.
 *
 * q [B,T,H,D], k/v [B,T,K,D]; query head h reads kv head h / (H/K); scale = 1/sqrt(D).
 *   forward (per b, h, t):   s_ts = scale * q_t . k_s            for s <= t
 *                            lse_t = log sum_{s<=t} exp(s_ts),   P_ts = exp(s_ts - lse_t)
 *                            out_t = sum_s P_ts v_s
 *   backward (P recomputed from the saved lse, as FlashAttention does):
 *                            dP_ts = dout_t . v_s,   Delta_t = dout_t . out_t
 *                            dS_ts = P_ts (dP_ts - Delta_t)
 *                            dq_t  = scale * sum_s dS_ts k_s
 *                            dk_s  = scale * sum_{h in group} sum_{t>=s} dS_ts q_t
 *                            dv_s  =         sum_{h in group} sum_{t>=s} P_ts dout_t
 *
 * Work is split over (b, kv head): one task owns its kv head's k/v (packed into contiguous
 * scratch, K also transposed so the score loop vectorizes over s) and all H/K query heads that
 * read it. So dk/dv accumulate in task-private buffers: no races, and the summation order is
 * fixed, which makes results bitwise reproducible for any thread count.
 *
 * Speed without changing a bit: every output element is the same chain of fp32 operations as in
 * the plain loops above (sums from 0 in ascending s, d or t order; -ffp-contract=off keeps each
 * a*b + c a multiply and an add). What changes is which loop is outermost: the running sums of a
 * chunk of outputs stay in vector registers (rows.h's f32x8) while the loop walks the summed index
 * (scores over d, dq over s, dk/dv over the query rows of a block) instead of going through memory
 * at every step. The backward keeps the P and dS rows of ATT_ROWS query rows and then walks the key rows
 * once per block, so each dk/dv row is loaded and stored once per block rather than once per row.
 */
#include <math.h>
#include <stdlib.h>

#include "attention_rows.h"

static int check_sizes(const char* fn, int64_t B, int64_t T, int64_t H, int64_t K, int64_t D) {
  if (B < 0 || T < 0) return olmo_cpu_fail(fn, "negative size (B=%lld T=%lld)", (long long)B, (long long)T);
  if (H <= 0 || K <= 0 || D <= 0)
    return olmo_cpu_fail(fn, "H=%lld K=%lld D=%lld must be positive", (long long)H, (long long)K, (long long)D);
  if (H % K != 0) return olmo_cpu_fail(fn, "H=%lld is not a multiple of K=%lld", (long long)H, (long long)K);
  return 0;
}

/* Pack kv head kh of batch b: kT[d*ld + s] = k[b,s,kh,d], kp/vp[s*D + d] = k/v[b,s,kh,d]. */
static void pack_kv(float* kT, float* kp, float* vp, float* vT, const float* k, const float* v,
                    int64_t b, int64_t kh, int64_t T, int64_t ld, int64_t K, int64_t D) {
  for (int64_t s = 0; s < T; s++) {
    const float* ks = k + ((b * T + s) * K + kh) * D;
    const float* vs = v + ((b * T + s) * K + kh) * D;
    for (int64_t d = 0; d < D; d++) {
      if (kT) kT[d * ld + s] = ks[d];
      if (kp) kp[s * D + d] = ks[d];
      if (vp) vp[s * D + d] = vs[d];
      if (vT) vT[d * ld + s] = vs[d];
    }
  }
}

int olmo_attention_forward(void* out, float* lse_BHT, const void* q, const void* k, const void* v,
                           int64_t B, int64_t T, int64_t H, int64_t K, int64_t D) {
  if (check_sizes(__func__, B, T, H, K, D)) return 1;
  if (B * T == 0) return 0;
  CHECK_PTR(out);
  CHECK_PTR(lse_BHT);
  CHECK_PTR(q);
  CHECK_PTR(k);
  CHECK_PTR(v);
  const float* Q = q;
  const float* Kt = k;
  const float* Vt = v;
  float* O = out;
  const int64_t rep = H / K;
  const float scale = 1.0f / sqrtf((float)D);
  const int64_t ld = padded_ld(T);
  int oom = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : oom) if (B * K > 1 && B * T * H * D > 4096)
  for (int64_t task = 0; task < B * K; task++) {
    int64_t b = task / K, kh = task % K;
    float* buf = malloc(sizeof(float) * (size_t)(ld * D + T * D + 2 * T + 3 * D));
    if (!buf) { oom = 1; continue; }
    float *kT = buf, *vp = kT + ld * D, *sc = vp + T * D, *sc1 = sc + T, *acc = sc1 + T, *qs = acc + D;
    pack_kv(kT, NULL, vp, NULL, Kt, Vt, b, kh, T, ld, K, D);
    for (int64_t h = kh * rep; h < (kh + 1) * rep; h++) {
      float* lse = lse_BHT + (b * H + h) * T;
      int64_t t = 0;
      for (; t + 1 < T; t += 2) { /* query rows t and t + 1 together */
        const float* qt = Q + ((b * T + t) * H + h) * D;
        float* ot = O + ((b * T + t) * H + h) * D;
        for (int64_t d = 0; d < D; d++) {
          qs[d] = qt[d] * scale;
          qs[D + d] = qt[H * D + d] * scale;
        }
        scores_pair(sc, qs, kT, sc1, qs + D, kT, ld, t + 2, T, D);
        float sum0, sum1;
        float mx0 = softmax_exp_row(sc, t + 1, &sum0), mx1 = softmax_exp_row(sc1, t + 2, &sum1);
        pv_pair(ot, sc, 1.0f / sum0, ot + H * D, sc1, 1.0f / sum1, acc, vp, t + 1, D);
        lse[t] = mx0 + logf(sum0);
        lse[t + 1] = mx1 + logf(sum1);
      }
      if (t < T) {
        scores(sc, Q + ((b * T + t) * H + h) * D, kT, ld, 0, t + 1, T, D, scale);
        lse[t] = softmax_times_v(O + ((b * T + t) * H + h) * D, sc, acc, vp, D, t + 1, D);
      }
    }
    free(buf);
  }
  if (oom) return FAIL("out of host memory for attention scratch (T=%lld, D=%lld)", (long long)T, (long long)D);
  return 0;
}

int olmo_attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* q,
                            const void* k, const void* v, const void* out, const float* lse_BHT,
                            int64_t B, int64_t T, int64_t H, int64_t K, int64_t D) {
  if (check_sizes(__func__, B, T, H, K, D)) return 1;
  if (B * T == 0) return 0;
  CHECK_PTR(dq);
  CHECK_PTR(dk);
  CHECK_PTR(dv);
  CHECK_PTR(dout);
  CHECK_PTR(q);
  CHECK_PTR(k);
  CHECK_PTR(v);
  CHECK_PTR(out);
  CHECK_PTR(lse_BHT);
  const float *Q = q, *Kt = k, *Vt = v, *O = out, *dO = dout;
  float *dQ = dq, *dK = dk, *dV = dv;
  const int64_t rep = H / K;
  const float scale = 1.0f / sqrtf((float)D);
  const int64_t ld = padded_ld(T);
  int oom = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : oom) if (B * K > 1 && B * T * H * D > 4096)
  for (int64_t task = 0; task < B * K; task++) {
    int64_t b = task / K, kh = task % K;
    float* buf = malloc(sizeof(float) * (size_t)(2 * ld * D + 3 * T * D + 2 * ATT_ROWS * ld + ATT_ROWS * D));
    if (!buf) { oom = 1; continue; }
    float *kT = buf, *vT = kT + ld * D, *kp = vT + ld * D, *dkp = kp + T * D, *dvp = dkp + T * D;
    float *P = dvp + T * D, *dS = P + ATT_ROWS * ld, *qs = dS + ATT_ROWS * ld;
    pack_kv(kT, kp, NULL, vT, Kt, Vt, b, kh, T, ld, K, D);
    /* dk, dv start at 0; P and dS too, since their vector loops may read entries past n */
    memset(dkp, 0, sizeof(float) * (size_t)(2 * T * D + 2 * ATT_ROWS * ld));
    const int64_t row_stride = H * D; /* from query row t to t+1 of one head */
    for (int64_t h = kh * rep; h < (kh + 1) * rep; h++) {
      for (int64_t t0 = 0; t0 < T; t0 += ATT_ROWS) {
        int64_t rows = T - t0 < ATT_ROWS ? T - t0 : ATT_ROWS;
        int64_t row0 = ((b * T + t0) * H + h) * D;
        /* Delta_t = dout_t . out_t, summed over d in order: the rows' sums interleaved, so their
         * dependent adds overlap */
        float delta[ATT_ROWS] = {0};
        for (int64_t d = 0; d < D; d++)
          for (int64_t j = 0; j < rows; j++) delta[j] += dO[row0 + j * row_stride + d] * O[row0 + j * row_stride + d];
        for (int64_t j = 0; j < rows; j++)
          for (int64_t d = 0; d < D; d++) qs[j * D + d] = Q[row0 + j * row_stride + d] * scale;
        /* P's scores and dP = dout . v_s for the block's rows, 32 key columns at a time: the
         * columns' 8 KB of K^T and V^T stay in L1 while every row that reaches them uses them */
        int64_t c0 = 0;
        for (; c0 < t0 + rows && c0 + 32 <= T; c0 += 32)
          for (int64_t j = c0 > t0 ? c0 - t0 : 0; j < rows; j++)
            score_chunk_pair(P + j * ld + c0, qs + j * D, kT + c0, dS + j * ld + c0, dO + row0 + j * row_stride,
                             vT + c0, ld, D);
        for (int64_t j = c0 > t0 ? c0 - t0 : 0; j < rows; j++) { /* the last T mod 32 columns */
          scores(P + j * ld, qs + j * D, kT, ld, c0, t0 + j + 1, T, D, 1.0f);
          scores(dS + j * ld, dO + row0 + j * row_stride, vT, ld, c0, t0 + j + 1, T, D, 1.0f);
        }
        for (int64_t j = 0; j < rows; j++) {
          int64_t t = t0 + j, n = t + 1;
          float *p = P + j * ld, *ds = dS + j * ld;
          float lse = lse_BHT[(b * H + h) * T + t];
          /* P = exp(s - lse), dS = P (dP - Delta); whole vectors may run past n (up to T) */
          int64_t s = 0;
          for (; s < n && s + 8 <= T; s += 8) {
            f32x8 pv = fast_expf_x8(f32x8_load(p + s) - lse);
            f32x8_store(p + s, pv);
            f32x8_store(ds + s, pv * (f32x8_load(ds + s) - delta[j]));
          }
          for (; s < n; s++) {
            p[s] = fast_expf(p[s] - lse);
            ds[s] = p[s] * (ds[s] - delta[j]);
          }
        }
        int64_t j = 0;
        for (; j + 1 < rows; j += 2)
          dq_pair(dQ + row0 + j * row_stride, dS + j * ld, dQ + row0 + (j + 1) * row_stride, dS + (j + 1) * ld, kp,
                  t0 + j + 1, D, scale);
        if (j < rows) dq_row(dQ + row0 + j * row_stride, dS + j * ld, kp, t0 + j + 1, D, scale, D);
        /* key rows s < t0 + rows: every row j of the block with t0 + j >= s */
        for (int64_t s = 0; s < t0 + rows; s++)
          kv_grad_row(dkp + s * D, dvp + s * D, P, dS, Q + row0, dO + row0, row_stride, s,
                      s > t0 ? s - t0 : 0, rows, ld, D, scale);
      }
    }
    for (int64_t s = 0; s < T; s++) {
      int64_t row = ((b * T + s) * K + kh) * D;
      memcpy(dK + row, dkp + s * D, (size_t)D * sizeof(float));
      memcpy(dV + row, dvp + s * D, (size_t)D * sizeof(float));
    }
    free(buf);
  }
  if (oom) return FAIL("out of host memory for attention scratch (T=%lld, D=%lld)", (long long)T, (long long)D);
  return 0;
}
