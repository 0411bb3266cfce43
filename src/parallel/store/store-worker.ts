// Hosts rank 0's StoreServer on a Worker thread. The collectives block their thread while they wait
// (sync Atomics polling, sync NCCL init), so a store served from rank 0's main thread could not
// answer the other ranks while rank 0 waits for them: a deadlock (seen: rank 0 in a TP all-reduce
// while rank 1 still fetched its DP group's segment name). A Worker has its own event loop.
import { StoreServer } from "./store-server.ts";

declare const self: Worker;
let server: StoreServer | null = null;

self.onmessage = async (ev: MessageEvent) => {
  const m = ev.data as { op: "start"; hostname: string; port: number; world: number } | { op: "stop"; idleMs: number };
  if (m.op === "start") {
    try {
      server = new StoreServer(m.hostname, m.port, { world: m.world });
      postMessage({ ok: true, port: server.port });
    } catch (e) {
      postMessage({ ok: false, error: (e as Error).message, user: (e as Error).name === "UserError" });
    }
  } else {
    await server?.idle(m.idleMs);
    server?.stop();
    postMessage({ ok: true, stopped: true });
  }
};
