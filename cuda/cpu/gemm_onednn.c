/*
 * gemm_onednn.c — the oneDNN GEMM backend of gemm.c (dnnl_sgemm, row-major like cblas), compiled
 * when cuda/build.ts found oneDNN (-DOLMO_GEMM_ONEDNN -ldnnl), to nothing otherwise.
 *
 * Threads: Debian's libdnnl is built on OpenMP (DNNL_CPU_RUNTIME_OMP) and shares this library's
 * pool, so the two never oversubscribe: called inside one of gemm.c's parallel regions oneDNN runs
 * single-threaded (dnnl_get_current_num_threads() is 1 under omp_in_parallel()), called outside
 * it uses omp_get_max_threads() of the calling thread, i.e. olmo_set_num_threads. gemm.c chooses
 * between the two per shape (see its header), and pins one thread for the GEMMs too small to split.
 */
#ifdef OLMO_GEMM_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

#include "internal.h"

#if DNNL_CPU_THREADING_RUNTIME != DNNL_RUNTIME_OMP && DNNL_CPU_THREADING_RUNTIME != DNNL_RUNTIME_SEQ
#error "this oneDNN threads with TBB or a threadpool, which would oversubscribe OpenMP's threads: build with OLMO_GEMM=openblas"
#endif

const char olmo_cpu_gemm_name[] = "oneDNN";
const int64_t olmo_cpu_gemm_max_dim = INT64_MAX; /* dnnl_dim_t is 64-bit */

void olmo_cpu_gemm_setup(void) {}

int olmo_cpu_gemm_rowmajor(int transA, int transB, int64_t M, int64_t N, int64_t Kd, const float* A,
                           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  dnnl_status_t st = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', M, N, Kd, 1.0f, A, lda, B,
                                ldb, beta, C, ldc);
  return st == dnnl_success ? 0 : (int)st;
}
#endif
