/*
 * events.cu — timing events of libolmo_cuda.so: cudaEvents recorded on the library stream, so the
 * time between two is the device time of the work enqueued between them (bench:step's profile).
 */
#include "common.cuh"

extern "C" {

int olmo_event_create(void** out_event) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(out_event != nullptr, "olmo_event_create: out_event is NULL");
  cudaEvent_t e = nullptr;
  OLMO_CUDA(cudaEventCreate(&e));
  *out_event = (void*)e;
  return 0;
}

int olmo_event_destroy(void* event) {
  OLMO_REQUIRE_INIT();
  if (event) OLMO_CUDA(cudaEventDestroy((cudaEvent_t)event));
  return 0;
}

int olmo_event_record(void* event) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(event != nullptr, "olmo_event_record: event is NULL");
  OLMO_CUDA(cudaEventRecord((cudaEvent_t)event, g_state.stream));
  return 0;
}

int olmo_event_elapsed_ms(float* out_ms, void* start, void* end) {
  OLMO_REQUIRE_INIT();
  OLMO_REQUIRE(out_ms != nullptr && start != nullptr && end != nullptr, "olmo_event_elapsed_ms: NULL argument");
  OLMO_CUDA(cudaEventSynchronize((cudaEvent_t)end));
  OLMO_CUDA(cudaEventElapsedTime(out_ms, (cudaEvent_t)start, (cudaEvent_t)end));
  return 0;
}

}  // extern "C"
