/*
 * attention_dq.cu — the deterministic dQ of causal flash attention (OLMO_DETERMINISTIC=1): no atomics.
 *
 * The backward kernel of attention_bwd.cu owns a tile of KEYS and adds its share of dQ with fp32
 * atomics, so the order of the additions (and the bits of dQ) changes from run to run once a query
 * sees more than one 64-key tile (T > 64). Here one block owns a tile of 64 QUERIES of one (b, h) and
 * walks the key tiles j <= its own in order, so every dQ element is summed in the same order on
 * every run. It recomputes what the key-tile kernel also computes (FlashAttention-2's dQ pass):
 *   S = Q K^T,  P = 2^(S scale log2e - lse log2e)  (masked: s > t, s >= T, t >= T -> 0)
 *   dP = dO V^T,  dS = P (dP - Dl)  (Dl_t = dO_t . O_t from attn_bwd_dot_kernel)
 *   dQ += dS K,  finally dq = bf16(scale dQ)
 * Cost: three tensor-core products per (query tile, key tile) on top of the key-tile kernel's four
 * (it skips its dQ product and the dS staging), i.e. 7 instead of 5 for the attention backward.
 * Layout as the forward (attention_fwd.cu): 4 warps x 16 query rows; Q fragments in registers; the
 * Q tile's shared memory then holds dO; K and V tiles by cp.async; mma.sync m16n8k16, bf16 in, fp32 acc.
 */
#include "attention.cuh"

#define DQ_BR 64
#define DQ_BC 64
#define DQ_THREADS 128

template <int D>
__global__ void __launch_bounds__(DQ_THREADS) flash_bwd_dq_kernel(bf16* __restrict__ dq, const bf16* __restrict__ dout,
                                                                  const bf16* __restrict__ q, const bf16* __restrict__ k,
                                                                  const bf16* __restrict__ v, const float* __restrict__ lse,
                                                                  const float* __restrict__ Dl, int T, int H, int KH,
                                                                  float scale, float scale_log2) {
  constexpr int LD = D + 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* QdOs = reinterpret_cast<bf16*>(smem_raw); /* Q, then dO */
  bf16* Ks = QdOs + DQ_BR * LD;
  bf16* Vs = Ks + DQ_BC * LD;

  const int qt = gridDim.x - 1 - blockIdx.x; /* heaviest tiles first */
  const int b = blockIdx.y / H, h = blockIdx.y % H, kh = h / (H / KH);
  const int q0 = qt * DQ_BR;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int64_t qstride = (int64_t)H * D, kstride = (int64_t)KH * D;
  const bf16* qb = q + (int64_t)b * T * qstride + (int64_t)h * D;
  const bf16* dob = dout + (int64_t)b * T * qstride + (int64_t)h * D;
  const bf16* kb = k + (int64_t)b * T * kstride + (int64_t)kh * D;
  const bf16* vb = v + (int64_t)b * T * kstride + (int64_t)kh * D;
  const int wr = warp * 16;

  load_tile<DQ_BR, D, LD, DQ_THREADS>(QdOs, qb, qstride, q0, T);
  cp_async_wait_all();
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    qf[ks][0] = lds32(QdOs + (wr + g) * LD + ks * 16 + 2 * tig);
    qf[ks][1] = lds32(QdOs + (wr + g + 8) * LD + ks * 16 + 2 * tig);
    qf[ks][2] = lds32(QdOs + (wr + g) * LD + ks * 16 + 2 * tig + 8);
    qf[ks][3] = lds32(QdOs + (wr + g + 8) * LD + ks * 16 + 2 * tig + 8);
  }
  __syncthreads(); /* every warp holds its Q fragments: the tile now takes dO */
  load_tile<DQ_BR, D, LD, DQ_THREADS>(QdOs, dob, qstride, q0, T);

  const float LOG2E = 1.4426950408889634f;
  const int row[2] = {q0 + wr + g, q0 + wr + g + 8};
  const bool rowok[2] = {row[0] < T, row[1] < T};
  const float* lseb = lse + ((int64_t)b * H + h) * T;
  const float* Dlb = Dl + ((int64_t)b * H + h) * T;
  const float lse2[2] = {rowok[0] ? lseb[row[0]] * LOG2E : 0.f, rowok[1] ? lseb[row[1]] * LOG2E : 0.f};
  const float dl[2] = {rowok[0] ? Dlb[row[0]] : 0.f, rowok[1] ? Dlb[row[1]] : 0.f};

  float acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;

  for (int j = 0; j <= qt; ++j) {
    const int k0 = j * DQ_BC;
    __syncthreads(); /* everyone is done with the previous K/V tile */
    load_tile<DQ_BC, D, LD, DQ_THREADS>(Ks, kb, kstride, k0, T);
    load_tile<DQ_BC, D, LD, DQ_THREADS>(Vs, vb, kstride, k0, T);
    cp_async_wait_all(); /* (the first time also the dO tile) */
    __syncthreads();

    /* S = Q K^T and dP = dO V^T, both [16 rows x 64 keys] per warp */
    float s[DQ_BC / 8][4], dp[DQ_BC / 8][4];
#pragma unroll
    for (int nt = 0; nt < DQ_BC / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t a[4];
      a[0] = lds32(QdOs + (wr + g) * LD + ks * 16 + 2 * tig);
      a[1] = lds32(QdOs + (wr + g + 8) * LD + ks * 16 + 2 * tig);
      a[2] = lds32(QdOs + (wr + g) * LD + ks * 16 + 2 * tig + 8);
      a[3] = lds32(QdOs + (wr + g + 8) * LD + ks * 16 + 2 * tig + 8);
#pragma unroll
      for (int nt = 0; nt < DQ_BC / 8; ++nt) {
        const bf16* kp = Ks + (nt * 8 + g) * LD + ks * 16 + 2 * tig;
        mma_bf16_16816(s[nt], qf[ks], lds32(kp), lds32(kp + 8));
        const bf16* vp = Vs + (nt * 8 + g) * LD + ks * 16 + 2 * tig;
        mma_bf16_16816(dp[nt], a, lds32(vp), lds32(vp + 8));
      }
    }
    /* dS = P (dP - Dl), in place of S */
    const bool need_mask = (k0 + DQ_BC > q0) || (k0 + DQ_BC > T);
#pragma unroll
    for (int nt = 0; nt < DQ_BC / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1, col = k0 + nt * 8 + 2 * tig + (e & 1);
        const bool keep = rowok[r] && !(need_mask && (col > row[r] || col >= T));
        const float p = keep ? exp2f(s[nt][e] * scale_log2 - lse2[r]) : 0.f;
        s[nt][e] = p * (dp[nt][e] - dl[r]);
      }
    /* dQ += dS K: dS re-packed from the accumulators as A fragments, K read k-major */
#pragma unroll
    for (int kk = 0; kk < DQ_BC / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const bf16* krow = Ks + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;
#pragma unroll
      for (int dt = 0; dt < D / 16; ++dt) {
        uint32_t b0, b1, b2, b3;
        ldmatrix_x4_trans(b0, b1, b2, b3, krow + dt * 16);
        mma_bf16_16816(acc[2 * dt], a, b0, b1);
        mma_bf16_16816(acc[2 * dt + 1], a, b2, b3);
      }
    }
  }

  bf16* dqb = dq + (int64_t)b * T * qstride + (int64_t)h * D;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    const int col = i * 8 + 2 * tig;
    if (rowok[0]) *reinterpret_cast<uint32_t*>(dqb + (int64_t)row[0] * qstride + col) = pack_bf16(acc[i][0] * scale, acc[i][1] * scale);
    if (rowok[1]) *reinterpret_cast<uint32_t*>(dqb + (int64_t)row[1] * qstride + col) = pack_bf16(acc[i][2] * scale, acc[i][3] * scale);
  }
}

template <int D>
static int launch_dq(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const float* lse,
                     const float* Dl, int B, int T, int H, int KH) {
  constexpr int LD = D + 8;
  size_t smem = (size_t)(DQ_BR + 2 * DQ_BC) * LD * sizeof(bf16);
  static bool attr_set = false;
  if (!attr_set) {
    OLMO_CUDA(cudaFuncSetAttribute(flash_bwd_dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    attr_set = true;
  }
  dim3 grid((T + DQ_BR - 1) / DQ_BR, B * H);
  const float scale = 1.f / sqrtf((float)D);
  flash_bwd_dq_kernel<D><<<grid, DQ_THREADS, smem, g_state.stream>>>(dq, dout, q, k, v, lse, Dl, T, H, KH, scale,
                                                                     scale * 1.4426950408889634f);
  OLMO_LAUNCH_CHECK("flash_bwd_dq_kernel");
  return 0;
}

int flash_attention_backward_dq(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                                const float* lse, const float* Dl, int B, int T, int H, int KH, int D) {
  OLMO_REQUIRE((int64_t)B * H <= 65535, "olmo_attention_backward (deterministic): B*H=%lld exceeds the grid limit 65535",
               (long long)B * H);
  if (D == 64) return launch_dq<64>(dq, dout, q, k, v, lse, Dl, B, T, H, KH);
  if (D == 128) return launch_dq<128>(dq, dout, q, k, v, lse, Dl, B, T, H, KH);
  return olmo_set_error("flash_attention_backward_dq: unsupported D=%d", D);
}
