/*
 * internal.h — helpers shared by the CPU library's translation units (not part of the ABI).
 *
 *  - olmo_cpu_fail(fmt, ...) formats a message into the thread-local error buffer and returns 1,
 *    so a check reads:  if (x == NULL) return FAIL("x is NULL");
 *  - fast_expf(x): exp(x) in fp32, written so that gcc auto-vectorizes it (no libm call, no
 *    fast-math needed). Range reduction x = n*ln2 + r with |r| <= ln2/2, a degree-6 polynomial
 *    for e^r and 2^n built in the exponent bits. Max relative error ~2 ulp; returns 0
 *    below -87.3 (the region where softmax probabilities are 0 in fp32 anyway).
 */
#ifndef OLMO_CPU_INTERNAL_H
#define OLMO_CPU_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "olmo.h"

int olmo_cpu_fail(const char* fn, const char* fmt, ...)
    __attribute__((format(printf, 2, 3), visibility("hidden")));
#define FAIL(...) olmo_cpu_fail(__func__, __VA_ARGS__)

/* Argument checks; each returns from the calling function with a message naming the argument. */
#define CHECK_PTR(p) \
  do { if ((p) == NULL) return FAIL("%s is NULL", #p); } while (0)
#define CHECK_NONNEG(n) \
  do { if ((n) < 0) return FAIL("%s = %lld is negative", #n, (long long)(n)); } while (0)
#define CHECK_POS(n) \
  do { if ((n) <= 0) return FAIL("%s = %lld must be positive", #n, (long long)(n)); } while (0)
/* A pointer may be NULL only when the tensor it points to is empty. */
#define CHECK_PTR_IF(p, count) \
  do { if ((count) > 0 && (p) == NULL) return FAIL("%s is NULL", #p); } while (0)

/* Elementwise loops below this size stay on one thread (thread wake-up costs more than the work). */
#define OLMO_PAR_MIN 32768

static inline float fast_expf(float x0) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  float x = x0 < -87.3f ? -87.3f : x0; /* keeps 2^n a normal number; flushed to 0 below */
  x = x > 88.7f ? 88.7f : x;
  /* n = round(x*log2e) via the 1.5*2^23 trick (exact for |n| < 2^22, no rounding-mode calls) */
  float n = (x * log2e + 12582912.0f) - 12582912.0f;
  float r = x - n * ln2_hi;
  r = r - n * ln2_lo;
  /* Cephes expf polynomial: e^r ~ 1 + r + r^2 * P(r) */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return x0 < -87.3f ? 0.0f : p * scale;
}

#endif /* OLMO_CPU_INTERNAL_H */
