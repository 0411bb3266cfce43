/*
 * cross_entropy.cu — fused softmax cross-entropy + z-loss over one chunk of rows, gradient in place.
 *
 * For row i with logits x (bf16, read as fp32) and target t:
 *   m = max_j x_j,  s = sum_j exp(x_j - m),  lse = m + log s
 *   ce_i = lse - x_t,  lse_i = lse
 *   d/dx_j [grad_scale * (ce + z * lse^2)] = grad_scale * (p_j * (1 + 2 z lse) - [j == t]),
 *   p_j = exp(x_j - lse)
 * t < 0: ignored row (ce = lse = 0, zero gradient). t >= V: OLMO_ERRBIT_TARGET is set (reported at
 * olmo_synchronize) and the row is treated as ignored. grad_scale == 0: evaluate only, logits untouched.
 * One block per row. Pass 1: per-thread online (max, sum) over 8-wide loads, merged across the block
 * with  (m, s) + (m', s') = (M, s e^{m-M} + s' e^{m'-M}). x_t is read in pass 1; pass 2 rewrites the
 * row in place only after the block-wide reductions (whose barriers order every read before any write).
 */
#include "common.cuh"

__device__ __forceinline__ void ms_merge(float& m, float& s, float m2, float s2) {
  float M = fmaxf(m, m2);
  if (M == -INFINITY) return; /* both empty */
  s = s * __expf(m - M) + s2 * __expf(m2 - M);
  m = M;
}

template <int VEC>
__global__ void __launch_bounds__(512) ce_kernel(bf16* logits, float* ce, float* lse_out, const int32_t* targets,
                                                 int64_t V, float z, float gscale, unsigned int* err) {
  __shared__ float sm_m[32], sm_s[32];
  __shared__ float s_xt;
  const int64_t row = blockIdx.x;
  bf16* x = logits + row * V;
  int32_t t = targets[row];
  bool bad = t >= V;
  if (bad && threadIdx.x == 0) atomicOr(err, OLMO_ERRBIT_TARGET);
  bool ignore = t < 0 || bad;
  if (ignore) {
    if (threadIdx.x == 0) {
      ce[row] = 0.f;
      lse_out[row] = 0.f;
    }
    if (gscale != 0.f)
      for (int64_t j = threadIdx.x; j < V; j += blockDim.x) x[j] = f2bf(0.f);
    return;
  }
  if (threadIdx.x == 0) s_xt = bf2f(x[t]);
  float m = -INFINITY, s = 0.f;
  for (int64_t j = threadIdx.x * VEC; j < V; j += (int64_t)blockDim.x * VEC) {
    float v[VEC];
    if constexpr (VEC == 8) {
      bf16x8 p = *reinterpret_cast<const bf16x8*>(x + j);
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] = bf2f(p.v[k]);
    } else {
      v[0] = bf2f(x[j]);
    }
    float lm = v[0];
#pragma unroll
    for (int k = 1; k < VEC; ++k) lm = fmaxf(lm, v[k]);
    float ls = 0.f;
#pragma unroll
    for (int k = 0; k < VEC; ++k) ls += __expf(v[k] - lm);
    ms_merge(m, s, lm, ls);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    ms_merge(m, s, m2, s2);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (lane == 0) {
    sm_m[warp] = m;
    sm_s[warp] = s;
  }
  __syncthreads();
  m = lane < nw ? sm_m[lane] : -INFINITY;
  s = lane < nw ? sm_s[lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    ms_merge(m, s, m2, s2);
  }
  const float lse = m + logf(s);
  if (threadIdx.x == 0) {
    ce[row] = lse - s_xt;
    lse_out[row] = lse;
  }
  if (gscale == 0.f) return;
  const float a = gscale * (1.f + 2.f * z * lse);
  for (int64_t j = threadIdx.x * VEC; j < V; j += (int64_t)blockDim.x * VEC) {
    if constexpr (VEC == 8) {
      bf16x8 p = *reinterpret_cast<const bf16x8*>(x + j), o;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        float g = a * __expf(bf2f(p.v[k]) - lse);
        if (j + k == t) g -= gscale;
        o.v[k] = f2bf(g);
      }
      *reinterpret_cast<bf16x8*>(x + j) = o;
    } else {
      float g = a * __expf(bf2f(x[j]) - lse);
      if (j == t) g -= gscale;
      x[j] = f2bf(g);
    }
  }
}

extern "C" int olmo_cross_entropy(void* logits_NV, float* ce_N, float* lse_N, const int32_t* targets_N, int64_t N,
                                  int64_t V, float z_mult, float grad_scale) {
  OLMO_REQUIRE_INIT();
  if (N <= 0) return 0;
  OLMO_REQUIRE(V > 0 && N < INT32_MAX, "olmo_cross_entropy: bad sizes N=%lld V=%lld", (long long)N, (long long)V);
  if (V % 8 == 0 && olmo_aligned16(logits_NV))
    ce_kernel<8><<<(unsigned)N, 512, 0, g_state.stream>>>((bf16*)logits_NV, ce_N, lse_N, targets_N, V, z_mult,
                                                          grad_scale, g_state.err_word);
  else
    ce_kernel<1><<<(unsigned)N, V >= 512 ? 512 : 128, 0, g_state.stream>>>(
        (bf16*)logits_NV, ce_N, lse_N, targets_N, V, z_mult, grad_scale, g_state.err_word);
  OLMO_LAUNCH_CHECK("ce_kernel");
  return 0;
}
