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

#include "rows.h"

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

/* Query rows of one backward block: their P and dS rows are kept (2 * ATT_ROWS rows). */
#define ATT_ROWS 16

/* Row stride of the [D,T] K^T / V^T scratch and of the P / dS rows: T plus one cache line. With a
 * power-of-two T (256 floats = 1 KB) the rows a score chunk walks down would all land in a few L1
 * sets and evict each other (the backward ran 3x below its arithmetic). Layout only: no value
 * changes. */
static inline int64_t padded_ld(int64_t T) { return T + 16; }

/* sc[s] = scale * q . k_s for first <= s < n (kT is [D,T], rows ld apart): per s, sc = 0 then
 * sc += (q[d]*scale) * kT[d][s] for d ascending. Whole vectors may run past n (up to T): sc must
 * hold T floats; those extra entries are never read. */
static inline void scores(float* restrict sc, const float* restrict qt, const float* restrict kT,
                          int64_t ld, int64_t first, int64_t n, int64_t T, int64_t D, float scale) {
  int64_t s0 = first;
  for (; s0 < n && s0 + 32 <= T; s0 += 32) {
    f32x8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t d = 0; d < D; d++) {
      float qd = qt[d] * scale;
      const float* kd = kT + d * ld + s0;
      a0 += qd * f32x8_load(kd);
      a1 += qd * f32x8_load(kd + 8);
      a2 += qd * f32x8_load(kd + 16);
      a3 += qd * f32x8_load(kd + 24);
    }
    f32x8_store(sc + s0, a0);
    f32x8_store(sc + s0 + 8, a1);
    f32x8_store(sc + s0 + 16, a2);
    f32x8_store(sc + s0 + 24, a3);
  }
  for (; s0 < n && s0 + 8 <= T; s0 += 8) {
    f32x8 a = {0};
    for (int64_t d = 0; d < D; d++) a += (qt[d] * scale) * f32x8_load(kT + d * ld + s0);
    f32x8_store(sc + s0, a);
  }
  for (int64_t s = s0; s < n; s++) {
    float acc = 0.0f;
    for (int64_t d = 0; d < D; d++) acc += (qt[d] * scale) * kT[d * ld + s];
    sc[s] = acc;
  }
}

/* dq = scale * sum_{s<n} ds[s] k_s for D outputs (row s of k at kp + s*kstride; the sum from 0 in
 * ascending s) */
static inline void dq_row(float* restrict dqt, const float* restrict ds, const float* restrict kp,
                          int64_t n, int64_t D, float scale, int64_t kstride) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    f32x8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t s = 0; s < n; s++) {
      float dss = ds[s];
      const float* ks = kp + s * kstride + d0;
      a0 += dss * f32x8_load(ks);
      a1 += dss * f32x8_load(ks + 8);
      a2 += dss * f32x8_load(ks + 16);
      a3 += dss * f32x8_load(ks + 24);
    }
    f32x8_store(dqt + d0, scale * a0);
    f32x8_store(dqt + d0 + 8, scale * a1);
    f32x8_store(dqt + d0 + 16, scale * a2);
    f32x8_store(dqt + d0 + 24, scale * a3);
  }
  for (; d0 + 8 <= D; d0 += 8) {
    f32x8 a = {0};
    for (int64_t s = 0; s < n; s++) a += ds[s] * f32x8_load(kp + s * kstride + d0);
    f32x8_store(dqt + d0, scale * a);
  }
  for (int64_t d = d0; d < D; d++) {
    float acc = 0.0f;
    for (int64_t s = 0; s < n; s++) acc += ds[s] * kp[s * kstride + d];
    dqt[d] = scale * acc;
  }
}

/* 32 scores of each of two rows at once (their 8 running sums hide the add latency that 4 leave
 * exposed): sc0[k] from (q0, k0) and sc1[k] from (q1, k1) for k < 32, with k0/k1 pointing at column
 * s0 of a [D,T] matrix (rows ld apart) and the query rows already multiplied by their scale (q[d]*scale computed
 * once per row is the same float scores() computes); each element exactly as scores() computes it. */
static inline void score_chunk_pair(float* restrict sc0, const float* restrict q0, const float* restrict k0,
                                    float* restrict sc1, const float* restrict q1, const float* restrict k1,
                                    int64_t ld, int64_t D) {
  f32x8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
  for (int64_t d = 0; d < D; d++) {
    float qa = q0[d], qb = q1[d];
    const float *ka = k0 + d * ld, *kb = k1 + d * ld;
    a0 += qa * f32x8_load(ka);
    a1 += qa * f32x8_load(ka + 8);
    a2 += qa * f32x8_load(ka + 16);
    a3 += qa * f32x8_load(ka + 24);
    b0 += qb * f32x8_load(kb);
    b1 += qb * f32x8_load(kb + 8);
    b2 += qb * f32x8_load(kb + 16);
    b3 += qb * f32x8_load(kb + 24);
  }
  f32x8_store(sc0, a0);
  f32x8_store(sc0 + 8, a1);
  f32x8_store(sc0 + 16, a2);
  f32x8_store(sc0 + 24, a3);
  f32x8_store(sc1, b0);
  f32x8_store(sc1 + 8, b1);
  f32x8_store(sc1 + 16, b2);
  f32x8_store(sc1 + 24, b3);
}

/* score_chunk_pair over s < n: two whole rows of scores (whole vectors may run past n) */
static inline void scores_pair(float* restrict sc0, const float* restrict q0, const float* restrict k0T,
                               float* restrict sc1, const float* restrict q1, const float* restrict k1T,
                               int64_t ld, int64_t n, int64_t T, int64_t D) {
  int64_t s0 = 0;
  for (; s0 < n && s0 + 32 <= T; s0 += 32) score_chunk_pair(sc0 + s0, q0, k0T + s0, sc1 + s0, q1, k1T + s0, ld, D);
  if (s0 < n) {
    scores(sc0, q0, k0T, ld, s0, n, T, D, 1.0f); /* q * 1 is q: the same products */
    scores(sc1, q1, k1T, ld, s0, n, T, D, 1.0f);
  }
}

/* out0/out1 = (sum over s ascending of p[s] v_s, from 0) * inv for two rows, p0 over s < n and p1
 * over s < n + 1 (the next query row), with each loaded v row used by both; per element the
 * operations of pv_row (rows.h). D mod 8 trailing outputs go through pv_row itself. */
static inline void pv_pair(float* out0, const float* p0, float inv0, float* out1, const float* p1,
                           float inv1, float* acc, const float* v, int64_t n, int64_t D) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    f32x8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    for (int64_t s = 0; s <= n; s++) {
      const float* vs = v + s * D + d0;
      f32x8 v0 = f32x8_load(vs), v1 = f32x8_load(vs + 8), v2 = f32x8_load(vs + 16), v3 = f32x8_load(vs + 24);
      float pb = p1[s];
      b0 += pb * v0;
      b1 += pb * v1;
      b2 += pb * v2;
      b3 += pb * v3;
      if (s == n) break; /* row 0 stops one key row earlier */
      float pa = p0[s];
      a0 += pa * v0;
      a1 += pa * v1;
      a2 += pa * v2;
      a3 += pa * v3;
    }
    f32x8_store(out0 + d0, a0 * inv0);
    f32x8_store(out0 + d0 + 8, a1 * inv0);
    f32x8_store(out0 + d0 + 16, a2 * inv0);
    f32x8_store(out0 + d0 + 24, a3 * inv0);
    f32x8_store(out1 + d0, b0 * inv1);
    f32x8_store(out1 + d0 + 8, b1 * inv1);
    f32x8_store(out1 + d0 + 16, b2 * inv1);
    f32x8_store(out1 + d0 + 24, b3 * inv1);
  }
  if (d0 < D) {
    pv_row(out0 + d0, p0, inv0, acc, v + d0, D, n, D - d0);
    pv_row(out1 + d0, p1, inv1, acc, v + d0, D, n + 1, D - d0);
  }
}

/* dq for two query rows, ds0 over s < n and ds1 over s < n + 1, each as dq_row computes it, with
 * each loaded key row used by both. D mod 32 trailing outputs go through dq_row itself. */
static inline void dq_pair(float* restrict dq0, const float* restrict ds0, float* restrict dq1,
                           const float* restrict ds1, const float* restrict kp, int64_t n, int64_t D,
                           float scale) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    f32x8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    for (int64_t s = 0; s <= n; s++) {
      const float* ks = kp + s * D + d0;
      f32x8 k0 = f32x8_load(ks), k1 = f32x8_load(ks + 8), k2 = f32x8_load(ks + 16), k3 = f32x8_load(ks + 24);
      float db = ds1[s];
      b0 += db * k0;
      b1 += db * k1;
      b2 += db * k2;
      b3 += db * k3;
      if (s == n) break; /* row 0 stops one key row earlier */
      float da = ds0[s];
      a0 += da * k0;
      a1 += da * k1;
      a2 += da * k2;
      a3 += da * k3;
    }
    f32x8_store(dq0 + d0, scale * a0);
    f32x8_store(dq0 + d0 + 8, scale * a1);
    f32x8_store(dq0 + d0 + 16, scale * a2);
    f32x8_store(dq0 + d0 + 24, scale * a3);
    f32x8_store(dq1 + d0, scale * b0);
    f32x8_store(dq1 + d0 + 8, scale * b1);
    f32x8_store(dq1 + d0 + 16, scale * b2);
    f32x8_store(dq1 + d0 + 24, scale * b3);
  }
  if (d0 < D) {
    dq_row(dq0 + d0, ds0, kp + d0, n, D - d0, scale, D);
    dq_row(dq1 + d0, ds1, kp + d0, n + 1, D - d0, scale, D);
  }
}

/* Key row s's share of one block of query rows j = j0..rows-1 (row j at Q/dO + j*row_stride,
 * its P and dS entries at P/dS[j*ld + s]), added in ascending j:
 *   dk_s += (scale * dS_js) q_j,   dv_s += P_js dout_j */
static inline void kv_grad_row(float* restrict dk, float* restrict dv, const float* restrict P,
                               const float* restrict dS, const float* restrict Q,
                               const float* restrict dO, int64_t row_stride, int64_t s, int64_t j0,
                               int64_t rows, int64_t ld, int64_t D, float scale) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    f32x8 k0 = f32x8_load(dk + d0), k1 = f32x8_load(dk + d0 + 8);
    f32x8 k2 = f32x8_load(dk + d0 + 16), k3 = f32x8_load(dk + d0 + 24);
    f32x8 v0 = f32x8_load(dv + d0), v1 = f32x8_load(dv + d0 + 8);
    f32x8 v2 = f32x8_load(dv + d0 + 16), v3 = f32x8_load(dv + d0 + 24);
    for (int64_t j = j0; j < rows; j++) {
      float ps = P[j * ld + s], dks = scale * dS[j * ld + s];
      const float* qj = Q + j * row_stride + d0;
      const float* oj = dO + j * row_stride + d0;
      k0 += dks * f32x8_load(qj);
      k1 += dks * f32x8_load(qj + 8);
      k2 += dks * f32x8_load(qj + 16);
      k3 += dks * f32x8_load(qj + 24);
      v0 += ps * f32x8_load(oj);
      v1 += ps * f32x8_load(oj + 8);
      v2 += ps * f32x8_load(oj + 16);
      v3 += ps * f32x8_load(oj + 24);
    }
    f32x8_store(dk + d0, k0);
    f32x8_store(dk + d0 + 8, k1);
    f32x8_store(dk + d0 + 16, k2);
    f32x8_store(dk + d0 + 24, k3);
    f32x8_store(dv + d0, v0);
    f32x8_store(dv + d0 + 8, v1);
    f32x8_store(dv + d0 + 16, v2);
    f32x8_store(dv + d0 + 24, v3);
  }
  for (; d0 + 16 <= D; d0 += 16) {
    f32x8 k0 = f32x8_load(dk + d0), k1 = f32x8_load(dk + d0 + 8);
    f32x8 v0 = f32x8_load(dv + d0), v1 = f32x8_load(dv + d0 + 8);
    for (int64_t j = j0; j < rows; j++) {
      float ps = P[j * ld + s], dks = scale * dS[j * ld + s];
      const float* qj = Q + j * row_stride + d0;
      const float* oj = dO + j * row_stride + d0;
      k0 += dks * f32x8_load(qj);
      k1 += dks * f32x8_load(qj + 8);
      v0 += ps * f32x8_load(oj);
      v1 += ps * f32x8_load(oj + 8);
    }
    f32x8_store(dk + d0, k0);
    f32x8_store(dk + d0 + 8, k1);
    f32x8_store(dv + d0, v0);
    f32x8_store(dv + d0 + 8, v1);
  }
  for (int64_t d = d0; d < D; d++) {
    for (int64_t j = j0; j < rows; j++) {
      dk[d] += (scale * dS[j * ld + s]) * Q[j * row_stride + d];
      dv[d] += P[j * ld + s] * dO[j * row_stride + d];
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
