/*
 * olmo_stop_signals.h — the implementation of olmo_stop_signals_install/_release (olmo.h), included
 * once by each library (cpu/stop_signals.c, gpu/stop_signals.cu) so both run the same code.
 *
 * Why in native code: a JavaScript signal handler runs only when the event loop turns, which a
 * training run does between steps — never during a step, an evaluation, a synchronous save, or a
 * collective blocked in Atomics.wait. So "a second signal stops at once" can only be kept by a
 * handler that runs where the signal lands. This one is async-signal-safe: it records the first
 * signal (number and CLOCK_MONOTONIC time) in a host int32 array the caller polls between steps,
 * ignores repeats within the echo window (one event seen twice: a terminal's Ctrl-C reaches the
 * launcher and its ranks, which the launcher forwards again), and on a later one writes one line to
 * stderr, restores the default action and re-raises the signal: the process ends as the signal's
 * default says (for SIGINT: 130 in a shell), with whatever it was doing unfinished. A save cut short
 * this way leaves only a temporary folder (checkpoints are published by rename).
 */
#ifndef OLMO_STOP_SIGNALS_H
#define OLMO_STOP_SIGNALS_H

/* The including library's error setter: OLMO_STOP_FAIL("message") returns nonzero with the message. */
#ifndef OLMO_STOP_FAIL
#error "define OLMO_STOP_FAIL(msg) before including olmo_stop_signals.h"
#endif

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "olmo.h"

static const int olmo_stop_sigs[3] = {SIGINT, SIGTERM, SIGUSR1};
static struct sigaction olmo_stop_old[3];
static int32_t* volatile olmo_stop_state = 0;
static int64_t olmo_stop_first_ns = 0; /* 0: none yet (set once, by compare-and-swap) */
static int64_t olmo_stop_echo_ns = 0;
/* the caller's wording, copied at install (the handler only writes them out) */
static char olmo_stop_first_msg[512], olmo_stop_second_msg[512];

static int64_t olmo_stop_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + 1; /* never 0 */
}

static const char* olmo_stop_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGUSR1"; }

/* "olmo: <head><SIGNAL>: <msg>\n" with write(2) only (async-signal-safe); nothing when msg is empty */
static void olmo_stop_say(const char* head, int sig, const char* msg) {
  if (!msg[0]) return;
  const char* parts[5] = {"olmo: ", head, olmo_stop_name(sig), ": ", msg};
  for (int i = 0; i < 5; i++) {
    ssize_t r = write(2, parts[i], strlen(parts[i]));
    (void)r;
  }
  ssize_t r = write(2, "\n", 1);
  (void)r;
}

static void olmo_stop_handler(int sig) {
  int saved_errno = errno;
  int32_t* s = olmo_stop_state;
  int64_t t = olmo_stop_now_ns(), first = 0;
  if (!s) {
    /* released between delivery and here: nothing asks to stop gracefully any more */
  } else if (__atomic_compare_exchange_n(&olmo_stop_first_ns, &first, t, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    __atomic_store_n(&s[1], sig, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s[0], 1, __ATOMIC_SEQ_CST);
    olmo_stop_say("", sig, olmo_stop_first_msg);
  } else if (t - first <= olmo_stop_echo_ns) {
    __atomic_fetch_add(&s[2], 1, __ATOMIC_SEQ_CST); /* the same event again: ignored */
  } else {
    olmo_stop_say("a second ", sig, olmo_stop_second_msg);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, 0);
    raise(sig); /* blocked while this handler runs: delivered, with its default action, when it returns */
  }
  errno = saved_errno;
}

int olmo_stop_signals_install(int32_t* state, int32_t echo_ms, const char* first_msg, const char* second_msg) {
  if (!state || !first_msg || !second_msg) return OLMO_STOP_FAIL("olmo_stop_signals_install: null argument");
  if (olmo_stop_state) return OLMO_STOP_FAIL("olmo_stop_signals_install: already installed (release it first)");
  if (echo_ms < 0) return OLMO_STOP_FAIL("olmo_stop_signals_install: negative echo window");
  state[0] = state[1] = state[2] = 0;
  olmo_stop_first_ns = 0;
  olmo_stop_echo_ns = (int64_t)echo_ms * 1000000LL;
  strncpy(olmo_stop_first_msg, first_msg, sizeof olmo_stop_first_msg - 1);
  strncpy(olmo_stop_second_msg, second_msg, sizeof olmo_stop_second_msg - 1);
  olmo_stop_state = state;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = olmo_stop_handler;
  sa.sa_flags = SA_RESTART; /* a read or write the signal interrupts goes on (a save is not failed by EINTR) */
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; i++) sigaddset(&sa.sa_mask, olmo_stop_sigs[i]);
  for (int i = 0; i < 3; i++) {
    if (sigaction(olmo_stop_sigs[i], &sa, &olmo_stop_old[i]) != 0) {
      while (i-- > 0) sigaction(olmo_stop_sigs[i], &olmo_stop_old[i], 0);
      olmo_stop_state = 0;
      return OLMO_STOP_FAIL("olmo_stop_signals_install: sigaction failed");
    }
  }
  return 0;
}

int olmo_stop_signals_release(void) {
  if (!olmo_stop_state) return 0;
  for (int i = 0; i < 3; i++) sigaction(olmo_stop_sigs[i], &olmo_stop_old[i], 0);
  olmo_stop_state = 0;
  return 0;
}

#endif
