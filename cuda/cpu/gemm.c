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
 */
#include <cblas.h>
#include <limits.h>

#include "internal.h"

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
  int lda = transA ? (int)M : (int)Kd;
  int ldb = transB ? (int)Kd : (int)N;
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              (int)M, (int)N, (int)Kd, 1.0f, A, lda, B, ldb, beta, C, (int)N);
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
