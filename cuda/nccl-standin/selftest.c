/*
 * selftest.c — the NCCL stand-in's collectives on the CPU (built with -DOLMO_NCCL_STANDIN_HOST_COPY,
 * so "device" buffers are host memory): W forked ranks run every collective on deterministic data
 * of many sizes (crossing the chunk boundaries of a small OLMO_NCCL_STANDIN_SLOT_BYTES), in place
 * and out of place, f32 and bf16, every reduction, and compare each result bit for bit with the
 * sequential rank-order computation of all ranks' inputs, and within rounding of a float64
 * reference. Then a mismatched call (rank 1 passes another count) must fail on every rank.
 * Usage: selftest W   — prints "ok W=<W> checks=<n>" and exits 0, or names the first difference.
 * Run by test/native/nccl-standin.test.ts.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int ncclResult_t;
typedef struct { char internal[128]; } ncclUniqueId;
typedef struct standin_comm* ncclComm_t;
ncclResult_t ncclGetUniqueId(ncclUniqueId* id);
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int world, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclAllReduce(const void* s, void* r, size_t n, int dt, int op, ncclComm_t c, void* st);
ncclResult_t ncclAllGather(const void* s, void* r, size_t n, int dt, ncclComm_t c, void* st);
ncclResult_t ncclReduceScatter(const void* s, void* r, size_t n, int dt, int op, ncclComm_t c, void* st);
ncclResult_t ncclBroadcast(const void* s, void* r, size_t n, int dt, int root, ncclComm_t c, void* st);

enum { F32 = 7, BF16 = 9 };
enum { SUM = 0, PROD = 1, MAX = 2, MIN = 3, AVG = 4 };
static const char* OPN[] = {"sum", "prod", "max", "min", "avg"};

static int W, R;
static long checks;

/* deterministic input of (rank, call, i): mixed magnitudes, so summation order changes the bits */
static float value(int rank, int call, size_t i) {
  uint32_t s = (uint32_t)(rank * 7919 + call * 104729 + (int)i * 2654435761u + 1);
  s ^= s >> 13; s *= 0x5bd1e995u; s ^= s >> 15;
  float u = (float)(s & 0xffffff) / 16777216.0f - 0.5f;
  static const float mag[] = {1e-3f, 1e-1f, 1.0f, 3.0f};
  return u * mag[(s >> 24) & 3];
}
static float bf(float f) { /* round to bf16 and back (nearest even) */
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}
static float in(int dt, int rank, int call, size_t i) { return dt == BF16 ? bf(value(rank, call, i)) : value(rank, call, i); }

static void put(void* p, int dt, size_t i, float v) {
  if (dt == BF16) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint16_t h = (uint16_t)(u >> 16); /* v is already a bf16 value */
    memcpy((uint8_t*)p + 2 * i, &h, 2);
  } else {
    memcpy((uint8_t*)p + 4 * i, &v, 4);
  }
}
static float get(const void* p, int dt, size_t i) {
  if (dt == BF16) {
    uint16_t h;
    memcpy(&h, (const uint8_t*)p + 2 * i, 2);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  float f;
  memcpy(&f, (const uint8_t*)p + 4 * i, 4);
  return f;
}

/* the sequential rank-order reduction (fp32 accumulation, bf16 rounded once at the end) and its float64 twin */
static float expect_reduce(int dt, int op, int call, size_t i, double* exact) {
  float acc = in(dt, 0, call, i);
  double d = acc;
  for (int q = 1; q < W; q++) {
    float x = in(dt, q, call, i);
    if (op == SUM || op == AVG) { acc = acc + x; d += x; }
    else if (op == PROD) { acc = acc * x; d *= x; }
    else if (op == MAX) { acc = x > acc ? x : acc; d = x > d ? x : d; }
    else { acc = x < acc ? x : acc; d = x < d ? x : d; }
  }
  if (op == AVG) { acc = acc / (float)W; d /= W; }
  *exact = d;
  return dt == BF16 ? bf(acc) : acc;
}

static int fail(const char* what, size_t i, float got, float want) {
  fprintf(stderr, "rank %d: %s: element %zu: got %.9g, want %.9g\n", R, what, i, got, want);
  return 1;
}

static int same(const char* what, float got, float want, double exact, int dt, size_t i) {
  uint32_t a, b;
  memcpy(&a, &got, 4);
  memcpy(&b, &want, 4);
  checks++;
  if (a != b) return fail(what, i, got, want);
  /* and the sequential fp32 result is within rounding of the exact one */
  double tol = (dt == BF16 ? 1.0 / 128 : 1e-6 * W) * (fabs(exact) + 3.0 * W);
  if (fabs((double)got - exact) > tol) return fail(what, i, got, (float)exact);
  return 0;
}

static int run_rank(ncclUniqueId id) {
  ncclComm_t c;
  if (ncclCommInitRank(&c, W, id, R) != 0) return fprintf(stderr, "rank %d: init failed\n", R), 1;
  const size_t sizes[] = {1, 7, 31, 32, 33, 64, 65, 200, 1031};
  const int dts[] = {F32, BF16};
  int call = 0;
  char what[128];
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
    size_t n = sizes[si];
    for (int di = 0; di < 2; di++) {
      int dt = dts[di];
      size_t e = dt == BF16 ? 2 : 4;
      uint8_t* a = calloc(n * W, e);
      uint8_t* b = calloc(n * W, e);
      for (int op = 0; op <= AVG; op++) {
        for (int inplace = 0; inplace < 2; inplace++) {
          /* all-reduce */
          call++;
          for (size_t i = 0; i < n; i++) put(a, dt, i, in(dt, R, call, i));
          if (ncclAllReduce(a, inplace ? a : b, n, dt, op, c, NULL)) return fprintf(stderr, "rank %d: AllReduce failed\n", R), 1;
          snprintf(what, sizeof what, "AllReduce %s n=%zu dt=%d inplace=%d", OPN[op], n, dt, inplace);
          for (size_t i = 0; i < n; i++) {
            double ex;
            float want = expect_reduce(dt, op, call, i, &ex);
            if (same(what, get(inplace ? a : b, dt, i), want, ex, dt, i)) return 1;
          }
          /* reduce-scatter: send [W*n], this rank's block of the reduction */
          call++;
          for (size_t i = 0; i < n * W; i++) put(a, dt, i, in(dt, R, call, i));
          void* recv = inplace ? (void*)(a + (size_t)R * n * e) : (void*)b;
          if (ncclReduceScatter(a, recv, n, dt, op, c, NULL)) return fprintf(stderr, "rank %d: ReduceScatter failed\n", R), 1;
          snprintf(what, sizeof what, "ReduceScatter %s n=%zu dt=%d inplace=%d", OPN[op], n, dt, inplace);
          for (size_t i = 0; i < n; i++) {
            double ex;
            float want = expect_reduce(dt, op, call, (size_t)R * n + i, &ex);
            if (same(what, get(recv, dt, i), want, ex, dt, i)) return 1;
          }
        }
      }
      for (int inplace = 0; inplace < 2; inplace++) {
        /* all-gather: recv[q*n + i] = rank q's send[i] */
        call++;
        uint8_t* send = inplace ? b + (size_t)R * n * e : a;
        for (size_t i = 0; i < n; i++) put(send, dt, i, in(dt, R, call, i));
        if (ncclAllGather(send, b, n, dt, c, NULL)) return fprintf(stderr, "rank %d: AllGather failed\n", R), 1;
        snprintf(what, sizeof what, "AllGather n=%zu dt=%d inplace=%d", n, dt, inplace);
        for (int q = 0; q < W; q++)
          for (size_t i = 0; i < n; i++) {
            float want = in(dt, q, call, i);
            if (same(what, get(b, dt, (size_t)q * n + i), want, want, dt, i)) return 1;
          }
        /* broadcast from the last rank */
        call++;
        int root = W - 1;
        for (size_t i = 0; i < n; i++) put(a, dt, i, in(dt, R, call, i));
        if (ncclBroadcast(a, inplace ? a : b, n, dt, root, c, NULL)) return fprintf(stderr, "rank %d: Broadcast failed\n", R), 1;
        snprintf(what, sizeof what, "Broadcast n=%zu dt=%d inplace=%d", n, dt, inplace);
        for (size_t i = 0; i < n; i++) {
          float want = in(dt, root, call, i);
          if (same(what, get(inplace ? a : b, dt, i), want, want, dt, i)) return 1;
        }
      }
      free(a);
      free(b);
    }
  }
  /* a mismatched call fails on every rank (and the communicator keeps working afterwards) */
  float x[4] = {1, 2, 3, 4};
  if (ncclAllReduce(x, x, R == 1 ? 3 : 4, F32, SUM, c, NULL) != 5) return fprintf(stderr, "rank %d: a mismatched AllReduce did not fail with ncclInvalidUsage\n", R), 1;
  if (ncclAllReduce(x, x, 4, F32, SUM, c, NULL) != 0 || x[3] != 4.0f * W) return fprintf(stderr, "rank %d: AllReduce after a mismatch failed\n", R), 1;
  ncclCommDestroy(c);
  return 0;
}

int main(int argc, char** argv) {
  W = argc > 1 ? atoi(argv[1]) : 2;
  if (W < 2 || W > 8) return fprintf(stderr, "usage: selftest W (2..8)\n"), 2;
  ncclUniqueId id;
  if (ncclGetUniqueId(&id)) return fprintf(stderr, "ncclGetUniqueId failed\n"), 1;
  pid_t pids[8];
  for (int r = 0; r < W; r++) {
    pids[r] = fork();
    if (pids[r] == 0) {
      R = r;
      int rc = run_rank(id);
      if (rc == 0 && r == 0) printf("ok W=%d checks=%ld\n", W, checks);
      fflush(stdout);
      _exit(rc);
    }
  }
  int bad = 0;
  for (int r = 0; r < W; r++) {
    int st = 0;
    waitpid(pids[r], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
  }
  return bad;
}
