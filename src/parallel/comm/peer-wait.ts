// Why a rank waiting in a shared-memory collective stops before its peers arrive or
// OLMO_COMM_TIMEOUT_S passes. The wait is a synchronous loop (shm-comm.ts), so nothing else of the
// process runs meanwhile, JavaScript signal listeners included; every CHECK_MS it asks:
//  - Is a peer it waits for gone? One that exited without close() raised its "exited" word; one
//    that was SIGKILLed (the OOM killer, kill -9) could not, but its pid is then gone or a zombie
//    (checked where both processes share a pid namespace). Without `olmo launch` (srun, torchrun) a
//    gone peer ends the wait at once, naming it. Under olmo launch (OLMO_LAUNCHED=1) the launcher
//    names the rank that failed first and stops the others with SIGTERM: then the next rule applies.
//  - Was this process asked to stop (SIGINT/SIGTERM/SIGUSR1, caught natively: ../stop-signals.ts)?
//    While the peers live the wait goes on: a preemption finishes the step on every rank and saves.
//    A gone peer ends it at once: that step can never finish, so there is nothing to save, and
//    waiting would only last until the launcher's SIGKILL (torchrun: 30 s later, measured in
//    test/parallel/launch/torchrun-real.test.ts). A second stop signal past the echo window ends
//    the process from the native handler itself, wherever it is.
import { UserError } from "../../errors.ts";
import { processGone } from "../../process.ts";
import type { StopSignal } from "../stop-signals.ts";

/** how often a waiting rank looks at its peers and at the signal record */
export const CHECK_MS = 20;

/** What a waiting rank can see of its group's other ranks (shm-comm.ts owns the header they live in). */
export interface PeerView {
  /** group rank q raised its "exited" word */
  exited(q: number): boolean;
  /** group rank q's pid where this process can check it (same pid namespace), else null */
  pid(q: number): number | null;
  /** the job's rank of group rank q, for messages */
  global(q: number): number;
}

export class PeerWait {
  private nextCheckMs = 0;

  constructor(
    private readonly me: number,
    private readonly peers: PeerView,
    /** end the wait on a gone peer even without a stop signal (not under olmo launch) */
    private readonly watchExits: boolean,
    /** the signal that asked this process to stop, or null (stop-signals.ts stopSignal) */
    private readonly stopSignal: () => StopSignal | null,
  ) {}

  /** Called in the wait's loop with the group ranks not yet arrived; acts at most every CHECK_MS. */
  poll(missing: () => number[], now: number): void {
    if (now < this.nextCheckMs) return;
    this.nextCheckMs = now + CHECK_MS;
    const sig = this.stopSignal();
    if (!this.watchExits && sig === null) return;
    const why = sig !== null ? ` (stopping on ${sig})` : "";
    const me = this.peers.global(this.me);
    for (const q of missing()) {
      const them = this.peers.global(q);
      if (this.peers.exited(q)) throw new UserError(`shared-memory collective on rank ${me}: rank ${them} exited before joining it (see rank ${them}'s error)${why}`);
      const pid = this.peers.pid(q);
      if (pid !== null && processGone(pid)) throw new UserError(`shared-memory collective on rank ${me}: rank ${them} (pid ${pid}) died before joining it${why}`);
    }
  }
}
