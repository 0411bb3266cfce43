/*
 * lifecycle.cu — library state, errors, device selection, memory.
 *
 * No math. State: one device, one non-blocking stream (all kernels and cuBLASLt calls go on it),
 * a 32 MiB cuBLASLt workspace (NVIDIA's cuBLAS documentation recommends 32 MiB on Hopper), and a one-word device
 * error flag that kernels OR bits into when they meet invalid input; olmo_synchronize() syncs the
 * stream, reads and clears the word, and turns a set bit into an error message.
 * Memory copies are stream-ordered (cudaMemcpyAsync on the stream, then a stream sync for the
 * host-visible directions), so they never race with queued kernels.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "common.cuh"
#include "vendor.h"

OlmoState g_state;
static thread_local char t_err[16384];

int olmo_set_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_err, sizeof t_err, fmt, ap);
  va_end(ap);
  return 1;
}

int olmo_cuda_error(cudaError_t e, const char* what, const char* file, int line) {
  const char* base = strrchr(file, '/');
  return olmo_set_error("%s:%d: %s: %s: %s", base ? base + 1 : file, line, what, cudaGetErrorName(e),
                        cudaGetErrorString(e));
}

__attribute__((visibility("hidden"))) extern int olmo_matmul_init(void);

extern "C" {

int olmo_abi_version(void) { return OLMO_ABI_VERSION; }
const char* olmo_last_error(void) { return t_err; }
int olmo_act_dtype(void) { return OLMO_DTYPE_BF16; }
int olmo_set_num_threads(int n) {
  (void)n;
  return 0;
}

int olmo_device_count(int32_t* out) {
  OLMO_REQUIRE(out != nullptr, "olmo_device_count: out is NULL");
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice) {
    (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
    *out = 0;
    return 0;
  }
  if (e != cudaSuccess) {
    *out = 0;
    return olmo_cuda_error(e, "cudaGetDeviceCount", __FILE__, __LINE__);
  }
  *out = n;
  return 0;
}

int olmo_init(int device) {
  if (g_state.initialized) {
    if (device == g_state.device) return 0;
    return olmo_set_error("olmo_init(%d): already initialized on device %d (one device per process)",
                          device, g_state.device);
  }
  int n = 0;
  OLMO_CUDA(cudaGetDeviceCount(&n));
  OLMO_REQUIRE(device >= 0 && device < n, "olmo_init: device %d out of range (%d devices)", device, n);
  OLMO_CUDA(cudaSetDevice(device));
  cudaDeviceProp prop;
  OLMO_CUDA(cudaGetDeviceProperties(&prop, device));
  OLMO_REQUIRE(prop.major >= 8, "olmo_init: %s has compute capability %d.%d; bf16 tensor cores need 8.0+",
               prop.name, prop.major, prop.minor);
  g_state.num_sms = prop.multiProcessorCount;
  g_state.max_smem_optin = prop.sharedMemPerBlockOptin;
  if (!g_state.stream) OLMO_CUDA(cudaStreamCreateWithFlags(&g_state.stream, cudaStreamNonBlocking));
  if (!g_state.err_word) {
    OLMO_CUDA(cudaMalloc(&g_state.err_word, sizeof(unsigned int)));
    OLMO_CUDA(cudaMemset(g_state.err_word, 0, sizeof(unsigned int)));
  }
  if (!g_state.workspace) {
    g_state.workspace_bytes = 32u << 20;
    OLMO_CUDA(cudaMalloc(&g_state.workspace, g_state.workspace_bytes));
  }
  g_state.device = device;
  if (olmo_load_cublaslt() != 0) return 1;
  if (olmo_matmul_init() != 0) return 1;
  OLMO_CUDA(cudaDeviceSynchronize());
  g_state.initialized = true;
  return 0;
}

int olmo_device_name(char* buf, int64_t len) {
  OLMO_REQUIRE(buf != nullptr && len > 0, "olmo_device_name: empty buffer");
  int dev = g_state.device >= 0 ? g_state.device : 0;
  cudaDeviceProp prop;
  OLMO_CUDA(cudaGetDeviceProperties(&prop, dev));
  snprintf(buf, (size_t)len, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  return 0;
}

int olmo_device_memory(int64_t* free_bytes, int64_t* total_bytes) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(free_bytes != nullptr && total_bytes != nullptr, "olmo_device_memory: null output");
  size_t free_b = 0, total_b = 0;
  OLMO_CUDA(cudaMemGetInfo(&free_b, &total_b));
  *free_bytes = (int64_t)free_b;
  *total_bytes = (int64_t)total_b;
  return 0;
}

int olmo_host_register(void* ptr, int64_t bytes) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(bytes >= 0 && (ptr != nullptr || bytes == 0), "olmo_host_register: bad arguments (bytes=%lld)", (long long)bytes);
  if (bytes == 0) return 0;
  OLMO_CUDA(cudaHostRegister(ptr, (size_t)bytes, cudaHostRegisterDefault));
  return 0;
}

int olmo_host_unregister(void* ptr) {
  OLMO_REQUIRE_INIT();
  if (!ptr) return 0;
  OLMO_CUDA(cudaHostUnregister(ptr));
  return 0;
}

int olmo_synchronize(void) {
  OLMO_REQUIRE_INIT();
  OLMO_CUDA(cudaStreamSynchronize(g_state.stream));
  unsigned int word = 0;
  OLMO_CUDA(cudaMemcpy(&word, g_state.err_word, sizeof word, cudaMemcpyDeviceToHost));
  if (word != 0) {
    OLMO_CUDA(cudaMemset(g_state.err_word, 0, sizeof(unsigned int)));
    if (word & OLMO_ERRBIT_TOKEN)
      return olmo_set_error("olmo_embedding_forward: a token id was outside [0, V) (reported at synchronize)");
    if (word & OLMO_ERRBIT_TARGET)
      return olmo_set_error("olmo_cross_entropy: a target was >= V (reported at synchronize)");
    return olmo_set_error("device error word 0x%x", word);
  }
  return 0;
}

/* ------------------------------------------------------------------ memory */
int olmo_alloc(void** out, int64_t bytes) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(out != nullptr && bytes >= 0, "olmo_alloc: bad arguments (bytes=%lld)", (long long)bytes);
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, (size_t)(bytes > 0 ? bytes : 1));
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return olmo_set_error("olmo_alloc(%lld bytes): %s (free %.2f GiB of %.2f GiB)", (long long)bytes,
                          cudaGetErrorString(e), free_b / 1073741824.0, total_b / 1073741824.0);
  }
  *out = p; /* cudaMalloc returns >= 256-byte aligned memory */
  return 0;
}

int olmo_free(void* ptr) {
  OLMO_REQUIRE_INIT();
  if (!ptr) return 0;
  OLMO_CUDA(cudaFree(ptr));
  return 0;
}

int olmo_memcpy_h2d(void* dst, const void* src_host, int64_t bytes) {
  OLMO_REQUIRE_INIT();
  if (bytes <= 0) return 0;
  OLMO_CUDA(cudaMemcpyAsync(dst, src_host, (size_t)bytes, cudaMemcpyHostToDevice, g_state.stream));
  /* pageable host memory: the caller may reuse src right after we return */
  OLMO_CUDA(cudaStreamSynchronize(g_state.stream));
  return 0;
}

int olmo_memcpy_d2h(void* dst_host, const void* src, int64_t bytes) {
  OLMO_REQUIRE_INIT();
  if (bytes <= 0) return 0;
  OLMO_CUDA(cudaMemcpyAsync(dst_host, src, (size_t)bytes, cudaMemcpyDeviceToHost, g_state.stream));
  OLMO_CUDA(cudaStreamSynchronize(g_state.stream));
  return 0;
}

int olmo_memcpy_d2d(void* dst, const void* src, int64_t bytes) {
  OLMO_REQUIRE_INIT();
  if (bytes <= 0) return 0;
  OLMO_CUDA(cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToDevice, g_state.stream));
  return 0;
}

int olmo_memset(void* dst, int value, int64_t bytes) {
  OLMO_REQUIRE_INIT();
  if (bytes <= 0) return 0;
  OLMO_CUDA(cudaMemsetAsync(dst, value, (size_t)bytes, g_state.stream));
  return 0;
}

}  // extern "C"

static void* s_scratch[OLMO_SCRATCH_SLOTS];
static size_t s_scratch_cap[OLMO_SCRATCH_SLOTS];

int olmo_scratch(int slot, size_t bytes, void** out) {
  if (bytes == 0) bytes = 1;
  if (s_scratch_cap[slot] < bytes) {
    if (s_scratch[slot]) {
      OLMO_CUDA(cudaStreamSynchronize(g_state.stream)); /* queued kernels may still use it */
      OLMO_CUDA(cudaFree(s_scratch[slot]));
      s_scratch[slot] = nullptr;
      s_scratch_cap[slot] = 0;
    }
    OLMO_CUDA(cudaMalloc(&s_scratch[slot], bytes));
    s_scratch_cap[slot] = bytes;
  }
  *out = s_scratch[slot];
  return 0;
}
