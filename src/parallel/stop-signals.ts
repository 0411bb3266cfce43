// The signals that ask a run to stop, and what a thread blocked in a synchronous wait can know of
// them. A JavaScript listener (train/run.ts catchPreemption) runs only when Bun's event loop turns;
// a rank waiting in a shared-memory collective does not let it turn, so the native library records
// every stop signal in signal context as well (cuda/include/signal_watch.h) and the wait reads that
// record (comm/peer-wait.ts). Both follow the rules owned here: which signals, when a repeat is an
// echo of the same event, and the exit code of "exit at once".
import { constants } from "node:os";
import { type NativeLibrary, loadNative } from "../native/lib.ts";

/** What SLURM sends before a time limit or a preemption (--signal=USR1@120), torchrun and olmo launch forward. */
export const STOP_SIGNALS = ["SIGTERM", "SIGUSR1"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * A second stop signal within this long of the first is the same event arriving twice (e.g. from
 * SLURM and from olmo launch forwarding it); a later one means "exit at once".
 */
export const SIGNAL_ECHO_MS = 3000;

/** Exit as a process killed by `sig` would report it (128 + its number), without waiting for anything. */
export function exitAtOnce(sig: NodeJS.Signals): never {
  process.exit(128 + (constants.signals[sig] ?? 15));
}

/** The stop signals this process caught, as the native handler recorded them. */
export interface CaughtSignals {
  count: number;
  /** the latest one */
  last: NodeJS.Signals | null;
  /** milliseconds between the first and the latest one */
  spreadMs: number;
}

const NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** The native record of stop signals (one per process: the handler is process-wide). */
export class SignalRecord {
  // staging buffers of >= 1 KiB: Bun may move smaller typed arrays (docs/architecture.md, the native ABI)
  private readonly watching = new Int32Array(256);
  private readonly state = new BigInt64Array(128);

  constructor(private readonly lib: NativeLibrary) {}

  /**
   * Put the recording handler in front of every stop signal's JavaScript listener. Cheap (one
   * sigaction query per signal when nothing changed), so a wait calls it on every look: a listener
   * added or removed since the last one changed the disposition under it.
   */
  watch(): void {
    for (const sig of STOP_SIGNALS) this.lib.check("olmo_signal_watch", this.lib.sym.olmo_signal_watch(constants.signals[sig], this.watching));
  }

  caught(): CaughtSignals {
    this.lib.check("olmo_signal_state", this.lib.sym.olmo_signal_state(this.state));
    const [count, firstMs, lastMs, , signo] = Array.from(this.state.subarray(0, 5), Number);
    return { count, last: count > 0 ? (NAMES.get(signo) ?? null) : null, spreadMs: lastMs - firstMs };
  }
}

let record: SignalRecord | null = null;

/** The process's signal record, over the CPU library (where the shared-memory collectives run). */
export function signalRecord(): SignalRecord {
  return (record ??= new SignalRecord(loadNative("cpu")));
}
