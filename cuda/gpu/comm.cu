/*
 * comm.cu — collectives over NCCL (loaded lazily at the first olmo_comm_* call, so one-GPU training
 * never needs libnccl). All collectives are enqueued on the library stream, so they are ordered
 * with the kernels around them; olmo_synchronize() waits for them.
 *   all_reduce:     recv = op_r send_r                   (count elements; in place allowed)
 *   all_gather:     recv[r*send_count : (r+1)*send_count] = send_r
 *   reduce_scatter: recv_r = (op_r' send_r')[r*recv_count : (r+1)*recv_count]
 *   broadcast:      buf_r = buf_root (in place)
 * dtype: OLMO_DTYPE_F32 | OLMO_DTYPE_BF16; op: 0 sum, 1 max, 2 avg.
 *
 * Hangs: a rank that stops answering would leave every other rank of its group blocked for ever
 * (inside ncclCommInitRank, or on the GPU in a collective that the host then waits for in a
 * synchronize). Every wait therefore has a deadline, OLMO_COMM_TIMEOUT_S (default 600 s, as the
 * shared-memory collectives): communicators are created non-blocking and their initialization is
 * polled (ncclCommGetAsyncError) until it completes or the deadline passes; each collective records
 * a CUDA event, and a watchdog thread checks that the oldest pending one completes within the
 * deadline and that no communicator reports an asynchronous error (a peer that died). On either,
 * it aborts every communicator (ncclCommAbort, which also releases the kernels still waiting), prints
 * one line naming the communicator, and ends the process with exit code 2, so the launcher stops
 * the job instead of leaving it hung. With a libnccl older than 2.14 (no ncclCommInitRankConfig)
 * communicators are blocking and only the watchdog applies.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <atomic>
#include "common.cuh"
#include "vendor.h"

static int nccl_error(olmoNcclResult_t r, const char* what) {
  const char* msg = g_nccl.GetErrorString ? g_nccl.GetErrorString(r) : nullptr;
  return olmo_set_error("NCCL %s failed: %d (%s)", what, (int)r, msg ? msg : "?");
}
#define NC(call, what)                                    \
  do {                                                    \
    olmoNcclResult_t r_ = (call);                         \
    if (r_ != OLMO_NCCL_SUCCESS) return nccl_error(r_, what); \
  } while (0)

static int map_dtype(int dtype, olmoNcclDataType_t* out) {
  if (dtype == OLMO_DTYPE_F32) *out = OLMO_NCCL_FLOAT32;
  else if (dtype == OLMO_DTYPE_BF16) *out = OLMO_NCCL_BFLOAT16;
  else return olmo_set_error("olmo_comm: unknown dtype %d (0 = f32, 1 = bf16)", dtype);
  return 0;
}
static int map_op(int op, olmoNcclRedOp_t* out) {
  if (op == 0) *out = OLMO_NCCL_SUM;
  else if (op == 1) *out = OLMO_NCCL_MAX;
  else if (op == 2) *out = OLMO_NCCL_AVG;
  else return olmo_set_error("olmo_comm: unknown op %d (0 = sum, 1 = max, 2 = avg)", op);
  return 0;
}

#define COMM_PRELUDE()                  \
  OLMO_REQUIRE_INIT();                  \
  if (olmo_load_nccl() != 0) return 1;

/* ---------------------------------------------------------------- deadlines and the watchdog */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* OLMO_COMM_TIMEOUT_S (validated by the caller, src/parallel/env.ts commTimeoutMs); default 600. */
static double comm_timeout_s(void) {
  static double t = -1;
  if (t < 0) {
    const char* e = getenv("OLMO_COMM_TIMEOUT_S");
    double v = e ? strtod(e, nullptr) : 0;
    t = v > 0 ? v : 600;
  }
  return t;
}

static struct {
  bool resolved = false;
  olmo_ncclCommInitRankConfig_fn InitRankConfig = nullptr;
  olmo_ncclCommGetAsyncError_fn GetAsyncError = nullptr;
  olmo_ncclCommAbort_fn Abort = nullptr;
} g_nb;

static void resolve_nonblocking(void) {
  if (g_nb.resolved) return;
  g_nb.resolved = true;
  *(void**)&g_nb.InitRankConfig = dlsym(g_nccl.lib, "ncclCommInitRankConfig");
  *(void**)&g_nb.GetAsyncError = dlsym(g_nccl.lib, "ncclCommGetAsyncError");
  *(void**)&g_nb.Abort = dlsym(g_nccl.lib, "ncclCommAbort");
  if (!g_nb.GetAsyncError || !g_nb.Abort) g_nb.InitRankConfig = nullptr; /* all three or none */
}

#define MAX_COMMS 64
struct CommRec {
  olmoNcclComm_t comm;
  int world, rank;
  bool live;
};
static CommRec g_comms[MAX_COMMS];
static pthread_mutex_t g_comms_mu = PTHREAD_MUTEX_INITIALIZER;

/* Collectives pending on the stream, oldest first: the main thread appends, the watchdog retires. */
#define PENDING 1024
static cudaEvent_t g_ev[PENDING];
static double g_ev_at[PENDING];
static int g_ev_comm[PENDING];
static std::atomic<uint64_t> g_enqueued{0}, g_retired{0};
static bool g_watchdog_started = false;

[[noreturn]] static void die_hung(const char* what, int c) {
  /* abort all: the stuck kernels return, and no rank of this process waits on a dead group */
  for (int k = 0; k < MAX_COMMS; k++) {
    if (g_comms[k].live && g_nb.Abort) g_nb.Abort(g_comms[k].comm);
  }
  if (c >= 0) {
    fprintf(stderr, "olmo: error: NCCL communicator %d (rank %d of %d): %s; aborted this process's communicators (OLMO_COMM_TIMEOUT_S=%g)\n",
            c, g_comms[c].rank, g_comms[c].world, what, comm_timeout_s());
  } else {
    fprintf(stderr, "olmo: error: NCCL: %s; aborted this process's communicators (OLMO_COMM_TIMEOUT_S=%g)\n", what, comm_timeout_s());
  }
  fflush(stderr);
  _exit(2);
}

static void* watchdog(void*) {
  cudaSetDevice(g_state.device);
  for (;;) {
    struct timespec nap = {0, 100 * 1000 * 1000};
    nanosleep(&nap, nullptr);
    uint64_t done = g_retired.load(std::memory_order_relaxed);
    while (done < g_enqueued.load(std::memory_order_acquire)) {
      int slot = (int)(done % PENDING);
      cudaError_t q = cudaEventQuery(g_ev[slot]);
      if (q == cudaSuccess) {
        g_retired.store(++done, std::memory_order_release);
        continue;
      }
      if (q == cudaErrorNotReady && now_s() - g_ev_at[slot] > comm_timeout_s()) {
        pthread_mutex_lock(&g_comms_mu);
        die_hung("a collective did not complete within the deadline: a rank of its group stopped answering", g_ev_comm[slot]);
      }
      if (q != cudaErrorNotReady) (void)cudaGetLastError(); /* a CUDA error: olmo_synchronize reports it */
      break;
    }
    if (!g_nb.GetAsyncError) continue;
    pthread_mutex_lock(&g_comms_mu);
    for (int k = 0; k < MAX_COMMS; k++) {
      olmoNcclResult_t r = OLMO_NCCL_SUCCESS;
      if (!g_comms[k].live || g_nb.GetAsyncError(g_comms[k].comm, &r) != OLMO_NCCL_SUCCESS) continue;
      if (r != OLMO_NCCL_SUCCESS && r != OLMO_NCCL_IN_PROGRESS) {
        char what[256];
        const char* msg = g_nccl.GetErrorString ? g_nccl.GetErrorString(r) : "?";
        snprintf(what, sizeof what, "asynchronous error %d (%s): a peer failed", (int)r, msg ? msg : "?");
        die_hung(what, k);
      }
    }
    pthread_mutex_unlock(&g_comms_mu);
  }
  return nullptr;
}

/* Poll a non-blocking communicator until its last call completed (or failed, or the deadline passed). */
static int wait_ready(olmoNcclComm_t comm, olmoNcclResult_t first, const char* what, int world) {
  if (first != OLMO_NCCL_IN_PROGRESS) return first == OLMO_NCCL_SUCCESS ? 0 : nccl_error(first, what);
  double deadline = now_s() + comm_timeout_s();
  for (;;) {
    olmoNcclResult_t r = OLMO_NCCL_IN_PROGRESS;
    olmoNcclResult_t q = g_nb.GetAsyncError(comm, &r);
    if (q != OLMO_NCCL_SUCCESS) return nccl_error(q, "ncclCommGetAsyncError");
    if (r == OLMO_NCCL_SUCCESS) return 0;
    if (r != OLMO_NCCL_IN_PROGRESS) return nccl_error(r, what);
    if (now_s() > deadline) {
      g_nb.Abort(comm);
      return olmo_set_error("%s (group of %d ranks) did not complete in %g s (OLMO_COMM_TIMEOUT_S): a rank of the group never joined or stopped answering; the communicator was aborted",
                            what, world, comm_timeout_s());
    }
    struct timespec nap = {0, 1000 * 1000};
    nanosleep(&nap, nullptr);
  }
}

static int comm_index(olmoNcclComm_t comm) {
  for (int k = 0; k < MAX_COMMS; k++) if (g_comms[k].live && g_comms[k].comm == comm) return k;
  return -1;
}

/* After a collective's enqueue call: wait for a non-blocking enqueue, then record its completion event. */
static int enqueued(void* comm_, olmoNcclResult_t r, const char* what) {
  olmoNcclComm_t comm = (olmoNcclComm_t)comm_;
  int c = comm_index(comm);
  if (g_nb.InitRankConfig) {
    if (wait_ready(comm, r, what, c >= 0 ? g_comms[c].world : 0) != 0) return 1;
  } else if (r != OLMO_NCCL_SUCCESS) {
    return nccl_error(r, what);
  }
  uint64_t n = g_enqueued.load(std::memory_order_relaxed);
  if (n - g_retired.load(std::memory_order_acquire) < PENDING) { /* else: that many pending, already watched */
    int slot = (int)(n % PENDING);
    OLMO_CUDA(cudaEventRecord(g_ev[slot], g_state.stream));
    g_ev_at[slot] = now_s();
    g_ev_comm[slot] = c;
    g_enqueued.store(n + 1, std::memory_order_release);
  }
  return 0;
}

static int start_watchdog(void) {
  if (g_watchdog_started) return 0;
  for (int k = 0; k < PENDING; k++) OLMO_CUDA(cudaEventCreateWithFlags(&g_ev[k], cudaEventDisableTiming));
  pthread_t t;
  if (pthread_create(&t, nullptr, watchdog, nullptr) != 0) return olmo_set_error("olmo_comm_init: cannot start the NCCL watchdog thread");
  pthread_detach(t);
  g_watchdog_started = true;
  return 0;
}

extern "C" {

int olmo_comm_unique_id(uint8_t* out_128) {
  if (olmo_load_nccl() != 0) return 1;
  olmoNcclUniqueId id;
  NC(g_nccl.GetUniqueId(&id), "ncclGetUniqueId");
  memcpy(out_128, id.internal, OLMO_NCCL_UNIQUE_ID_BYTES);
  return 0;
}

int olmo_comm_init(void** out_comm, const uint8_t* id_128, int world, int rank) {
  COMM_PRELUDE();
  OLMO_REQUIRE(out_comm && id_128 && world > 0 && rank >= 0 && rank < world, "olmo_comm_init: bad arguments");
  olmoNcclUniqueId id;
  memcpy(id.internal, id_128, OLMO_NCCL_UNIQUE_ID_BYTES);
  olmoNcclComm_t comm = nullptr;
  resolve_nonblocking();
  if (start_watchdog() != 0) return 1;
  if (g_nb.InitRankConfig) {
    olmoNcclConfig_t config = {sizeof(olmoNcclConfig_t), OLMO_NCCL_CONFIG_MAGIC, OLMO_NCCL_VERSION_2_14, 0 /* non-blocking */};
    olmoNcclResult_t r = g_nb.InitRankConfig(&comm, world, id, rank, &config);
    if (r != OLMO_NCCL_SUCCESS && r != OLMO_NCCL_IN_PROGRESS) return nccl_error(r, "ncclCommInitRankConfig");
    if (wait_ready(comm, r, "ncclCommInitRankConfig", world) != 0) return 1;
  } else {
    NC(g_nccl.CommInitRank(&comm, world, id, rank), "ncclCommInitRank");
  }
  pthread_mutex_lock(&g_comms_mu);
  int slot = -1;
  for (int k = 0; k < MAX_COMMS && slot < 0; k++) if (!g_comms[k].live) slot = k;
  if (slot >= 0) g_comms[slot] = {comm, world, rank, true};
  pthread_mutex_unlock(&g_comms_mu);
  if (slot < 0) return olmo_set_error("olmo_comm_init: more than %d live communicators", MAX_COMMS);
  *out_comm = comm;
  return 0;
}

int olmo_comm_destroy(void* comm) {
  COMM_PRELUDE();
  if (!comm) return 0;
  OLMO_CUDA(cudaStreamSynchronize(g_state.stream));
  pthread_mutex_lock(&g_comms_mu); /* the watchdog no longer looks at it */
  int c = comm_index((olmoNcclComm_t)comm);
  if (c >= 0) g_comms[c].live = false;
  pthread_mutex_unlock(&g_comms_mu);
  NC(g_nccl.CommDestroy((olmoNcclComm_t)comm), "ncclCommDestroy");
  return 0;
}

int olmo_comm_all_reduce(void* comm, void* recv, const void* send, int64_t count, int dtype, int op) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  olmoNcclRedOp_t o;
  if (map_dtype(dtype, &dt) || map_op(op, &o)) return 1;
  return enqueued(comm, g_nccl.AllReduce(send, recv, (size_t)count, dt, o, (olmoNcclComm_t)comm, g_state.stream), "ncclAllReduce");
}

int olmo_comm_all_gather(void* comm, void* recv, const void* send, int64_t send_count, int dtype) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  if (map_dtype(dtype, &dt)) return 1;
  return enqueued(comm, g_nccl.AllGather(send, recv, (size_t)send_count, dt, (olmoNcclComm_t)comm, g_state.stream), "ncclAllGather");
}

int olmo_comm_reduce_scatter(void* comm, void* recv, const void* send, int64_t recv_count, int dtype, int op) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  olmoNcclRedOp_t o;
  if (map_dtype(dtype, &dt) || map_op(op, &o)) return 1;
  return enqueued(comm, g_nccl.ReduceScatter(send, recv, (size_t)recv_count, dt, o, (olmoNcclComm_t)comm, g_state.stream),
                  "ncclReduceScatter");
}

int olmo_comm_broadcast(void* comm, void* buf, int64_t count, int dtype, int root) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  if (map_dtype(dtype, &dt)) return 1;
  return enqueued(comm, g_nccl.Broadcast(buf, buf, (size_t)count, dt, root, (olmoNcclComm_t)comm, g_state.stream), "ncclBroadcast");
}

}  // extern "C"
