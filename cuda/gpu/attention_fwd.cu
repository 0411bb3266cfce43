/*
 * attention_fwd.cu — causal flash attention forward with GQA (FlashAttention-2 style), D in {64,128}.
 *
 * For query row t of head h (kv head kh = h / (H/K)), scores s_ts = scale * q_t.k_s for s <= t:
 *   lse_t = log sum_{s<=t} exp(s_ts),   out_t = sum_{s<=t} exp(s_ts - lse_t) v_s
 * Block = 4 warps = 64 query rows (16 per warp) of one (b, h); loop over 64-key tiles j <= the
 * block's tile (causal). Online softmax in base 2 (x2 = s * log2 e):
 *   m' = max(m, rowmax x2),  c = 2^(m - m'),  l' = l c + sum 2^(x2 - m'),  O' = O c + P V
 * S = Q K^T and O += P V run on mma.sync m16n8k16 (bf16 in, fp32 accumulate); P is re-packed from
 * the S accumulators into A fragments without touching shared memory. Finally out = O / l and
 * lse = ln 2 * (m + log2 l) (natural log, as the ABI wants). Masked entries (s > t, s >= T) are
 * -inf; rows t >= T are neither computed into output nor written. Q/K/V tiles arrive by cp.async
 * (zero-filled past T) into shared memory rows padded by 8 bf16 (conflict-free 32-bit fragment
 * loads and ldmatrix).
 */
#include "attention.cuh"

#define FWD_BR 64
#define FWD_BC 64
#define FWD_THREADS 128

template <int D>
__global__ void __launch_bounds__(FWD_THREADS) flash_fwd_kernel(bf16* __restrict__ out, float* __restrict__ lse,
                                                                const bf16* __restrict__ q, const bf16* __restrict__ k,
                                                                const bf16* __restrict__ v, int T, int H, int KH,
                                                                float scale_log2) {
  constexpr int LD = D + 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* Qs = reinterpret_cast<bf16*>(smem_raw);
  bf16* Ks = Qs + FWD_BR * LD;
  bf16* Vs = Ks + FWD_BC * LD;

  const int qt = gridDim.x - 1 - blockIdx.x; /* heaviest tiles first */
  const int b = blockIdx.y / H, h = blockIdx.y % H, kh = h / (H / KH);
  const int q0 = qt * FWD_BR;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int64_t qstride = (int64_t)H * D, kstride = (int64_t)KH * D;
  const bf16* qb = q + (int64_t)b * T * qstride + (int64_t)h * D;
  const bf16* kb = k + (int64_t)b * T * kstride + (int64_t)kh * D;
  const bf16* vb = v + (int64_t)b * T * kstride + (int64_t)kh * D;

  load_tile<FWD_BR, D, LD, FWD_THREADS>(Qs, qb, qstride, q0, T);
  cp_async_wait_all();
  __syncthreads();

  uint32_t qf[D / 16][4];
  const int wr = warp * 16;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    qf[ks][0] = lds32(Qs + (wr + g) * LD + ks * 16 + 2 * tig);
    qf[ks][1] = lds32(Qs + (wr + g + 8) * LD + ks * 16 + 2 * tig);
    qf[ks][2] = lds32(Qs + (wr + g) * LD + ks * 16 + 2 * tig + 8);
    qf[ks][3] = lds32(Qs + (wr + g + 8) * LD + ks * 16 + 2 * tig + 8);
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int row0 = q0 + wr + g, row1 = row0 + 8;

  for (int j = 0; j <= qt; ++j) {
    const int k0 = j * FWD_BC;
    __syncthreads(); /* everyone is done with the previous K/V tile */
    load_tile<FWD_BC, D, LD, FWD_THREADS>(Ks, kb, kstride, k0, T);
    load_tile<FWD_BC, D, LD, FWD_THREADS>(Vs, vb, kstride, k0, T);
    cp_async_wait_all();
    __syncthreads();

    float s[FWD_BC / 8][4];
#pragma unroll
    for (int nt = 0; nt < FWD_BC / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const bf16* kp = Ks + (nt * 8 + g) * LD + ks * 16 + 2 * tig;
        mma_bf16_16816(s[nt], qf[ks], lds32(kp), lds32(kp + 8));
      }
    }
    /* scale to base 2, mask, row max */
    float mx[2] = {-INFINITY, -INFINITY};
    const bool need_mask = (k0 + FWD_BC > q0) || (k0 + FWD_BC > T);
#pragma unroll
    for (int nt = 0; nt < FWD_BC / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * scale_log2;
        if (need_mask) {
          int col = k0 + nt * 8 + 2 * tig + (e & 1);
          int row = e < 2 ? row0 : row1;
          if (col > row || col >= T) x = -INFINITY;
        }
        s[nt][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    }
    float corr[2], msub[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      float mn = fmaxf(m[r], mx[r]);
      msub[r] = mn == -INFINITY ? 0.f : mn;
      corr[r] = exp2f(m[r] - msub[r]); /* m = -inf -> 0 */
      m[r] = mn;
      l[r] *= corr[r];
    }
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[i][0] *= corr[0];
      o[i][1] *= corr[0];
      o[i][2] *= corr[1];
      o[i][3] *= corr[1];
    }
#pragma unroll
    for (int nt = 0; nt < FWD_BC / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float p = exp2f(s[nt][e] - msub[e >> 1]);
        s[nt][e] = p;
        l[e >> 1] += p;
      }
    }
    /* O += P V */
#pragma unroll
    for (int kk = 0; kk < FWD_BC / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const bf16* vrow = Vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;
#pragma unroll
      for (int dt = 0; dt < D / 16; ++dt) {
        uint32_t b0, b1, b2, b3;
        ldmatrix_x4_trans(b0, b1, b2, b3, vrow + dt * 16);
        mma_bf16_16816(o[2 * dt], a, b0, b1);
        mma_bf16_16816(o[2 * dt + 1], a, b2, b3);
      }
    }
  }

  /* finish: reduce l over the 4 lanes of a row, normalize, write */
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  const float inv0 = l[0] > 0.f ? 1.f / l[0] : 0.f, inv1 = l[1] > 0.f ? 1.f / l[1] : 0.f;
  bf16* ob = out + (int64_t)b * T * qstride + (int64_t)h * D;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    int col = i * 8 + 2 * tig;
    if (row0 < T)
      *reinterpret_cast<uint32_t*>(ob + (int64_t)row0 * qstride + col) = pack_bf16(o[i][0] * inv0, o[i][1] * inv0);
    if (row1 < T)
      *reinterpret_cast<uint32_t*>(ob + (int64_t)row1 * qstride + col) = pack_bf16(o[i][2] * inv1, o[i][3] * inv1);
  }
  if (tig == 0) {
    float* lb = lse + ((int64_t)b * H + h) * T;
    const float LN2 = 0.6931471805599453f;
    if (row0 < T) lb[row0] = LN2 * (m[0] + log2f(l[0]));
    if (row1 < T) lb[row1] = LN2 * (m[1] + log2f(l[1]));
  }
}

template <int D>
static int launch_fwd(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H, int KH) {
  constexpr int LD = D + 8;
  size_t smem = (size_t)(FWD_BR + 2 * FWD_BC) * LD * sizeof(bf16);
  static bool attr_set = false;
  if (!attr_set) {
    OLMO_CUDA(cudaFuncSetAttribute(flash_fwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    attr_set = true;
  }
  dim3 grid((T + FWD_BR - 1) / FWD_BR, B * H);
  const float scale_log2 = (1.f / sqrtf((float)D)) * 1.4426950408889634f;
  flash_fwd_kernel<D><<<grid, FWD_THREADS, smem, g_state.stream>>>(out, lse, q, k, v, T, H, KH, scale_log2);
  OLMO_LAUNCH_CHECK("flash_fwd_kernel");
  return 0;
}

int flash_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                            int KH, int D) {
  if (D == 64) return launch_fwd<64>(out, lse, q, k, v, B, T, H, KH);
  if (D == 128) return launch_fwd<128>(out, lse, q, k, v, B, T, H, KH);
  return olmo_set_error("flash_attention_forward: unsupported D=%d", D);
}
