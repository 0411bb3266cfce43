/*
 * common.c — lifecycle, errors, memory, casts and the trivial elementwise ops of libolmo_cpu.so.
 *
 * On the CPU "device" memory is host memory: olmo_alloc is a 256-byte aligned posix_memalign,
 * the memcpy_* family is memcpy, and act == f32, so both casts are copies.
 *   olmo_add:       out[i] = a[i] + b[i]       (out may alias a or b)
 *   olmo_scale_f32: x[i] *= s
 *   olmo_fill_f32:  x[i]  = value
 * Errors: every entry point validates its arguments and returns nonzero with a message in a
 * thread-local buffer (olmo_last_error). Nothing here exits or aborts.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign under -std=c11 */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "internal.h"

static _Thread_local char last_error[1024];

int olmo_cpu_fail(const char* fn, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "%s: ", fn);
  if (n < 0 || n >= (int)sizeof last_error) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
  va_end(ap);
  return 1;
}

int olmo_abi_version(void) { return OLMO_ABI_VERSION; }
const char* olmo_last_error(void) { return last_error; }

int olmo_init(int device) {
  if (device != 0) return FAIL("device %d does not exist (the CPU library has exactly device 0)", device);
  olmo_cpu_gemm_setup();
  return 0;
}

int olmo_device_count(int32_t* out) {
  CHECK_PTR(out);
  *out = 1;
  return 0;
}

int olmo_device_name(char* buf, int64_t len) {
  CHECK_PTR(buf);
  CHECK_POS(len);
  snprintf(buf, (size_t)len, "cpu (%s, %d threads)", olmo_cpu_gemm_name, omp_get_max_threads());
  return 0;
}

/* MemAvailable from /proc/meminfo (what the kernel can give without swapping), else free pages. */
int olmo_device_memory(int64_t* free_bytes, int64_t* total_bytes) {
  CHECK_PTR(free_bytes);
  CHECK_PTR(total_bytes);
  long page = sysconf(_SC_PAGESIZE);
  *total_bytes = (int64_t)sysconf(_SC_PHYS_PAGES) * page;
  *free_bytes = (int64_t)sysconf(_SC_AVPHYS_PAGES) * page;
  FILE* f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    long long kb;
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) {
        *free_bytes = (int64_t)kb * 1024;
        break;
      }
    }
    fclose(f);
  }
  return 0;
}

/* Host memory is the CPU library's device memory: nothing to page-lock. */
int olmo_host_register(void* ptr, int64_t bytes) {
  CHECK_NONNEG(bytes);
  CHECK_PTR_IF(ptr, bytes);
  return 0;
}

int olmo_host_unregister(void* ptr) {
  (void)ptr;
  return 0;
}

int olmo_act_dtype(void) { return OLMO_DTYPE_F32; }

int olmo_set_num_threads(int n) {
  CHECK_POS(n);
  /* OpenMP ICVs are per calling thread; all calls come from the one JS thread, so this sticks. */
  omp_set_num_threads(n);
  olmo_cpu_gemm_setup(); /* OpenBLAS itself stays single-threaded: gemm.c splits C itself */
  return 0;
}

int olmo_synchronize(void) { return 0; }

/* ---------------------------------------------------------------- memory */
int olmo_alloc(void** out, int64_t bytes) {
  CHECK_PTR(out);
  CHECK_NONNEG(bytes);
  void* p = NULL;
  size_t size = bytes > 0 ? (size_t)bytes : 1;
  if (posix_memalign(&p, 256, size) != 0 || p == NULL)
    return FAIL("out of host memory allocating %lld bytes", (long long)bytes);
  *out = p;
  return 0;
}

int olmo_free(void* ptr) {
  free(ptr); /* free(NULL) is a no-op, matching cudaFree */
  return 0;
}

static int copy_bytes(const char* fn, void* dst, const void* src, int64_t bytes) {
  if (bytes < 0) return olmo_cpu_fail(fn, "bytes = %lld is negative", (long long)bytes);
  if (bytes == 0) return 0;
  if (dst == NULL || src == NULL) return olmo_cpu_fail(fn, "%s is NULL", dst == NULL ? "dst" : "src");
  memmove(dst, src, (size_t)bytes);
  return 0;
}

int olmo_memcpy_h2d(void* dst, const void* src_host, int64_t bytes) {
  return copy_bytes(__func__, dst, src_host, bytes);
}
int olmo_memcpy_d2h(void* dst_host, const void* src, int64_t bytes) {
  return copy_bytes(__func__, dst_host, src, bytes);
}
int olmo_memcpy_d2d(void* dst, const void* src, int64_t bytes) {
  return copy_bytes(__func__, dst, src, bytes);
}

int olmo_memset(void* dst, int value, int64_t bytes) {
  CHECK_NONNEG(bytes);
  CHECK_PTR_IF(dst, bytes);
  if (bytes > 0) memset(dst, value, (size_t)bytes);
  return 0;
}

int olmo_fill_f32(float* dst, float value, int64_t n) {
  CHECK_NONNEG(n);
  CHECK_PTR_IF(dst, n);
#pragma omp parallel for simd schedule(static) if (n > OLMO_PAR_MIN)
  for (int64_t i = 0; i < n; i++) dst[i] = value;
  return 0;
}

int olmo_cast_f32_to_act(void* dst_act, const float* src, int64_t n) {
  if (n < 0) return FAIL("n = %lld is negative", (long long)n);
  return copy_bytes(__func__, dst_act, src, n * (int64_t)sizeof(float));
}
int olmo_cast_act_to_f32(float* dst, const void* src_act, int64_t n) {
  if (n < 0) return FAIL("n = %lld is negative", (long long)n);
  return copy_bytes(__func__, dst, src_act, n * (int64_t)sizeof(float));
}

/* ---------------------------------------------------------------- elementwise */
int olmo_add(void* out, const void* a, const void* b, int64_t n) {
  CHECK_NONNEG(n);
  CHECK_PTR_IF(out, n);
  CHECK_PTR_IF(a, n);
  CHECK_PTR_IF(b, n);
  float* o = out; /* no restrict: out may alias a or b (same index only, so still vectorizable) */
  const float* x = a;
  const float* y = b;
#pragma omp parallel for simd schedule(static) if (n > OLMO_PAR_MIN)
  for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
  return 0;
}

int olmo_scale_f32(float* x, float s, int64_t n) {
  CHECK_NONNEG(n);
  CHECK_PTR_IF(x, n);
#pragma omp parallel for simd schedule(static) if (n > OLMO_PAR_MIN)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
  return 0;
}
