/*
 * embedding.c — token embedding lookup and its gradient.
 *
 *   forward:  out[i,:] = wte[tokens[i],:]                       i < N, wte is [V,C]
 *   backward: dwte[v,:] += sum_{i: tokens[i]==v} dout[i,:]      (accumulated in f32)
 *
 * Every token id is validated against [0,V) before anything is written, so a bad id leaves all
 * outputs untouched. The backward is deterministic independent of the thread count: threads own
 * disjoint column blocks of dwte and each walks the tokens in order, so every dwte element sees
 * the same sequence of additions on every run (no atomics).
 */
#include "internal.h"

static int check_tokens(const char* fn, const int32_t* tokens, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++) {
    if (tokens[i] < 0 || tokens[i] >= V)
      return olmo_cpu_fail(fn, "token id %d at position %lld is out of range [0, V=%lld)", tokens[i],
                           (long long)i, (long long)V);
  }
  return 0;
}

int olmo_embedding_forward(void* out_NC, const int32_t* tokens_N, const void* wte_VC, int64_t N,
                           int64_t C, int64_t V) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(C);
  CHECK_NONNEG(V);
  CHECK_PTR_IF(tokens_N, N);
  CHECK_PTR_IF(out_NC, N * C);
  CHECK_PTR_IF(wte_VC, V * C);
  if (check_tokens(__func__, tokens_N, N, V)) return 1;
  float* out = out_NC;
  const float* wte = wte_VC;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t i = 0; i < N; i++) memcpy(out + i * C, wte + (int64_t)tokens_N[i] * C, (size_t)C * sizeof(float));
  return 0;
}

/* Column block width: 16 floats = one 64-byte cache line, so threads never share a line. */
#define EMB_COLS 16

int olmo_embedding_backward(float* dwte_VC, const void* dout_NC, const int32_t* tokens_N,
                            int64_t N, int64_t C, int64_t V) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(C);
  CHECK_NONNEG(V);
  CHECK_PTR_IF(tokens_N, N);
  CHECK_PTR_IF(dout_NC, N * C);
  CHECK_PTR_IF(dwte_VC, V * C);
  if (check_tokens(__func__, tokens_N, N, V)) return 1;
  const float* dout = dout_NC;
  int64_t nblocks = (C + EMB_COLS - 1) / EMB_COLS;
#pragma omp parallel for schedule(static) if (N * C > OLMO_PAR_MIN)
  for (int64_t blk = 0; blk < nblocks; blk++) {
    int64_t c0 = blk * EMB_COLS;
    int64_t c1 = c0 + EMB_COLS < C ? c0 + EMB_COLS : C;
    for (int64_t i = 0; i < N; i++) {
      float* dst = dwte_VC + (int64_t)tokens_N[i] * C;
      const float* src = dout + i * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  }
  return 0;
}
