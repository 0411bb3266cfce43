// A torchrun-style local launcher: start this node's ranks as child processes with the rank
// environment (RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT), prefix their
// output lines with "[rank r] ", forward SIGINT/SIGTERM/SIGUSR1 (the ranks save and stop; once more,
// later: at once), and when one rank fails stop the others (SIGTERM, then SIGKILL after a grace period) and return that rank's exit code — or, with
// maxRestarts, start all of them again (they resume from the newest complete checkpoint), as
// torchrun --max-restarts does. A rank that exits with PREEMPTED_EXIT_CODE stopped on a preemption
// signal after a checkpoint (every rank stops at the same step): not a failure, and nothing
// restarts. If the launcher itself dies, its ranks stop too (launcher-watch.ts: their stdin is a
// pipe from here).
import type { Subprocess } from "bun";
import { PREEMPTED_EXIT_CODE, USER_ERROR_EXIT_CODE, UserError } from "../../errors.ts";
import { DEFAULT_MASTER_PORT } from "../env.ts";
import { stopEchoMs } from "../stop-signals.ts";

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  /** default: a free port when nnodes = 1, else 29500 */
  masterPort?: number;
  /** the full command line of one rank */
  cmd: string[];
  /** base environment (default process.env) */
  env?: Record<string, string | undefined>;
  /** seconds between SIGTERM and SIGKILL when stopping ranks after a failure (default 5) */
  graceS?: number;
  /**
   * seconds the ranks get to save and exit after a forwarded SIGINT/SIGTERM/SIGUSR1 before SIGKILL
   * (default 600: a preemption save of a large model takes minutes; the scheduler's own kill comes anyway)
   */
  stopGraceS?: number;
  /** start every local rank again this many times when one fails (not on a user error or a preemption) */
  maxRestarts?: number;
  /** where launcher messages go (default stderr) */
  log?: (line: string) => void;
}

/** The command that runs this olmo again: the compiled binary alone, or bun + the CLI entry. */
export function selfCommand(cliEntry: string): string[] {
  // In a `bun build --compile` binary, module paths live under /$bunfs/ and argv[1] is virtual.
  return cliEntry.startsWith("/$bunfs/") || cliEntry.startsWith("B:/~BUN/") ? [process.execPath] : [process.execPath, cliEntry];
}

/** Ask the kernel for a free TCP port on the loopback interface. */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new UserError(`launch: --${name} must be an integer >= ${min}, got ${v}`);
}

/** Copy a child's stream to ours line by line, each line prefixed. */
async function pump(stream: ReadableStream<Uint8Array>, prefix: string, write: (s: string) => void): Promise<void> {
  const dec = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += dec.decode(chunk, { stream: true });
    const nl = rest.lastIndexOf("\n");
    if (nl < 0) continue;
    const lines = rest.slice(0, nl).split("\n");
    rest = rest.slice(nl + 1);
    write(lines.map((l) => prefix + l + "\n").join(""));
  }
  rest += dec.decode();
  if (rest) write(prefix + rest + "\n");
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

/** Run this node's ranks to completion (restarting them on failure up to maxRestarts); resolves to the job's exit code. */
export async function launch(opts: LaunchOptions): Promise<number> {
  const nproc = opts.nprocPerNode, nnodes = opts.nnodes ?? 1, nodeRank = opts.nodeRank ?? 0;
  checkInt("nproc-per-node", nproc, 1);
  checkInt("nnodes", nnodes, 1);
  checkInt("node-rank", nodeRank, 0);
  checkInt("max-restarts", opts.maxRestarts ?? 0, 0);
  if (nodeRank >= nnodes) throw new UserError(`launch: --node-rank ${nodeRank} must be below --nnodes ${nnodes}`);
  // a node restarts only its own ranks: the other nodes' ranks would wait in collectives with dead peers
  if ((opts.maxRestarts ?? 0) > 0 && nnodes > 1) {
    throw new UserError("launch: --max-restarts restarts this node's ranks only, so it needs --nnodes 1; across nodes use torchrun --max-restarts or your scheduler's requeue");
  }
  if (opts.cmd.length === 0) throw new UserError("launch: nothing to run (give the command after --, e.g. olmo launch --nproc-per-node 2 -- train CONFIG)");
  if (opts.masterPort !== undefined) {
    checkInt("master-port", opts.masterPort, 1);
    if (opts.masterPort > 65535) throw new UserError(`launch: --master-port ${opts.masterPort} is not a TCP port (1..65535)`);
  }
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const maxRestarts = opts.maxRestarts ?? 0;
  for (let attempt = 0; ; attempt++) {
    const r = await runAttempt(opts, attempt, log);
    if (r.kind !== "failed") return r.code;
    const restartable = r.code !== USER_ERROR_EXIT_CODE && attempt < maxRestarts;
    if (!restartable) return r.code;
    log(`olmo launch: restart ${attempt + 1} of ${maxRestarts}: starting all ${nproc} local rank(s) again; they resume from the newest complete checkpoint`);
  }
}

type Attempt = { kind: "done" | "failed" | "stopped"; code: number };

/** One start of every local rank, until all exited. */
async function runAttempt(opts: LaunchOptions, attempt: number, log: (l: string) => void): Promise<Attempt> {
  const nproc = opts.nprocPerNode, nnodes = opts.nnodes ?? 1, nodeRank = opts.nodeRank ?? 0;
  const masterAddr = opts.masterAddr ?? "127.0.0.1";
  // a fresh port per attempt on one node: the last attempt's rank 0 may still hold its socket
  const masterPort = opts.masterPort ?? (nnodes === 1 ? freePort() : DEFAULT_MASTER_PORT);
  const world = nnodes * nproc;
  const base = opts.env ?? process.env;
  const quiet = nproc === 1;
  const echoMs = stopEchoMs(base);

  const procs: Subprocess<"pipe", "pipe" | "inherit", "pipe" | "inherit">[] = [];
  const pumps: Promise<void>[] = [];
  for (let local = 0; local < nproc; local++) {
    const rank = nodeRank * nproc + local;
    const env = {
      ...base,
      RANK: String(rank),
      WORLD_SIZE: String(world),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(nproc),
      GROUP_RANK: String(nodeRank),
      OLMO_LAUNCHED: "1", // ShmComm: leave failure handling to us (see shm-comm.ts)
      OLMO_LAUNCHER_PIPE: "1", // stdin is our pipe: its end of file means we died (launcher-watch.ts)
      OLMO_RESTART_COUNT: String(attempt), // as torchrun's TORCHELASTIC_RESTART_COUNT
      MASTER_ADDR: masterAddr,
      MASTER_PORT: String(masterPort),
    };
    let p;
    try {
      // stdin: a pipe we never write and never close; the kernel closes it when we die, however we die
      p = Bun.spawn(opts.cmd, { env, stdin: "pipe", stdout: quiet ? "inherit" : "pipe", stderr: quiet ? "inherit" : "pipe" });
    } catch (e) {
      for (const q of procs) q.kill("SIGKILL");
      throw new UserError(`launch: cannot start ${opts.cmd[0]}: ${(e as Error).message}`);
    }
    procs.push(p);
    if (!quiet) {
      const prefix = `[rank ${rank}] `;
      pumps.push(pump(p.stdout as ReadableStream<Uint8Array>, prefix, (s) => process.stdout.write(s)));
      pumps.push(pump(p.stderr as ReadableStream<Uint8Array>, prefix, (s) => process.stderr.write(s)));
    }
  }

  const alive = (p: (typeof procs)[number]) => p.exitCode === null && p.signalCode === null;
  let stopping = false;
  let killTimer: Timer | undefined;
  const killAfter = (s: number) => {
    clearTimeout(killTimer);
    killTimer = setTimeout(() => {
      for (const p of procs) if (alive(p)) p.kill("SIGKILL");
    }, s * 1000);
  };
  const stopAll = (signal: "SIGTERM" | "SIGINT") => {
    for (const p of procs) {
      if (!alive(p)) continue;
      p.kill(signal);
      p.kill("SIGCONT"); // a stopped rank (SIGSTOP, a debugger) acts on the signal now, not at the SIGKILL
    }
    if (!killTimer) killAfter(opts.graceS ?? 5);
  };
  let received: NodeJS.Signals | null = null;
  let firstAt = 0;
  const forward = (sig: NodeJS.Signals) => {
    // SIGINT (Ctrl-C), SIGTERM and SIGUSR1 ask the ranks to save and stop after their step
    // (src/parallel/stop-signals.ts): give them the time to. A repeat within the echo window is the
    // same event (a terminal's Ctrl-C reaches us and the ranks at once): the ranks ignore it, and so
    // do we. A later one stops the ranks at once: they need no more time.
    const now = performance.now();
    if (received && now - firstAt <= echoMs) return;
    const again = received !== null;
    if (!again) [received, firstAt] = [sig, now];
    stopping = true;
    for (const p of procs) if (alive(p)) p.kill(sig);
    if (again || !killTimer) killAfter(again ? (opts.graceS ?? 5) : (opts.stopGraceS ?? 600));
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  process.on("SIGUSR1", forward);

  let failed: { rank: number; code: number; signal: string | null } | null = null;
  let preempted = false;
  try {
    await Promise.all(
      procs.map(async (p, local) => {
        const code = await p.exited;
        if (code === 0) return;
        if (stopping) {
          // a rank that fails while the others save after a stop signal: they would wait for it in a
          // collective, so they get the short grace, not the long one
          if (code !== PREEMPTED_EXIT_CODE && received) killAfter(opts.graceS ?? 5);
          return;
        }
        // stopped after a checkpoint on a signal of its own (e.g. SLURM signalling every task): the
        // others stop at the same step
        if (code === PREEMPTED_EXIT_CODE && p.signalCode === null) {
          preempted = true;
          return;
        }
        stopping = true;
        failed = { rank: nodeRank * nproc + local, code, signal: p.signalCode === null ? null : String(p.signalCode) };
        stopAll("SIGTERM");
      }),
    );
    await Promise.all(pumps);
  } finally {
    clearTimeout(killTimer);
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    process.off("SIGUSR1", forward);
  }
  if (failed) {
    const f = failed as { rank: number; code: number; signal: string | null };
    const how = f.signal ? `was killed by ${f.signal} (exit code ${f.code})` : `exited with code ${f.code}`;
    log(`olmo launch: rank ${f.rank} ${how}${procs.length > 1 ? `; stopped the other ${procs.length - 1} local rank(s)` : ""}`);
    return { kind: "failed", code: f.code };
  }
  if (received) {
    const codes = procs.map((p) => p.exitCode ?? 0);
    const code = codes.every((c) => c === PREEMPTED_EXIT_CODE) ? PREEMPTED_EXIT_CODE
      : codes.find((c) => c !== 0) ?? 128 + (SIGNAL_NUMBERS[received] ?? 15);
    log(`olmo launch: received ${received}; ${code === PREEMPTED_EXIT_CODE ? "every rank saved and stopped" : `stopped ${procs.length} rank(s)`}`);
    return { kind: "stopped", code };
  }
  if (preempted) return { kind: "stopped", code: PREEMPTED_EXIT_CODE };
  return { kind: "done", code: 0 };
}
