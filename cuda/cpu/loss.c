/*
 * loss.c — fused cross-entropy + z-loss over one chunk of logit rows, gradient written in place.
 *
 * For row i with target t >= 0 (logits x = logits[i, 0:V]):
 *   m = max_j x_j,  S = sum_j exp(x_j - m),  lse = m + log S
 *   ce[i] = lse - x_t,  lse_N[i] = lse
 *   d/dx_j [ grad_scale * (ce + z * lse^2) ] = grad_scale * (softmax_j * (1 + 2 z lse) - [j == t])
 * with softmax_j = exp(x_j - m) / S. Rows with t < 0 are ignored: ce = lse = 0, gradient 0.
 *
 * Per row: pass 1 finds m; pass 2 writes e_j = exp(x_j - m) over the row and sums it (fp32 lanes
 * per block, blocks summed in double) while prefetching the next row; pass 3 scales e_j into the
 * gradient. The row (V*4 bytes, 400 KB at V = 100352) stays in L2 between passes, and exp is
 * evaluated once per element.
 * grad_scale == 0 evaluates only: pass 2 does not write and the logits stay untouched.
 * Targets are validated (t < V) before anything is written.
 */
#include <math.h>

#include "rows.h"

#define CE_BLOCK 2048 /* a multiple of 2 * LANES */
#define LANES 16 /* independent partial results: two AVX2 registers, so the loops pipeline */

/* max_j x_j over LANES interleaved partial maxima (lane k sees j = k mod LANES; a NaN is never
 * taken, like the scalar select); the lanes are merged in order k = 0..LANES-1. Written with
 * vector maxima because gcc left the plain loop scalar. */
static float row_max(const float* x, int64_t V) {
  f32x8 m0 = {0}, m1 = {0};
  m0 -= INFINITY;
  m1 -= INFINITY;
  int64_t j = 0;
  for (; j + LANES <= V; j += LANES) {
    f32x8 x0 = f32x8_load(x + j), x1 = f32x8_load(x + j + 8);
    /* maxps(x, m) is exactly `x > m ? x : m`, NaN and signed zeros included */
    m0 = (f32x8)_mm256_max_ps((__m256)x0, (__m256)m0);
    m1 = (f32x8)_mm256_max_ps((__m256)x1, (__m256)m1);
  }
  float m[LANES];
  f32x8_store(m, m0);
  f32x8_store(m + 8, m1);
  float mx = -INFINITY;
  for (int k = 0; k < LANES; k++) mx = m[k] > mx ? m[k] : mx;
  for (; j < V; j++) mx = x[j] > mx ? x[j] : mx;
  return mx;
}

/* While the exp pass works on a row that is already in L2, the next row of this thread is fetched
 * from memory into L2 (one 64-byte line per LANES floats), so the next row's max pass does not
 * wait for DRAM: the memory traffic overlaps the arithmetic. Only timing changes. */
#define PREFETCH_NEXT_ROW(next, i) \
  do { if (next) __builtin_prefetch((next) + (i), 0, 2); } while (0)

/* sum_j exp(x_j - mx): LANES fp32 partial sums within a block (lane k sees j = k mod LANES), then
 * the lanes added to the double total in order k = 0..LANES-1, block after block. With store,
 * x_j is also overwritten with exp(x_j - mx). */
static double exp_shift_sum(float* x, int64_t V, float mx, const float* next, int store) {
  double total = 0.0;
  int64_t j = 0;
  for (; j + CE_BLOCK <= V; j += CE_BLOCK) {
    f32x8 s0 = {0}, s1 = {0};
    /* two LANES-wide steps per trip: four independent exps in flight, the sums still taken in
     * ascending j per lane */
    for (int64_t i = j; i < j + CE_BLOCK; i += 2 * LANES) {
      PREFETCH_NEXT_ROW(next, i);
      PREFETCH_NEXT_ROW(next, i + LANES);
      f32x8 e0 = fast_expf_x8(f32x8_load(x + i) - mx), e1 = fast_expf_x8(f32x8_load(x + i + 8) - mx);
      f32x8 e2 = fast_expf_x8(f32x8_load(x + i + 16) - mx), e3 = fast_expf_x8(f32x8_load(x + i + 24) - mx);
      if (store) {
        f32x8_store(x + i, e0);
        f32x8_store(x + i + 8, e1);
        f32x8_store(x + i + 16, e2);
        f32x8_store(x + i + 24, e3);
      }
      s0 += e0;
      s1 += e1;
      s0 += e2;
      s1 += e3;
    }
    float s[LANES];
    f32x8_store(s, s0);
    f32x8_store(s + 8, s1);
    for (int k = 0; k < LANES; k++) total += s[k];
  }
  for (; j < V; j++) {
    float e = fast_expf(x[j] - mx);
    if (store) x[j] = e;
    total += e;
  }
  return total;
}

int olmo_cross_entropy(void* logits_NV, float* ce_N, float* lse_N, const int32_t* targets_N,
                       int64_t N, int64_t V, float z_mult, float grad_scale) {
  CHECK_NONNEG(N);
  if (N == 0) return 0;
  CHECK_POS(V);
  CHECK_PTR(logits_NV);
  CHECK_PTR(ce_N);
  CHECK_PTR(lse_N);
  CHECK_PTR(targets_N);
  if (check_targets(__func__, targets_N, N, V)) return 1;
  float* logits = logits_NV;
  const int write_grad = grad_scale != 0.0f;
#pragma omp parallel for schedule(static) if (N * V > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    float* x = logits + i * V;
    int32_t t = targets_N[i];
    if (t < 0) {
      ce_N[i] = 0.0f;
      lse_N[i] = 0.0f;
      if (write_grad) memset(x, 0, (size_t)V * sizeof(float));
      continue;
    }
    float xt = x[t];
    float mx = row_max(x, V);
    const float* next = i + 1 < N ? x + V : NULL; /* static schedule: usually this thread's next row */
    double total = exp_shift_sum(x, V, mx, next, write_grad);
    float lse = mx + (float)log(total);
    ce_N[i] = lse - xt;
    lse_N[i] = lse;
    if (write_grad) {
      float f = (float)((double)grad_scale * (1.0 + 2.0 * (double)z_mult * (double)lse) / total);
#pragma omp simd
      for (int64_t j = 0; j < V; j++) x[j] *= f;
      x[t] -= grad_scale;
    }
  }
  return 0;
}
