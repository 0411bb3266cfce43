// Join the job: read the rank environment, rendezvous through rank 0's store, build the Comm.
//   const par = await initParallel();   // world 1: no store, SingleComm
//   par.comm!.allReduce(grads, "sum");
//   const { tp, dp } = await deviceComms(par, backend, 2);   // what the trainer uses
//   await par.close();                  // a final barrier, then rank 0 stops the store
// Host collectives (shared memory, one host) exist only where the CPU library runs; with the CUDA
// library every collective is NCCL on device pointers, so ranks may span nodes.
import type { Backend } from "../backend/backend.ts";
import { NativeBackend } from "../backend/native-backend.ts";
import { UserError } from "../errors.ts";
import { type Comm, type PtrComm, SingleComm, hostPtrComm, singlePtrComm } from "./comm/comm.ts";
import { NcclComm } from "./comm/nccl-comm.ts";
import { type ParallelDims, parallelDims } from "./dims.ts";
import { type RankEnv, readRankEnv } from "./env.ts";
import { watchLauncher } from "./launch/launcher-watch.ts";
import { ShmComm, type ShmCommOptions } from "./comm/shm-comm.ts";
import type { Rendezvous } from "./store/rendezvous.ts";
import { type HostedStore, hostStore } from "./store/store.ts";
import { StoreClient } from "./store/store-client.ts";
import { storeTimeoutMs } from "./store/wire.ts";
import { TorchStoreClient, torchStorePrefix } from "./store/torch-store.ts";

export interface Parallel {
  env: RankEnv;
  /** null when world = 1 */
  store: Rendezvous | null;
  /** the host (shared-memory) collectives of all ranks; null when initParallel ran without them */
  comm: Comm | null;
  /** A communicator over `ranks` (global ranks, in group-rank order); collective over its members,
   *  which all call it with the same name and ranks. */
  group(name: string, ranks: number[]): Promise<Comm>;
  /** run `fn` at close(), before the host collectives and the store go (e.g. NCCL communicators) */
  onClose(fn: () => void): void;
  /** collective: every rank calls it at the end */
  close(): Promise<void>;
}

/** The host TP and DP communicators of a tp × dp layout (every rank calls it; TP groups first). */
export async function tpDpComms(par: Parallel, tp: number): Promise<{ dims: ParallelDims; tp: Comm; dp: Comm }> {
  const dims = parallelDims(par.env.rank, par.env.world, tp, par.env.localWorld);
  const tpComm = await par.group(`tp${dims.dpRank}`, dims.tpRanks);
  const dpComm = dims.dp === par.env.world && par.comm ? par.comm : await par.group(`dp${dims.tpRank}`, dims.dpRanks);
  // No rank starts a (thread-blocking) collective while another still needs the store.
  if (par.store) await par.store.barrier("olmo/groups", par.env.rank, par.env.world);
  return { dims, tp: tpComm, dp: dpComm };
}

/**
 * The TP and DP communicators over the backend's pointers, which is all the model, the optimizers
 * and checkpoints use: NCCL on the CUDA library (one communicator per group, unique ids through the
 * store), the shared-memory collectives on the CPU library (whose pointers are host memory).
 * Collective: every rank calls it.
 */
export async function deviceComms(par: Parallel, be: Backend, tp: number): Promise<{ dims: ParallelDims; tp: PtrComm; dp: PtrComm }> {
  const view = be.hostView;
  if (view) {
    const host = await tpDpComms(par, tp);
    const ptr = (c: Comm) => (c.world === 1 ? singlePtrComm(be) : hostPtrComm(c, (p, n) => new Float32Array(view.call(be, p, n * 4))));
    return { dims: host.dims, tp: ptr(host.tp), dp: ptr(host.dp) };
  }
  if (!(be instanceof NativeBackend)) throw new Error(`deviceComms: no collectives for backend ${be.name}`);
  const dims = parallelDims(par.env.rank, par.env.world, tp, par.env.localWorld);
  const nccl = async (name: string, ranks: number[]): Promise<PtrComm> => {
    if (ranks.length === 1) return singlePtrComm(be);
    const c = await NcclComm.create(be.library, par.store, ranks.indexOf(par.env.rank), ranks.length, `olmo/nccl/${name}`);
    par.onClose(() => c.close());
    return c;
  };
  // ncclCommInitRank blocks until the whole group joined: every rank creates the groups in the same order
  const tpComm = await nccl(`tp${dims.dpRank}`, dims.tpRanks);
  const dpComm = await nccl(`dp${dims.tpRank}`, dims.dpRanks);
  if (par.store) await par.store.barrier("olmo/groups", par.env.rank, par.env.world);
  return { dims, tp: tpComm, dp: dpComm };
}

function isLoopback(addr: string): boolean {
  return addr === "localhost" || addr.startsWith("127.") || addr === "::1";
}

export interface InitOptions extends ShmCommOptions {
  env?: RankEnv;
  storeTimeoutMs?: number;
  /** build the shared-memory collectives (default true; the CUDA library's runs use NCCL only) */
  hostCollectives?: boolean;
}

export async function initParallel(opts: InitOptions = {}): Promise<Parallel> {
  await watchLauncher(); // a rank of `olmo launch` dies with it
  const env = opts.env ?? readRankEnv();
  const closers: (() => void)[] = [];
  const runClosers = () => { for (const fn of closers.splice(0).reverse()) fn(); };
  if (env.world === 1) {
    const comm = new SingleComm();
    return {
      env, store: null, comm, group: async () => new SingleComm(), onClose: (fn) => closers.push(fn),
      close: async () => { runClosers(); comm.close(); },
    };
  }
  const timeoutMs = opts.storeTimeoutMs ?? storeTimeoutMs();
  const host = env.masterAddr === "localhost" ? "127.0.0.1" : env.masterAddr;
  // torchrun's agent already serves a store at MASTER_ADDR:MASTER_PORT; else rank 0 hosts ours
  const port = env.storePort ?? env.masterPort;
  const server: HostedStore | null = env.rank === 0 && !env.agentStore ? await hostStore(isLoopback(host) ? host : "0.0.0.0", port, env.world) : null;
  let store: Rendezvous | undefined;
  try {
    store = env.agentStore
      ? await TorchStoreClient.connect(host, env.masterPort, timeoutMs, torchStorePrefix(process.env))
      : await StoreClient.connect(host, port, timeoutMs);
    await store.barrier("olmo/init", env.rank, env.world);
    const shm = opts.hostCollectives ?? true;
    if (shm && env.localWorld !== env.world) {
      throw new UserError(`the shared-memory collectives need all ${env.world} ranks on one host, but this host has ${env.localWorld} (multi-node runs need the CUDA library's NCCL)`);
    }
    const comm = shm ? await ShmComm.create(store, env.rank, env.world, opts) : null;
    const s = store;
    const groups: Comm[] = [];
    return {
      env,
      store: s,
      comm,
      async group(name, ranks) {
        const me = ranks.indexOf(env.rank);
        if (me < 0) throw new Error(`group ${name}: rank ${env.rank} is not a member of [${ranks.join(", ")}]`);
        if (ranks.length === 1) return new SingleComm();
        if (!shm) throw new Error(`group ${name}: this job runs without host collectives`);
        const g = await ShmComm.create(s, me, ranks.length, { ...opts, key: `olmo/group/${name}`, globalRanks: ranks });
        groups.push(g);
        return g;
      },
      onClose: (fn) => closers.push(fn),
      async close() {
        runClosers();
        for (const g of groups) g.close();
        comm?.close();
        await s.barrier("olmo/close", env.rank, env.world);
        s.close();
        await server?.stop(5000);
      },
    };
  } catch (e) {
    store?.close();
    await server?.stop(0);
    throw e;
  }
}
