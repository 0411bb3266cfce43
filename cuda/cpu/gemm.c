/*
 * gemm.c — olmo_matmul / olmo_matmul_f32: row-major sgemm through the GEMM library chosen at build
 * time (gemm_onednn.c: oneDNN's dnnl_sgemm; gemm_openblas.c: OpenBLAS' cblas_sgemm, the fallback).
 *
 *   C[M,N] = op(A)[M,Kd] @ op(B)[Kd,N] + beta * C
 *   op(A) = A       (A stored [M,Kd], lda = Kd)   or  A^T  (A stored [Kd,M], lda = M)
 *   op(B) = B       (B stored [Kd,N], ldb = N)    or  B^T  (B stored [N,Kd], ldb = Kd)
 *
 * On the CPU act == f32, so both entry points are the same sgemm. beta == 0 must ignore the old
 * contents of C (they may be NaN): both libraries guarantee that, and the Kd == 0 edge case is
 * handled here explicitly (C = beta*C, or zeros) because some BLAS builds reject lda = 0.
 *
 * Threads: below GEMM_PAR_MIN multiply-adds one thread does it all (fork/join costs more);
 * above, the library cuts C into one block of rows or columns (the larger dimension) per OpenMP
 * thread and each thread runs a single-threaded sgemm on its block, with no synchronisation but
 * the final join. OpenBLAS must work that way (gemm_openblas.c says why). oneDNN could also thread
 * one call itself (gemm_onednn.c: it shares this library's OpenMP pool, so no oversubscription);
 * `bun run bench:gemm-threads` times both on the 19 distinct GEMM shapes of the bench:step step and
 * the 53 of bench:matmul's CPU shapes. On the 2-core Zen 4 VM (2026-12-06, load 0.31 at the start; noise floor,
 * the split timed against itself, 0.971), split over oneDNN's threads per class of shape, geomean
 * of the GFLOP/s ratio: NN 1.02 (M>=N) and 1.05 (M<N), NT 1.03 and 1.08, TN 1.00 and 1.00, TN +=
 * 1.00 and 1.00, NN += 1.00; the step's lm_head GEMMs 1.08 (668x100352x256 NT), 1.01 (its dgrad)
 * and 1.00 (its wgrad +=). One shape of 72 went the other way beyond the floor (1344x832x832 NT,
 * 0.96), against 1.32 for the 44-row lm_head chunk and 1.16 for 1536x384x1536 NT.
 * So both libraries split, by the rule below.
 */
#include <omp.h>

#include "internal.h"

/* Below this many multiply-adds one thread does the whole GEMM (fork/join costs more). */
#define GEMM_PAR_MIN (1 << 18)
/* Block boundaries are multiples of this many rows/columns (64-byte lines of C never shared). */
#define GEMM_ALIGN 16

struct gemm {
  const float* A;
  const float* B;
  float* C;
  int64_t M, N, Kd;
  int transA, transB;
  float beta;
};

/* One sgemm on the sub-block rows [m0,m1) x cols [n0,n1) of C; the library's status. */
static int gemm_block(const struct gemm* g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m1 <= m0 || n1 <= n0) return 0;
  int64_t lda = g->transA ? g->M : g->Kd;
  int64_t ldb = g->transB ? g->Kd : g->N;
  const float* a = g->transA ? g->A + m0 : g->A + m0 * lda;
  const float* b = g->transB ? g->B + n0 * ldb : g->B + n0;
  return olmo_cpu_gemm_rowmajor(g->transA, g->transB, m1 - m0, n1 - n0, g->Kd, a, lda, b, ldb,
                                g->beta, g->C + m0 * g->N + n0, g->N);
}

/* One thread: OpenMP's thread count is pinned to 1 around the call so that a library with its own
 * OpenMP threads (oneDNN, outside a parallel region) stays on this one too (the setting is per
 * calling thread). */
static int gemm_serial(const struct gemm* g) {
  int before = omp_get_max_threads();
  if (before > 1) omp_set_num_threads(1);
  int st = gemm_block(g, 0, g->M, 0, g->N);
  if (before > 1) omp_set_num_threads(before);
  return st;
}

static int gemm_split(const struct gemm* g, int threads) {
  int split_rows = g->M >= g->N;
  int64_t len = split_rows ? g->M : g->N;
  int st = 0;
#pragma omp parallel num_threads(threads) reduction(| : st)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    /* equal shares rounded to GEMM_ALIGN; the last thread takes the remainder */
    int64_t share = (len / n + GEMM_ALIGN - 1) / GEMM_ALIGN * GEMM_ALIGN;
    int64_t lo = t * share < len ? t * share : len;
    int64_t hi = t == n - 1 ? len : (lo + share < len ? lo + share : len);
    st |= split_rows ? gemm_block(g, lo, hi, 0, g->N) : gemm_block(g, 0, g->M, lo, hi);
  }
  return st;
}

static int sgemm(const char* fn, float* C, const float* A, const float* B, int64_t M, int64_t N,
                 int64_t Kd, int transA, int transB, float beta) {
  if (M < 0 || N < 0 || Kd < 0)
    return olmo_cpu_fail(fn, "negative size (M=%lld N=%lld Kd=%lld)", (long long)M, (long long)N,
                         (long long)Kd);
  int64_t max_dim = olmo_cpu_gemm_max_dim;
  if (M > max_dim || N > max_dim || Kd > max_dim)
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
  olmo_cpu_gemm_setup();
  struct gemm g = {A, B, C, M, N, Kd, transA, transB, beta};
  int threads = omp_get_max_threads();
  int64_t len = M >= N ? M : N;
  if (threads > len / GEMM_ALIGN) threads = (int)(len / GEMM_ALIGN);
  int serial = threads <= 1 || (double)M * (double)N * (double)Kd < GEMM_PAR_MIN;
  int st = serial ? gemm_serial(&g) : gemm_split(&g, threads);
  if (st != 0)
    return olmo_cpu_fail(fn, "%s sgemm failed with status %d (M=%lld N=%lld Kd=%lld)",
                         olmo_cpu_gemm_name, st, (long long)M, (long long)N, (long long)Kd);
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
