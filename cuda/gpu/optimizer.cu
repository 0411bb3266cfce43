/*
 * optimizer.cu — global squared norm and AdamW (fp32 master, optional bf16 copy).
 *
 * norm_squared:  out[0] (+)= sum_i x_i^2, deterministic: pass 1 has a fixed number of blocks G
 *   (depends only on n), each grid-strides over x and block-reduces into partial[g]; pass 2 (one
 *   block) sums partial[0..G) in a fixed tree order and writes or adds out[0].
 * AdamW (decoupled weight decay), g = grad * grad_scale:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps);   param_act = bf16(p) when given
 */
#include "common.cuh"

#define NSQ_MAX_BLOCKS 1024

__global__ void __launch_bounds__(256) normsq_partial_kernel(float* partial, const float* x, int64_t n) {
  __shared__ float sh[32];
  float acc = 0.f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = x[i];
    acc += v * v;
  }
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(1024) normsq_final_kernel(float* out, const float* partial, int G, int accumulate) {
  __shared__ float sh[32];
  float acc = threadIdx.x < G ? partial[threadIdx.x] : 0.f;
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) out[0] = accumulate ? out[0] + acc : acc;
}

__global__ void adamw_kernel(float* p, bf16* p_act, const float* grad, float* m, float* v, int64_t n, float lr,
                             float b1, float b2, float eps, float wd, float step, float sqrt_bc2, float gscale) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float g = grad[i] * gscale;
    float pi = p[i] * (1.f - lr * wd);
    float mi = b1 * m[i] + (1.f - b1) * g;
    float vi = b2 * v[i] + (1.f - b2) * g * g;
    pi -= step * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (p_act) p_act[i] = f2bf(pi);
  }
}

extern "C" {

int olmo_norm_squared(float* out, const float* x, int64_t n, int accumulate) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) {
    if (!accumulate) OLMO_CUDA(cudaMemsetAsync(out, 0, sizeof(float), g_state.stream));
    return 0;
  }
  int64_t G64 = (n + 255) / 256;
  int G = (int)(G64 < NSQ_MAX_BLOCKS ? G64 : NSQ_MAX_BLOCKS);
  float* partial = nullptr;
  if (olmo_scratch(OLMO_SCRATCH_NORMSQ, NSQ_MAX_BLOCKS * sizeof(float), (void**)&partial)) return 1;
  normsq_partial_kernel<<<G, 256, 0, g_state.stream>>>(partial, x, n);
  OLMO_LAUNCH_CHECK("normsq_partial_kernel");
  normsq_final_kernel<<<1, 1024, 0, g_state.stream>>>(out, partial, G, accumulate);
  OLMO_LAUNCH_CHECK("normsq_final_kernel");
  return 0;
}

int olmo_adamw(float* param, void* param_act, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bc1, float bc2, float grad_scale) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) return 0;
  OLMO_REQUIRE(bc1 > 0.f && bc2 > 0.f, "olmo_adamw: bias corrections must be > 0 (bc1=%g bc2=%g)", bc1, bc2);
  adamw_kernel<<<olmo_grid(n, 256), 256, 0, g_state.stream>>>(param, (bf16*)param_act, grad, m, v, n, lr, beta1,
                                                              beta2, eps, weight_decay, lr / bc1, sqrtf(bc2),
                                                              grad_scale);
  OLMO_LAUNCH_CHECK("adamw_kernel");
  return 0;
}

}  // extern "C"
