// vendor_check.cpp — compile-time proof that cuda/gpu/vendor.h matches the real cublasLt.h and
// nccl.h: every enum value, struct layout and function-pointer signature we declare is checked with
// static_assert. Signatures are compared parameter by parameter with an ABI-equivalence trait
// (identical type; or enum/integral of the same size, since vendor.h passes C enums as int; or
// pointers whose pointees are ABI-equivalent / opaque structs; or structs of equal size+alignment).
// Build: g++ -std=c++17 -Icuda/gpu -I<cuda>/include -I<cublas>/include -I<nccl>/include vendor_check.cpp
#include <cstddef>
#include <cstdio>
#include <type_traits>
#include <cublasLt.h>
#include <nccl.h>
#include "vendor.h"

template <class T, class = void> struct is_complete : std::false_type {};
template <class T> struct is_complete<T, decltype(void(sizeof(T)))> : std::true_type {};

template <class A, class B, class = void> struct abi_same;
template <class A, class B>
constexpr bool abi_same_v = abi_same<std::remove_cv_t<A>, std::remove_cv_t<B>>::value;

template <class A, class B, class>
struct abi_same {
  static constexpr bool value = [] {
    if constexpr (std::is_same_v<A, B>) return true;
    else if constexpr ((std::is_integral_v<A> || std::is_enum_v<A>) && (std::is_integral_v<B> || std::is_enum_v<B>))
      return sizeof(A) == sizeof(B);
    else if constexpr (std::is_pointer_v<A> && std::is_pointer_v<B>) {
      using PA = std::remove_pointer_t<A>;
      using PB = std::remove_pointer_t<B>;
      if constexpr (std::is_const_v<PA> != std::is_const_v<PB>) return false;
      else if constexpr (std::is_class_v<std::remove_cv_t<PA>> && std::is_class_v<std::remove_cv_t<PB>> &&
                         (!is_complete<std::remove_cv_t<PA>>::value || !is_complete<std::remove_cv_t<PB>>::value))
        return true; /* opaque handle structs */
      else if constexpr (std::is_void_v<PA> || std::is_void_v<PB>) return std::is_void_v<PA> && std::is_void_v<PB>;
      else return abi_same_v<PA, PB>;
    } else if constexpr (std::is_class_v<A> && std::is_class_v<B>)
      return sizeof(A) == sizeof(B) && alignof(A) == alignof(B);
    else return false;
  }();
};

template <class F, class G> struct fn_abi_same : std::false_type {};
template <class R1, class... A1, class R2, class... A2>
struct fn_abi_same<R1 (*)(A1...), R2 (*)(A2...)> {
  static constexpr bool value = [] {
    if constexpr (sizeof...(A1) != sizeof...(A2)) return false;
    else return abi_same_v<R1, R2> && (abi_same_v<A1, A2> && ...);
  }();
};

#define SIG(ours, real) static_assert(fn_abi_same<ours, decltype(&real)>::value, "signature mismatch: " #real)
#define VAL(ours, real) static_assert((long long)(ours) == (long long)(real), "value mismatch: " #real)
#define SAME_SIZE(ours, real) static_assert(sizeof(ours) == sizeof(real) && alignof(ours) == alignof(real), "layout mismatch: " #real)

// ---- cuBLASLt values
VAL(OLMO_CUBLAS_STATUS_SUCCESS, CUBLAS_STATUS_SUCCESS);
VAL(OLMO_CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F);
VAL(OLMO_CUBLAS_OP_N, CUBLAS_OP_N);
VAL(OLMO_CUBLAS_OP_T, CUBLAS_OP_T);
VAL(OLMO_CUBLASLT_MATMUL_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSA);
VAL(OLMO_CUBLASLT_MATMUL_DESC_TRANSB, CUBLASLT_MATMUL_DESC_TRANSB);
VAL(OLMO_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES);
VAL(OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES);
VAL(OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES);
VAL(OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES);
VAL(OLMO_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES);
static_assert(abi_same_v<olmoCublasStatus_t, cublasStatus_t>, "cublasStatus_t");
static_assert(abi_same_v<olmoCublasComputeType_t, cublasComputeType_t>, "cublasComputeType_t");
static_assert(abi_same_v<olmoCublasOperation_t, cublasOperation_t>, "cublasOperation_t");
static_assert(abi_same_v<olmoCublasLtMatmulDescAttributes_t, cublasLtMatmulDescAttributes_t>, "desc attrs");
static_assert(abi_same_v<olmoCublasLtMatmulPreferenceAttributes_t, cublasLtMatmulPreferenceAttributes_t>, "pref attrs");
static_assert(std::is_pointer_v<cublasLtHandle_t> && std::is_pointer_v<cublasLtMatmulDesc_t> &&
              std::is_pointer_v<cublasLtMatrixLayout_t> && std::is_pointer_v<cublasLtMatmulPreference_t>,
              "cuBLASLt handles are pointers");
SAME_SIZE(olmoCublasLtMatmulAlgo_t, cublasLtMatmulAlgo_t);
SAME_SIZE(olmoCublasLtMatmulHeuristicResult_t, cublasLtMatmulHeuristicResult_t);
static_assert(offsetof(olmoCublasLtMatmulHeuristicResult_t, workspaceSize) == offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize), "workspaceSize");
static_assert(offsetof(olmoCublasLtMatmulHeuristicResult_t, state) == offsetof(cublasLtMatmulHeuristicResult_t, state), "state");
static_assert(offsetof(olmoCublasLtMatmulHeuristicResult_t, wavesCount) == offsetof(cublasLtMatmulHeuristicResult_t, wavesCount), "wavesCount");

// ---- cuBLASLt signatures
SIG(olmo_cublasLtCreate_fn, cublasLtCreate);
SIG(olmo_cublasLtDestroy_fn, cublasLtDestroy);
SIG(olmo_cublasLtMatmulDescCreate_fn, cublasLtMatmulDescCreate);
SIG(olmo_cublasLtMatmulDescDestroy_fn, cublasLtMatmulDescDestroy);
SIG(olmo_cublasLtMatmulDescSetAttribute_fn, cublasLtMatmulDescSetAttribute);
SIG(olmo_cublasLtMatrixLayoutCreate_fn, cublasLtMatrixLayoutCreate);
SIG(olmo_cublasLtMatrixLayoutDestroy_fn, cublasLtMatrixLayoutDestroy);
SIG(olmo_cublasLtMatmulPreferenceCreate_fn, cublasLtMatmulPreferenceCreate);
SIG(olmo_cublasLtMatmulPreferenceDestroy_fn, cublasLtMatmulPreferenceDestroy);
SIG(olmo_cublasLtMatmulPreferenceSetAttribute_fn, cublasLtMatmulPreferenceSetAttribute);
SIG(olmo_cublasLtMatmulAlgoGetHeuristic_fn, cublasLtMatmulAlgoGetHeuristic);
SIG(olmo_cublasLtMatmul_fn, cublasLtMatmul);
SIG(olmo_cublasLtGetStatusString_fn, cublasLtGetStatusString);

// ---- NCCL values, types, signatures
VAL(OLMO_NCCL_SUCCESS, ncclSuccess);
VAL(OLMO_NCCL_FLOAT32, ncclFloat32);
VAL(OLMO_NCCL_BFLOAT16, ncclBfloat16);
VAL(OLMO_NCCL_SUM, ncclSum);
VAL(OLMO_NCCL_MAX, ncclMax);
VAL(OLMO_NCCL_AVG, ncclAvg);
VAL(OLMO_NCCL_UNIQUE_ID_BYTES, NCCL_UNIQUE_ID_BYTES);
static_assert(abi_same_v<olmoNcclResult_t, ncclResult_t>, "ncclResult_t");
static_assert(abi_same_v<olmoNcclDataType_t, ncclDataType_t>, "ncclDataType_t");
static_assert(abi_same_v<olmoNcclRedOp_t, ncclRedOp_t>, "ncclRedOp_t");
static_assert(std::is_pointer_v<ncclComm_t>, "ncclComm_t is a pointer");
SAME_SIZE(olmoNcclUniqueId, ncclUniqueId);
SIG(olmo_ncclGetUniqueId_fn, ncclGetUniqueId);
SIG(olmo_ncclCommInitRank_fn, ncclCommInitRank);
SIG(olmo_ncclCommDestroy_fn, ncclCommDestroy);
SIG(olmo_ncclAllReduce_fn, ncclAllReduce);
SIG(olmo_ncclAllGather_fn, ncclAllGather);
SIG(olmo_ncclReduceScatter_fn, ncclReduceScatter);
SIG(olmo_ncclBroadcast_fn, ncclBroadcast);
SIG(olmo_ncclGetErrorString_fn, ncclGetErrorString);
// non-blocking communicators (comm.cu's deadline): our config is the 2.14 prefix of ncclConfig_t
VAL(OLMO_NCCL_IN_PROGRESS, ncclInProgress);
VAL(OLMO_NCCL_VERSION_2_14, NCCL_VERSION(2, 14, 0));
static_assert(offsetof(olmoNcclConfig_t, size) == offsetof(ncclConfig_t, size) && offsetof(olmoNcclConfig_t, magic) == offsetof(ncclConfig_t, magic) &&
              offsetof(olmoNcclConfig_t, version) == offsetof(ncclConfig_t, version) && offsetof(olmoNcclConfig_t, blocking) == offsetof(ncclConfig_t, blocking) &&
              sizeof(olmoNcclConfig_t) <= sizeof(ncclConfig_t), "layout mismatch: ncclConfig_t prefix");
static_assert(std::is_same_v<decltype(&ncclCommInitRankConfig), ncclResult_t (*)(ncclComm_t*, int, ncclUniqueId, int, ncclConfig_t*)>, "signature mismatch: ncclCommInitRankConfig");
SIG(olmo_ncclCommGetAsyncError_fn, ncclCommGetAsyncError);
SIG(olmo_ncclCommAbort_fn, ncclCommAbort);

int main() {
  ncclConfig_t init = NCCL_CONFIG_INITIALIZER;
  if (init.magic != OLMO_NCCL_CONFIG_MAGIC) {
    std::printf("vendor.h MISMATCH: NCCL_CONFIG_INITIALIZER magic %#x, vendor.h %#x\n", init.magic, OLMO_NCCL_CONFIG_MAGIC);
    return 1;
  }
#ifdef CUBLAS_VER_MAJOR
  std::printf("cublasLt.h %d.%d.%d, ", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
#endif
  std::printf("nccl.h %d.%d.%d: vendor.h OK (all static_asserts passed)\n", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  return 0;
}
