/*
 * gemm.c — olmo_matmul / olmo_matmul_f32 via OpenBLAS cblas_sgemm (row-major).
 *
 *   C[M,N] = op(A)[M,Kd] @ op(B)[Kd,N] + beta * C
 *   op(A) = A       (A stored [M,Kd], lda = Kd)   or  A^T  (A stored [Kd,M], lda = M)
 *   op(B) = B       (B stored [Kd,N], ldb = N)    or  B^T  (B stored [N,Kd], ldb = Kd)
 *
 * On the CPU act == f32, so both entry points are the same sgemm. beta == 0 must ignore the old
 * contents of C (they may be NaN): BLAS guarantees that, and the Kd == 0 edge case is handled
 * here explicitly (C = beta*C, or zeros) because some BLAS builds reject lda = 0.
 *
 * Threading: OpenBLAS runs single-threaded and the library splits C itself across its OpenMP
 * threads (row blocks or column blocks, whichever dimension is larger). Why: OpenBLAS' own
 * pthread pool spin-waits for ~0.1 s after every call, and on a 2-core machine that stole the
 * cores from the OpenMP kernels that follow each GEMM (a 2 ms SwiGLU took 10-20 ms right after a
 * GEMM). One pool (OpenMP) for everything removes the contention; it also keeps small-M GEMMs
 * (vocab-chunked lm_head) fully parallel.
 */
#include <cblas.h>
#include <limits.h>
#include <omp.h>

#include "internal.h"

/* Below this many multiply-adds one thread does the whole GEMM (fork/join costs more). */
#define GEMM_PAR_MIN (1 << 18)
/* Block boundaries are multiples of this many rows/columns (64-byte lines of C never shared). */
#define GEMM_ALIGN 16

/* One sgemm on the sub-block rows [m0,m1) x cols [n0,n1) of C. */
static void sgemm_block(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t Kd,
                        int transA, int transB, float beta, int64_t m0, int64_t m1, int64_t n0,
                        int64_t n1) {
  if (m1 <= m0 || n1 <= n0) return;
  int lda = transA ? (int)M : (int)Kd;
  int ldb = transB ? (int)Kd : (int)N;
  const float* a = transA ? A + m0 : A + m0 * lda;
  const float* b = transB ? B + n0 * ldb : B + n0;
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              (int)(m1 - m0), (int)(n1 - n0), (int)Kd, 1.0f, a, lda, b, ldb, beta, C + m0 * N + n0,
              (int)N);
}

static int sgemm(const char* fn, float* C, const float* A, const float* B, int64_t M, int64_t N,
                 int64_t Kd, int transA, int transB, float beta) {
  if (M < 0 || N < 0 || Kd < 0)
    return olmo_cpu_fail(fn, "negative size (M=%lld N=%lld Kd=%lld)", (long long)M, (long long)N,
                         (long long)Kd);
  if (M > INT_MAX || N > INT_MAX || Kd > INT_MAX)
    return olmo_cpu_fail(fn, "size exceeds the 32-bit BLAS interface (M=%lld N=%lld Kd=%lld)",
                         (long long)M, (long long)N, (long long)Kd);
  if ((transA != 0 && transA != 1) || (transB != 0 && transB != 1))
    return olmo_cpu_fail(fn, "transA/transB must be 0 or 1 (got %d, %d)", transA, transB);
  if (M == 0 || N == 0) return 0;
  if (C == NULL) return olmo_cpu_fail(fn, "C is NULL");
  if (Kd == 0) {
    int64_t n = M * N;
    for (int64_t i = 0; i < n; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
    return 0;
  }
  if (A == NULL || B == NULL) return olmo_cpu_fail(fn, "%s is NULL", A == NULL ? "A" : "B");
  olmo_cpu_blas_single_threaded();
  int nt = omp_get_max_threads();
  int split_rows = M >= N;
  int64_t len = split_rows ? M : N;
  if (nt > len / GEMM_ALIGN) nt = (int)(len / GEMM_ALIGN);
  if (nt <= 1 || (double)M * (double)N * (double)Kd < GEMM_PAR_MIN) {
    sgemm_block(A, B, C, M, N, Kd, transA, transB, beta, 0, M, 0, N);
    return 0;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    /* equal shares rounded to GEMM_ALIGN; the last thread takes the remainder */
    int64_t share = (len / n + GEMM_ALIGN - 1) / GEMM_ALIGN * GEMM_ALIGN;
    int64_t lo = t * share < len ? t * share : len;
    int64_t hi = t == n - 1 ? len : (lo + share < len ? lo + share : len);
    if (split_rows)
      sgemm_block(A, B, C, M, N, Kd, transA, transB, beta, lo, hi, 0, N);
    else
      sgemm_block(A, B, C, M, N, Kd, transA, transB, beta, 0, M, lo, hi);
  }
  return 0;
}

int olmo_matmul(void* C, const void* A, const void* B, int64_t M, int64_t N, int64_t Kd, int transA,
                int transB, float beta) {
  return sgemm(__func__, C, A, B, M, N, Kd, transA, transB, beta);
}

int olmo_matmul_f32(float* C, const void* A, const void* B, int64_t M, int64_t N, int64_t Kd,
                    int transA, int transB, float beta) {
  return sgemm(__func__, C, A, B, M, N, Kd, transA, transB, beta);
}
