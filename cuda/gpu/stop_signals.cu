// stop_signals.cu — olmo_stop_signals_install/_release of libolmo_cuda.so: the shared
// implementation in olmo_stop_signals.h (host code only), with this library's error setter.
#include "common.cuh"

#define OLMO_STOP_FAIL(msg) olmo_set_error("%s", msg)
extern "C" {
#include "olmo_stop_signals.h"
}
