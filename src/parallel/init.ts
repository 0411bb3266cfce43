// Join the job: read the rank environment, rendezvous through rank 0's store, build the Comm.
//   const par = await initParallel();   // world 1: no store, SingleComm
//   par.comm.allReduce(grads, "sum");
//   await par.close();                  // a final barrier, then rank 0 stops the store
import { UserError } from "../errors.ts";
import { type Comm, SingleComm } from "./comm.ts";
import { type ParallelDims, parallelDims } from "./dims.ts";
import { type RankEnv, readRankEnv } from "./env.ts";
import { ShmComm, type ShmCommOptions } from "./shm-comm.ts";
import { type HostedStore, StoreClient, hostStore, storeTimeoutMs } from "./store.ts";

export interface Parallel {
  env: RankEnv;
  /** null when world = 1 */
  store: StoreClient | null;
  comm: Comm;
  /** A communicator over `ranks` (global ranks, in group-rank order); collective over its members,
   *  which all call it with the same name and ranks. */
  group(name: string, ranks: number[]): Promise<Comm>;
  /** collective: every rank calls it at the end */
  close(): Promise<void>;
}

/** The TP and DP communicators of a tp × dp layout (every rank calls it; TP groups first). */
export async function tpDpComms(par: Parallel, tp: number): Promise<{ dims: ParallelDims; tp: Comm; dp: Comm }> {
  const dims = parallelDims(par.env.rank, par.env.world, tp, par.env.localWorld);
  const tpComm = await par.group(`tp${dims.dpRank}`, dims.tpRanks);
  const dpComm = await par.group(`dp${dims.tpRank}`, dims.dpRanks);
  // No rank starts a (thread-blocking) collective while another still needs the store.
  if (par.store) await par.store.barrier("olmo/groups", par.env.rank, par.env.world);
  return { dims, tp: tpComm, dp: dpComm };
}

function isLoopback(addr: string): boolean {
  return addr === "localhost" || addr.startsWith("127.") || addr === "::1";
}

export interface InitOptions extends ShmCommOptions {
  env?: RankEnv;
  storeTimeoutMs?: number;
}

export async function initParallel(opts: InitOptions = {}): Promise<Parallel> {
  const env = opts.env ?? readRankEnv();
  if (env.world === 1) {
    const comm = new SingleComm();
    return { env, store: null, comm, group: async () => new SingleComm(), close: async () => comm.close() };
  }
  const timeoutMs = opts.storeTimeoutMs ?? storeTimeoutMs();
  const host = env.masterAddr === "localhost" ? "127.0.0.1" : env.masterAddr;
  const server: HostedStore | null = env.rank === 0 ? await hostStore(isLoopback(host) ? host : "0.0.0.0", env.masterPort) : null;
  let store: StoreClient | undefined;
  try {
    store = await StoreClient.connect(host, env.masterPort, timeoutMs);
    await store.barrier("olmo/init", env.rank, env.world);
    if (env.localWorld !== env.world) {
      throw new UserError(`the shared-memory collectives need all ${env.world} ranks on one host, but this host has ${env.localWorld} (multi-node runs need the CUDA library's NCCL)`);
    }
    const comm = await ShmComm.create(store, env.rank, env.world, opts);
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
        const g = await ShmComm.create(s, me, ranks.length, { ...opts, key: `olmo/group/${name}` });
        groups.push(g);
        return g;
      },
      async close() {
        for (const g of groups) g.close();
        comm.close();
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
