/*
 * signals.c — olmo_signal_watch / olmo_signal_state of libolmo_cpu.so: the shared body in
 * include/signal_watch.h with this library's error setter.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction, SA_SIGINFO, pthread_sigmask, clock_gettime under -std=c11 */
#include "internal.h"

#define OLMO_SIGNAL_FAIL(msg) olmo_cpu_fail(__func__, "%s", msg)
#include "signal_watch.h"

int olmo_signal_watch(int signo, int32_t* watching) { return olmo_signal_watch_impl(signo, watching); }
int olmo_signal_state(int64_t* out_5) { return olmo_signal_state_impl(out_5); }
