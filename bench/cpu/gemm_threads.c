/*
 * gemm_threads.c — which threading to use for oneDNN's sgemm, per shape (bench/gemm-threads.ts runs
 * it): the three ways gemm.c can run one row-major GEMM, timed on the same buffers.
 *   library — one dnnl_sgemm from this thread on oneDNN's own OpenMP threads
 *   split   — gemm.c's split: C cut into one row or column block per OpenMP thread (the larger
 *             dimension, boundaries multiples of 16), a single-threaded dnnl_sgemm per block
 *             (oneDNN runs single-threaded inside a parallel region)
 *   openblas — the same split with OpenBLAS' cblas_sgemm, pinned to one thread (the fallback)
 *   split again — the split once more: its spread against the first is the noise floor
 * Input: lines "M N K tA tB beta" on stdin. Output: one line per shape, "M N K tA tB beta" then the
 * median GFLOP/s of each way (rounds interleaved, the order rotated each round).
 * Usage: gemm_threads ROUNDS   (threads: OMP_NUM_THREADS)
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

enum { LIBRARY, SPLIT, OPENBLAS, SPLIT_AGAIN, WAYS };

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct gemm { const float *A, *B; float* C; long M, N, K; int tA, tB; float beta; };

static void block(int way, const struct gemm* g, long m0, long m1, long n0, long n1) {
  long lda = g->tA ? g->M : g->K, ldb = g->tB ? g->K : g->N;
  const float* a = g->tA ? g->A + m0 : g->A + m0 * lda;
  const float* b = g->tB ? g->B + n0 * ldb : g->B + n0;
  if (way == OPENBLAS)
    cblas_sgemm(CblasRowMajor, g->tA ? CblasTrans : CblasNoTrans, g->tB ? CblasTrans : CblasNoTrans,
                (int)(m1 - m0), (int)(n1 - n0), (int)g->K, 1.0f, a, (int)lda, b, (int)ldb, g->beta,
                g->C + m0 * g->N + n0, (int)g->N);
  else
    dnnl_sgemm(g->tA ? 'T' : 'N', g->tB ? 'T' : 'N', m1 - m0, n1 - n0, g->K, 1.0f, a, lda, b, ldb,
               g->beta, g->C + m0 * g->N + n0, g->N);
}

static void run(int way, const struct gemm* g) {
  if (way == SPLIT_AGAIN) way = SPLIT;
  if (way == LIBRARY) {
    block(LIBRARY, g, 0, g->M, 0, g->N);
    return;
  }
  int rows = g->M >= g->N;
  long len = rows ? g->M : g->N;
  int nt = omp_get_max_threads();
  if (nt > len / 16) nt = (int)(len / 16);
  if (nt <= 1) {
    block(way, g, 0, g->M, 0, g->N);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    long share = (len / n + 15) / 16 * 16;
    long lo = t * share < len ? t * share : len;
    long hi = t == n - 1 ? len : (lo + share < len ? lo + share : len);
    if (rows) block(way, g, lo, hi, 0, g->N);
    else block(way, g, 0, g->M, lo, hi);
  }
}

static int cmp(const void* x, const void* y) {
  double a = *(const double*)x, b = *(const double*)y;
  return a < b ? -1 : a > b;
}

static float* filled(long n, unsigned seed) {
  float* x = malloc(sizeof(float) * (size_t)n);
  if (!x) { fprintf(stderr, "gemm_threads: out of memory (%ld floats)\n", n); exit(2); }
  for (long i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f; }
  return x;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > 64) { fprintf(stderr, "usage: gemm_threads ROUNDS (1..64)\n"); return 2; }
  openblas_set_num_threads(1);
  long M, N, K;
  int tA, tB;
  float beta;
  while (scanf("%ld %ld %ld %d %d %f", &M, &N, &K, &tA, &tB, &beta) == 6) {
    float *A = filled(M * K, 1), *B = filled(K * N, 2), *C = filled(M * N, 3);
    struct gemm g = {A, B, C, M, N, K, tA, tB, beta};
    double flop = 2.0 * (double)M * (double)N * (double)K;
    int reps = (int)(0.04 * 150e9 / flop); /* ~40 ms per sample at 150 GFLOP/s */
    if (reps < 1) reps = 1;
    double t[WAYS][64];
    for (int w = 0; w < WAYS; w++) run(w, &g);
    for (int r = 0; r < rounds; r++)
      for (int i = 0; i < WAYS; i++) {
        int w = (r + i) % WAYS;
        double t0 = now_s();
        for (int k = 0; k < reps; k++) run(w, &g);
        t[w][r] = (now_s() - t0) / reps;
      }
    printf("%ld %ld %ld %d %d %g", M, N, K, tA, tB, (double)beta);
    for (int w = 0; w < WAYS; w++) {
      qsort(t[w], (size_t)rounds, sizeof(double), cmp);
      printf(" %.2f", flop / t[w][rounds / 2] / 1e9);
    }
    printf("\n");
    fflush(stdout);
    free(A), free(B), free(C);
  }
  return 0;
}
