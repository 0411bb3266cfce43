// Hosting olmo's rendezvous store (store-server.ts) on rank 0: on a Worker thread when possible
// (its entry file, named in src/workers.ts, says why), else on this thread. The ranks reach it with
// store-client.ts.
import { UserError } from "../../errors.ts";
import { workerMissing, workerUrls } from "../../workers.ts";
import { StoreServer } from "./store-server.ts";

export interface HostedStore {
  port: number;
  onWorker: boolean;
  /** wait until clients disconnected (at most idleMs), then stop serving */
  stop(idleMs?: number): Promise<void>;
}

/**
 * Start rank 0's store for a job of `world` ranks, on a Worker thread. Where no Worker can start
 * (a compiled binary built without that entry point, src/workers.ts), serve it from this
 * thread: correct as long as every rank finishes its store calls before rank 0 blocks in a
 * collective, which initParallel and tpDpComms guarantee with a closing store barrier.
 */
export async function hostStore(hostname: string, port: number, world: number): Promise<HostedStore> {
  for (const url of workerUrls("store")) {
    const hosted = await tryWorker(url, hostname, port, world);
    if (hosted) return hosted;
  }
  workerMissing("store");
  const server = new StoreServer(hostname, port, { world });
  return {
    port: server.port,
    onWorker: false,
    stop: async (idleMs = 5000) => {
      await server.idle(idleMs);
      server.stop();
    },
  };
}

/** null when no Worker can run `url`; throws the server's error (e.g. port in use) otherwise. */
async function tryWorker(url: string, hostname: string, port: number, world: number): Promise<HostedStore | null> {
  let w: Worker | undefined;
  let reply: { ok: boolean; port: number; error?: string; user?: boolean };
  try {
    const nw = (w = new Worker(url));
    reply = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("store worker did not start in 10 s")), 10_000);
      nw.onmessage = (ev) => {
        clearTimeout(timer);
        resolve(ev.data);
      };
      nw.onerror = (ev) => {
        clearTimeout(timer);
        reject(new Error(ev.message));
      };
      nw.postMessage({ op: "start", hostname, port, world });
    });
  } catch {
    w?.terminate();
    return null;
  }
  const worker = w;
  if (!reply.ok) {
    worker.terminate();
    throw reply.user ? new UserError(reply.error!) : new Error(reply.error);
  }
  return {
    port: reply.port,
    onWorker: true,
    stop: async (idleMs = 5000) => {
      await new Promise<void>((resolve) => {
        worker.onmessage = () => resolve();
        worker.postMessage({ op: "stop", idleMs });
      });
      worker.terminate();
    },
  };
}
