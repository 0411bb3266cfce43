/*
 * attention_decode.c — one decode step of GQA attention against a KV cache, fp32.
 *
 * q [B,H,D] (one query per batch row), kcache/vcache [B,Tmax,K,D], positions [0,len) attended;
 * query head h reads kv head h / (H/K); scale = 1/sqrt(D). Per (b, h):
 *   s_j = scale * q . k_j (j < len),  P_j = exp(s_j - max s) / sum,  out = sum_j P_j v_j
 * The scores follow olmo_attention_forward (attention.c) step by step and the softmax and P @ V are
 * its code (rows.h), so the result equals the last row of the full causal forward over the same len
 * positions to fp32 rounding.
 * Work is split over (b, h) with OpenMP; each task owns its output row (no races).
 */
#include <math.h>
#include <stdlib.h>

#include "rows.h"

int olmo_attention_decode(void* out_BHD, const void* q_BHD, const void* kcache, const void* vcache,
                          int64_t B, int64_t Tmax, int64_t len, int64_t H, int64_t K, int64_t D) {
  CHECK_NONNEG(B);
  if (H <= 0 || K <= 0 || D <= 0)
    return FAIL("H=%lld K=%lld D=%lld must be positive", (long long)H, (long long)K, (long long)D);
  if (H % K != 0) return FAIL("H=%lld is not a multiple of K=%lld", (long long)H, (long long)K);
  if (Tmax <= 0) return FAIL("Tmax = %lld must be positive", (long long)Tmax);
  if (len < 1 || len > Tmax)
    return FAIL("len = %lld outside [1, Tmax = %lld]", (long long)len, (long long)Tmax);
  if (B == 0) return 0;
  CHECK_PTR(out_BHD);
  CHECK_PTR(q_BHD);
  CHECK_PTR(kcache);
  CHECK_PTR(vcache);
  const float* Q = q_BHD;
  const float* Kc = kcache;
  const float* Vc = vcache;
  float* O = out_BHD;
  const int64_t rep = H / K;
  const float scale = 1.0f / sqrtf((float)D);
  int oom = 0;
#pragma omp parallel for schedule(static) reduction(| : oom) if (B * H > 1 && B * H * len * D > 16384)
  for (int64_t task = 0; task < B * H; task++) {
    const int64_t b = task / H, h = task % H, kh = h / rep;
    float* buf = malloc(sizeof(float) * (size_t)(len + D));
    if (!buf) { oom = 1; continue; }
    float *sc = buf, *acc = buf + len;
    const float* qt = Q + (b * H + h) * D;
    for (int64_t s = 0; s < len; s++) {
      const float* ks = Kc + ((b * Tmax + s) * K + kh) * D;
      float dot = 0.0f;
      for (int64_t d = 0; d < D; d++) dot += (qt[d] * scale) * ks[d];
      sc[s] = dot;
    }
    /* the softmax and P @ V of olmo_attention_forward; row s of this kv head's values is K*D apart */
    softmax_times_v(O + (b * H + h) * D, sc, acc, Vc + (b * Tmax * K + kh) * D, K * D, len, D);
    free(buf);
  }
  if (oom) return FAIL("out of host memory for decode scratch (len=%lld, D=%lld)", (long long)len, (long long)D);
  return 0;
}
