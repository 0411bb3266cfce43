// The rendezvous store: a tiny TCP key-value server that rank 0 hosts at MASTER_ADDR:MASTER_PORT,
// for bootstrap only (the shared-memory segment name or NCCL unique id, start/stop barriers). It is
// not on any hot path: one JSON object per line each way, ~25 µs per round trip on loopback.
//
// Requests {id, op, ...} → replies {id, ok, value | error}:
//   set {key, value}            store a string
//   get {key, timeoutMs}        wait until the key exists, then return its value
//   add {key, delta}            atomic integer add, returns the new value (missing key = 0)
//   barrier {name, rank, world, timeoutMs}
//                               reply to everyone once all `world` ranks arrived; on timeout the
//                               error names the ranks that never came.
// Every wait has a deadline (OLMO_STORE_TIMEOUT_S, default 300 s): a rank that crashed before the
// rendezvous turns into a one-line error naming it instead of a hang.
import type { Socket, TCPSocketListener } from "bun";
import { UserError } from "../../errors.ts";
import { type Rendezvous, listRanks, publishFromRank0 } from "./rendezvous.ts";
import { workerMissing, workerUrls } from "../../workers.ts";

export const DEFAULT_STORE_TIMEOUT_S = 300;

/** The store timeout in milliseconds from OLMO_STORE_TIMEOUT_S. */
export function storeTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.OLMO_STORE_TIMEOUT_S;
  if (raw === undefined || raw === "") return DEFAULT_STORE_TIMEOUT_S * 1000;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new UserError(`OLMO_STORE_TIMEOUT_S="${raw}" must be a positive number of seconds`);
  return s * 1000;
}

function fmtS(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

// ---- line framing with backpressure (socket.write may write only part of a buffer) ----

interface Conn {
  inbuf: string;
  out: Uint8Array[];
}

const enc = new TextEncoder();

function sendLine(s: Socket<Conn>, obj: unknown): void {
  const bytes = enc.encode(JSON.stringify(obj) + "\n");
  if (s.data.out.length) {
    s.data.out.push(bytes);
    return;
  }
  const n = s.write(bytes);
  if (n < bytes.length) s.data.out.push(bytes.subarray(Math.max(n, 0)));
}

function drain(s: Socket<Conn>): void {
  while (s.data.out.length) {
    const head = s.data.out[0];
    const n = s.write(head);
    if (n < head.length) {
      s.data.out[0] = head.subarray(Math.max(n, 0));
      return;
    }
    s.data.out.shift();
  }
}

function onLines(s: Socket<Conn>, chunk: Buffer, handle: (msg: any) => void): void {
  s.data.inbuf += chunk.toString("utf8");
  let nl: number;
  while ((nl = s.data.inbuf.indexOf("\n")) >= 0) {
    const line = s.data.inbuf.slice(0, nl);
    s.data.inbuf = s.data.inbuf.slice(nl + 1);
    if (line.trim()) handle(JSON.parse(line));
  }
}

// ---- server (rank 0) ----

interface Waiter {
  s: Socket<Conn>;
  id: number;
  timer: Timer;
}

export class StoreServer {
  private kv = new Map<string, string>();
  private getters = new Map<string, Waiter[]>();
  private barriers = new Map<string, { world: number; arrived: Map<number, Waiter> }>();
  private listener: TCPSocketListener<Conn>;
  private open = 0;
  private onIdle: (() => void)[] = [];

  constructor(hostname: string, port: number) {
    try {
      this.listener = Bun.listen<Conn>({
        hostname,
        port,
        socket: {
          open: (s) => {
            s.data = { inbuf: "", out: [] };
            this.open++;
          },
          data: (s, chunk) => onLines(s, chunk, (m) => this.handle(s, m)),
          drain: (s) => drain(s),
          close: () => {
            if (--this.open === 0) for (const f of this.onIdle.splice(0)) f();
          },
          error: () => {},
        },
      });
    } catch (e) {
      throw new UserError(`cannot host the rendezvous store on ${hostname}:${port}: ${(e as Error).message} (choose another MASTER_PORT / --master-port)`);
    }
  }

  get port(): number {
    return this.listener.port;
  }

  private reply(s: Socket<Conn>, id: number, value: unknown, error?: string): void {
    sendLine(s, error === undefined ? { id, ok: true, value } : { id, ok: false, error });
  }

  private handle(s: Socket<Conn>, m: any): void {
    switch (m.op) {
      case "set": {
        this.kv.set(m.key, String(m.value));
        this.reply(s, m.id, null);
        for (const w of this.getters.get(m.key) ?? []) {
          clearTimeout(w.timer);
          this.reply(w.s, w.id, this.kv.get(m.key));
        }
        this.getters.delete(m.key);
        return;
      }
      case "get": {
        if (this.kv.has(m.key)) return this.reply(s, m.id, this.kv.get(m.key));
        const list = this.getters.get(m.key) ?? [];
        const w: Waiter = {
          s,
          id: m.id,
          timer: setTimeout(() => {
            const l = this.getters.get(m.key);
            if (l) this.getters.set(m.key, l.filter((x) => x !== w));
            this.reply(s, m.id, null, `store get "${m.key}" timed out after ${fmtS(m.timeoutMs)} (OLMO_STORE_TIMEOUT_S): no rank set it`);
          }, m.timeoutMs),
        };
        list.push(w);
        this.getters.set(m.key, list);
        return;
      }
      case "add": {
        const v = Number(this.kv.get(m.key) ?? "0") + Number(m.delta);
        this.kv.set(m.key, String(v));
        return this.reply(s, m.id, v);
      }
      case "barrier":
        return this.barrier(s, m);
      default:
        return this.reply(s, m.id, null, `unknown store op "${m.op}"`);
    }
  }

  private barrier(s: Socket<Conn>, m: { id: number; name: string; rank: number; world: number; timeoutMs: number }): void {
    let b = this.barriers.get(m.name);
    if (!b) this.barriers.set(m.name, (b = { world: m.world, arrived: new Map() }));
    if (b.world !== m.world) return this.reply(s, m.id, null, `barrier "${m.name}": rank ${m.rank} says world ${m.world}, others say ${b.world}`);
    if (b.arrived.has(m.rank)) return this.reply(s, m.id, null, `barrier "${m.name}": rank ${m.rank} arrived twice (two processes with the same RANK?)`);
    const bar = b;
    const w: Waiter = {
      s,
      id: m.id,
      // The first deadline to pass fails the barrier for every rank waiting in it, with one message.
      timer: setTimeout(() => {
        const missing = [...Array(bar.world).keys()].filter((r) => !bar.arrived.has(r));
        this.barriers.delete(m.name);
        const msg = `rendezvous "${m.name}" timed out after ${fmtS(m.timeoutMs)}: rank(s) ${listRanks(missing)} of ${bar.world} never arrived (OLMO_STORE_TIMEOUT_S)`;
        for (const x of bar.arrived.values()) {
          clearTimeout(x.timer);
          this.reply(x.s, x.id, null, msg);
        }
      }, m.timeoutMs),
    };
    bar.arrived.set(m.rank, w);
    if (bar.arrived.size === bar.world) {
      this.barriers.delete(m.name);
      for (const x of bar.arrived.values()) {
        clearTimeout(x.timer);
        this.reply(x.s, x.id, null);
      }
    }
  }

  /** Resolve once no client is connected (or after timeoutMs), so replies are delivered before stop(). */
  async idle(timeoutMs: number): Promise<void> {
    if (this.open === 0) return;
    let timer: Timer | undefined;
    await Promise.race([new Promise<void>((r) => this.onIdle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  stop(): void {
    for (const l of this.getters.values()) for (const w of l) clearTimeout(w.timer);
    for (const b of this.barriers.values()) for (const w of b.arrived.values()) clearTimeout(w.timer);
    this.listener.stop(true);
  }
}

// ---- client (every rank, rank 0 included) ----

export class StoreClient implements Rendezvous {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private closed = false;

  private constructor(private sock: Socket<Conn>, readonly timeoutMs: number, private where: string) {}

  /** Connect to host:port, retrying (the store may not be up yet) until timeoutMs has passed. */
  static async connect(hostname: string, port: number, timeoutMs: number = storeTimeoutMs()): Promise<StoreClient> {
    const where = `${hostname}:${port}`;
    const deadline = performance.now() + timeoutMs;
    let client: StoreClient | undefined;
    let lastErr = "";
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      try {
        const sock = await Bun.connect<Conn>({
          hostname,
          port,
          socket: {
            open: (s) => {
              s.data = { inbuf: "", out: [] };
            },
            data: (s, chunk) => onLines(s, chunk, (m) => client!.onReply(m)),
            drain: (s) => drain(s),
            close: () => client?.onClose(),
            error: () => client?.onClose(),
          },
        });
        client = new StoreClient(sock, timeoutMs, where);
        return client;
      } catch (e) {
        lastErr = (e as Error).message;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new UserError(`cannot reach the rendezvous store at ${where} after ${fmtS(timeoutMs)} (${lastErr}); rank 0 hosts it: did rank 0 start, and are MASTER_ADDR/MASTER_PORT right? (OLMO_STORE_TIMEOUT_S)`);
      }
      await Bun.sleep(Math.min(delay, left));
    }
  }

  private onReply(m: { id: number; ok: boolean; value: unknown; error?: string }): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new UserError(m.error!));
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new UserError(`lost the connection to the rendezvous store at ${this.where} (did rank 0 exit?)`));
    this.pending.clear();
  }

  private request(msg: Record<string, unknown>): Promise<any> {
    if (this.closed) return Promise.reject(new UserError(`the rendezvous store connection to ${this.where} is closed`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      sendLine(this.sock, { id, ...msg });
    });
  }

  set(key: string, value: string): Promise<void> {
    return this.request({ op: "set", key, value });
  }

  /** Wait until `key` is set (at most timeoutMs), then return its value. */
  get(key: string, timeoutMs = this.timeoutMs): Promise<string> {
    return this.request({ op: "get", key, timeoutMs });
  }

  /** Rank 0's `value` on every rank: rank 0 publishes it under `key`, the others wait for it. */
  fromRank0(key: string, rank: number, value: string): Promise<string> {
    return publishFromRank0(this, key, rank, value);
  }

  add(key: string, delta: number): Promise<number> {
    return this.request({ op: "add", key, delta });
  }

  /** Wait until all `world` ranks called barrier(name); the error on timeout names the absent ranks. */
  barrier(name: string, rank: number, world: number, timeoutMs = this.timeoutMs): Promise<void> {
    return this.request({ op: "barrier", name, rank, world, timeoutMs });
  }

  close(): void {
    this.closed = true;
    this.sock.end();
  }
}

// ---- hosting: on a Worker thread when possible ----

export interface HostedStore {
  port: number;
  onWorker: boolean;
  /** wait until clients disconnected (at most idleMs), then stop serving */
  stop(idleMs?: number): Promise<void>;
}

/**
 * Start rank 0's store, on a Worker thread (see its entry file for why). Where no Worker can start
 * (a compiled binary built without that entry point, src/workers.ts), serve it from this
 * thread: correct as long as every rank finishes its store calls before rank 0 blocks in a
 * collective, which initParallel and tpDpComms guarantee with a closing store barrier.
 */
export async function hostStore(hostname: string, port: number): Promise<HostedStore> {
  for (const url of workerUrls("store")) {
    const hosted = await tryWorker(url, hostname, port);
    if (hosted) return hosted;
  }
  workerMissing("store");
  const server = new StoreServer(hostname, port);
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
async function tryWorker(url: string, hostname: string, port: number): Promise<HostedStore | null> {
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
      nw.postMessage({ op: "start", hostname, port });
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
