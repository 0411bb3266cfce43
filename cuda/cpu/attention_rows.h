/*
 * attention_rows.h — the inner loops of the CPU attention kernels (attention.c): scores of one or two
 * query rows, softmax(P) @ V and dq for row pairs, and one key row's dk/dv share of a block of query
 * rows. Each keeps the fp32 operation order attention.c's header describes (sums from 0 in
 * ascending order; -ffp-contract=off), with the running sums in rows.h's f32x8 registers. Static
 * inline, compiled in attention.c's context: moving them here changes no bit.
 */
#ifndef OLMO_CPU_ATTENTION_ROWS_H
#define OLMO_CPU_ATTENTION_ROWS_H

#include "rows.h"

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

#endif /* OLMO_CPU_ATTENTION_ROWS_H */
