// Where this process sits in a multi-process job, read from the environment its launcher set:
//   torchrun / `olmo launch`: RANK WORLD_SIZE LOCAL_RANK [LOCAL_WORLD_SIZE] MASTER_ADDR MASTER_PORT
//   SLURM (srun, one task per GPU): SLURM_PROCID SLURM_NTASKS SLURM_LOCALID [SLURM_NTASKS_PER_NODE],
//     rendezvous at MASTER_ADDR/MASTER_PORT, or else SLURM_LAUNCH_NODE_IPADDR (the node srun ran on,
//     which hosts task 0 in a batch script) and port 29500.
//   nothing set: a single process (rank 0 of 1).
// RANK wins over SLURM_* so that torchrun/olmo launch inside an salloc/sbatch allocation works.
// Under torchrun (PyTorch 2.x) the agent itself serves a TCPStore at MASTER_ADDR:MASTER_PORT and
// says so with TORCHELASTIC_USE_AGENT_STORE=True: then every rank is a client of it (torch-store.ts).
// OLMO_STORE_PORT=P instead makes rank 0 host olmo's own store at MASTER_ADDR:P (any launcher).
// Values that contradict each other are a user mistake (UserError), never silently repaired.
import { UserError } from "../errors.ts";

export interface RankEnv {
  /** global rank, 0 <= rank < world */
  rank: number;
  world: number;
  /** rank among the processes on this host (picks the GPU) */
  localRank: number;
  localWorld: number;
  /** where rank 0 hosts the rendezvous store */
  masterAddr: string;
  masterPort: number;
  source: "torchrun" | "slurm" | "single";
  /** torchrun's elastic agent already serves a TCPStore at masterAddr:masterPort
   *  (TORCHELASTIC_USE_AGENT_STORE=True): every rank is its client (torch-store.ts) */
  agentStore?: boolean;
  /** OLMO_STORE_PORT: rank 0 hosts olmo's own store on this port of masterAddr instead */
  storePort?: number;
}

export const DEFAULT_MASTER_PORT = 29500;

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, min: number, source: string): number {
  const raw = env[name]!;
  if (!/^\s*\d+\s*$/.test(raw)) throw new UserError(`${source} environment: ${name}="${raw}" is not a non-negative integer`);
  const v = Number(raw);
  if (v < min) throw new UserError(`${source} environment: ${name}=${v} must be >= ${min}`);
  return v;
}

function optInt(env: Env, name: string, min: number, source: string): number | undefined {
  return env[name] === undefined || env[name] === "" ? undefined : int(env, name, min, source);
}

/** SLURM writes tasks-per-node lists like "4(x2),3"; the first entry is this job's common case. */
function slurmPerNode(raw: string | undefined): number | undefined {
  if (!raw) return undefined;
  const m = /^(\d+)/.exec(raw);
  return m ? Number(m[1]) : undefined;
}

function port(env: Env, source: string, name = "MASTER_PORT"): number {
  if (env[name] === undefined || env[name] === "") return DEFAULT_MASTER_PORT;
  const p = int(env, name, 1, source);
  if (p > 65535) throw new UserError(`${source} environment: ${name}=${p} is not a TCP port (1..65535)`);
  return p;
}

/** How the job bootstraps: the torchrun agent's store, or our own (on OLMO_STORE_PORT if set). */
function storeChoice(env: Env, source: string): { agentStore?: true; storePort?: number } {
  if (env.OLMO_STORE_PORT) return { storePort: port(env, source, "OLMO_STORE_PORT") };
  return env.TORCHELASTIC_USE_AGENT_STORE === "True" ? { agentStore: true } : {};
}

function check(e: RankEnv, names: { rank: string; world: string; local: string; localWorld: string }): RankEnv {
  const src = e.source;
  if (e.world < 1) throw new UserError(`${src} environment: ${names.world}=${e.world} must be >= 1`);
  if (e.rank >= e.world) throw new UserError(`${src} environment: ${names.rank}=${e.rank} is not below ${names.world}=${e.world}`);
  if (e.localWorld > e.world) throw new UserError(`${src} environment: ${names.localWorld}=${e.localWorld} exceeds ${names.world}=${e.world}`);
  if (e.localRank >= e.localWorld) throw new UserError(`${src} environment: ${names.local}=${e.localRank} is not below ${names.localWorld}=${e.localWorld}`);
  if (e.localRank > e.rank) throw new UserError(`${src} environment: ${names.local}=${e.localRank} exceeds ${names.rank}=${e.rank}`);
  return e;
}

/** Read the rank environment (defaults to process.env). Throws UserError on inconsistent values. */
export function readRankEnv(env: Env = process.env): RankEnv {
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    const s = "torchrun";
    if (env.RANK === undefined) throw new UserError(`${s} environment: WORLD_SIZE is set but RANK is not (set both, or neither for one process)`);
    if (env.WORLD_SIZE === undefined) throw new UserError(`${s} environment: RANK is set but WORLD_SIZE is not (set both, or neither for one process)`);
    const rank = int(env, "RANK", 0, s);
    const world = int(env, "WORLD_SIZE", 1, s);
    const localWorld = optInt(env, "LOCAL_WORLD_SIZE", 1, s) ?? world;
    const localRank = optInt(env, "LOCAL_RANK", 0, s) ?? rank % localWorld;
    if (world > 1 && !env.MASTER_ADDR) throw new UserError(`${s} environment: MASTER_ADDR is not set (needed when WORLD_SIZE=${world} > 1; rank 0's host)`);
    return check(
      { rank, world, localRank, localWorld, masterAddr: env.MASTER_ADDR || "127.0.0.1", masterPort: port(env, s), source: s, ...storeChoice(env, s) },
      { rank: "RANK", world: "WORLD_SIZE", local: "LOCAL_RANK", localWorld: "LOCAL_WORLD_SIZE" },
    );
  }
  if (env.SLURM_PROCID !== undefined) {
    const s = "slurm";
    if (env.SLURM_NTASKS === undefined) throw new UserError(`${s} environment: SLURM_PROCID is set but SLURM_NTASKS is not (run under srun)`);
    const rank = int(env, "SLURM_PROCID", 0, s);
    const world = int(env, "SLURM_NTASKS", 1, s);
    const localWorld = slurmPerNode(env.SLURM_NTASKS_PER_NODE) ?? slurmPerNode(env.SLURM_TASKS_PER_NODE) ?? world;
    const localRank = optInt(env, "SLURM_LOCALID", 0, s) ?? rank % localWorld;
    const masterAddr = env.MASTER_ADDR || env.SLURM_LAUNCH_NODE_IPADDR;
    if (world > 1 && !masterAddr) throw new UserError(`${s} environment: neither MASTER_ADDR nor SLURM_LAUNCH_NODE_IPADDR is set (needed when SLURM_NTASKS=${world} > 1)`);
    return check(
      { rank, world, localRank, localWorld, masterAddr: masterAddr || "127.0.0.1", masterPort: port(env, s), source: s, ...storeChoice(env, s) },
      { rank: "SLURM_PROCID", world: "SLURM_NTASKS", local: "SLURM_LOCALID", localWorld: "SLURM_NTASKS_PER_NODE" },
    );
  }
  return { rank: 0, world: 1, localRank: 0, localWorld: 1, masterAddr: "127.0.0.1", masterPort: port(env, "single-process"), source: "single" };
}

export const DEFAULT_COMM_TIMEOUT_S = 600;

/** The collectives' deadline from OLMO_COMM_TIMEOUT_S (shared memory here; NCCL in cuda/gpu/comm.cu). */
export function commTimeoutMs(): number {
  const raw = process.env.OLMO_COMM_TIMEOUT_S;
  const s = raw ? Number(raw) : DEFAULT_COMM_TIMEOUT_S;
  if (!Number.isFinite(s) || s <= 0) throw new UserError(`OLMO_COMM_TIMEOUT_S="${raw}" must be a positive number of seconds`);
  return s * 1000;
}

/** The tensor-parallel size: `tp` when given (the command line), else $OLMO_TP, else 1. */
export function tensorParallel(tp?: number): number {
  if (tp !== undefined) return tp;
  const raw = process.env.OLMO_TP;
  if (raw === undefined || raw === "") return 1;
  if (!/^\s*\d+\s*$/.test(raw) || Number(raw) < 1) throw new UserError(`OLMO_TP="${raw}" must be a positive integer`);
  return Number(raw);
}
