/*
 * attention_bwd.cu — causal flash attention backward with GQA (FlashAttention-2 style), D in {64,128}.
 *
 * With P_ts = exp(scale q_t.k_s - lse_t) (s <= t, else 0), dO = dout, Dl_t = sum_d dO_td O_td:
 *   dV_s = sum_t P_ts dO_t
 *   dP_ts = dO_t . v_s,   dS_ts = P_ts (dP_ts - Dl_t)
 *   dK_s = scale sum_t dS_ts q_t,    dQ_t = scale sum_s dS_ts k_s
 * and for GQA dK/dV of kv head kh sum over the query heads h with h / (H/K) == kh.
 * Kernels: (1) Dl = rowsum(dO o O) (one warp per row, fp32);
 * (2) one block (4 warps) per (64-key tile, b, kh); warp w owns keys 16w..16w+15 and keeps its dK,
 *     dV in registers while it loops over the group's query heads and every query tile of BQ rows
 *     that can see its keys. Per tile (all on mma.sync m16n8k16): S^T = K Q^T, P^T from lse,
 *     dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - Dl), dK += dS^T Q; dS goes to shared memory
 *     (bf16) and the block computes dQ_tile += dS K, added with fp32 atomics into an fp32 scratch;
 * (3) dq = bf16(scratch). dK, dV are written once per key (no atomics), scaled, as bf16.
 * deterministic (OLMO_DETERMINISTIC=1, attention.cu): (2) without its dQ part, then
 * flash_bwd_dq_kernel (attention_dq.cu) computes dQ per query tile with no atomics.
 * BQ = 64 for D = 64 and 32 for D = 128 (keeps the register tile under 255 without spills).
 */
#include "attention.cuh"

#define BWD_BK 64
#define BWD_THREADS 128

__global__ void attn_bwd_dot_kernel(float* __restrict__ Dl, const bf16* __restrict__ dout, const bf16* __restrict__ out,
                                    int64_t rows, int T, int H, int D) {
  /* rows are (b, t, h) in memory order; Dl is [B, H, T] */
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
    const bf16* a = dout + r * D;
    const bf16* o = out + r * D;
    float s = 0.f;
    for (int d = threadIdx.x & 31; d < D; d += 32) s += bf2f(a[d]) * bf2f(o[d]);
    s = warp_sum(s);
    if ((threadIdx.x & 31) == 0) {
      int64_t h = r % H, bt = r / H, t = bt % T, b = bt / T;
      Dl[(b * H + h) * T + t] = s;
    }
  }
}

__global__ void attn_cast_dq_kernel(bf16* dq, const float* acc, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dq[i] = f2bf(acc[i]);
}

/* DQ: also accumulate dQ here (fp32 atomics). Without it, dq comes from flash_bwd_dq_kernel
 * (attention_dq.cu): one block per query tile, no atomics, run-to-run deterministic. */
template <int D, int BQ, bool DQ>
__global__ void __launch_bounds__(BWD_THREADS) flash_bwd_kernel(
    float* __restrict__ dq_acc, bf16* __restrict__ dk, bf16* __restrict__ dv, const bf16* __restrict__ dout,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const float* __restrict__ lse,
    const float* __restrict__ Dl, int T, int H, int KH, float scale, float scale_log2) {
  constexpr int LD = D + 8;
  constexpr int LDS_ = BWD_BK + 8;
  constexpr int RG = BQ / 16;       /* dQ: row groups of 16 queries */
  constexpr int DSPLIT = 4 / RG;    /* dQ: each row group's D split across warps */
  constexpr int DQW = D / DSPLIT;   /* dQ columns per warp */
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* Ks = reinterpret_cast<bf16*>(smem_raw);
  bf16* Vs = Ks + BWD_BK * LD;
  bf16* Qs = Vs + BWD_BK * LD;
  bf16* dOs = Qs + BQ * LD;
  bf16* dSs = dOs + BQ * LD;                                   /* [BQ][LDS_] : dS[query][key] */
  float* lse_s = reinterpret_cast<float*>(dSs + BQ * LDS_);    /* lse * log2 e */
  float* Dl_s = lse_s + BQ;

  const int kb = gridDim.x - 1 - blockIdx.x;
  const int b = blockIdx.y / KH, kh = blockIdx.y % KH, group = H / KH;
  const int k0 = kb * BWD_BK;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int64_t qstride = (int64_t)H * D, kstride = (int64_t)KH * D;
  const bf16* kbp = k + (int64_t)b * T * kstride + (int64_t)kh * D;
  const bf16* vbp = v + (int64_t)b * T * kstride + (int64_t)kh * D;

  load_tile<BWD_BK, D, LD, BWD_THREADS>(Ks, kbp, kstride, k0, T);
  load_tile<BWD_BK, D, LD, BWD_THREADS>(Vs, vbp, kstride, k0, T);

  float dkacc[D / 8][4], dvacc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) dkacc[i][e] = dvacc[i][e] = 0.f;

  const int wk = warp * 16;          /* this warp's keys (local) */
  const int key0 = k0 + wk + g, key1 = key0 + 8;
  const int nqt = (T + BQ - 1) / BQ;
  const float LOG2E = 1.4426950408889634f;

  for (int hh = 0; hh < group; ++hh) {
    const int h = kh * group + hh;
    const bf16* qbp = q + (int64_t)b * T * qstride + (int64_t)h * D;
    const bf16* dobp = dout + (int64_t)b * T * qstride + (int64_t)h * D;
    const float* lseb = lse + ((int64_t)b * H + h) * T;
    const float* Dlb = Dl + ((int64_t)b * H + h) * T;
    float* dqb = dq_acc + (int64_t)b * T * qstride + (int64_t)h * D;

    for (int qt = k0 / BQ; qt < nqt; ++qt) {
      const int q0 = qt * BQ;
      __syncthreads(); /* previous tile's Qs/dOs/dSs reads are done */
      load_tile<BQ, D, LD, BWD_THREADS>(Qs, qbp, qstride, q0, T);
      load_tile<BQ, D, LD, BWD_THREADS>(dOs, dobp, qstride, q0, T);
      for (int i = threadIdx.x; i < BQ; i += BWD_THREADS) {
        bool ok = q0 + i < T;
        lse_s[i] = ok ? lseb[q0 + i] * LOG2E : 0.f;
        Dl_s[i] = ok ? Dlb[q0 + i] : 0.f;
      }
      cp_async_wait_all();
      __syncthreads();

      /* S^T = K Q^T : rows = this warp's 16 keys, cols = BQ queries */
      float s[BQ / 8][4];
#pragma unroll
      for (int nt = 0; nt < BQ / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t a[4];
        a[0] = lds32(Ks + (wk + g) * LD + ks * 16 + 2 * tig);
        a[1] = lds32(Ks + (wk + g + 8) * LD + ks * 16 + 2 * tig);
        a[2] = lds32(Ks + (wk + g) * LD + ks * 16 + 2 * tig + 8);
        a[3] = lds32(Ks + (wk + g + 8) * LD + ks * 16 + 2 * tig + 8);
#pragma unroll
        for (int nt = 0; nt < BQ / 8; ++nt) {
          const bf16* qp = Qs + (nt * 8 + g) * LD + ks * 16 + 2 * tig;
          mma_bf16_16816(s[nt], a, lds32(qp), lds32(qp + 8));
        }
      }
      /* P^T */
#pragma unroll
      for (int nt = 0; nt < BQ / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int ql = nt * 8 + 2 * tig + (e & 1);
          int qi = q0 + ql, key = e < 2 ? key0 : key1;
          s[nt][e] = (key <= qi && qi < T && key < T) ? exp2f(s[nt][e] * scale_log2 - lse_s[ql]) : 0.f;
        }
      /* dV += P^T dO */
#pragma unroll
      for (int kk = 0; kk < BQ / 16; ++kk) {
        uint32_t a[4];
        a[0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        const bf16* rp = dOs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;
#pragma unroll
        for (int dt = 0; dt < D / 16; ++dt) {
          uint32_t b0, b1, b2, b3;
          ldmatrix_x4_trans(b0, b1, b2, b3, rp + dt * 16);
          mma_bf16_16816(dvacc[2 * dt], a, b0, b1);
          mma_bf16_16816(dvacc[2 * dt + 1], a, b2, b3);
        }
      }
      /* dP^T = V dO^T */
      float dp[BQ / 8][4];
#pragma unroll
      for (int nt = 0; nt < BQ / 8; ++nt) dp[nt][0] = dp[nt][1] = dp[nt][2] = dp[nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t a[4];
        a[0] = lds32(Vs + (wk + g) * LD + ks * 16 + 2 * tig);
        a[1] = lds32(Vs + (wk + g + 8) * LD + ks * 16 + 2 * tig);
        a[2] = lds32(Vs + (wk + g) * LD + ks * 16 + 2 * tig + 8);
        a[3] = lds32(Vs + (wk + g + 8) * LD + ks * 16 + 2 * tig + 8);
#pragma unroll
        for (int nt = 0; nt < BQ / 8; ++nt) {
          const bf16* dp_ = dOs + (nt * 8 + g) * LD + ks * 16 + 2 * tig;
          mma_bf16_16816(dp[nt], a, lds32(dp_), lds32(dp_ + 8));
        }
      }
      /* dS^T = P^T (dP^T - Dl); store dS (query-major) for the dQ product */
#pragma unroll
      for (int nt = 0; nt < BQ / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int ql = nt * 8 + 2 * tig + (e & 1);
          float ds = s[nt][e] * (dp[nt][e] - Dl_s[ql]);
          s[nt][e] = ds;
          if constexpr (DQ) dSs[ql * LDS_ + wk + g + (e < 2 ? 0 : 8)] = f2bf(ds);
        }
      /* dK += dS^T Q */
#pragma unroll
      for (int kk = 0; kk < BQ / 16; ++kk) {
        uint32_t a[4];
        a[0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        const bf16* rp = Qs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;
#pragma unroll
        for (int dt = 0; dt < D / 16; ++dt) {
          uint32_t b0, b1, b2, b3;
          ldmatrix_x4_trans(b0, b1, b2, b3, rp + dt * 16);
          mma_bf16_16816(dkacc[2 * dt], a, b0, b1);
          mma_bf16_16816(dkacc[2 * dt + 1], a, b2, b3);
        }
      }
      /* dQ[q0 + rg*16 .., dpart] += scale * dS K */
      if constexpr (DQ) {
        __syncthreads(); /* dSs complete */
        const int rg = warp % RG, dpart = warp / RG;
        float acc[DQW / 8][4];
#pragma unroll
        for (int i = 0; i < DQW / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < BWD_BK / 16; ++kk) {
          uint32_t a[4];
          a[0] = lds32(dSs + (rg * 16 + g) * LDS_ + kk * 16 + 2 * tig);
          a[1] = lds32(dSs + (rg * 16 + g + 8) * LDS_ + kk * 16 + 2 * tig);
          a[2] = lds32(dSs + (rg * 16 + g) * LDS_ + kk * 16 + 2 * tig + 8);
          a[3] = lds32(dSs + (rg * 16 + g + 8) * LDS_ + kk * 16 + 2 * tig + 8);
          const bf16* rp = Ks + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + dpart * DQW + (lane >> 4) * 8;
#pragma unroll
          for (int dt = 0; dt < DQW / 16; ++dt) {
            uint32_t b0, b1, b2, b3;
            ldmatrix_x4_trans(b0, b1, b2, b3, rp + dt * 16);
            mma_bf16_16816(acc[2 * dt], a, b0, b1);
            mma_bf16_16816(acc[2 * dt + 1], a, b2, b3);
          }
        }
        const int qa = q0 + rg * 16 + g, qb2 = qa + 8;
#pragma unroll
        for (int i = 0; i < DQW / 8; ++i) {
          int col = dpart * DQW + i * 8 + 2 * tig;
          if (qa < T) {
            atomicAdd(dqb + (int64_t)qa * qstride + col, acc[i][0] * scale);
            atomicAdd(dqb + (int64_t)qa * qstride + col + 1, acc[i][1] * scale);
          }
          if (qb2 < T) {
            atomicAdd(dqb + (int64_t)qb2 * qstride + col, acc[i][2] * scale);
            atomicAdd(dqb + (int64_t)qb2 * qstride + col + 1, acc[i][3] * scale);
          }
        }
      }
    }
  }
  /* write dK (scaled) and dV for this warp's keys */
  bf16* dkb = dk + (int64_t)b * T * kstride + (int64_t)kh * D;
  bf16* dvb = dv + (int64_t)b * T * kstride + (int64_t)kh * D;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    int col = i * 8 + 2 * tig;
    if (key0 < T) {
      *reinterpret_cast<uint32_t*>(dkb + (int64_t)key0 * kstride + col) = pack_bf16(dkacc[i][0] * scale, dkacc[i][1] * scale);
      *reinterpret_cast<uint32_t*>(dvb + (int64_t)key0 * kstride + col) = pack_bf16(dvacc[i][0], dvacc[i][1]);
    }
    if (key1 < T) {
      *reinterpret_cast<uint32_t*>(dkb + (int64_t)key1 * kstride + col) = pack_bf16(dkacc[i][2] * scale, dkacc[i][3] * scale);
      *reinterpret_cast<uint32_t*>(dvb + (int64_t)key1 * kstride + col) = pack_bf16(dvacc[i][2], dvacc[i][3]);
    }
  }
}

template <int D, int BQ, bool DQ>
static int launch_bwd(float* dq_acc, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                      const float* lse, const float* Dl, int B, int T, int H, int KH) {
  constexpr int LD = D + 8;
  size_t smem = (size_t)(2 * BWD_BK + 2 * BQ) * LD * sizeof(bf16) + (size_t)BQ * (BWD_BK + 8) * sizeof(bf16) +
                2 * BQ * sizeof(float);
  static bool attr_set = false;
  if (!attr_set) {
    OLMO_CUDA(cudaFuncSetAttribute(flash_bwd_kernel<D, BQ, DQ>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    attr_set = true;
  }
  dim3 grid((T + BWD_BK - 1) / BWD_BK, B * KH);
  const float scale = 1.f / sqrtf((float)D);
  flash_bwd_kernel<D, BQ, DQ><<<grid, BWD_THREADS, smem, g_state.stream>>>(dq_acc, dk, dv, dout, q, k, v, lse, Dl, T, H, KH,
                                                                          scale, scale * 1.4426950408889634f);
  OLMO_LAUNCH_CHECK("flash_bwd_kernel");
  return 0;
}

int flash_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                             const bf16* v, const bf16* out, const float* lse, int B, int T, int H, int KH, int D,
                             bool deterministic) {
  const int64_t nq = (int64_t)B * T * H * D, rows = (int64_t)B * T * H;
  float *dq_acc = nullptr, *Dl = nullptr;
  if (!deterministic && olmo_scratch(OLMO_SCRATCH_ATTN, (size_t)nq * sizeof(float), (void**)&dq_acc)) return 1;
  if (olmo_scratch(OLMO_SCRATCH_ATTN2, (size_t)rows * sizeof(float), (void**)&Dl)) return 1;
  if (!deterministic) OLMO_CUDA(cudaMemsetAsync(dq_acc, 0, (size_t)nq * sizeof(float), g_state.stream));
  attn_bwd_dot_kernel<<<olmo_grid(rows * 32, 256), 256, 0, g_state.stream>>>(Dl, dout, out, rows, T, H, D);
  OLMO_LAUNCH_CHECK("attn_bwd_dot_kernel");
  int st;
  if (D == 64) st = deterministic ? launch_bwd<64, 64, false>(nullptr, dk, dv, dout, q, k, v, lse, Dl, B, T, H, KH)
                                  : launch_bwd<64, 64, true>(dq_acc, dk, dv, dout, q, k, v, lse, Dl, B, T, H, KH);
  else if (D == 128) st = deterministic ? launch_bwd<128, 32, false>(nullptr, dk, dv, dout, q, k, v, lse, Dl, B, T, H, KH)
                                        : launch_bwd<128, 32, true>(dq_acc, dk, dv, dout, q, k, v, lse, Dl, B, T, H, KH);
  else return olmo_set_error("flash_attention_backward: unsupported D=%d", D);
  if (st) return st;
  if (deterministic) return flash_attention_backward_dq(dq, dout, q, k, v, lse, Dl, B, T, H, KH, D);
  attn_cast_dq_kernel<<<olmo_grid(nq, 256), 256, 0, g_state.stream>>>(dq, dq_acc, nq);
  OLMO_LAUNCH_CHECK("attn_cast_dq_kernel");
  return 0;
}
