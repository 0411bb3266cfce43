/*
 * signal_watch.h — the body of olmo_signal_watch / olmo_signal_state, compiled into both libraries
 * (cpu/signals.c, gpu/signals.cu include it; the includer defines OLMO_SIGNAL_FAIL(msg) as its own
 * error setter). Not part of the ABI by itself: olmo.h declares the two functions.
 *
 * Why native: Bun runs a JavaScript signal listener only when its event loop turns, and a thread
 * that waits in a shared-memory collective (a synchronous loop) never lets it turn, so the listener
 * of SIGTERM would run only after the wait ends — never, if the peer it waits for died. A handler
 * installed here runs in signal context whatever JavaScript is doing: it records the signal in
 * lock-free counters (async-signal-safe: atomics and clock_gettime only) and then calls the handler
 * it replaced (Bun's), so the JavaScript listener still runs when the loop next turns.
 *
 * olmo_signal_watch(signo) installs it in front of the current disposition when that is a handler;
 * the default action and SIG_IGN are left alone (the default ends the process at once anyway, and
 * an ignored signal asks for nothing). Called again, it re-installs after a change of the
 * disposition (e.g. Bun re-registering its own handler) and chains to the new one.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define OLMO_SIGNAL_LIMIT 65 /* signal numbers 1..64 (Linux, real-time signals included) */

static struct sigaction olmo_signal_prev[OLMO_SIGNAL_LIMIT];
static int32_t olmo_signal_count_v;
static int32_t olmo_signal_last_v;
static int64_t olmo_signal_first_ms_v;
static int64_t olmo_signal_last_ms_v;

static int64_t olmo_signal_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void olmo_signal_handler(int signo, siginfo_t* info, void* uctx) {
  int saved_errno = errno;
  int64_t now = olmo_signal_now_ms(), unset = 0;
  __atomic_compare_exchange_n(&olmo_signal_first_ms_v, &unset, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  __atomic_store_n(&olmo_signal_last_ms_v, now, __ATOMIC_SEQ_CST);
  __atomic_store_n(&olmo_signal_last_v, signo, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&olmo_signal_count_v, 1, __ATOMIC_SEQ_CST);
  errno = saved_errno;
  const struct sigaction* prev = &olmo_signal_prev[signo];
  if (prev->sa_flags & SA_SIGINFO) {
    if (prev->sa_sigaction) prev->sa_sigaction(signo, info, uctx);
  } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
    prev->sa_handler(signo);
  }
}

static int olmo_signal_watch_impl(int signo, int32_t* watching) {
  if (!watching) return OLMO_SIGNAL_FAIL("olmo_signal_watch: watching is NULL");
  if (signo <= 0 || signo >= OLMO_SIGNAL_LIMIT || signo == SIGKILL || signo == SIGSTOP) {
    return OLMO_SIGNAL_FAIL("olmo_signal_watch: signal number out of range or not catchable");
  }
  struct sigaction cur;
  if (sigaction(signo, NULL, &cur) != 0) return OLMO_SIGNAL_FAIL("olmo_signal_watch: sigaction failed");
  int ours = (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == olmo_signal_handler;
  if (ours) {
    *watching = 1;
    return 0;
  }
  if (!(cur.sa_flags & SA_SIGINFO) && (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN)) {
    *watching = 0;
    return 0;
  }
  /* Block the signal while the chain target changes, so the handler never sees half a struct. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, signo);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  olmo_signal_prev[signo] = cur;
  struct sigaction mine;
  memset(&mine, 0, sizeof mine);
  mine.sa_sigaction = olmo_signal_handler;
  mine.sa_mask = cur.sa_mask;
  mine.sa_flags = (cur.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
  int rc = sigaction(signo, &mine, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return OLMO_SIGNAL_FAIL("olmo_signal_watch: sigaction failed");
  *watching = 1;
  return 0;
}

static int olmo_signal_state_impl(int64_t* out) {
  if (!out) return OLMO_SIGNAL_FAIL("olmo_signal_state: out is NULL");
  out[0] = __atomic_load_n(&olmo_signal_count_v, __ATOMIC_SEQ_CST);
  out[1] = __atomic_load_n(&olmo_signal_first_ms_v, __ATOMIC_SEQ_CST);
  out[2] = __atomic_load_n(&olmo_signal_last_ms_v, __ATOMIC_SEQ_CST);
  out[3] = olmo_signal_now_ms();
  out[4] = __atomic_load_n(&olmo_signal_last_v, __ATOMIC_SEQ_CST);
  return 0;
}
