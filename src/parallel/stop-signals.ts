// Stopping a run by signal: SIGINT (Ctrl-C), SIGTERM and SIGUSR1 (what SLURM sends before a time
// limit or a preemption). The first asks the run to finish its step, save a checkpoint and exit
// with code 75; a repeat within the echo window is the same event seen twice (a terminal's Ctrl-C
// reaches `olmo launch` and its ranks, and the launcher forwards it again; SLURM may signal every
// process of a step) and is ignored; a later one stops the process at once, whatever it is doing.
// The signals are caught in the native library (cuda/include/olmo_stop_signals.h): a JavaScript
// handler would only run between steps, never during a step, an evaluation, a save or a collective
// blocked in a shared-memory collective. This module is the one place that knows the state: the
// training loop polls stopSignal() after each step, and a rank blocked in a collective polls it too
// (comm/peer-wait.ts; it is a plain load).
import { PREEMPTED_EXIT_CODE, UserError } from "../errors.ts";
import type { NativeLibrary } from "../native/lib.ts";

export type StopSignal = "SIGINT" | "SIGTERM" | "SIGUSR1";
const SIGNALS: Record<number, StopSignal> = { 2: "SIGINT", 15: "SIGTERM", 10: "SIGUSR1" };

/** The echo window: OLMO_STOP_ECHO_MS, default 3000 (one event delivered twice arrives within it). */
export function stopEchoMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.OLMO_STOP_ECHO_MS;
  if (raw === undefined || raw === "") return 3000;
  if (!/^\s*\d+\s*$/.test(raw) || Number(raw) > 600_000) throw new UserError(`OLMO_STOP_ECHO_MS="${raw}" must be a whole number of milliseconds from 0 to 600000`);
  return Number(raw);
}

/** [0] 1 once a stop was asked for, [1] its signal number, [2] echoes ignored; 1 KiB so that it never moves (olmo.h) */
let state: Int32Array | null = null;

/** The signal that asked this process to stop (the first one), or null. */
export function stopSignal(): StopSignal | null {
  return state && Atomics.load(state, 0) === 1 ? SIGNALS[Atomics.load(state, 1)] ?? "SIGTERM" : null;
}

export interface StopSignalWatch {
  /** the signals' actions as before the watch */
  release(): void;
}

const cString = (s: string) => new TextEncoder().encode(`${s}\0`);

/**
 * Catch the stop signals for one run through `lib` (either library: the handler is process-wide);
 * its rank 0 says what is happening on stderr (`announce`).
 */
export function watchStopSignals(lib: NativeLibrary, opts: { announce: boolean }): StopSignalWatch {
  const echoMs = stopEchoMs();
  const secs = `${echoMs / 1000} s`;
  const first = opts.announce ? `finishing this step, then saving a checkpoint and exiting with code ${PREEMPTED_EXIT_CODE} (rerun the same command to resume); ` +
    `the same signal again (Ctrl-C for SIGINT), ${secs} or more later, stops at once without saving` : "";
  const second = opts.announce ? "stopping now, without saving the steps since the last checkpoint (rerun the same command to resume from it)" : "";
  const mine = new Int32Array(256);
  lib.check("olmo_stop_signals_install", lib.sym.olmo_stop_signals_install(mine, echoMs, cString(first), cString(second)));
  state = mine;
  return {
    release: () => {
      lib.check("olmo_stop_signals_release", lib.sym.olmo_stop_signals_release());
      state = null;
    },
  };
}
