/*
 * comm.cu — collectives over NCCL (loaded lazily at the first olmo_comm_* call, so one-GPU training
 * never needs libnccl). All collectives are enqueued on the library stream, so they are ordered
 * with the kernels around them; olmo_synchronize() waits for them.
 *   all_reduce:     recv = op_r send_r                   (count elements; in place allowed)
 *   all_gather:     recv[r*send_count : (r+1)*send_count] = send_r
 *   reduce_scatter: recv_r = (op_r' send_r')[r*recv_count : (r+1)*recv_count]
 *   broadcast:      buf_r = buf_root (in place)
 * dtype: OLMO_DTYPE_F32 | OLMO_DTYPE_BF16; op: 0 sum, 1 max, 2 avg.
 */
#include <string.h>
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
  NC(g_nccl.CommInitRank(&comm, world, id, rank), "ncclCommInitRank");
  *out_comm = comm;
  return 0;
}

int olmo_comm_destroy(void* comm) {
  COMM_PRELUDE();
  if (!comm) return 0;
  OLMO_CUDA(cudaStreamSynchronize(g_state.stream));
  NC(g_nccl.CommDestroy((olmoNcclComm_t)comm), "ncclCommDestroy");
  return 0;
}

int olmo_comm_all_reduce(void* comm, void* recv, const void* send, int64_t count, int dtype, int op) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  olmoNcclRedOp_t o;
  if (map_dtype(dtype, &dt) || map_op(op, &o)) return 1;
  NC(g_nccl.AllReduce(send, recv, (size_t)count, dt, o, (olmoNcclComm_t)comm, g_state.stream), "ncclAllReduce");
  return 0;
}

int olmo_comm_all_gather(void* comm, void* recv, const void* send, int64_t send_count, int dtype) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  if (map_dtype(dtype, &dt)) return 1;
  NC(g_nccl.AllGather(send, recv, (size_t)send_count, dt, (olmoNcclComm_t)comm, g_state.stream), "ncclAllGather");
  return 0;
}

int olmo_comm_reduce_scatter(void* comm, void* recv, const void* send, int64_t recv_count, int dtype, int op) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  olmoNcclRedOp_t o;
  if (map_dtype(dtype, &dt) || map_op(op, &o)) return 1;
  NC(g_nccl.ReduceScatter(send, recv, (size_t)recv_count, dt, o, (olmoNcclComm_t)comm, g_state.stream),
     "ncclReduceScatter");
  return 0;
}

int olmo_comm_broadcast(void* comm, void* buf, int64_t count, int dtype, int root) {
  COMM_PRELUDE();
  olmoNcclDataType_t dt;
  if (map_dtype(dtype, &dt)) return 1;
  NC(g_nccl.Broadcast(buf, buf, (size_t)count, dt, root, (olmoNcclComm_t)comm, g_state.stream), "ncclBroadcast");
  return 0;
}

}  // extern "C"
