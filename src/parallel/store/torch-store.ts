// Under torchrun (PyTorch 2.x) the elastic agent already serves a TCPStore at MASTER_ADDR:MASTER_PORT
// and tells its workers so with TORCHELASTIC_USE_AGENT_STORE=True: the agent sets MASTER_ADDR/PORT
// to its store and that flag from its rendezvous handler (pytorch/pytorch
// torch/distributed/elastic/agent/server/local_elastic_agent.py, _start_workers, at
// 001077cbc0f328b8a743c7a2d1bf64f98c096377), and torch's own workers then connect to it as clients
// instead of hosting one (torch/distributed/rendezvous.py, _create_c10d_store, at
// 0140b62d8bab203e4699faeba802b5204fa51d26). Rank 0 cannot bind that port, so every olmo rank
// speaks the TCPStore protocol as a client there too. The protocol, as torch's client and its
// default libuv server implement it (torch/csrc/distributed/c10d/TCPStore.cpp at
// 00321a02d719de5729aeac5871792398114a1570; TCPStoreLibUvBackend.cpp and TCPStoreBackend.hpp at
// 01afc5c9c6fc20537882b772c58b292f9c2c8d42), little-endian, one request in flight per connection:
//   every request: u8 query type, then its fields; a string is u64 length + bytes
//   VALIDATE 0  u32 0x3C85F7CE                      (first on a connection; no reply)
//   SET      1  key, value                          (no reply)
//   GET      3  key                     → value      (the client WAITs for the key first)
//   ADD      4  key, i64 delta          → i64 sum    (values are decimal strings in the store)
//   CHECK    5  u64 n, n keys           → u8 0 ready / 1 not ready
//   WAIT     6  u64 n, n keys           → u8 0 once all exist
//   CANCEL_WAIT 12                      → u8 1 (after a 0 if the wait had just completed)
//   PING     13  u32 nonce              → the same u32 (sent after VALIDATE: is this a TCPStore?)
// Every reply is read under wire.ts's rule: a deadline per reply (OLMO_STORE_TIMEOUT_S), a value
// of at most MAX_VALUE_BYTES (refused when its length arrives, before any of it is buffered), no
// byte nobody asked for, and only the answers the protocol allows; a store that breaks one fails
// the rank in one line. (The server echoes a PING's nonce: TCPStoreLibUvBackend.cpp,
// parse_ping_command, at 01afc5c9; torch 2.6's non-libuv server does too, observed.)
// Keys get a prefix per job attempt (TORCHELASTIC_RUN_ID, TORCHELASTIC_RESTART_COUNT): the agent's
// store outlives a restart of its workers, and a restarted job must not meet the last one's keys.
import type { Socket } from "bun";
import { UserError } from "../../errors.ts";
import { type Rendezvous, listRanks, publishFromRank0 } from "./rendezvous.ts";
import { MAX_VALUE_BYTES, OutQueue, WireError, connectRetrying, fmtS, replyDeadlineMs } from "./wire.ts";

export const TORCH_STORE_MAGIC = 0x3c85f7ce;
export const Q = { VALIDATE: 0, SET: 1, GET: 3, ADD: 4, CHECK: 5, WAIT: 6, CANCEL_WAIT: 12, PING: 13 } as const;

const enc = new TextEncoder(), utf8 = new TextDecoder("utf-8", { fatal: true });

function u64(n: number | bigint, signed = false): Uint8Array {
  const b = new Uint8Array(8);
  if (signed) new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
  else new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** A string or byte string on the wire: u64 length, then the bytes. */
function str(v: string | Uint8Array): Uint8Array {
  const bytes = typeof v === "string" ? enc.encode(v) : v;
  return Buffer.concat([u64(bytes.length), bytes]);
}

/** Request bytes: the query type, then its already encoded fields. */
export function frame(type: number, ...fields: Uint8Array[]): Uint8Array {
  return Buffer.concat([Uint8Array.of(type), ...fields]);
}

/** A list of keys (WAIT, CHECK): u64 count, then each key. */
const keyList = (keys: string[]) => Buffer.concat([u64(keys.length), ...keys.map(str)]);

/** What a reply is: a fixed number of bytes, the byte values the protocol allows; or a length-prefixed value. */
type Reply = { what: string; bytes: number; allowed?: number[] } | { what: string; lengthPrefixed: true };

interface Pending {
  reply: Reply;
  resolve: (b: Uint8Array) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

export class TorchStoreClient implements Rendezvous {
  private inbuf = new Uint8Array(0);
  private pending: Pending[] = [];
  /** one request in flight: the server answers in order only because clients wait for each reply */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** why the connection was given up, for every later request */
  private failure: string | null = null;
  private sock!: Socket<undefined>;

  private constructor(readonly timeoutMs: number, private readonly where: string, private readonly prefix: string) {}

  /** Connect to the agent's store (retrying until timeoutMs), validate as torch's client does, and PING it. */
  static async connect(hostname: string, port: number, timeoutMs: number, prefix: string): Promise<TorchStoreClient> {
    const c = new TorchStoreClient(timeoutMs, `${hostname}:${port}`, prefix);
    c.sock = await connectRetrying(hostname, port, timeoutMs, { onData: (b) => c.onData(b), drain: () => c.drain(), onClose: () => c.onClose() },
      (lastErr) => new UserError(`cannot reach the torchrun agent's store at ${c.where} after ${fmtS(timeoutMs)} (${lastErr}); TORCHELASTIC_USE_AGENT_STORE=True says the agent serves it at MASTER_ADDR:MASTER_PORT (OLMO_STORE_TIMEOUT_S)`));
    const magic = new Uint8Array(4);
    new DataView(magic.buffer).setUint32(0, TORCH_STORE_MAGIC, true);
    c.send(frame(Q.VALIDATE, magic));
    const nonce = Uint8Array.from(crypto.getRandomValues(new Uint8Array(4)));
    await c.request(async () => {
      const echo = c.expect({ what: "PING", bytes: 4 }, timeoutMs);
      c.send(frame(Q.PING, nonce));
      if (!Buffer.from(await echo.bytes).equals(Buffer.from(nonce))) c.broken("a PING reply that is not its nonce");
    });
    return c;
  }

  private readonly out = new OutQueue();

  /** Write all of `bytes` (the socket may take part now, the rest at drain). */
  private send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.out.send((b) => this.sock.write(b), bytes);
  }

  private drain(): void {
    this.out.drain((b) => this.sock.write(b));
  }

  private wire(what: string): string {
    return `the torchrun agent's store at ${this.where} sent ${what}: not a torch TCPStore speaking its protocol (TORCHELASTIC_USE_AGENT_STORE=True says the agent serves one at MASTER_ADDR:MASTER_PORT)`;
  }

  /** The store broke the protocol: give the connection up, and fail this request with the same line. */
  private broken(what: string): never {
    const message = this.wire(what);
    this.fail(message);
    throw new UserError(message);
  }

  private onData(chunk: Uint8Array): void {
    if (this.closed) return;
    try {
      this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : new Uint8Array(chunk);
      while (this.inbuf.length) {
        const p = this.pending[0];
        if (!p) throw new WireError(`${this.inbuf.length} byte(s) no request asked for`);
        let n: number;
        if ("bytes" in p.reply) n = p.reply.bytes;
        else if (this.inbuf.length < 8) return;
        else {
          const announced = new DataView(this.inbuf.buffer, this.inbuf.byteOffset, 8).getBigUint64(0, true);
          if (announced > BigInt(MAX_VALUE_BYTES)) throw new WireError(`a ${p.reply.what} reply announcing a value of ${announced} bytes (olmo stores at most ${MAX_VALUE_BYTES})`);
          n = 8 + Number(announced);
        }
        if (this.inbuf.length < n) return;
        const body = "bytes" in p.reply ? this.inbuf.slice(0, n) : this.inbuf.slice(8, n);
        if ("allowed" in p.reply && p.reply.allowed && !p.reply.allowed.includes(body[0])) throw new WireError(`the answer ${body[0]} to a ${p.reply.what} (the protocol allows ${p.reply.allowed.join(" or ")})`);
        this.inbuf = this.inbuf.subarray(n);
        this.pending.shift();
        clearTimeout(p.timer);
        p.resolve(body);
      }
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.fail(this.wire(e.message));
    }
  }

  private onClose(): void {
    this.fail(`lost the connection to the torchrun agent's store at ${this.where} (did the agent exit?)`);
  }

  /** End the connection and every request in flight with one message. */
  private fail(message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = message;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new UserError(message));
    }
    this.sock?.terminate();
  }

  /** The reply to the request about to be sent; it must come within deadlineMs. */
  private expect(reply: Reply, deadlineMs: number): { entry: Pending; bytes: Promise<Uint8Array> } {
    let entry!: Pending;
    const bytes = new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(`the torchrun agent's store at ${this.where} did not answer the ${reply.what} within ${fmtS(deadlineMs)} (OLMO_STORE_TIMEOUT_S)`), deadlineMs);
      this.pending.push((entry = { reply, resolve, reject, timer }));
    });
    bytes.catch(() => {}); // a reply nobody awaits any more (a cancelled wait's) may fail unobserved
    return { entry, bytes };
  }

  /** Send one request and read its reply, after every earlier request finished. */
  private request<T>(run: () => Promise<T>): Promise<T> {
    const next = this.chain.then(() => {
      if (this.closed) throw new UserError(this.failure ?? `the connection to the torchrun agent's store at ${this.where} is closed`);
      return run();
    });
    this.chain = next.catch(() => {});
    return next;
  }

  /** WAIT for keys; false when the deadline passed (the wait is then cancelled on the server). */
  private async waitKeys(keys: string[], timeoutMs: number): Promise<boolean> {
    // 0 = STOP_WAITING; 1 = WAIT_CANCELED, when it answers a cancel sent meanwhile
    const done = this.expect({ what: "WAIT", bytes: 1, allowed: [0, 1] }, replyDeadlineMs(timeoutMs));
    this.send(frame(Q.WAIT, keyList(keys)));
    let timer: Timer | undefined;
    const ok = await Promise.race([done.bytes.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (ok) return true;
    // cancel: the server answers WAIT_CANCELED (1), after STOP_WAITING (0) if the keys arrived meanwhile
    const cancelled = this.expect({ what: "CANCEL_WAIT", bytes: 1, allowed: [1] }, this.timeoutMs);
    this.send(frame(Q.CANCEL_WAIT));
    if ((await done.bytes)[0] === 0) {
      await cancelled.bytes;
      return true;
    }
    // its answer was the one just read
    clearTimeout(cancelled.entry.timer);
    this.pending = this.pending.filter((p) => p !== cancelled.entry);
    return false;
  }

  private async has(key: string): Promise<boolean> {
    const r = this.expect({ what: "CHECK", bytes: 1, allowed: [0, 1] }, this.timeoutMs);
    this.send(frame(Q.CHECK, keyList([key])));
    return (await r.bytes)[0] === 0;
  }

  set(key: string, value: string): Promise<void> {
    return this.request(async () => {
      this.send(frame(Q.SET, str(this.prefix + key), str(value)));
    });
  }

  /** Wait until `key` is set (at most timeoutMs), then return its value. */
  get(key: string, timeoutMs = this.timeoutMs): Promise<string> {
    return this.request(async () => {
      if (!(await this.waitKeys([this.prefix + key], timeoutMs))) {
        throw new UserError(`store get "${key}" timed out after ${fmtS(timeoutMs)} (OLMO_STORE_TIMEOUT_S): no rank set it`);
      }
      const v = this.expect({ what: "GET", lengthPrefixed: true }, this.timeoutMs);
      this.send(frame(Q.GET, str(this.prefix + key)));
      const bytes = await v.bytes;
      try {
        return utf8.decode(bytes);
      } catch {
        return this.broken(`a value of ${bytes.length} bytes for "${key}" that is not UTF-8 (olmo stores text)`);
      }
    });
  }

  fromRank0(key: string, rank: number, value: string): Promise<string> {
    return publishFromRank0(this, key, rank, value);
  }

  add(key: string, delta: number): Promise<number> {
    return this.request(async () => {
      const r = this.expect({ what: "ADD", bytes: 8 }, this.timeoutMs);
      this.send(frame(Q.ADD, str(this.prefix + key), u64(delta, true)));
      const b = await r.bytes;
      const sum = new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0, true);
      if (sum > BigInt(Number.MAX_SAFE_INTEGER) || sum < -BigInt(Number.MAX_SAFE_INTEGER)) this.broken(`an ADD result ${sum} outside the safe integers`);
      return Number(sum);
    });
  }

  /** how many times each barrier name was passed */
  private readonly barrierGen = new Map<string, number>();

  /** Every rank adds itself to a counter and marks its arrival; the last one releases all. */
  async barrier(name: string, rank: number, world: number, timeoutMs = this.timeoutMs): Promise<void> {
    // the keys stay in the agent's store, so a name used again gets the next generation (every rank
    // passes the same barriers in the same order); olmo's own store forgets a barrier once it completes
    const gen = this.barrierGen.get(name) ?? 0;
    this.barrierGen.set(name, gen + 1);
    const b = `barrier/${name}/${gen}`;
    await this.set(`${b}/rank${rank}`, "1");
    if ((await this.add(`${b}/count`, 1)) === world) await this.set(`${b}/done`, "1");
    const ok = await this.request(() => this.waitKeys([`${this.prefix}${b}/done`], timeoutMs));
    if (ok) return;
    const missing: number[] = [];
    await this.request(async () => {
      for (let r = 0; r < world; r++) if (!(await this.has(`${this.prefix}${b}/rank${r}`))) missing.push(r);
    });
    throw new UserError(`rendezvous "${name}" timed out after ${fmtS(timeoutMs)}: rank(s) ${listRanks(missing)} of ${world} never arrived (OLMO_STORE_TIMEOUT_S)`);
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending) clearTimeout(p.timer);
    this.sock?.end();
  }
}

/** The key prefix of this job attempt under torchrun. */
export function torchStorePrefix(env: Record<string, string | undefined>): string {
  return `olmo/${env.TORCHELASTIC_RUN_ID || "run"}/attempt${env.TORCHELASTIC_RESTART_COUNT || "0"}/`;
}
