/*
 * gemm_openblas.c — the OpenBLAS GEMM backend of gemm.c (the build's fallback: compiled to nothing
 * when cuda/build.ts chose oneDNN, -DOLMO_GEMM_ONEDNN).
 *
 * OpenBLAS runs single-threaded and gemm.c splits C over OpenMP's threads itself. Why: OpenBLAS'
 * own pthread pool spin-waits for ~0.1 s after every call, and on a 2-core machine that stole the
 * cores from the OpenMP kernels that follow each GEMM (a 2 ms SwiGLU took 10-20 ms right after a
 * GEMM). Link the pthread OpenBLAS, not the OpenMP one: there openblas_set_num_threads(1) would
 * also set OpenMP's thread count to one for every kernel of this library.
 */
#ifndef OLMO_GEMM_ONEDNN
#include <cblas.h>
#include <limits.h>

#include "internal.h"

void openblas_set_num_threads(int num_threads);

const char olmo_cpu_gemm_name[] = "OpenBLAS";
const int64_t olmo_cpu_gemm_max_dim = INT_MAX; /* the 32-bit BLAS interface */

void olmo_cpu_gemm_setup(void) {
  static int done = 0;
  if (!done) {
    openblas_set_num_threads(1);
    done = 1;
  }
}

int olmo_cpu_gemm_rowmajor(int transA, int transB, int64_t M, int64_t N, int64_t Kd, const float* A,
                           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              (int)M, (int)N, (int)Kd, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
  return 0;
}
#endif
