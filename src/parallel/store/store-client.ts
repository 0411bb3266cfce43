// The client of olmo's rendezvous store (store-server.ts), on every rank, rank 0 included. Every
// reply is read under wire.ts's rule: bounded lines, checked replies (store-protocol.ts), and a
// deadline per request, so a store that stops answering, or something else on its port, fails the
// rank in one line instead of hanging it.
import type { Socket } from "bun";
import { UserError } from "../../errors.ts";
import { type Rendezvous, publishFromRank0 } from "./rendezvous.ts";
import { type Op, parseReply } from "./store-protocol.ts";
import { LineBuffer, MAX_KEY_BYTES, MAX_VALUE_BYTES, OutQueue, WireError, connectRetrying, fmtS, replyDeadlineMs, storeTimeoutMs, utf8Bytes } from "./wire.ts";

interface Pending {
  op: Op;
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

const enc = new TextEncoder();

export class StoreClient implements Rendezvous {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private closed = false;
  /** why the connection was given up, for every later request */
  private failure: string | null = null;
  private readonly lines = new LineBuffer();
  private readonly out = new OutQueue();
  private sock!: Socket<undefined>;

  private constructor(readonly timeoutMs: number, private readonly where: string) {}

  /** Connect to host:port, retrying (the store may not be up yet) until timeoutMs has passed. */
  static async connect(hostname: string, port: number, timeoutMs: number = storeTimeoutMs()): Promise<StoreClient> {
    const c = new StoreClient(timeoutMs, `${hostname}:${port}`);
    c.sock = await connectRetrying(hostname, port, timeoutMs, { onData: (b) => c.onData(b), drain: () => c.drain(), onClose: () => c.onClose() },
      (lastErr) => new UserError(`cannot reach the rendezvous store at ${c.where} after ${fmtS(timeoutMs)} (${lastErr}); rank 0 hosts it: did rank 0 start, and are MASTER_ADDR/MASTER_PORT right? (OLMO_STORE_TIMEOUT_S)`));
    return c;
  }

  private onData(chunk: Uint8Array): void {
    if (this.closed) return;
    try {
      for (const line of this.lines.push(chunk)) {
        if (!line.trim()) continue;
        const r = parseReply(line, (id) => this.pending.get(id)?.op);
        if (typeof r === "string") throw new WireError(r);
        const p = this.pending.get(r.id)!;
        this.pending.delete(r.id);
        clearTimeout(p.timer);
        if (r.ok) p.resolve(r.value);
        else p.reject(new UserError(r.error));
      }
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.fail(`the rendezvous store at ${this.where} sent ${e.message}: not olmo's store (do MASTER_PORT / OLMO_STORE_PORT name another service's port?)`);
    }
  }

  private onClose(): void {
    this.fail(`lost the connection to the rendezvous store at ${this.where} (did rank 0 exit?)`);
  }

  /** End the connection and every request in flight with one message. */
  private fail(message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = message;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new UserError(message));
    }
    this.pending.clear();
    this.sock?.terminate();
  }

  private send(bytes: Uint8Array): void {
    this.out.send((b) => this.sock.write(b), bytes);
  }

  private drain(): void {
    this.out.drain((b) => this.sock.write(b));
  }

  /** Send a request; its reply must come within deadlineMs (else the connection is given up). */
  private request(op: Op, fields: Record<string, unknown>, deadlineMs: number): Promise<any> {
    if (this.closed) return Promise.reject(new UserError(this.failure ?? `the rendezvous store connection to ${this.where} is closed`));
    const key = (fields.key ?? fields.name) as string;
    // a key or value this large is a bug of ours: the store would (rightly) refuse it
    if (utf8Bytes(key) > MAX_KEY_BYTES || (typeof fields.value === "string" && utf8Bytes(fields.value) > MAX_VALUE_BYTES)) {
      return Promise.reject(new Error(`store ${op} "${key.slice(0, 60)}": key or value over the store's limits (wire.ts)`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(`the rendezvous store at ${this.where} did not answer the ${op} within ${fmtS(deadlineMs)} (OLMO_STORE_TIMEOUT_S); rank 0 hosts it: is rank 0 alive, and is that its address?`), deadlineMs);
      this.pending.set(id, { op, resolve, reject, timer });
      this.send(enc.encode(JSON.stringify({ id, op, ...fields }) + "\n"));
    });
  }

  set(key: string, value: string): Promise<void> {
    return this.request("set", { key, value }, this.timeoutMs);
  }

  /** Wait until `key` is set (at most timeoutMs), then return its value. */
  get(key: string, timeoutMs = this.timeoutMs): Promise<string> {
    return this.request("get", { key, timeoutMs }, replyDeadlineMs(timeoutMs));
  }

  /** Rank 0's `value` on every rank: rank 0 publishes it under `key`, the others wait for it. */
  fromRank0(key: string, rank: number, value: string): Promise<string> {
    return publishFromRank0(this, key, rank, value);
  }

  add(key: string, delta: number): Promise<number> {
    return this.request("add", { key, delta }, this.timeoutMs);
  }

  /** Wait until all `world` ranks called barrier(name); the error on timeout names the absent ranks. */
  barrier(name: string, rank: number, world: number, timeoutMs = this.timeoutMs): Promise<void> {
    return this.request("barrier", { name, rank, world, timeoutMs }, replyDeadlineMs(timeoutMs));
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.sock?.end();
  }
}
