/*
 * elementwise.cu — fills, casts, residual add, fp32 scale, SwiGLU.
 *
 *   fill:      x[i] = value                                  (f32)
 *   casts:     bf16(x) round-to-nearest-even;  f32(bf16) exact
 *   add:       out[i] = bf16(f32(a[i]) + f32(b[i]))           (out may alias a or b)
 *   scale:     x[i] *= s                                     (f32)
 *   SwiGLU:    gu row = [g(F) | u(F)];  out = silu(g) * u,  silu(g) = g * sigma(g)
 *     backward: dg = dout * u * sigma(g) * (1 + g * (1 - sigma(g)))
 *               du = dout * silu(g)
 * All math in fp32. Grid-stride loops; the bf16 paths move 8 elements (16 bytes) per step when the
 * pointers are 16-byte aligned and the length allows, with a scalar tail.
 */
#include "common.cuh"

__global__ void fill_f32_kernel(float* x, float v, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] = v;
}

__global__ void scale_f32_kernel(float* x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] *= s;
}

__global__ void cast_f2b_kernel(bf16* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = f2bf(in[i]);
}

__global__ void cast_b2f_kernel(float* out, const bf16* in, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = bf2f(in[i]);
}

/* vec: number of 8-wide groups processed vectorized; the rest scalar. */
__global__ void add_kernel(bf16* out, const bf16* a, const bf16* b, int64_t n, int vec) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  const int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  int64_t nv = vec ? n / 8 : 0;
  for (int64_t i = tid; i < nv; i += stride) {
    bf16x8 x = reinterpret_cast<const bf16x8*>(a)[i];
    bf16x8 y = reinterpret_cast<const bf16x8*>(b)[i];
    bf16x8 r;
#pragma unroll
    for (int j = 0; j < 8; ++j) r.v[j] = f2bf(bf2f(x.v[j]) + bf2f(y.v[j]));
    reinterpret_cast<bf16x8*>(out)[i] = r;
  }
  for (int64_t i = nv * 8 + tid; i < n; i += stride) out[i] = f2bf(bf2f(a[i]) + bf2f(b[i]));
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + __expf(-x)); }

__global__ void swiglu_fwd_kernel(bf16* out, const bf16* gu, int64_t N, int64_t F) {
  const int64_t total = N * F;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / F, c = i - r * F;
    float g = bf2f(gu[r * 2 * F + c]), u = bf2f(gu[r * 2 * F + F + c]);
    out[i] = f2bf(g * sigmoidf_(g) * u);
  }
}

/* 8-wide version: requires F % 8 == 0 and 16-byte aligned pointers. */
__global__ void swiglu_fwd_vec_kernel(bf16* out, const bf16* gu, int64_t N, int64_t F) {
  const int64_t F8 = F / 8, total = N * F8;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / F8, c = i - r * F8;
    const bf16x8* row = reinterpret_cast<const bf16x8*>(gu + r * 2 * F);
    bf16x8 g = row[c], u = row[F8 + c], o;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float gf = bf2f(g.v[j]);
      o.v[j] = f2bf(gf * sigmoidf_(gf) * bf2f(u.v[j]));
    }
    reinterpret_cast<bf16x8*>(out)[i] = o;
  }
}

__global__ void swiglu_bwd_kernel(bf16* dgu, const bf16* dout, const bf16* gu, int64_t N, int64_t F) {
  const int64_t total = N * F;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / F, c = i - r * F;
    float g = bf2f(gu[r * 2 * F + c]), u = bf2f(gu[r * 2 * F + F + c]), d = bf2f(dout[i]);
    float s = sigmoidf_(g);
    float dg = d * u * s * (1.f + g * (1.f - s));
    float du = d * g * s;
    dgu[r * 2 * F + c] = f2bf(dg);
    dgu[r * 2 * F + F + c] = f2bf(du);
  }
}

__global__ void swiglu_bwd_vec_kernel(bf16* dgu, const bf16* dout, const bf16* gu, int64_t N, int64_t F) {
  const int64_t F8 = F / 8, total = N * F8;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / F8, c = i - r * F8;
    const bf16x8* row = reinterpret_cast<const bf16x8*>(gu + r * 2 * F);
    bf16x8 g = row[c], u = row[F8 + c], d = reinterpret_cast<const bf16x8*>(dout)[i], og, ou;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float gf = bf2f(g.v[j]), uf = bf2f(u.v[j]), df = bf2f(d.v[j]);
      float s = sigmoidf_(gf);
      og.v[j] = f2bf(df * uf * s * (1.f + gf * (1.f - s)));
      ou.v[j] = f2bf(df * gf * s);
    }
    bf16x8* drow = reinterpret_cast<bf16x8*>(dgu + r * 2 * F);
    drow[c] = og;
    drow[F8 + c] = ou;
  }
}

extern "C" {

int olmo_fill_f32(float* dst, float value, int64_t n) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) return 0;
  fill_f32_kernel<<<olmo_grid(n, 256), 256, 0, g_state.stream>>>(dst, value, n);
  OLMO_LAUNCH_CHECK("fill_f32_kernel");
  return 0;
}

int olmo_scale_f32(float* x, float s, int64_t n) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) return 0;
  scale_f32_kernel<<<olmo_grid(n, 256), 256, 0, g_state.stream>>>(x, s, n);
  OLMO_LAUNCH_CHECK("scale_f32_kernel");
  return 0;
}

int olmo_cast_f32_to_act(void* dst_act, const float* src, int64_t n) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) return 0;
  cast_f2b_kernel<<<olmo_grid(n, 256), 256, 0, g_state.stream>>>((bf16*)dst_act, src, n);
  OLMO_LAUNCH_CHECK("cast_f2b_kernel");
  return 0;
}

int olmo_cast_act_to_f32(float* dst, const void* src_act, int64_t n) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) return 0;
  cast_b2f_kernel<<<olmo_grid(n, 256), 256, 0, g_state.stream>>>(dst, (const bf16*)src_act, n);
  OLMO_LAUNCH_CHECK("cast_b2f_kernel");
  return 0;
}

int olmo_add(void* out, const void* a, const void* b, int64_t n) {
  OLMO_REQUIRE_INIT();
  if (n <= 0) return 0;
  int vec = olmo_aligned16(out) && olmo_aligned16(a) && olmo_aligned16(b);
  add_kernel<<<olmo_grid(vec ? (n + 7) / 8 : n, 256), 256, 0, g_state.stream>>>((bf16*)out, (const bf16*)a,
                                                                                 (const bf16*)b, n, vec);
  OLMO_LAUNCH_CHECK("add_kernel");
  return 0;
}

int olmo_swiglu_forward(void* out_NF, const void* gu_N2F, int64_t N, int64_t F) {
  OLMO_REQUIRE_INIT();
  if (N <= 0 || F <= 0) return 0;
  if (F % 8 == 0 && olmo_aligned16(out_NF) && olmo_aligned16(gu_N2F)) {
    swiglu_fwd_vec_kernel<<<olmo_grid(N * F / 8, 256), 256, 0, g_state.stream>>>((bf16*)out_NF, (const bf16*)gu_N2F, N, F);
  } else {
    swiglu_fwd_kernel<<<olmo_grid(N * F, 256), 256, 0, g_state.stream>>>((bf16*)out_NF, (const bf16*)gu_N2F, N, F);
  }
  OLMO_LAUNCH_CHECK("swiglu_fwd_kernel");
  return 0;
}

int olmo_swiglu_backward(void* dgu_N2F, const void* dout_NF, const void* gu_N2F, int64_t N, int64_t F) {
  OLMO_REQUIRE_INIT();
  if (N <= 0 || F <= 0) return 0;
  if (F % 8 == 0 && olmo_aligned16(dgu_N2F) && olmo_aligned16(dout_NF) && olmo_aligned16(gu_N2F)) {
    swiglu_bwd_vec_kernel<<<olmo_grid(N * F / 8, 256), 256, 0, g_state.stream>>>(
        (bf16*)dgu_N2F, (const bf16*)dout_NF, (const bf16*)gu_N2F, N, F);
  } else {
    swiglu_bwd_kernel<<<olmo_grid(N * F, 256), 256, 0, g_state.stream>>>((bf16*)dgu_N2F, (const bf16*)dout_NF,
                                                                          (const bf16*)gu_N2F, N, F);
  }
  OLMO_LAUNCH_CHECK("swiglu_bwd_kernel");
  return 0;
}

}  // extern "C"
