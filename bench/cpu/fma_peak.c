/* fma_peak.c — the CPU's measured fp32 FMA peak: every OpenMP thread runs independent chains of
 * vector FMAs (as wide as the compiler targets with -march=native: 16 floats with AVX-512, else 8)
 * on registers only, enough chains to cover the FMA latency on two pipes. Prints one JSON line:
 *   {"threads": T, "lanes": L, "gflops": G}
 * Usage: fma_peak [seconds]   (threads from OMP_NUM_THREADS). Built and run by bench/cpu-peak.ts. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef __AVX512F__
#define LANES 16
#else
#define LANES 8
#endif
typedef float vec __attribute__((vector_size(LANES * 4)));
#define CHAINS 12
#define INNER 1024

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0.3;
  int threads = omp_get_max_threads();
  double total_flops = 0, elapsed = 0;
  float sink = 0;
#pragma omp parallel reduction(+ : total_flops) reduction(+ : sink)
  {
    vec m, c;
    for (int l = 0; l < LANES; l++) {
      m[l] = 0.999999f;
      c[l] = 1e-7f * (float)(l + 1);
    }
    /* CHAINS = 12 named accumulators: an array would be kept in memory (a load and a store per FMA) */
    const float t = (float)(omp_get_thread_num() + 1);
    vec a0 = c * t, a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
    vec a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
    long long iters = 0;
#pragma omp barrier
    double t0 = now_s(), t1 = t0;
    do {
      for (int r = 0; r < INNER; r++) { /* each line is one FMA (contracted) */
        a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
        a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
        a8 = a8 * m + c; a9 = a9 * m + c; a10 = a10 * m + c; a11 = a11 * m + c;
      }
      iters += INNER;
      t1 = now_s();
    } while (t1 - t0 < seconds);
    total_flops += 2.0 * LANES * CHAINS * (double)iters;
    vec all = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    for (int l = 0; l < LANES; l++) sink += all[l];
#pragma omp barrier
#pragma omp master
    elapsed = t1 - t0;
  }
  printf("{\"threads\": %d, \"lanes\": %d, \"gflops\": %.3f, \"sink\": %g}\n", threads, LANES, total_flops / elapsed / 1e9, sink);
  return 0;
}
