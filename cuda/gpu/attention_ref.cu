/*
 * attention_ref.cu — the plain, obviously-correct causal GQA attention used for head dims the flash
 * kernels do not cover (D not in {64, 128}, D <= 256) or unaligned pointers. No tensor cores.
 *
 * forward, one warp per query row (b, t, h); lane owns columns d = lane + 32 i:
 *   streaming over s = 0..t:  x = scale q_t.k_s (warp sum);  m' = max(m, x);
 *   l = l e^{m-m'} + e^{x-m'};  acc = acc e^{m-m'} + e^{x-m'} v_s;   out = acc / l,  lse = m + log l
 * backward, with Dl_t = dO_t.O_t,  P_ts = exp(scale q_t.k_s - lse_t),  dS_ts = P_ts (dO_t.v_s - Dl_t):
 *   pass 1, one warp per query row:  Dl_t, and dQ_t = scale sum_{s<=t} dS_ts k_s  (registers)
 *   pass 2, one warp per key row (b, s, kv head): over the group's query heads and t >= s in order,
 *           dK_s = scale sum dS_ts q_t,  dV_s = sum P_ts dO_t  (registers)
 *   No atomics: every sum has one owner and a fixed order, so the bits are the same on every run.
 */
#include "attention.cuh"

#define REF_MAXD 256
#define REF_PER (REF_MAXD / 32)

__global__ void ref_fwd_kernel(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                               int KH, int D, float scale) {
  const int64_t rows = (int64_t)B * T * H;
  const int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int lane = threadIdx.x & 31;
  const int h = (int)(r % H), t = (int)((r / H) % T), b = (int)(r / ((int64_t)H * T));
  const int kh = h / (H / KH);
  const bf16* qr = q + r * D;
  float qv[REF_PER], acc[REF_PER];
#pragma unroll
  for (int i = 0; i < REF_PER; ++i) {
    int d = lane + 32 * i;
    qv[i] = d < D ? bf2f(qr[d]) : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int s = 0; s <= t; ++s) {
    const int64_t kr = (((int64_t)b * T + s) * KH + kh) * D;
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < REF_PER; ++i) {
      int d = lane + 32 * i;
      if (d < D) dot += qv[i] * bf2f(k[kr + d]);
    }
    float x = warp_sum(dot) * scale;
    float mn = fmaxf(m, x);
    float c = __expf(m - mn), p = __expf(x - mn);
    l = l * c + p;
#pragma unroll
    for (int i = 0; i < REF_PER; ++i) {
      int d = lane + 32 * i;
      acc[i] = acc[i] * c + (d < D ? p * bf2f(v[kr + d]) : 0.f);
    }
    m = mn;
  }
#pragma unroll
  for (int i = 0; i < REF_PER; ++i) {
    int d = lane + 32 * i;
    if (d < D) out[r * D + d] = f2bf(acc[i] / l);
  }
  if (lane == 0) lse[((int64_t)b * H + h) * T + t] = m + logf(l);
}

__global__ void ref_bwd_dq_kernel(float* dq_acc, float* Dl, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                                  const bf16* out, const float* lse, int B, int T, int H, int KH, int D, float scale) {
  const int64_t rows = (int64_t)B * T * H;
  const int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int lane = threadIdx.x & 31;
  const int h = (int)(r % H), t = (int)((r / H) % T), b = (int)(r / ((int64_t)H * T));
  const int kh = h / (H / KH);
  float qv[REF_PER], dov[REF_PER], dqv[REF_PER];
  float dl = 0.f;
#pragma unroll
  for (int i = 0; i < REF_PER; ++i) {
    int d = lane + 32 * i;
    qv[i] = d < D ? bf2f(q[r * D + d]) : 0.f;
    dov[i] = d < D ? bf2f(dout[r * D + d]) : 0.f;
    dl += d < D ? dov[i] * bf2f(out[r * D + d]) : 0.f;
    dqv[i] = 0.f;
  }
  dl = warp_sum(dl);
  const int64_t bht = ((int64_t)b * H + h) * T + t;
  const float L = lse[bht];
  for (int s = 0; s <= t; ++s) {
    const int64_t kr = (((int64_t)b * T + s) * KH + kh) * D;
    float dot = 0.f, dpv = 0.f;
#pragma unroll
    for (int i = 0; i < REF_PER; ++i) {
      int d = lane + 32 * i;
      if (d < D) {
        dot += qv[i] * bf2f(k[kr + d]);
        dpv += dov[i] * bf2f(v[kr + d]);
      }
    }
    float p = __expf(warp_sum(dot) * scale - L);
    float ds = p * (warp_sum(dpv) - dl);
#pragma unroll
    for (int i = 0; i < REF_PER; ++i) {
      int d = lane + 32 * i;
      if (d < D) dqv[i] += ds * bf2f(k[kr + d]);
    }
  }
#pragma unroll
  for (int i = 0; i < REF_PER; ++i) {
    int d = lane + 32 * i;
    if (d < D) dq_acc[r * D + d] = scale * dqv[i];
  }
  if (lane == 0) Dl[bht] = dl;
}

__global__ void ref_bwd_dkdv_kernel(bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                                    const float* lse, const float* Dl, int B, int T, int H, int KH, int D, float scale) {
  const int64_t rows = (int64_t)B * T * KH;
  const int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int lane = threadIdx.x & 31;
  const int kh = (int)(r % KH), s = (int)((r / KH) % T), b = (int)(r / ((int64_t)KH * T));
  const int group = H / KH;
  float kv[REF_PER], vv[REF_PER], dkv[REF_PER], dvv[REF_PER];
#pragma unroll
  for (int i = 0; i < REF_PER; ++i) {
    int d = lane + 32 * i;
    kv[i] = d < D ? bf2f(k[r * D + d]) : 0.f;
    vv[i] = d < D ? bf2f(v[r * D + d]) : 0.f;
    dkv[i] = dvv[i] = 0.f;
  }
  for (int hh = 0; hh < group; ++hh) {
    const int h = kh * group + hh;
    for (int t = s; t < T; ++t) {
      const int64_t qr = (((int64_t)b * T + t) * H + h) * D, bht = ((int64_t)b * H + h) * T + t;
      float dot = 0.f, dpv = 0.f;
#pragma unroll
      for (int i = 0; i < REF_PER; ++i) {
        int d = lane + 32 * i;
        if (d < D) {
          dot += bf2f(q[qr + d]) * kv[i];
          dpv += bf2f(dout[qr + d]) * vv[i];
        }
      }
      float p = __expf(warp_sum(dot) * scale - lse[bht]);
      float ds = p * (warp_sum(dpv) - Dl[bht]);
#pragma unroll
      for (int i = 0; i < REF_PER; ++i) {
        int d = lane + 32 * i;
        if (d < D) {
          dkv[i] += scale * ds * bf2f(q[qr + d]);
          dvv[i] += p * bf2f(dout[qr + d]);
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < REF_PER; ++i) {
    int d = lane + 32 * i;
    if (d < D) {
      dk[r * D + d] = f2bf(dkv[i]);
      dv[r * D + d] = f2bf(dvv[i]);
    }
  }
}

__global__ void ref_cast_kernel(bf16* dst, const float* src, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = f2bf(src[i]);
}

int ref_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                          int KH, int D) {
  OLMO_REQUIRE(D <= REF_MAXD, "olmo_attention_forward: head dim %d > %d is not supported", D, REF_MAXD);
  const int64_t rows = (int64_t)B * T * H;
  ref_fwd_kernel<<<(unsigned)((rows + 3) / 4), 128, 0, g_state.stream>>>(out, lse, q, k, v, B, T, H, KH, D,
                                                                         1.f / sqrtf((float)D));
  OLMO_LAUNCH_CHECK("ref_fwd_kernel");
  return 0;
}

int ref_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const bf16* out, const float* lse, int B, int T, int H, int KH, int D) {
  OLMO_REQUIRE(D <= REF_MAXD, "olmo_attention_backward: head dim %d > %d is not supported", D, REF_MAXD);
  const int64_t nq = (int64_t)B * T * H * D, rows = (int64_t)B * T * H, krows = (int64_t)B * T * KH;
  float* buf = nullptr;
  if (olmo_scratch(OLMO_SCRATCH_ATTN, (size_t)(nq + rows) * sizeof(float), (void**)&buf)) return 1;
  float *dq_acc = buf, *Dl = buf + nq;
  const float scale = 1.f / sqrtf((float)D);
  ref_bwd_dq_kernel<<<(unsigned)((rows + 3) / 4), 128, 0, g_state.stream>>>(dq_acc, Dl, dout, q, k, v, out, lse, B, T, H,
                                                                            KH, D, scale);
  OLMO_LAUNCH_CHECK("ref_bwd_dq_kernel");
  ref_bwd_dkdv_kernel<<<(unsigned)((krows + 3) / 4), 128, 0, g_state.stream>>>(dk, dv, dout, q, k, v, lse, Dl, B, T, H,
                                                                               KH, D, scale);
  OLMO_LAUNCH_CHECK("ref_bwd_dkdv_kernel");
  ref_cast_kernel<<<olmo_grid(nq, 256), 256, 0, g_state.stream>>>(dq, dq_acc, nq);
  OLMO_LAUNCH_CHECK("ref_cast_kernel");
  return 0;
}
