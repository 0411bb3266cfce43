/*
 * embedding.c — token embedding lookup and its gradient.
 *
 *   forward:  out[i,:] = wte[tokens[i],:]                       i < N, wte is [V,C]
 *   backward: dwte[v,:] += sum_{i: tokens[i]==v} dout[i,:]      (accumulated in f32)
 *
 * Every token id is validated against [0,V) before anything is written, so a bad id leaves all
 * outputs untouched. The backward is deterministic independent of the thread count: threads own
 * disjoint column blocks of dwte and each walks the tokens in order, so every dwte element sees
 * the same sequence of additions on every run (no atomics). The loops are rows.h's, shared with the
 * vocab-parallel versions in tp.c (here the shard is the whole table: v0 = 0, Vloc = V).
 */
#include "rows.h"

int olmo_embedding_forward(void* out_NC, const int32_t* tokens_N, const void* wte_VC, int64_t N,
                           int64_t C, int64_t V) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(C);
  CHECK_NONNEG(V);
  CHECK_PTR_IF(tokens_N, N);
  CHECK_PTR_IF(out_NC, N * C);
  CHECK_PTR_IF(wte_VC, V * C);
  if (check_tokens(__func__, tokens_N, N, V)) return 1;
  embedding_gather(out_NC, tokens_N, wte_VC, N, C, 0, V);
  return 0;
}

int olmo_embedding_backward(float* dwte_VC, const void* dout_NC, const int32_t* tokens_N,
                            int64_t N, int64_t C, int64_t V) {
  CHECK_NONNEG(N);
  CHECK_NONNEG(C);
  CHECK_NONNEG(V);
  CHECK_PTR_IF(tokens_N, N);
  CHECK_PTR_IF(dout_NC, N * C);
  CHECK_PTR_IF(dwte_VC, V * C);
  if (check_tokens(__func__, tokens_N, N, V)) return 1;
  embedding_scatter_add(dwte_VC, dout_NC, tokens_N, N, C, 0, V);
  return 0;
}
