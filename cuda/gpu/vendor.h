/*
 * vendor.h — the subset of the cuBLASLt and NCCL C APIs that libolmo_cuda.so calls, declared here so
 * the library compiles with nvcc alone (no cuBLAS/NCCL headers). The libraries are dlopen'ed at run
 * time (vendor.cu); every symbol is resolved into the function-pointer tables below.
 *
 * Names carry an OLMO_/olmo prefix so that bench/gpu/vendor_check.cpp can include this file next to
 * the real cublasLt.h and nccl.h and static_assert each value and signature against them.
 * Enum values are copied from cublasLt.h / cublas_api.h / nccl.h (CUDA 12/13, NCCL 2.x).
 * Enums are passed as `int` (all these C enums have int as underlying type on x86-64 Linux).
 * cudaDataType_t comes from the toolkit's library_types.h (part of nvcc's install).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include <library_types.h>

/* ------------------------------------------------------------------ cuBLASLt */
typedef int olmoCublasStatus_t; /* cublasStatus_t */
#define OLMO_CUBLAS_STATUS_SUCCESS 0
typedef int olmoCublasComputeType_t; /* cublasComputeType_t */
#define OLMO_CUBLAS_COMPUTE_32F 68
typedef int olmoCublasOperation_t; /* cublasOperation_t */
#define OLMO_CUBLAS_OP_N 0
#define OLMO_CUBLAS_OP_T 1
typedef int olmoCublasLtMatmulDescAttributes_t; /* cublasLtMatmulDescAttributes_t */
#define OLMO_CUBLASLT_MATMUL_DESC_TRANSA 3
#define OLMO_CUBLASLT_MATMUL_DESC_TRANSB 4
typedef int olmoCublasLtMatmulPreferenceAttributes_t; /* cublasLtMatmulPreferenceAttributes_t */
#define OLMO_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES 1
#define OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES 5
#define OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES 6
#define OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES 7
#define OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES 8

typedef struct olmoCublasLtContext* olmoCublasLtHandle_t;          /* cublasLtHandle_t */
typedef struct olmoCublasLtMatmulDescOpaque* olmoCublasLtMatmulDesc_t; /* cublasLtMatmulDesc_t */
typedef struct olmoCublasLtMatrixLayoutOpaque* olmoCublasLtMatrixLayout_t;
typedef struct olmoCublasLtMatmulPreferenceOpaque* olmoCublasLtMatmulPreference_t;

typedef struct {
  uint64_t data[8];
} olmoCublasLtMatmulAlgo_t; /* cublasLtMatmulAlgo_t */

typedef struct {
  olmoCublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  olmoCublasStatus_t state;
  float wavesCount;
  int reserved[4];
} olmoCublasLtMatmulHeuristicResult_t; /* cublasLtMatmulHeuristicResult_t */

typedef olmoCublasStatus_t (*olmo_cublasLtCreate_fn)(olmoCublasLtHandle_t* handle);
typedef olmoCublasStatus_t (*olmo_cublasLtDestroy_fn)(olmoCublasLtHandle_t handle);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulDescCreate_fn)(olmoCublasLtMatmulDesc_t* desc,
                                                               olmoCublasComputeType_t computeType,
                                                               cudaDataType_t scaleType);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulDescDestroy_fn)(olmoCublasLtMatmulDesc_t desc);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulDescSetAttribute_fn)(
    olmoCublasLtMatmulDesc_t desc, olmoCublasLtMatmulDescAttributes_t attr, const void* buf,
    size_t sizeInBytes);
typedef olmoCublasStatus_t (*olmo_cublasLtMatrixLayoutCreate_fn)(olmoCublasLtMatrixLayout_t* layout,
                                                                 cudaDataType_t type, uint64_t rows,
                                                                 uint64_t cols, int64_t ld);
typedef olmoCublasStatus_t (*olmo_cublasLtMatrixLayoutDestroy_fn)(olmoCublasLtMatrixLayout_t layout);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulPreferenceCreate_fn)(
    olmoCublasLtMatmulPreference_t* pref);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulPreferenceDestroy_fn)(
    olmoCublasLtMatmulPreference_t pref);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulPreferenceSetAttribute_fn)(
    olmoCublasLtMatmulPreference_t pref, olmoCublasLtMatmulPreferenceAttributes_t attr,
    const void* buf, size_t sizeInBytes);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmulAlgoGetHeuristic_fn)(
    olmoCublasLtHandle_t lightHandle, olmoCublasLtMatmulDesc_t operationDesc,
    olmoCublasLtMatrixLayout_t Adesc, olmoCublasLtMatrixLayout_t Bdesc,
    olmoCublasLtMatrixLayout_t Cdesc, olmoCublasLtMatrixLayout_t Ddesc,
    olmoCublasLtMatmulPreference_t preference, int requestedAlgoCount,
    olmoCublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount);
typedef olmoCublasStatus_t (*olmo_cublasLtMatmul_fn)(
    olmoCublasLtHandle_t lightHandle, olmoCublasLtMatmulDesc_t computeDesc, const void* alpha,
    const void* A, olmoCublasLtMatrixLayout_t Adesc, const void* B, olmoCublasLtMatrixLayout_t Bdesc,
    const void* beta, const void* C, olmoCublasLtMatrixLayout_t Cdesc, void* D,
    olmoCublasLtMatrixLayout_t Ddesc, const olmoCublasLtMatmulAlgo_t* algo, void* workspace,
    size_t workspaceSizeInBytes, cudaStream_t stream);
typedef const char* (*olmo_cublasLtGetStatusString_fn)(olmoCublasStatus_t status);

struct OlmoCublasLt {
  void* lib = nullptr;
  char path[1024] = {0};
  olmoCublasLtHandle_t handle = nullptr;
  olmo_cublasLtCreate_fn Create = nullptr;
  olmo_cublasLtDestroy_fn Destroy = nullptr;
  olmo_cublasLtMatmulDescCreate_fn MatmulDescCreate = nullptr;
  olmo_cublasLtMatmulDescDestroy_fn MatmulDescDestroy = nullptr;
  olmo_cublasLtMatmulDescSetAttribute_fn MatmulDescSetAttribute = nullptr;
  olmo_cublasLtMatrixLayoutCreate_fn MatrixLayoutCreate = nullptr;
  olmo_cublasLtMatrixLayoutDestroy_fn MatrixLayoutDestroy = nullptr;
  olmo_cublasLtMatmulPreferenceCreate_fn MatmulPreferenceCreate = nullptr;
  olmo_cublasLtMatmulPreferenceDestroy_fn MatmulPreferenceDestroy = nullptr;
  olmo_cublasLtMatmulPreferenceSetAttribute_fn MatmulPreferenceSetAttribute = nullptr;
  olmo_cublasLtMatmulAlgoGetHeuristic_fn MatmulAlgoGetHeuristic = nullptr;
  olmo_cublasLtMatmul_fn Matmul = nullptr;
  olmo_cublasLtGetStatusString_fn GetStatusString = nullptr; /* optional */
};

/* ------------------------------------------------------------------ NCCL */
typedef int olmoNcclResult_t; /* ncclResult_t */
#define OLMO_NCCL_SUCCESS 0
typedef int olmoNcclDataType_t; /* ncclDataType_t */
#define OLMO_NCCL_FLOAT32 7
#define OLMO_NCCL_BFLOAT16 9
typedef int olmoNcclRedOp_t; /* ncclRedOp_t */
#define OLMO_NCCL_SUM 0
#define OLMO_NCCL_MAX 2
#define OLMO_NCCL_AVG 4
#define OLMO_NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[OLMO_NCCL_UNIQUE_ID_BYTES];
} olmoNcclUniqueId; /* ncclUniqueId */
typedef struct olmoNcclComm* olmoNcclComm_t; /* ncclComm_t */

typedef olmoNcclResult_t (*olmo_ncclGetUniqueId_fn)(olmoNcclUniqueId* uniqueId);
typedef olmoNcclResult_t (*olmo_ncclCommInitRank_fn)(olmoNcclComm_t* comm, int nranks,
                                                     olmoNcclUniqueId commId, int rank);
typedef olmoNcclResult_t (*olmo_ncclCommDestroy_fn)(olmoNcclComm_t comm);
typedef olmoNcclResult_t (*olmo_ncclAllReduce_fn)(const void* sendbuff, void* recvbuff, size_t count,
                                                  olmoNcclDataType_t datatype, olmoNcclRedOp_t op,
                                                  olmoNcclComm_t comm, cudaStream_t stream);
typedef olmoNcclResult_t (*olmo_ncclAllGather_fn)(const void* sendbuff, void* recvbuff,
                                                  size_t sendcount, olmoNcclDataType_t datatype,
                                                  olmoNcclComm_t comm, cudaStream_t stream);
typedef olmoNcclResult_t (*olmo_ncclReduceScatter_fn)(const void* sendbuff, void* recvbuff,
                                                      size_t recvcount, olmoNcclDataType_t datatype,
                                                      olmoNcclRedOp_t op, olmoNcclComm_t comm,
                                                      cudaStream_t stream);
typedef olmoNcclResult_t (*olmo_ncclBroadcast_fn)(const void* sendbuff, void* recvbuff, size_t count,
                                                  olmoNcclDataType_t datatype, int root,
                                                  olmoNcclComm_t comm, cudaStream_t stream);
typedef const char* (*olmo_ncclGetErrorString_fn)(olmoNcclResult_t result);

/* Non-blocking communicators, their asynchronous state, and abort (NCCL >= 2.14): what the deadline
 * on every collective is built from (comm.cu). They are resolved with dlsym on first use, not at
 * load, so an older libnccl still runs (blocking, without the deadline). */
#define OLMO_NCCL_IN_PROGRESS 7 /* ncclInProgress */
#define OLMO_NCCL_CONFIG_MAGIC 0xcafebeefu
#define OLMO_NCCL_VERSION_2_14 21400 /* NCCL_VERSION(2, 14, 0) */
/* The first fields of ncclConfig_t (its 2.14 layout). NCCL copies min(size, its sizeof) bytes and
 * fills every field that a config of an older version lacks with its default (NVIDIA/nccl
 * src/init.cc, parseCommConfig, at 48bb7fec7953112ff37499a272317f6663f8f600), so this prefix with
 * size = sizeof(olmoNcclConfig_t) and version 2.14 is a valid config for every later NCCL. */
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking;
} olmoNcclConfig_t;
typedef olmoNcclResult_t (*olmo_ncclCommInitRankConfig_fn)(olmoNcclComm_t* comm, int nranks,
                                                           olmoNcclUniqueId commId, int rank,
                                                           olmoNcclConfig_t* config);
typedef olmoNcclResult_t (*olmo_ncclCommGetAsyncError_fn)(olmoNcclComm_t comm,
                                                          olmoNcclResult_t* asyncError);
typedef olmoNcclResult_t (*olmo_ncclCommAbort_fn)(olmoNcclComm_t comm);

struct OlmoNccl {
  void* lib = nullptr;
  char path[1024] = {0};
  olmo_ncclGetUniqueId_fn GetUniqueId = nullptr;
  olmo_ncclCommInitRank_fn CommInitRank = nullptr;
  olmo_ncclCommDestroy_fn CommDestroy = nullptr;
  olmo_ncclAllReduce_fn AllReduce = nullptr;
  olmo_ncclAllGather_fn AllGather = nullptr;
  olmo_ncclReduceScatter_fn ReduceScatter = nullptr;
  olmo_ncclBroadcast_fn Broadcast = nullptr;
  olmo_ncclGetErrorString_fn GetErrorString = nullptr;
};

#ifdef __cplusplus
extern OlmoCublasLt g_lt __attribute__((visibility("hidden")));
extern OlmoNccl g_nccl __attribute__((visibility("hidden")));
/* Load the library (once). Return 0 or set the error (listing every place searched). */
__attribute__((visibility("hidden"))) int olmo_load_cublaslt(void);
__attribute__((visibility("hidden"))) int olmo_load_nccl(void);
#endif
