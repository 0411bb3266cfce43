/*
 * signals.cu — olmo_signal_watch / olmo_signal_state of libolmo_cuda.so: the shared body in
 * include/signal_watch.h with this library's error setter (host code only).
 */
#include "common.cuh"

#define OLMO_SIGNAL_FAIL(msg) olmo_set_error("%s", msg)
#include "signal_watch.h"

extern "C" {
int olmo_signal_watch(int signo, int32_t* watching) { return olmo_signal_watch_impl(signo, watching); }
int olmo_signal_state(int64_t* out_5) { return olmo_signal_state_impl(out_5); }
}
