/*
 * comm.c — the collectives half of the ABI, which the CPU library does not implement.
 *
 * NCCL-style collectives belong to the CUDA library. CPU runs (tests, single-host TP/DP) use the
 * TypeScript shared-memory Comm in src/parallel, so every entry point here reports that clearly
 * instead of silently doing nothing.
 */
#include "internal.h"

#define UNSUPPORTED \
  FAIL("collectives are not in the CPU library; CPU collectives are implemented in TypeScript")

int olmo_comm_unique_id(uint8_t* out_128) { return UNSUPPORTED; }
int olmo_comm_init(void** out_comm, const uint8_t* id_128, int world, int rank) { return UNSUPPORTED; }
int olmo_comm_destroy(void* comm) { return UNSUPPORTED; }
int olmo_comm_all_reduce(void* comm, void* recv, const void* send, int64_t count, int dtype, int op) {
  return UNSUPPORTED;
}
int olmo_comm_all_gather(void* comm, void* recv, const void* send, int64_t send_count, int dtype) {
  return UNSUPPORTED;
}
int olmo_comm_reduce_scatter(void* comm, void* recv, const void* send, int64_t recv_count, int dtype,
                             int op) {
  return UNSUPPORTED;
}
int olmo_comm_broadcast(void* comm, void* buf, int64_t count, int dtype, int root) { return UNSUPPORTED; }
