/*
 * matmul.cu — GEMM through cuBLASLt (bf16 A/B, fp32 compute and scale), plus a plain fallback.
 *
 * Row-major contract of olmo.h:  C[M,N] = op(A)[M,Kd] @ op(B)[Kd,N] + beta * C.
 * cuBLAS is column-major; a row-major X[r,c] is the column-major X^T[c,r]. So we compute
 *   C^T[N,M] = op(B)^T[N,Kd] @ op(A)^T[Kd,M]
 * i.e. cuBLAS "A" := our B, "B" := our A, m = N, n = M, k = Kd:
 *   our B, !transB: stored [Kd,N] row-major = col-major (N x Kd, ld N)  -> OP_N
 *   our B,  transB: stored [N,Kd] row-major = col-major (Kd x N, ld Kd) -> OP_T
 *   our A, !transA: stored [M,Kd] row-major = col-major (Kd x M, ld Kd) -> OP_N
 *   our A,  transA: stored [Kd,M] row-major = col-major (M x Kd, ld M)  -> OP_T
 *   C: col-major (N x M, ld N); D = C (in place, beta may be 1 to accumulate weight gradients).
 * Descriptors, layouts and the heuristic's algorithm are cached per
 * (M, N, Kd, transA, transB, C dtype, beta != 0, pointer alignment) in a small table (round-robin
 * eviction). Workspace: 32 MiB (g_state.workspace).
 * Fallback (cuBLASLt finds no algorithm, or Kd == 0): a 16x16-tiled shared-memory kernel with fp32
 * accumulation — slow, but right for any shape and alignment.
 */
#include <string.h>
#include "common.cuh"
#include "vendor.h"

struct GemmKey {
  int64_t M, N, K;
  int ta, tb, ctype, has_beta, align;
  bool operator==(const GemmKey& o) const {
    return M == o.M && N == o.N && K == o.K && ta == o.ta && tb == o.tb && ctype == o.ctype &&
           has_beta == o.has_beta && align == o.align;
  }
};
struct GemmPlan {
  bool used = false;
  bool fallback = false; /* cuBLASLt had no algorithm */
  GemmKey key;
  olmoCublasLtMatmulDesc_t desc = nullptr;
  olmoCublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  olmoCublasLtMatmulAlgo_t algo;
};
#define GEMM_CACHE 96
static GemmPlan s_plans[GEMM_CACHE];
static int s_next = 0;

static int lt_error(olmoCublasStatus_t st, const char* what) {
  const char* msg = g_lt.GetStatusString ? g_lt.GetStatusString(st) : nullptr;
  return olmo_set_error("cuBLASLt %s failed: status %d (%s)", what, (int)st, msg ? msg : "?");
}
#define LT(call, what)                                      \
  do {                                                      \
    olmoCublasStatus_t st_ = (call);                        \
    if (st_ != OLMO_CUBLAS_STATUS_SUCCESS) return lt_error(st_, what); \
  } while (0)

OLMO_INTERNAL int olmo_matmul_init(void) {
  if (g_lt.handle) return 0;
  LT(g_lt.Create(&g_lt.handle), "cublasLtCreate");
  return 0;
}

static void plan_release(GemmPlan& p) {
  if (p.desc) g_lt.MatmulDescDestroy(p.desc);
  if (p.a) g_lt.MatrixLayoutDestroy(p.a);
  if (p.b) g_lt.MatrixLayoutDestroy(p.b);
  if (p.c) g_lt.MatrixLayoutDestroy(p.c);
  p = GemmPlan();
}

static int ptr_align(const void* p) {
  uintptr_t v = (uintptr_t)p;
  int a = 256;
  while (a > 1 && (v % (uintptr_t)a) != 0) a >>= 1;
  return a;
}

/* Build (or find) the plan for this key. */
static int get_plan(const GemmKey& k, GemmPlan** out) {
  for (auto& p : s_plans)
    if (p.used && p.key == k) {
      *out = &p;
      return 0;
    }
  GemmPlan& p = s_plans[s_next];
  s_next = (s_next + 1) % GEMM_CACHE;
  if (p.used) plan_release(p);
  p.key = k;
  cudaDataType_t ct = k.ctype ? CUDA_R_32F : CUDA_R_16BF;
  int opA = k.tb ? OLMO_CUBLAS_OP_T : OLMO_CUBLAS_OP_N; /* cuBLAS A := our B */
  int opB = k.ta ? OLMO_CUBLAS_OP_T : OLMO_CUBLAS_OP_N; /* cuBLAS B := our A */
  LT(g_lt.MatmulDescCreate(&p.desc, OLMO_CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
  LT(g_lt.MatmulDescSetAttribute(p.desc, OLMO_CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA), "DescSetAttribute(TRANSA)");
  LT(g_lt.MatmulDescSetAttribute(p.desc, OLMO_CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB), "DescSetAttribute(TRANSB)");
  if (k.tb) LT(g_lt.MatrixLayoutCreate(&p.a, CUDA_R_16BF, k.K, k.N, k.K), "MatrixLayoutCreate(B^T)");
  else      LT(g_lt.MatrixLayoutCreate(&p.a, CUDA_R_16BF, k.N, k.K, k.N), "MatrixLayoutCreate(B)");
  if (k.ta) LT(g_lt.MatrixLayoutCreate(&p.b, CUDA_R_16BF, k.M, k.K, k.M), "MatrixLayoutCreate(A^T)");
  else      LT(g_lt.MatrixLayoutCreate(&p.b, CUDA_R_16BF, k.K, k.M, k.K), "MatrixLayoutCreate(A)");
  LT(g_lt.MatrixLayoutCreate(&p.c, ct, k.N, k.M, k.N), "MatrixLayoutCreate(C)");
  olmoCublasLtMatmulPreference_t pref = nullptr;
  LT(g_lt.MatmulPreferenceCreate(&pref), "MatmulPreferenceCreate");
  uint64_t ws = g_state.workspace_bytes;
  olmoCublasStatus_t st = g_lt.MatmulPreferenceSetAttribute(pref, OLMO_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  if (st == OLMO_CUBLAS_STATUS_SUCCESS && k.align < 256) {
    uint32_t al = (uint32_t)k.align;
    const int attrs[4] = {OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                          OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4 && st == OLMO_CUBLAS_STATUS_SUCCESS; ++i)
      st = g_lt.MatmulPreferenceSetAttribute(pref, attrs[i], &al, sizeof al);
  }
  olmoCublasLtMatmulHeuristicResult_t res;
  memset(&res, 0, sizeof res);
  int found = 0;
  if (st == OLMO_CUBLAS_STATUS_SUCCESS)
    st = g_lt.MatmulAlgoGetHeuristic(g_lt.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
  g_lt.MatmulPreferenceDestroy(pref);
  p.used = true;
  if (st != OLMO_CUBLAS_STATUS_SUCCESS || found < 1 || res.state != OLMO_CUBLAS_STATUS_SUCCESS) {
    p.fallback = true; /* e.g. NOT_SUPPORTED for an odd shape: use the plain kernel */
  } else {
    p.algo = res.algo;
  }
  *out = &p;
  return 0;
}

/* Plain fallback: C[M,N] = op(A) op(B) + beta C, 16x16 tiles, fp32 accumulation. */
template <typename CT>
__global__ void gemm_fallback_kernel(CT* C, const bf16* A, const bf16* B, int64_t M, int64_t N, int64_t K, int ta,
                                     int tb, float beta) {
  __shared__ float As[16][17], Bs[16][17];
  const int64_t row = blockIdx.y * 16 + threadIdx.y, col = blockIdx.x * 16 + threadIdx.x;
  float acc = 0.f;
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    int64_t ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
    int64_t ar = blockIdx.y * 16 + threadIdx.y, bc = blockIdx.x * 16 + threadIdx.x;
    As[threadIdx.y][threadIdx.x] = (ar < M && ka < K) ? bf2f(ta ? A[ka * M + ar] : A[ar * K + ka]) : 0.f;
    Bs[threadIdx.y][threadIdx.x] = (kb < K && bc < N) ? bf2f(tb ? B[bc * K + kb] : B[kb * N + bc]) : 0.f;
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; ++kk) acc += As[threadIdx.y][kk] * Bs[kk][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) {
    CT* cp = C + row * N + col;
    if constexpr (sizeof(CT) == 2) *cp = f2bf(acc + (beta != 0.f ? bf2f(*cp) * beta : 0.f));
    else *cp = acc + (beta != 0.f ? *cp * beta : 0.f);
  }
}

static int run_gemm(void* C, const void* A, const void* B, int64_t M, int64_t N, int64_t K, int ta, int tb, float beta,
                    int ctype, const char* name) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(M >= 0 && N >= 0 && K >= 0, "%s: negative size", name);
  if (M == 0 || N == 0) return 0;
  int al = ptr_align(A);
  int t = ptr_align(B); if (t < al) al = t;
  t = ptr_align(C); if (t < al) al = t;
  GemmKey key{M, N, K, ta ? 1 : 0, tb ? 1 : 0, ctype, beta != 0.f ? 1 : 0, al};
  GemmPlan* p = nullptr;
  bool fallback = K == 0;
  if (!fallback) {
    if (get_plan(key, &p)) return 1;
    fallback = p->fallback;
  }
  if (!fallback) {
    const float alpha = 1.f;
    olmoCublasStatus_t st = g_lt.Matmul(g_lt.handle, p->desc, &alpha, B, p->a, A, p->b, &beta, C, p->c, C, p->c,
                                        &p->algo, g_state.workspace, g_state.workspace_bytes, g_state.stream);
    if (st != OLMO_CUBLAS_STATUS_SUCCESS) {
      const char* msg = g_lt.GetStatusString ? g_lt.GetStatusString(st) : nullptr;
      return olmo_set_error("%s(M=%lld N=%lld K=%lld tA=%d tB=%d): cublasLtMatmul failed: status %d (%s)", name,
                            (long long)M, (long long)N, (long long)K, ta, tb, (int)st, msg ? msg : "?");
    }
    return 0;
  }
  dim3 grid((unsigned)((N + 15) / 16), (unsigned)((M + 15) / 16)), block(16, 16);
  OLMO_REQUIRE(grid.y <= 65535, "%s: M=%lld too large for the fallback GEMM", name, (long long)M);
  if (ctype)
    gemm_fallback_kernel<float><<<grid, block, 0, g_state.stream>>>((float*)C, (const bf16*)A, (const bf16*)B, M, N, K,
                                                                    ta, tb, beta);
  else
    gemm_fallback_kernel<bf16><<<grid, block, 0, g_state.stream>>>((bf16*)C, (const bf16*)A, (const bf16*)B, M, N, K,
                                                                   ta, tb, beta);
  OLMO_LAUNCH_CHECK("gemm_fallback_kernel");
  return 0;
}

extern "C" {

int olmo_matmul(void* C, const void* A, const void* B, int64_t M, int64_t N, int64_t Kd, int transA, int transB,
                float beta) {
  return run_gemm(C, A, B, M, N, Kd, transA, transB, beta, 0, "olmo_matmul");
}

int olmo_matmul_f32(float* C, const void* A, const void* B, int64_t M, int64_t N, int64_t Kd, int transA, int transB,
                    float beta) {
  return run_gemm(C, A, B, M, N, Kd, transA, transB, beta, 1, "olmo_matmul_f32");
}

}  // extern "C"
