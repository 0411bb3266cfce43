/*
 * rope.c — rotary position embedding, NeoX "rotate-half" layout, fp32.
 *
 * x is [B,T,Hx,D]; cos/sin are [T, D/2] (computed by the caller). For j < D/2:
 *   out[..,j]       = x[..,j]     * cos[t,j] - x[..,j+D/2] * sin[t,j]
 *   out[..,j+D/2]   = x[..,j+D/2] * cos[t,j] + x[..,j]     * sin[t,j]
 * The map is a rotation R_t per (t,j) pair, so the backward is R_t^T: the same formula with
 * sin -> -sin. out may alias x (each pair is read fully before it is written).
 */
#include "internal.h"

static int rope(const char* fn, float* out, const float* x, const float* cs, const float* sn,
                int64_t B, int64_t T, int64_t Hx, int64_t D, float sign) {
  if (B < 0 || T < 0 || Hx < 0 || D < 0)
    return olmo_cpu_fail(fn, "negative size (B=%lld T=%lld Hx=%lld D=%lld)", (long long)B,
                         (long long)T, (long long)Hx, (long long)D);
  if (D % 2 != 0) return olmo_cpu_fail(fn, "head dim D = %lld must be even", (long long)D);
  int64_t n = B * T * Hx * D;
  if (n == 0) return 0;
  if (!out || !x || !cs || !sn)
    return olmo_cpu_fail(fn, "%s is NULL", !out ? "out" : !x ? "x" : !cs ? "cos" : "sin");
  int64_t half = D / 2;
  int64_t rows = B * T; /* (b,t) pairs: all heads of a row share cos/sin[t] */
#pragma omp parallel for schedule(static) if (n > OLMO_PAR_MIN)
  for (int64_t bt = 0; bt < rows; bt++) {
    int64_t t = bt % T;
    const float* c = cs + t * half;
    const float* s = sn + t * half;
    for (int64_t h = 0; h < Hx; h++) {
      const float* xi = x + (bt * Hx + h) * D;
      float* oi = out + (bt * Hx + h) * D;
#pragma omp simd
      for (int64_t j = 0; j < half; j++) {
        float a = xi[j], b = xi[j + half], sj = sign * s[j];
        oi[j] = a * c[j] - b * sj;
        oi[j + half] = b * c[j] + a * sj;
      }
    }
  }
  return 0;
}

int olmo_rope_forward(void* out, const void* x, const float* cos_TD2, const float* sin_TD2,
                      int64_t B, int64_t T, int64_t Hx, int64_t D) {
  return rope(__func__, out, x, cos_TD2, sin_TD2, B, T, Hx, D, 1.0f);
}

int olmo_rope_backward(void* dx, const void* dout, const float* cos_TD2, const float* sin_TD2,
                       int64_t B, int64_t T, int64_t Hx, int64_t D) {
  return rope(__func__, dx, dout, cos_TD2, sin_TD2, B, T, Hx, D, -1.0f);
}
