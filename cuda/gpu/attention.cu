/*
 * attention.cu — the ABI entry points for causal GQA attention; they validate shapes and pick a path:
 *   D in {64, 128} and 16-byte-aligned tensors -> flash kernels (attention_fwd.cu / attention_bwd.cu)
 *   anything else (D <= 256)                   -> the plain reference kernels (attention_ref.cu)
 * Math (see those files): out_t = softmax_s<=t(scale q_t.k_s) V, scale = 1/sqrt(D),
 * lse[b,h,t] = logsumexp_s<=t(scale q_t.k_s); query head h reads kv head h / (H/K).
 * OLMO_ATTN_REF=1 in the environment forces the reference path (for debugging the flash kernels).
 * OLMO_DETERMINISTIC=1 makes the flash backward run-to-run deterministic: dQ per query tile without
 * atomics (attention_dq.cu) instead of fp32 atomics from each key tile (attention_bwd.cu). Off by
 * default until bench/gpu-check.sh measures its cost (the project's rule: on by default if < 2% of a
 * step). The reference path is always deterministic.
 */
#include <stdlib.h>
#include "attention.cuh"

static bool use_flash(int64_t D, const void* a, const void* b, const void* c, const void* d, const void* e) {
  static int force_ref = -1;
  if (force_ref < 0) {
    const char* s = getenv("OLMO_ATTN_REF");
    force_ref = (s && s[0] == '1') ? 1 : 0;
  }
  if (force_ref) return false;
  return (D == 64 || D == 128) && olmo_aligned16(a) && olmo_aligned16(b) && olmo_aligned16(c) && olmo_aligned16(d) &&
         olmo_aligned16(e);
}

static bool env_flag(const char* name, int* cache) {
  if (*cache < 0) {
    const char* s = getenv(name);
    *cache = (s && s[0] == '1') ? 1 : 0;
  }
  return *cache == 1;
}

static int check_shapes(const char* fn, int64_t B, int64_t T, int64_t H, int64_t K, int64_t D) {
  OLMO_REQUIRE(B >= 0 && T >= 0 && H > 0 && K > 0 && D > 0, "%s: bad sizes B=%lld T=%lld H=%lld K=%lld D=%lld", fn,
               (long long)B, (long long)T, (long long)H, (long long)K, (long long)D);
  OLMO_REQUIRE(H % K == 0, "%s: H=%lld is not a multiple of K=%lld", fn, (long long)H, (long long)K);
  OLMO_REQUIRE(T < (1LL << 30) && B * H < (1LL << 31) && B * K < 65536LL * 65536LL,
               "%s: sizes too large (B=%lld T=%lld H=%lld)", fn, (long long)B, (long long)T, (long long)H);
  return 0;
}

extern "C" {

int olmo_attention_forward(void* out, float* lse_BHT, const void* q, const void* k, const void* v, int64_t B,
                           int64_t T, int64_t H, int64_t K, int64_t D) {
  OLMO_REQUIRE_INIT();
  if (check_shapes("olmo_attention_forward", B, T, H, K, D)) return 1;
  if (B == 0 || T == 0) return 0;
  OLMO_REQUIRE(B * H <= 65535, "olmo_attention_forward: B*H=%lld exceeds the grid limit 65535", (long long)(B * H));
  if (use_flash(D, out, q, k, v, out))
    return flash_attention_forward((bf16*)out, lse_BHT, (const bf16*)q, (const bf16*)k, (const bf16*)v, (int)B, (int)T,
                                   (int)H, (int)K, (int)D);
  return ref_attention_forward((bf16*)out, lse_BHT, (const bf16*)q, (const bf16*)k, (const bf16*)v, (int)B, (int)T,
                               (int)H, (int)K, (int)D);
}

int olmo_attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* q, const void* k, const void* v,
                            const void* out, const float* lse_BHT, int64_t B, int64_t T, int64_t H, int64_t K,
                            int64_t D) {
  OLMO_REQUIRE_INIT();
  if (check_shapes("olmo_attention_backward", B, T, H, K, D)) return 1;
  if (B == 0 || T == 0) return 0;
  OLMO_REQUIRE(B * K <= 65535, "olmo_attention_backward: B*K=%lld exceeds the grid limit 65535", (long long)(B * K));
  if (use_flash(D, dq, dk, dv, dout, q) && use_flash(D, k, v, out, q, q)) {
    static int det = -1;
    return flash_attention_backward((bf16*)dq, (bf16*)dk, (bf16*)dv, (const bf16*)dout, (const bf16*)q,
                                    (const bf16*)k, (const bf16*)v, (const bf16*)out, lse_BHT, (int)B, (int)T, (int)H,
                                    (int)K, (int)D, env_flag("OLMO_DETERMINISTIC", &det));
  }
  return ref_attention_backward((bf16*)dq, (bf16*)dk, (bf16*)dv, (const bf16*)dout, (const bf16*)q, (const bf16*)k,
                                (const bf16*)v, (const bf16*)out, lse_BHT, (int)B, (int)T, (int)H, (int)K, (int)D);
}

}  // extern "C"
