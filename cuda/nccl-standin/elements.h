/*
 * elements.h — the NCCL stand-in's element access: fp32 and bf16 values in a byte buffer, loaded as
 * fp32 and stored back rounded to nearest even (as the CUDA library's own casts), NaN kept NaN.
 * Included by nccl_standin.c only; ncclBfloat16 comes from there.
 */
#ifndef NCCL_STANDIN_ELEMENTS_H
#define NCCL_STANDIN_ELEMENTS_H

#include <stdint.h>
#include <string.h>

static float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
  u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
  return (uint16_t)(u >> 16);
}

static size_t elem_bytes(int dtype) { return dtype == ncclBfloat16 ? 2 : 4; }
static float load(const uint8_t* p, size_t i, int dtype) {
  if (dtype == ncclBfloat16) {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return bf16_to_f32(h);
  }
  float f;
  memcpy(&f, p + 4 * i, 4);
  return f;
}
static void store(uint8_t* p, size_t i, int dtype, float v) {
  if (dtype == ncclBfloat16) {
    uint16_t h = f32_to_bf16(v);
    memcpy(p + 2 * i, &h, 2);
  } else {
    memcpy(p + 4 * i, &v, 4);
  }
}

#endif
