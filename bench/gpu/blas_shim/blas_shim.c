/* blas_shim.c — cblas_sgemm / openblas_set_num_threads forwarded to a BLAS loaded at run time.
 * Used only by bench/gpu-check.sh when the GPU machine has no system OpenBLAS: the library named by
 * $OLMO_BLAS_LIB (numpy's numpy.libs/libscipy_openblas*.so, or any OpenBLAS) is dlopen'ed and the
 * symbol is looked up under its plain, scipy_-prefixed and 64_-suffixed (ILP64) names. ILP64 entry
 * points get 64-bit integer arguments. If nothing is found, the output is filled with NaN (tests
 * then fail loudly) and a message is printed once. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "cblas.h"

typedef void (*sgemm32_t)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
typedef void (*setthreads32_t)(int);
typedef void (*setthreads64_t)(int64_t);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void* sgemm_fn;
static int sgemm_ilp64;
static void* threads_fn;
static int threads_ilp64;

static void* find(void* h, const char* base, int* ilp64) {
  const char* pre[] = {"", "scipy_"};
  const char* suf[] = {"", "64_", "_64"};
  char name[128];
  for (int s = 0; s < 3; ++s)
    for (int p = 0; p < 2; ++p) {
      snprintf(name, sizeof name, "%s%s%s", pre[p], base, suf[s]);
      void* f = dlsym(h, name);
      if (f) {
        *ilp64 = s != 0;
        return f;
      }
    }
  return NULL;
}

static void load(void) {
  const char* path = getenv("OLMO_BLAS_LIB");
  void* h = path && *path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  if (!h) h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "blas_shim: cannot load a BLAS (OLMO_BLAS_LIB=%s): %s\n", path ? path : "(unset)", dlerror());
    return;
  }
  sgemm_fn = find(h, "cblas_sgemm", &sgemm_ilp64);
  threads_fn = find(h, "openblas_set_num_threads", &threads_ilp64);
  if (!sgemm_fn) fprintf(stderr, "blas_shim: no cblas_sgemm in %s\n", path ? path : "libopenblas.so.0");
}

void cblas_sgemm(const enum CBLAS_ORDER Order, const enum CBLAS_TRANSPOSE TransA, const enum CBLAS_TRANSPOSE TransB,
                 const int M, const int N, const int K, const float alpha, const float* A, const int lda,
                 const float* B, const int ldb, const float beta, float* C, const int ldc) {
  pthread_once(&once, load);
  if (!sgemm_fn) {
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) C[(Order == CblasRowMajor) ? (int64_t)i * ldc + j : (int64_t)j * ldc + i] = NAN;
    return;
  }
  if (sgemm_ilp64)
    ((sgemm64_t)sgemm_fn)(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    ((sgemm32_t)sgemm_fn)(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void openblas_set_num_threads(int n) {
  pthread_once(&once, load);
  if (!threads_fn) return;
  if (threads_ilp64) ((setthreads64_t)threads_fn)(n);
  else ((setthreads32_t)threads_fn)(n);
}
