/*
 * rmsnorm.cu — RMSNorm forward/backward (also the full-width QK-norm), fp32 math.
 *
 *   forward:  rstd_i = 1 / sqrt(mean_j x_ij^2 + eps);   out_ij = w_j * (x_ij * rstd_i)
 *   backward: xhat = x * rstd;  g = w * dout
 *             dx_ij = rstd_i * (g_ij - xhat_ij * mean_j(g_ij * xhat_ij))
 *             dw_j += sum_i dout_ij * xhat_ij
 * One block per row (forward) / a grid of G blocks striding over rows (backward). Threads own fixed
 * column groups of 8 (128-bit loads of bf16x8) when C % 8 == 0 and pointers are 16-byte aligned,
 * single columns otherwise. out may alias x and dx may alias dout: every element is read and then
 * written by the same thread, after the row's reductions.
 * dw is deterministic: each backward block sums its rows into a shared-memory fp32 vector (thread-
 * owned columns), writes it to partial[G, C], and a second kernel adds sum_g partial[g, j] (fixed
 * order) into dw_j.
 */
#include "common.cuh"

template <int VEC>
__device__ __forceinline__ void load_vec(float (&r)[VEC], const bf16* p) {
  if constexpr (VEC == 8) {
    bf16x8 v = *reinterpret_cast<const bf16x8*>(p);
#pragma unroll
    for (int j = 0; j < 8; ++j) r[j] = bf2f(v.v[j]);
  } else {
    r[0] = bf2f(*p);
  }
}
template <int VEC>
__device__ __forceinline__ void store_vec(bf16* p, const float (&r)[VEC]) {
  if constexpr (VEC == 8) {
    bf16x8 v;
#pragma unroll
    for (int j = 0; j < 8; ++j) v.v[j] = f2bf(r[j]);
    *reinterpret_cast<bf16x8*>(p) = v;
  } else {
    *p = f2bf(r[0]);
  }
}

template <int VEC>
__global__ void rmsnorm_fwd_kernel(bf16* out, float* rstd, const bf16* x, const bf16* w, int64_t C, float eps) {
  __shared__ float sh[32];
  const int64_t row = blockIdx.x;
  const bf16* xr = x + row * C;
  bf16* orow = out + row * C;
  float ss = 0.f;
  for (int64_t c = threadIdx.x * VEC; c < C; c += (int64_t)blockDim.x * VEC) {
    float v[VEC];
    load_vec<VEC>(v, xr + c);
#pragma unroll
    for (int j = 0; j < VEC; ++j) ss += v[j] * v[j];
  }
  ss = block_sum(ss, sh);
  const float r = rsqrtf(ss / (float)C + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t c = threadIdx.x * VEC; c < C; c += (int64_t)blockDim.x * VEC) {
    float v[VEC], wv[VEC];
    load_vec<VEC>(v, xr + c);
    load_vec<VEC>(wv, w + c);
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = wv[j] * (v[j] * r);
    store_vec<VEC>(orow + c, v);
  }
}

/* dynamic smem: C floats (the block's dw partial) */
template <int VEC>
__global__ void rmsnorm_bwd_kernel(bf16* dx, float* partial, const bf16* dout, const bf16* x, const bf16* w,
                                   const float* rstd, int64_t N, int64_t C) {
  extern __shared__ float dw_sh[];
  __shared__ float sh[32];
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dw_sh[c] = 0.f;
  __syncthreads();
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const bf16* xr = x + row * C;
    const bf16* dr = dout + row * C;
    const float r = rstd[row];
    float dot = 0.f;
    for (int64_t c = threadIdx.x * VEC; c < C; c += (int64_t)blockDim.x * VEC) {
      float xv[VEC], dv[VEC], wv[VEC];
      load_vec<VEC>(xv, xr + c);
      load_vec<VEC>(dv, dr + c);
      load_vec<VEC>(wv, w + c);
#pragma unroll
      for (int j = 0; j < VEC; ++j) dot += wv[j] * dv[j] * (xv[j] * r);
    }
    dot = block_sum(dot, sh) / (float)C; /* block_sum's barriers also order the reads above before the writes below */
    for (int64_t c = threadIdx.x * VEC; c < C; c += (int64_t)blockDim.x * VEC) {
      float xv[VEC], dv[VEC], wv[VEC], o[VEC];
      load_vec<VEC>(xv, xr + c);
      load_vec<VEC>(dv, dr + c);
      load_vec<VEC>(wv, w + c);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        float xh = xv[j] * r;
        dw_sh[c + j] += dv[j] * xh;
        o[j] = r * (wv[j] * dv[j] - xh * dot);
      }
      store_vec<VEC>(dx + row * C + c, o);
    }
  }
  /* each thread wrote only its own columns of dw_sh, so no barrier is needed before this copy */
  for (int64_t c = threadIdx.x * VEC; c < C; c += (int64_t)blockDim.x * VEC)
#pragma unroll
    for (int j = 0; j < VEC; ++j) partial[(int64_t)blockIdx.x * C + c + j] = dw_sh[c + j];
}

__global__ void rmsnorm_dw_reduce_kernel(float* dw, const float* partial, int G, int64_t C) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C; c += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.f;
    for (int g = 0; g < G; ++g) s += partial[(int64_t)g * C + c];
    dw[c] += s;
  }
}

static int rms_threads(int64_t C, int vec) {
  int64_t per = (C + vec - 1) / vec; /* accesses per row */
  int t = 32;
  while (t < 512 && t < per) t *= 2;
  return t;
}

extern "C" {

int olmo_rmsnorm_forward(void* out_NC, float* rstd_N, const void* x_NC, const void* w_C, int64_t N, int64_t C,
                         float eps) {
  OLMO_REQUIRE_INIT();
  if (N <= 0 || C <= 0) return 0;
  OLMO_REQUIRE(N < INT32_MAX, "olmo_rmsnorm_forward: N too large");
  bool vec = C % 8 == 0 && olmo_aligned16(out_NC) && olmo_aligned16(x_NC) && olmo_aligned16(w_C);
  int th = rms_threads(C, vec ? 8 : 1);
  if (vec)
    rmsnorm_fwd_kernel<8><<<(unsigned)N, th, 0, g_state.stream>>>((bf16*)out_NC, rstd_N, (const bf16*)x_NC,
                                                                  (const bf16*)w_C, C, eps);
  else
    rmsnorm_fwd_kernel<1><<<(unsigned)N, th, 0, g_state.stream>>>((bf16*)out_NC, rstd_N, (const bf16*)x_NC,
                                                                  (const bf16*)w_C, C, eps);
  OLMO_LAUNCH_CHECK("rmsnorm_fwd_kernel");
  return 0;
}

int olmo_rmsnorm_backward(void* dx_NC, float* dw_C, const void* dout_NC, const void* x_NC, const void* w_C,
                          const float* rstd_N, int64_t N, int64_t C) {
  OLMO_REQUIRE_INIT();
  if (N <= 0 || C <= 0) return 0;
  size_t smem = (size_t)C * sizeof(float);
  OLMO_REQUIRE(smem <= g_state.max_smem_optin - 1024, "olmo_rmsnorm_backward: C=%lld too wide", (long long)C);
  bool vec = C % 8 == 0 && olmo_aligned16(dx_NC) && olmo_aligned16(dout_NC) && olmo_aligned16(x_NC) &&
             olmo_aligned16(w_C);
  int th = rms_threads(C, vec ? 8 : 1);
  int G = (int)(N < 4LL * g_state.num_sms ? N : 4LL * g_state.num_sms);
  float* partial = nullptr;
  if (olmo_scratch(OLMO_SCRATCH_RMSNORM, (size_t)G * C * sizeof(float), (void**)&partial)) return 1;
  if (vec) {
    if (smem > 48 * 1024)
      OLMO_CUDA(cudaFuncSetAttribute(rmsnorm_bwd_kernel<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    rmsnorm_bwd_kernel<8><<<G, th, smem, g_state.stream>>>((bf16*)dx_NC, partial, (const bf16*)dout_NC,
                                                           (const bf16*)x_NC, (const bf16*)w_C, rstd_N, N, C);
  } else {
    if (smem > 48 * 1024)
      OLMO_CUDA(cudaFuncSetAttribute(rmsnorm_bwd_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    rmsnorm_bwd_kernel<1><<<G, th, smem, g_state.stream>>>((bf16*)dx_NC, partial, (const bf16*)dout_NC,
                                                           (const bf16*)x_NC, (const bf16*)w_C, rstd_N, N, C);
  }
  OLMO_LAUNCH_CHECK("rmsnorm_bwd_kernel");
  rmsnorm_dw_reduce_kernel<<<olmo_grid(C, 256), 256, 0, g_state.stream>>>(dw_C, partial, G, C);
  OLMO_LAUNCH_CHECK("rmsnorm_dw_reduce_kernel");
  return 0;
}

}  // extern "C"
