/*
 * attention_decode.cu — one decode step of GQA attention against a KV cache (generation).
 *
 * q [B,H,D] (one query per batch row), kcache/vcache [B,Tmax,K,D] bf16, positions [0,len)
 * attended; query head h reads kv head h / (H/K); scale = 1/sqrt(D); out [B,H,D] bf16.
 *
 * Simple and obviously correct rather than fast: one block per (b, h). q and the fp32 output
 * accumulator live in dynamic shared memory (2*D floats); the cache is walked in tiles of
 * DEC_TILE positions whose scores sit in static shared memory, with an online softmax across
 * tiles (so any len works, no shared-memory limit on len):
 *   per tile:  s_j = scale q.k_j (one thread per position);  m' = max(m, max_j s_j);
 *              c = e^{m - m'};  p_j = e^{s_j - m'};  l = l c + sum_j p_j;
 *              acc_d = acc_d c + sum_j p_j v_jd (one thread per column d);  m = m'
 *   out_d = acc_d / l.   All math fp32 (expf, block reductions from common.cuh).
 */
#include "common.cuh"

#define DEC_THREADS 128
#define DEC_TILE 1024

__global__ void __launch_bounds__(DEC_THREADS) attention_decode_kernel(bf16* out, const bf16* q, const bf16* kc,
                                                                       const bf16* vc, int64_t Tmax, int64_t len,
                                                                       int H, int KH, int D, float scale) {
  extern __shared__ float dyn[]; /* q[D], acc[D] */
  __shared__ float sc[DEC_TILE];
  __shared__ float red[32];
  float* qs = dyn;
  float* acc = dyn + D;
  const int64_t bh = blockIdx.x;
  const int64_t b = bh / H;
  const int h = (int)(bh % H), kh = h / (H / KH);
  const bf16* qr = q + bh * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    qs[d] = bf2f(qr[d]);
    acc[d] = 0.f;
  }
  __syncthreads();
  float m = -INFINITY, l = 0.f;
  for (int64_t s0 = 0; s0 < len; s0 += DEC_TILE) {
    const int n = (int)(len - s0 < DEC_TILE ? len - s0 : DEC_TILE);
    float tmax = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const bf16* kr = kc + ((b * Tmax + s0 + j) * KH + kh) * D;
      float dot = 0.f;
      for (int d = 0; d < D; ++d) dot += qs[d] * bf2f(kr[d]);
      dot *= scale;
      sc[j] = dot;
      tmax = fmaxf(tmax, dot);
    }
    tmax = block_max(tmax, red);
    const float mNew = fmaxf(m, tmax);
    const float corr = expf(m - mNew); /* m = -inf on the first tile: corr = 0, l and acc are 0 */
    float psum = 0.f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      float p = expf(sc[j] - mNew);
      sc[j] = p;
      psum += p;
    }
    psum = block_sum(psum, red); /* its __syncthreads also publish sc[] to every thread */
    l = l * corr + psum;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float a = acc[d] * corr;
      const bf16* vcol = vc + ((b * Tmax + s0) * KH + kh) * D + d;
      const int64_t stride = (int64_t)KH * D;
      for (int j = 0; j < n; ++j) a += sc[j] * bf2f(vcol[j * stride]);
      acc[d] = a;
    }
    m = mNew;
    __syncthreads(); /* sc[] is rewritten by the next tile */
  }
  const float inv = 1.f / l;
  bf16* orow = out + bh * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) orow[d] = f2bf(acc[d] * inv);
}

extern "C" {

int olmo_attention_decode(void* out_BHD, const void* q_BHD, const void* kcache, const void* vcache, int64_t B,
                          int64_t Tmax, int64_t len, int64_t H, int64_t K, int64_t D) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(B >= 0, "olmo_attention_decode: B = %lld is negative", (long long)B);
  OLMO_REQUIRE(H > 0 && K > 0 && D > 0, "olmo_attention_decode: H=%lld K=%lld D=%lld must be positive", (long long)H,
               (long long)K, (long long)D);
  OLMO_REQUIRE(H % K == 0, "olmo_attention_decode: H=%lld is not a multiple of K=%lld", (long long)H, (long long)K);
  OLMO_REQUIRE(Tmax > 0, "olmo_attention_decode: Tmax = %lld must be positive", (long long)Tmax);
  OLMO_REQUIRE(len >= 1 && len <= Tmax, "olmo_attention_decode: len = %lld outside [1, Tmax = %lld]", (long long)len,
               (long long)Tmax);
  if (B == 0) return 0;
  OLMO_REQUIRE(out_BHD && q_BHD && kcache && vcache, "olmo_attention_decode: a tensor pointer is NULL");
  OLMO_REQUIRE(B * H <= 0x7fffffffLL, "olmo_attention_decode: B*H=%lld exceeds the grid limit 2^31-1",
               (long long)(B * H));
  const size_t smem = (size_t)2 * (size_t)D * sizeof(float);
  OLMO_REQUIRE(smem <= 48 * 1024 - DEC_TILE * sizeof(float) - 32 * sizeof(float),
               "olmo_attention_decode: head dim D=%lld needs %zu bytes of shared memory for q and the accumulator, "
               "over the 48 KiB per-block limit", (long long)D, smem);
  attention_decode_kernel<<<(unsigned int)(B * H), DEC_THREADS, smem, g_state.stream>>>(
      (bf16*)out_BHD, (const bf16*)q_BHD, (const bf16*)kcache, (const bf16*)vcache, Tmax, len, (int)H, (int)K, (int)D,
      1.f / sqrtf((float)D));
  OLMO_LAUNCH_CHECK("olmo_attention_decode");
  return 0;
}

}  // extern "C"
