/*
 * events.c — timing events of libolmo_cpu.so. Every CPU call is synchronous, so an event is just
 * the CLOCK_MONOTONIC time at which it was recorded, and elapsed is the wall time between two.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <stdlib.h>
#include <time.h>

#include "internal.h"

typedef struct {
  struct timespec at;
  int recorded;
} cpu_event;

int olmo_event_create(void** out_event) {
  CHECK_PTR(out_event);
  cpu_event* e = calloc(1, sizeof *e);
  if (!e) return FAIL("out of memory");
  *out_event = e;
  return 0;
}

int olmo_event_destroy(void* event) {
  free(event);
  return 0;
}

int olmo_event_record(void* event) {
  CHECK_PTR(event);
  cpu_event* e = event;
  if (clock_gettime(CLOCK_MONOTONIC, &e->at) != 0) return FAIL("clock_gettime failed");
  e->recorded = 1;
  return 0;
}

int olmo_event_elapsed_ms(float* out_ms, void* start, void* end) {
  CHECK_PTR(out_ms);
  CHECK_PTR(start);
  CHECK_PTR(end);
  const cpu_event *a = start, *b = end;
  if (!a->recorded || !b->recorded) return FAIL("both events must have been recorded");
  double ms = (double)(b->at.tv_sec - a->at.tv_sec) * 1e3 + (double)(b->at.tv_nsec - a->at.tv_nsec) * 1e-6;
  *out_ms = (float)ms;
  return 0;
}
