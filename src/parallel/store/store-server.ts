// olmo's rendezvous store server: a tiny TCP key-value server that rank 0 hosts at
// MASTER_ADDR:MASTER_PORT (on every interface for a multi-node job), for bootstrap only (the
// shared-memory segment name or NCCL unique id, start/stop barriers). Not on any hot path: ~25 µs
// per round trip on loopback. The protocol is store-protocol.ts.
//
// Whoever reaches the port can talk to it (README: what the port exposes), so a client is trusted
// with nothing that could harm the job beyond its own requests: every message is checked against
// the job (store-protocol.ts), and a client that breaks a rule is dropped, with one logged line,
// while every other connection goes on:
//  - a line over MAX_LINE_BYTES, not JSON, or with a field out of range (a world above the job's,
//    a rank outside it, a key or value too long, a timeout that is not a duration);
//  - more than MAX_WAITING requests waiting at once, or more than MAX_OUT_BYTES of replies it does
//    not read; the store full (MAX_KEYS keys or MAX_STORED_BYTES bytes);
//  - no complete line within slowLineMs of connecting or of a line's first byte (slowloris);
//  - more than 4·world + 64 connections at once: a new one is refused.
// Every wait has a deadline (OLMO_STORE_TIMEOUT_S, default 300 s): a rank that crashed before the
// rendezvous turns into a one-line error naming it instead of a hang.
import type { Socket, TCPSocketListener } from "bun";
import { UserError } from "../../errors.ts";
import { listRanks } from "./rendezvous.ts";
import { type Request, parseRequest } from "./store-protocol.ts";
import { LineBuffer, MAX_VALUE_BYTES, OutQueue, WireError, fmtS, utf8Bytes } from "./wire.ts";

const MAX_WAITING = 64;
const MAX_OUT_BYTES = 4 << 20;
const MAX_KEYS = 65536;
const MAX_STORED_BYTES = 64 << 20;
const DEFAULT_SLOW_LINE_MS = 30_000;
/** at most one logged line per this long (a flood must not flood the log); the drops in between are counted in the next line */
const DEFAULT_LOG_EVERY_MS = 1000;

interface Conn {
  lines: LineBuffer;
  /** replies the client has not read yet */
  out: OutQueue;
  waiting: number;
  openedAt: number;
  sawLine: boolean;
  dropped: boolean;
}

interface Waiter {
  s: Socket<Conn>;
  id: number;
  timer: Timer;
}

export interface StoreServerOptions {
  /** the job's world size: no barrier may be larger, no rank outside it */
  world: number;
  /** where a dropped client is reported (default stderr) */
  log?: (line: string) => void;
  /** how long a connection may take to complete a line (default 30 s) */
  slowLineMs?: number;
  /** at most one logged line per this long (default 1 s) */
  logEveryMs?: number;
}

const enc = new TextEncoder();

export class StoreServer {
  private kv = new Map<string, string>();
  private storedBytes = 0;
  private getters = new Map<string, Waiter[]>();
  private barriers = new Map<string, { world: number; arrived: Map<number, Waiter> }>();
  private listener: TCPSocketListener<Conn>;
  private conns = new Set<Socket<Conn>>();
  private onIdle: (() => void)[] = [];
  private readonly sweeper: Timer;
  private readonly world: number;
  private readonly maxConns: number;
  private readonly slowLineMs: number;
  private readonly log: (line: string) => void;
  private readonly logEveryMs: number;
  private loggedAt = -Infinity;
  private unlogged = 0;

  constructor(hostname: string, port: number, opts: StoreServerOptions) {
    this.world = opts.world;
    this.maxConns = 4 * opts.world + 64;
    this.slowLineMs = opts.slowLineMs ?? DEFAULT_SLOW_LINE_MS;
    this.log = opts.log ?? ((l) => console.error(l));
    this.logEveryMs = opts.logEveryMs ?? DEFAULT_LOG_EVERY_MS;
    try {
      this.listener = Bun.listen<Conn>({
        hostname,
        port,
        socket: {
          open: (s) => this.onOpen(s),
          data: (s, chunk) => this.onData(s, chunk),
          drain: (s) => this.drain(s),
          close: (s) => this.onClose(s),
          error: () => {},
        },
      });
    } catch (e) {
      throw new UserError(`cannot host the rendezvous store on ${hostname}:${port}: ${(e as Error).message} (choose another MASTER_PORT / --master-port)`);
    }
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, this.slowLineMs / 2));
  }

  get port(): number {
    return this.listener.port;
  }

  // ---- connections ----

  private onOpen(s: Socket<Conn>): void {
    s.data = { lines: new LineBuffer(), out: new OutQueue(), waiting: 0, openedAt: performance.now(), sawLine: false, dropped: false };
    this.conns.add(s);
    if (this.conns.size > this.maxConns) this.drop(s, `more than ${this.maxConns} connections at once (4 per rank of ${this.world}, + 64)`);
  }

  private onClose(s: Socket<Conn>): void {
    if (!this.conns.delete(s)) return;
    this.forget(s);
    if (this.conns.size === 0) for (const f of this.onIdle.splice(0)) f();
  }

  private onData(s: Socket<Conn>, chunk: Uint8Array): void {
    if (s.data.dropped) return;
    let lines: string[];
    try {
      lines = s.data.lines.push(chunk);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      return this.drop(s, `sent ${e.message}`);
    }
    for (const line of lines) {
      if (s.data.dropped) return;
      s.data.sawLine = true;
      if (!line.trim()) continue;
      const req = parseRequest(line, this.world);
      if (typeof req === "string") return this.drop(s, `sent ${req}`);
      try {
        this.handle(s, req);
      } catch (e) {
        // nothing a client sends may stop the store: a failure here is ours, but costs only this client
        this.drop(s, `its request failed: ${(e as Error).message}`);
      }
    }
  }

  /** Cut a client off: its waits end, nothing more is read from it, one line says why. */
  private drop(s: Socket<Conn>, why: string): void {
    if (s.data.dropped) return;
    s.data.dropped = true;
    this.forget(s);
    this.report(`olmo store: dropped a client from ${s.remoteAddress}:${s.remotePort}: it ${why}; the job goes on`);
    s.terminate();
  }

  private report(line: string): void {
    const now = performance.now();
    if (now - this.loggedAt < this.logEveryMs) {
      this.unlogged++;
      return;
    }
    this.loggedAt = now;
    this.log(this.unlogged ? `${line} (and ${this.unlogged} more dropped since the last such line)` : line);
    this.unlogged = 0;
  }

  /** Remove every wait of a connection that is gone (its barrier arrivals too: it cannot be released). */
  private forget(s: Socket<Conn>): void {
    for (const [key, list] of this.getters) {
      const rest = list.filter((w) => w.s !== s || (clearTimeout(w.timer), false));
      if (rest.length) this.getters.set(key, rest);
      else this.getters.delete(key);
    }
    for (const [name, b] of this.barriers) {
      for (const [rank, w] of b.arrived) {
        if (w.s === s) {
          clearTimeout(w.timer);
          b.arrived.delete(rank);
        }
      }
      if (b.arrived.size === 0) this.barriers.delete(name);
    }
    s.data.waiting = 0;
  }

  /** Drop connections that keep a line incomplete (or never send one) for longer than slowLineMs. */
  private sweep(): void {
    const now = performance.now();
    for (const s of this.conns) {
      const d = s.data;
      if (d.dropped) continue;
      if (d.lines.pendingBytes > 0 && now - d.lines.partialSince > this.slowLineMs) this.drop(s, `kept a line incomplete for more than ${fmtS(this.slowLineMs)}`);
      else if (!d.sawLine && d.lines.pendingBytes === 0 && now - d.openedAt > this.slowLineMs) this.drop(s, `sent no complete line within ${fmtS(this.slowLineMs)} of connecting`);
    }
  }

  // ---- replies (socket.write may take only part of a buffer; the rest goes at drain) ----

  private reply(s: Socket<Conn>, id: number, value: unknown, error?: string): void {
    if (s.data.dropped || !this.conns.has(s)) return;
    const bytes = enc.encode(JSON.stringify(error === undefined ? { id, ok: true, value } : { id, ok: false, error }) + "\n");
    s.data.out.send((b) => s.write(b), bytes);
    if (s.data.out.bytes > MAX_OUT_BYTES) this.drop(s, `left more than ${MAX_OUT_BYTES} bytes of replies unread`);
  }

  private drain(s: Socket<Conn>): void {
    s.data.out.drain((b) => s.write(b));
  }

  // ---- requests ----

  /** A wait of `s` for at most timeoutMs; false (and the client dropped) when it has too many. */
  private waiter(s: Socket<Conn>, id: number, timeoutMs: number, onTimeout: (w: Waiter) => void): Waiter | null {
    if (s.data.waiting >= MAX_WAITING) {
      this.drop(s, `had more than ${MAX_WAITING} requests waiting at once`);
      return null;
    }
    s.data.waiting++;
    const w: Waiter = { s, id, timer: setTimeout(() => (s.data.waiting--, onTimeout(w)), timeoutMs) };
    return w;
  }

  private release(w: Waiter, value: unknown, error?: string): void {
    clearTimeout(w.timer);
    w.s.data.waiting--;
    this.reply(w.s, w.id, value, error);
  }

  private handle(s: Socket<Conn>, m: Request): void {
    switch (m.op) {
      case "set": {
        const old = this.kv.get(m.key);
        const grown = utf8Bytes(m.value) + (old === undefined ? utf8Bytes(m.key) : -utf8Bytes(old));
        if (old === undefined && this.kv.size >= MAX_KEYS) return this.drop(s, `set a key while the store holds ${MAX_KEYS} (olmo's ranks set a few per group)`);
        if (this.storedBytes + grown > MAX_STORED_BYTES) return this.drop(s, `set a value while the store holds ${this.storedBytes} bytes (limit ${MAX_STORED_BYTES}; one value is at most ${MAX_VALUE_BYTES})`);
        this.kv.set(m.key, m.value);
        this.storedBytes += grown;
        this.reply(s, m.id, null);
        for (const w of this.getters.get(m.key) ?? []) this.release(w, m.value);
        this.getters.delete(m.key);
        return;
      }
      case "get": {
        const v = this.kv.get(m.key);
        if (v !== undefined) return this.reply(s, m.id, v);
        const w = this.waiter(s, m.id, m.timeoutMs, (self) => {
          const rest = (this.getters.get(m.key) ?? []).filter((x) => x !== self);
          if (rest.length) this.getters.set(m.key, rest);
          else this.getters.delete(m.key);
          this.reply(s, m.id, null, `store get "${m.key}" timed out after ${fmtS(m.timeoutMs)} (OLMO_STORE_TIMEOUT_S): no rank set it`);
        });
        if (w) this.getters.set(m.key, [...(this.getters.get(m.key) ?? []), w]);
        return;
      }
      case "add": {
        const v = Number(this.kv.get(m.key) ?? "0") + m.delta;
        if (!Number.isSafeInteger(v)) return this.reply(s, m.id, null, `store add "${m.key}": the sum leaves the safe integers`);
        if (!this.kv.has(m.key) && this.kv.size >= MAX_KEYS) return this.drop(s, `added to a new key while the store holds ${MAX_KEYS}`);
        const old = this.kv.get(m.key);
        this.storedBytes += utf8Bytes(String(v)) + (old === undefined ? utf8Bytes(m.key) : -utf8Bytes(old));
        this.kv.set(m.key, String(v));
        return this.reply(s, m.id, v);
      }
      case "barrier":
        return this.barrier(s, m);
    }
  }

  private barrier(s: Socket<Conn>, m: Extract<Request, { op: "barrier" }>): void {
    let b = this.barriers.get(m.name);
    if (b && b.world !== m.world) return this.reply(s, m.id, null, `barrier "${m.name}": rank ${m.rank} says world ${m.world}, others say ${b.world}`);
    if (b?.arrived.has(m.rank)) return this.reply(s, m.id, null, `barrier "${m.name}": rank ${m.rank} arrived twice (two processes with the same RANK?)`);
    // The first deadline to pass fails the barrier for every rank waiting in it, with one message.
    const w = this.waiter(s, m.id, m.timeoutMs, () => {
      const bar = this.barriers.get(m.name);
      if (!bar) return;
      const missing = [...Array(bar.world).keys()].filter((r) => !bar.arrived.has(r));
      this.barriers.delete(m.name);
      const msg = `rendezvous "${m.name}" timed out after ${fmtS(m.timeoutMs)}: rank(s) ${listRanks(missing)} of ${bar.world} never arrived (OLMO_STORE_TIMEOUT_S)`;
      for (const x of bar.arrived.values()) (x === w ? this.reply(x.s, x.id, null, msg) : this.release(x, null, msg));
    });
    if (!w) return;
    if (!b) this.barriers.set(m.name, (b = { world: m.world, arrived: new Map() }));
    b.arrived.set(m.rank, w);
    if (b.arrived.size === b.world) {
      this.barriers.delete(m.name);
      for (const x of b.arrived.values()) this.release(x, null);
    }
  }

  /** Resolve once no client is connected (or after timeoutMs), so replies are delivered before stop(). */
  async idle(timeoutMs: number): Promise<void> {
    if (this.conns.size === 0) return;
    let timer: Timer | undefined;
    await Promise.race([new Promise<void>((r) => this.onIdle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const l of this.getters.values()) for (const w of l) clearTimeout(w.timer);
    for (const b of this.barriers.values()) for (const w of b.arrived.values()) clearTimeout(w.timer);
    this.listener.stop(true);
  }
}
