/*
 * rope.cu — rotary position embedding, NeoX rotate-half convention, fp32 math.
 *
 * x is [B, T, Hx, D]; tables cos/sin are [T, D/2] fp32. With h = D/2 and j < h:
 *   forward:  out_j   = x_j * cos_tj - x_{j+h} * sin_tj
 *             out_j+h = x_{j+h} * cos_tj + x_j * sin_tj
 *   backward: the transpose rotation (sin -> -sin):
 *             dx_j    = d_j * cos_tj + d_{j+h} * sin_tj
 *             dx_j+h  = d_{j+h} * cos_tj - d_j * sin_tj
 * One thread per (row, group of VEC pairs); it reads both halves before writing, so out may alias x.
 */
#include "common.cuh"

template <int VEC>
__global__ void rope_kernel(bf16* out, const bf16* x, const float* cos_t, const float* sin_t, int64_t rows,
                            int64_t T, int64_t Hx, int64_t D, float sign) {
  const int64_t h = D / 2, groups = h / VEC, total = rows * groups;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t row = idx / groups, g = idx - row * groups; /* row = (b*T + t)*Hx + head */
    int64_t t = (row / Hx) % T;
    int64_t j0 = g * VEC;
    const bf16* xr = x + row * D;
    bf16* orow = out + row * D;
    float a[VEC], b[VEC], c[VEC], s[VEC];
    if constexpr (VEC == 8) {
      bf16x8 va = *reinterpret_cast<const bf16x8*>(xr + j0), vb = *reinterpret_cast<const bf16x8*>(xr + h + j0);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        a[k] = bf2f(va.v[k]);
        b[k] = bf2f(vb.v[k]);
      }
    } else {
      a[0] = bf2f(xr[j0]);
      b[0] = bf2f(xr[h + j0]);
    }
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      c[k] = cos_t[t * h + j0 + k];
      s[k] = sign * sin_t[t * h + j0 + k];
    }
    float oa[VEC], ob[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      oa[k] = a[k] * c[k] - b[k] * s[k];
      ob[k] = b[k] * c[k] + a[k] * s[k];
    }
    if constexpr (VEC == 8) {
      bf16x8 va, vb;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        va.v[k] = f2bf(oa[k]);
        vb.v[k] = f2bf(ob[k]);
      }
      *reinterpret_cast<bf16x8*>(orow + j0) = va;
      *reinterpret_cast<bf16x8*>(orow + h + j0) = vb;
    } else {
      orow[j0] = f2bf(oa[0]);
      orow[h + j0] = f2bf(ob[0]);
    }
  }
}

static int rope_launch(void* out, const void* x, const float* c, const float* s, int64_t B, int64_t T, int64_t Hx,
                       int64_t D, float sign, const char* name) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(D % 2 == 0, "%s: head dim D=%lld must be even", name, (long long)D);
  int64_t rows = B * T * Hx;
  if (rows <= 0 || D <= 0) return 0;
  bool vec = (D / 2) % 8 == 0 && olmo_aligned16(out) && olmo_aligned16(x);
  if (vec)
    rope_kernel<8><<<olmo_grid(rows * (D / 16), 256), 256, 0, g_state.stream>>>((bf16*)out, (const bf16*)x, c, s, rows,
                                                                              T, Hx, D, sign);
  else
    rope_kernel<1><<<olmo_grid(rows * (D / 2), 256), 256, 0, g_state.stream>>>((bf16*)out, (const bf16*)x, c, s, rows,
                                                                             T, Hx, D, sign);
  OLMO_LAUNCH_CHECK(name);
  return 0;
}

extern "C" {

int olmo_rope_forward(void* out, const void* x, const float* cos_TD2, const float* sin_TD2, int64_t B, int64_t T,
                      int64_t Hx, int64_t D) {
  return rope_launch(out, x, cos_TD2, sin_TD2, B, T, Hx, D, 1.f, "olmo_rope_forward");
}

int olmo_rope_backward(void* dx, const void* dout, const float* cos_TD2, const float* sin_TD2, int64_t B, int64_t T,
                       int64_t Hx, int64_t D) {
  return rope_launch(dx, dout, cos_TD2, sin_TD2, B, T, Hx, D, -1.f, "olmo_rope_backward");
}

}  // extern "C"
