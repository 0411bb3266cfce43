/*
 * attention.cuh — tensor-core building blocks shared by the flash-attention kernels, and the
 * launchers' prototypes.
 *
 * mma.sync.m16n8k16 (bf16 in, fp32 accumulate). Fragment layout, lane = 4*g + tig:
 *   A (16x16, row-major): a0 = A[g][2tig..+1], a1 = A[g+8][2tig..+1], a2 = A[g][2tig+8..+9], a3 = A[g+8][2tig+8..+9]
 *   B (16x8, k x n):      b0 = B[2tig..+1][g],  b1 = B[2tig+8..+9][g]
 *   C (16x8 fp32):        c0,c1 = C[g][2tig..+1], c2,c3 = C[g+8][2tig..+1]
 * Two adjacent C tiles (n = 8j.., 8j+8..) of a 16x16 block are exactly the A fragment of that block
 * (the FlashAttention-2 register reuse of P). A B operand stored k-major (rows = k) comes from
 * ldmatrix.x4.trans; one stored n-major (rows = n, e.g. K for Q K^T) is read with 32-bit loads.
 */
#pragma once
#include "common.cuh"

__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 4 8x8 b16 matrices, transposed; lane l supplies the address of row (l & 7) of matrix (l >> 3). */
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3,
                                                  const void* smem) {
  uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(a));
}

__device__ __forceinline__ uint32_t lds32(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

/* 16-byte async copy global -> shared; valid == false writes zeros (src-size 0). */
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group 0;\n" ::);
}

/* Copy rows [r0, r0+ROWS) of a [.., T, heads, D] tensor (one head) into smem rows of stride LD;
 * rows >= T are zero-filled. */
template <int ROWS, int D, int LD, int NT>
__device__ __forceinline__ void load_tile(bf16* sm, const bf16* base, int64_t row_stride, int r0, int T) {
  constexpr int CH = D / 8; /* 16-byte chunks per row */
  for (int i = threadIdx.x; i < ROWS * CH; i += NT) {
    int r = i / CH, c = i % CH;
    bool ok = r0 + r < T;
    const bf16* src = ok ? base + (int64_t)(r0 + r) * row_stride + c * 8 : base;
    cp_async16(sm + r * LD + c * 8, src, ok);
  }
}

/* launchers (attention_fwd.cu / attention_bwd.cu / attention_dq.cu / attention_ref.cu) */
OLMO_INTERNAL int flash_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                            int KH, int D);
/* deterministic: dQ without atomics (flash_attention_backward_dq), run-to-run identical bits */
OLMO_INTERNAL int flash_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                             const bf16* v, const bf16* out, const float* lse, int B, int T, int H, int KH, int D,
                             bool deterministic);
OLMO_INTERNAL int flash_attention_backward_dq(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                                const float* lse, const float* Dl, int B, int T, int H, int KH, int D);
OLMO_INTERNAL int ref_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                          int KH, int D);
OLMO_INTERNAL int ref_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const bf16* out, const float* lse, int B, int T, int H, int KH, int D);
