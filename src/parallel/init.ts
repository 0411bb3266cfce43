// Join the job: read the rank environment, rendezvous through rank 0's store, build the Comm.
//   const par = await initParallel();   // world 1: no store, SingleComm
//   par.comm.allReduce(grads, "sum");
//   await par.close();                  // a final barrier, then rank 0 stops the store
import { UserError } from "../errors.ts";
import { type Comm, SingleComm } from "./comm.ts";
import { type RankEnv, readRankEnv } from "./env.ts";
import { ShmComm, type ShmCommOptions } from "./shm-comm.ts";
import { StoreClient, StoreServer, storeTimeoutMs } from "./store.ts";

export interface Parallel {
  env: RankEnv;
  /** null when world = 1 */
  store: StoreClient | null;
  comm: Comm;
  /** collective: every rank calls it at the end */
  close(): Promise<void>;
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
    return { env, store: null, comm, close: async () => comm.close() };
  }
  const timeoutMs = opts.storeTimeoutMs ?? storeTimeoutMs();
  const host = env.masterAddr === "localhost" ? "127.0.0.1" : env.masterAddr;
  const server = env.rank === 0 ? new StoreServer(isLoopback(host) ? host : "0.0.0.0", env.masterPort) : null;
  let store: StoreClient | undefined;
  try {
    store = await StoreClient.connect(host, env.masterPort, timeoutMs);
    await store.barrier("olmo/init", env.rank, env.world);
    if (env.localWorld !== env.world) {
      throw new UserError(`the shared-memory collectives need all ${env.world} ranks on one host, but this host has ${env.localWorld} (multi-node runs need the CUDA library's NCCL)`);
    }
    const comm = await ShmComm.create(store, env.rank, env.world, opts);
    const s = store;
    return {
      env,
      store: s,
      comm,
      async close() {
        comm.close();
        await s.barrier("olmo/close", env.rank, env.world);
        s.close();
        if (server) {
          await server.idle(5000);
          server.stop();
        }
      },
    };
  } catch (e) {
    store?.close();
    server?.stop();
    throw e;
  }
}
