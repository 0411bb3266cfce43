/*
 * nccl_standin.c — a TEST TOOL, never a default: a stand-in libnccl.so.2 that lets several
 * processes share ONE GPU (real NCCL refuses two ranks on one device), so that `olmo launch
 * --nproc-per-node 2` with the CUDA library runs its real multi-rank path (DP, TP, TP x DP) on a
 * one-GPU machine. Built by `bun cuda/build.ts nccl-standin` into build/nccl-standin/libnccl.so.2
 * and found through OLMO_CUDA_LIB_PATH=build/nccl-standin (cuda/gpu/vendor.cu searches there first).
 *
 * It implements the subset of the NCCL C API that cuda/gpu/vendor.h resolves (GetUniqueId,
 * CommInitRank, CommDestroy, AllReduce, AllGather, ReduceScatter, Broadcast, GetErrorString) with
 * the same signatures and enum values, over HOST shared memory: each collective waits for its
 * stream (cudaStreamSynchronize), copies this rank's part of the device buffer into its slot of a
 * file mapping shared by the ranks (MAP_SHARED, in /dev/shm), meets the others at a barrier,
 * reduces or gathers from every slot, copies the result back to the device, and meets them again.
 * Large buffers go in chunks of one slot. Slow (every byte crosses PCIe twice) and fine for tests.
 *
 * Semantics (those of NCCL, and of src/parallel/comm/comm.ts):
 *   all_reduce      recv = op over ranks of send            (count elements; in place allowed)
 *   all_gather      recv[q*count ..] = send of rank q
 *   reduce_scatter  recv = (op over ranks of send)[rank*count ..]
 *   broadcast       recv = send of root
 * Reduction order: ranks 0, 1, ..., W-1, accumulated in fp32 (f32: rounded after each add, bit for
 * bit the host collectives of comm.ts; bf16: inputs widened, the fp32 result rounded to bf16 once,
 * to nearest even); avg = sum / W. Every rank computes the same bits. Supported: f32 and bf16 with
 * sum, prod, max, min, avg. Ranks calling different collectives (or sizes) all get
 * ncclInvalidUsage, and a peer that does not arrive within OLMO_NCCL_STANDIN_TIMEOUT_S (default 600)
 * gives ncclSystemError; the reason goes to stderr as one line.
 *
 * Environment: OLMO_NCCL_STANDIN_SLOT_BYTES (per-rank slot, default 8 MiB; the chunk size),
 * OLMO_NCCL_STANDIN_DIR (default /dev/shm, else /tmp), OLMO_NCCL_STANDIN_VERBOSE=1 (one stderr line
 * per communicator: proof that the stand-in, not NCCL, was loaded).
 * Compiled with -DOLMO_NCCL_STANDIN_HOST_COPY the device copies are memcpy, for the CPU self-test
 * (cuda/nccl-standin/selftest.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef OLMO_NCCL_STANDIN_HOST_COPY
typedef void* cudaStream_t;
static int dev_copy(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  (void)s;
  memcpy(dst, src, bytes);
  return 0;
}
static int stream_sync(cudaStream_t s) { (void)s; return 0; }
#else
#include <cuda_runtime.h>
static int dev_copy(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s) != cudaSuccess) return 1;
  return cudaStreamSynchronize(s) != cudaSuccess;
}
static int stream_sync(cudaStream_t s) { return cudaStreamSynchronize(s) != cudaSuccess; }
#endif

#define EXPORT __attribute__((visibility("default")))

/* ncclResult_t, ncclDataType_t and ncclRedOp_t values of nccl.h (NCCL 2.x) */
typedef int ncclResult_t;
enum { ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3, ncclInvalidArgument = 4, ncclInvalidUsage = 5 };
enum { ncclFloat32 = 7, ncclBfloat16 = 9 };
enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };
#define ID_BYTES 128
typedef struct { char internal[ID_BYTES]; } ncclUniqueId;

#define ID_PREFIX "olmo-nccl-standin:"
#define MAGIC 0x6f6c6e63u
#define MAX_RANKS 64
#define LINE 64

/* One 64-byte line per rank: its barrier generation and the descriptor of its current collective. */
typedef struct {
  uint32_t gen;
  uint32_t kind, dtype, op;
  uint64_t count;
  uint32_t root;
  char pad[LINE - 28];
} rank_line;

typedef struct {
  uint32_t magic, world;
  uint64_t slot_bytes;
  uint32_t arrived;
  char pad[LINE - 20];
  rank_line ranks[MAX_RANKS];
} header;

struct standin_comm {
  int rank, world;
  size_t slot_bytes, map_bytes;
  uint8_t* base;
  header* hdr;
  uint32_t gen;
  uint8_t* tmp; /* this rank's private reduction buffer (one slot) */
  double timeout_s;
};
typedef struct standin_comm* ncclComm_t;

/* one line on stderr, written with one write() so the lines of several ranks never interleave */
static void complain(const char* fmt, ...) {
  char line[512];
  int n = snprintf(line, sizeof line, "olmo NCCL stand-in: ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(2, line, (size_t)n);
  (void)w;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint8_t* slot(ncclComm_t c, int r) { return c->base + LINE * (1 + MAX_RANKS) + (size_t)r * c->slot_bytes; }

/* Barrier: each rank stores its own generation (one writer per word), then waits until every
 * rank's generation has reached it. Spins briefly, then yields and sleeps (ranks may outnumber cores). */
static ncclResult_t barrier(ncclComm_t c) {
  uint32_t g = ++c->gen;
  __atomic_store_n(&c->hdr->ranks[c->rank].gen, g, __ATOMIC_SEQ_CST);
  double t0 = now_s();
  for (int q = 0; q < c->world; q++) {
    for (long spins = 0; (int32_t)(__atomic_load_n(&c->hdr->ranks[q].gen, __ATOMIC_SEQ_CST) - g) < 0; spins++) {
      if (spins < 2000) continue;
      if (spins < 4000) {
        sched_yield();
        continue;
      }
      struct timespec ns = {0, 50000};
      nanosleep(&ns, NULL);
      if ((spins & 1023) == 0 && now_s() - t0 > c->timeout_s) {
        complain("rank %d waited %.0f s for rank %d at a collective (OLMO_NCCL_STANDIN_TIMEOUT_S)", c->rank, c->timeout_s, q);
        return ncclSystemError;
      }
    }
  }
  return ncclSuccess;
}

static const char* KIND[] = {"?", "AllReduce", "AllGather", "ReduceScatter", "Broadcast"};

/* publish this collective's descriptor, barrier, and compare it with every rank's; a second barrier
 * before anyone writes the next descriptor, so every rank sees the same ones: all fail together */
static ncclResult_t begin(ncclComm_t c, uint32_t kind, uint64_t count, int dtype, int op, int root) {
  rank_line* me = &c->hdr->ranks[c->rank];
  me->kind = kind; me->count = count; me->dtype = (uint32_t)dtype; me->op = (uint32_t)op; me->root = (uint32_t)root;
  ncclResult_t r = barrier(c);
  if (r != ncclSuccess) return r;
  int bad = -1;
  for (int q = 0; q < c->world && bad < 0; q++) {
    const rank_line* o = &c->hdr->ranks[q];
    if (o->kind != kind || o->count != count || o->dtype != (uint32_t)dtype || o->op != (uint32_t)op || o->root != (uint32_t)root) bad = q;
  }
  if (bad >= 0) {
    const rank_line* o = &c->hdr->ranks[bad];
    complain("rank %d called %s(count %llu, dtype %d, op %d, root %d) while rank %d called %s(count %llu, dtype %u, op %u, root %u)",
             c->rank, KIND[kind], (unsigned long long)count, dtype, op, root, bad, KIND[o->kind < 5 ? o->kind : 0],
             (unsigned long long)o->count, o->dtype, o->op, o->root);
  }
  r = barrier(c);
  return r != ncclSuccess ? r : bad >= 0 ? ncclInvalidUsage : ncclSuccess;
}

#include "elements.h"

/* out[i] = op over ranks q of slot(q)[off + i], rank order, fp32 accumulation */
static void reduce_slots(ncclComm_t c, uint8_t* out, size_t off, size_t n, int dtype, int op) {
  for (size_t i = 0; i < n; i++) {
    float acc = load(slot(c, 0), off + i, dtype);
    for (int q = 1; q < c->world; q++) {
      float x = load(slot(c, q), off + i, dtype);
      if (op == ncclSum || op == ncclAvg) acc = acc + x;
      else if (op == ncclProd) acc = acc * x;
      else if (op == ncclMax) acc = x > acc ? x : acc;
      else acc = x < acc ? x : acc;
    }
    if (op == ncclAvg) acc = acc / (float)c->world;
    store(out, i, dtype, acc);
  }
}

static ncclResult_t check(ncclComm_t c, int dtype, int op) {
  if (!c) return ncclInvalidArgument;
  if (dtype != ncclFloat32 && dtype != ncclBfloat16) {
    complain("unsupported dtype %d (float32 = 7 and bfloat16 = 9 only)", dtype);
    return ncclInvalidArgument;
  }
  if (op < ncclSum || op > ncclAvg) {
    complain("unsupported reduction %d", op);
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

#define TRY(x)                         \
  do {                                 \
    ncclResult_t r_ = (x);             \
    if (r_ != ncclSuccess) return r_;  \
  } while (0)
#define COPY(dst, src, bytes, s)                                              \
  do {                                                                        \
    if ((bytes) != 0 && dev_copy((dst), (src), (bytes), (s))) {               \
      complain("rank %d: device copy of %zu bytes failed", c->rank, (size_t)(bytes)); \
      return ncclUnhandledCudaError;                                          \
    }                                                                         \
  } while (0)

EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return ncclInvalidArgument;
  static unsigned counter = 0;
  const char* dir = getenv("OLMO_NCCL_STANDIN_DIR");
  if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  memset(id->internal, 0, ID_BYTES);
  unsigned rnd = (unsigned)(now_s() * 1e9) ^ ((unsigned)getpid() << 16);
  int n = snprintf(id->internal, ID_BYTES, ID_PREFIX "%s/olmo-nccl-standin-%d-%u-%08x", dir, (int)getpid(), counter++, rnd);
  if (n <= 0 || n >= ID_BYTES) {
    complain("OLMO_NCCL_STANDIN_DIR is too long: %s", dir);
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

EXPORT ncclResult_t ncclCommInitRank(ncclComm_t* out, int world, ncclUniqueId id, int rank) {
  if (!out || world < 1 || world > MAX_RANKS || rank < 0 || rank >= world) return ncclInvalidArgument;
  if (strncmp(id.internal, ID_PREFIX, strlen(ID_PREFIX)) != 0) {
    complain("the unique id was not made by the stand-in's ncclGetUniqueId");
    return ncclInvalidUsage;
  }
  char path[ID_BYTES];
  memcpy(path, id.internal + strlen(ID_PREFIX), ID_BYTES - strlen(ID_PREFIX));
  path[ID_BYTES - strlen(ID_PREFIX) - 1] = 0;
  const char* sb = getenv("OLMO_NCCL_STANDIN_SLOT_BYTES");
  size_t slot_bytes = sb && *sb ? (size_t)strtoull(sb, NULL, 10) : (size_t)8 << 20;
  slot_bytes = (slot_bytes + 63) / 64 * 64;
  if (slot_bytes < 64 * (size_t)world) slot_bytes = 64 * (size_t)world;
  const char* ts = getenv("OLMO_NCCL_STANDIN_TIMEOUT_S");
  struct standin_comm* c = calloc(1, sizeof *c);
  if (!c) return ncclSystemError;
  c->rank = rank;
  c->world = world;
  c->slot_bytes = slot_bytes;
  c->timeout_s = ts && *ts ? atof(ts) : 600.0;
  c->map_bytes = LINE * (1 + MAX_RANKS) + (size_t)world * slot_bytes;
  c->tmp = malloc(slot_bytes);
  int fd = open(path, O_RDWR | O_CREAT, 0600);
  if (!c->tmp || fd < 0 || ftruncate(fd, (off_t)c->map_bytes) != 0) {
    complain("cannot create %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(c->tmp);
    free(c);
    return ncclSystemError;
  }
  c->base = mmap(NULL, c->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (c->base == MAP_FAILED) {
    complain("cannot map %s: %s", path, strerror(errno));
    free(c->tmp);
    free(c);
    return ncclSystemError;
  }
  c->hdr = (header*)c->base;
  if (rank == 0) {
    c->hdr->world = (uint32_t)world;
    c->hdr->slot_bytes = slot_bytes;
    __atomic_store_n(&c->hdr->magic, MAGIC, __ATOMIC_SEQ_CST);
  }
  __atomic_fetch_add(&c->hdr->arrived, 1, __ATOMIC_SEQ_CST);
  double t0 = now_s();
  while (__atomic_load_n(&c->hdr->arrived, __ATOMIC_SEQ_CST) < (uint32_t)world || __atomic_load_n(&c->hdr->magic, __ATOMIC_SEQ_CST) != MAGIC) {
    struct timespec ns = {0, 200000};
    nanosleep(&ns, NULL);
    if (now_s() - t0 > c->timeout_s) {
      complain("rank %d: only %u of %d ranks joined within %.0f s", rank, c->hdr->arrived, world, c->timeout_s);
      munmap(c->base, c->map_bytes);
      free(c->tmp);
      free(c);
      return ncclSystemError;
    }
  }
  if (c->hdr->world != (uint32_t)world || c->hdr->slot_bytes != slot_bytes) {
    complain("rank %d: world %d / slot %zu bytes differ from rank 0's (%u / %llu)", rank, world, slot_bytes, c->hdr->world,
             (unsigned long long)c->hdr->slot_bytes);
    return ncclInvalidUsage;
  }
  /* all ranks have the file mapped: rank 0 removes the name, so nothing is left behind */
  TRY(barrier(c));
  if (rank == 0) unlink(path);
  const char* v = getenv("OLMO_NCCL_STANDIN_VERBOSE");
  if (v && v[0] == '1') complain("rank %d of %d (one GPU, host shared memory, %zu-byte slots)", rank, world, slot_bytes);
  *out = c;
  return ncclSuccess;
}

EXPORT ncclResult_t ncclCommDestroy(ncclComm_t c) {
  if (!c) return ncclSuccess;
  munmap(c->base, c->map_bytes);
  free(c->tmp);
  free(c);
  return ncclSuccess;
}

EXPORT ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, int dtype, int op, ncclComm_t c, cudaStream_t s) {
  TRY(check(c, dtype, op));
  if (stream_sync(s)) return ncclUnhandledCudaError;
  TRY(begin(c, 1, count, dtype, op, 0));
  const size_t e = elem_bytes(dtype), chunk = c->slot_bytes / e;
  for (size_t off = 0; off < count; off += chunk) {
    size_t n = count - off < chunk ? count - off : chunk;
    COPY(slot(c, c->rank), (const uint8_t*)send + off * e, n * e, s);
    TRY(barrier(c));
    reduce_slots(c, c->tmp, 0, n, dtype, op);
    TRY(barrier(c)); /* every rank has read every slot */
    COPY((uint8_t*)recv + off * e, c->tmp, n * e, s);
  }
  return ncclSuccess;
}

EXPORT ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, int dtype, ncclComm_t c, cudaStream_t s) {
  TRY(check(c, dtype, ncclSum));
  if (stream_sync(s)) return ncclUnhandledCudaError;
  TRY(begin(c, 2, count, dtype, 0, 0));
  const size_t e = elem_bytes(dtype), chunk = c->slot_bytes / e;
  for (size_t off = 0; off < count; off += chunk) {
    size_t n = count - off < chunk ? count - off : chunk;
    COPY(slot(c, c->rank), (const uint8_t*)send + off * e, n * e, s);
    TRY(barrier(c));
    for (int q = 0; q < c->world; q++) COPY((uint8_t*)recv + ((size_t)q * count + off) * e, slot(c, q), n * e, s);
    TRY(barrier(c));
  }
  return ncclSuccess;
}

EXPORT ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t count, int dtype, int op, ncclComm_t c, cudaStream_t s) {
  TRY(check(c, dtype, op));
  if (stream_sync(s)) return ncclUnhandledCudaError;
  TRY(begin(c, 3, count, dtype, op, 0));
  /* a slot holds one chunk of each rank's block: [block 0 | block 1 | ...] */
  const size_t e = elem_bytes(dtype), chunk = c->slot_bytes / e / (size_t)c->world;
  for (size_t off = 0; off < count; off += chunk) {
    size_t n = count - off < chunk ? count - off : chunk;
    for (int q = 0; q < c->world; q++)
      COPY(slot(c, c->rank) + (size_t)q * n * e, (const uint8_t*)send + ((size_t)q * count + off) * e, n * e, s);
    TRY(barrier(c));
    reduce_slots(c, c->tmp, (size_t)c->rank * n, n, dtype, op);
    TRY(barrier(c));
    COPY((uint8_t*)recv + off * e, c->tmp, n * e, s);
  }
  return ncclSuccess;
}

EXPORT ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, int dtype, int root, ncclComm_t c, cudaStream_t s) {
  TRY(check(c, dtype, ncclSum));
  if (root < 0 || root >= c->world) return ncclInvalidArgument;
  if (stream_sync(s)) return ncclUnhandledCudaError;
  TRY(begin(c, 4, count, dtype, 0, root));
  const size_t e = elem_bytes(dtype), chunk = c->slot_bytes / e;
  for (size_t off = 0; off < count; off += chunk) {
    size_t n = count - off < chunk ? count - off : chunk;
    if (c->rank == root) COPY(slot(c, root), (const uint8_t*)send + off * e, n * e, s);
    TRY(barrier(c));
    if (c->rank != root || send != recv) COPY((uint8_t*)recv + off * e, slot(c, root), n * e, s);
    TRY(barrier(c));
  }
  return ncclSuccess;
}

EXPORT const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error (olmo NCCL stand-in)";
    case ncclUnhandledCudaError: return "a CUDA call failed (olmo NCCL stand-in)";
    case ncclSystemError: return "system error: shared memory or a peer timed out (olmo NCCL stand-in; see stderr)";
    case ncclInternalError: return "internal error (olmo NCCL stand-in)";
    case ncclInvalidArgument: return "invalid argument (olmo NCCL stand-in; see stderr)";
    case ncclInvalidUsage: return "invalid usage: ranks called different collectives (olmo NCCL stand-in; see stderr)";
    default: return "unknown result (olmo NCCL stand-in)";
  }
}
