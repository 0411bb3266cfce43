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

/* Pack kv head kh of batch b: kT[d*T + s] = k[b,s,kh,d], kp/vp[s*D + d] = k/v[b,s,kh,d]. */
static void pack_kv(float* kT, float* kp, float* vp, float* vT, const float* k, const float* v,
                    int64_t b, int64_t kh, int64_t T, int64_t K, int64_t D) {
  for (int64_t s = 0; s < T; s++) {
    const float* ks = k + ((b * T + s) * K + kh) * D;
    const float* vs = v + ((b * T + s) * K + kh) * D;
    for (int64_t d = 0; d < D; d++) {
      if (kT) kT[d * T + s] = ks[d];
      if (kp) kp[s * D + d] = ks[d];
      if (vp) vp[s * D + d] = vs[d];
      if (vT) vT[d * T + s] = vs[d];
    }
  }
}

/* sc[s] = scale * q . k_s for s < n (kT is [D,T]) */
static inline void scores(float* restrict sc, const float* restrict qt, const float* restrict kT,
                          int64_t n, int64_t T, int64_t D, float scale) {
  for (int64_t s = 0; s < n; s++) sc[s] = 0.0f;
  for (int64_t d = 0; d < D; d++) {
    float qd = qt[d] * scale;
    const float* kd = kT + d * T;
#pragma omp simd
    for (int64_t s = 0; s < n; s++) sc[s] += qd * kd[s];
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
  int oom = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : oom) if (B * K > 1 && B * T * H * D > 4096)
  for (int64_t task = 0; task < B * K; task++) {
    int64_t b = task / K, kh = task % K;
    float* buf = malloc(sizeof(float) * (size_t)(2 * T * D + T + D));
    if (!buf) { oom = 1; continue; }
    float *kT = buf, *vp = kT + T * D, *sc = vp + T * D, *acc = sc + T;
    pack_kv(kT, NULL, vp, NULL, Kt, Vt, b, kh, T, K, D);
    for (int64_t h = kh * rep; h < (kh + 1) * rep; h++) {
      for (int64_t t = 0; t < T; t++) {
        const float* qt = Q + ((b * T + t) * H + h) * D;
        int64_t n = t + 1;
        scores(sc, qt, kT, n, T, D, scale);
        float* ot = O + ((b * T + t) * H + h) * D;
        lse_BHT[(b * H + h) * T + t] = softmax_times_v(ot, sc, acc, vp, D, n, D);
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
  int oom = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : oom) if (B * K > 1 && B * T * H * D > 4096)
  for (int64_t task = 0; task < B * K; task++) {
    int64_t b = task / K, kh = task % K;
    float* buf = malloc(sizeof(float) * (size_t)(5 * T * D + 2 * T + D));
    if (!buf) { oom = 1; continue; }
    float *kT = buf, *kp = kT + T * D, *vT = kp + T * D, *dkp = vT + T * D, *dvp = dkp + T * D;
    float *p = dvp + T * D, *ds = p + T, *dqa = ds + T;
    pack_kv(kT, kp, NULL, vT, Kt, Vt, b, kh, T, K, D);
    for (int64_t i = 0; i < 2 * T * D; i++) dkp[i] = 0.0f;
    for (int64_t h = kh * rep; h < (kh + 1) * rep; h++) {
      for (int64_t t = 0; t < T; t++) {
        int64_t row = ((b * T + t) * H + h) * D;
        const float *qt = Q + row, *dot = dO + row, *ot = O + row;
        int64_t n = t + 1;
        float lse = lse_BHT[(b * H + h) * T + t];
        scores(p, qt, kT, n, T, D, scale);
#pragma omp simd
        for (int64_t s = 0; s < n; s++) p[s] = fast_expf(p[s] - lse);
        float delta = 0.0f;
        for (int64_t d = 0; d < D; d++) delta += dot[d] * ot[d];
        scores(ds, dot, vT, n, T, D, 1.0f); /* ds = dP = dout . v_s */
#pragma omp simd
        for (int64_t s = 0; s < n; s++) ds[s] = p[s] * (ds[s] - delta);
        for (int64_t d = 0; d < D; d++) dqa[d] = 0.0f;
        for (int64_t s = 0; s < n; s++) {
          float dss = ds[s], ps = p[s], dks = scale * dss;
          const float* ks = kp + s * D;
          float *dks_row = dkp + s * D, *dvs_row = dvp + s * D;
#pragma omp simd
          for (int64_t d = 0; d < D; d++) {
            dqa[d] += dss * ks[d];
            dks_row[d] += dks * qt[d];
            dvs_row[d] += ps * dot[d];
          }
        }
        float* dqt = dQ + row;
        for (int64_t d = 0; d < D; d++) dqt[d] = scale * dqa[d];
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
