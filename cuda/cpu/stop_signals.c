/*
 * stop_signals.c — olmo_stop_signals_install/_release of libolmo_cpu.so: the shared
 * implementation in olmo_stop_signals.h, with this library's error setter.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction, clock_gettime under -std=c11 */
#include "internal.h"

#define OLMO_STOP_FAIL(msg) olmo_cpu_fail("stop signals", "%s", msg)
#include "olmo_stop_signals.h"
