// What a rendezvous-store connection may carry, and how long anyone waits on one: the rule every
// reader and writer of a store connection obeys (olmo's store server and client, the torchrun agent
// store's client). A peer on the network is not trusted to be well-formed, honest or alive:
//  - every message is bounded: keys, values, lines, replies; a larger one is refused as soon as its
//    size is known, before it is buffered (no allocation a peer can size);
//  - every read has a deadline: a reply that does not come in time fails the request in one line;
//  - a peer that breaks the protocol is cut off (the client fails its requests; the server drops
//    only that connection and logs it).
// The sizes are far above anything olmo's ranks store (paths up to PATH_MAX, a base64 NCCL id, pids).
import type { Socket } from "bun";
import { UserError } from "../../errors.ts";

/** a key, as UTF-8 bytes (torchrun's prefix included) */
export const MAX_KEY_BYTES = 1024;
/** a value, as UTF-8 bytes (the longest olmo stores: a checkpoint path, PATH_MAX = 4096) */
export const MAX_VALUE_BYTES = 64 * 1024;
/** a JSON line of olmo's store (a request with a key and a value, escaped at worst 6 bytes per byte) */
export const MAX_LINE_BYTES = 512 * 1024;

export const DEFAULT_STORE_TIMEOUT_S = 300;

/** The store timeout in milliseconds from OLMO_STORE_TIMEOUT_S. */
export function storeTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.OLMO_STORE_TIMEOUT_S;
  if (raw === undefined || raw === "") return DEFAULT_STORE_TIMEOUT_S * 1000;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s * 1000 > MAX_TIMER_MS) throw new UserError(`OLMO_STORE_TIMEOUT_S="${raw}" must be a positive number of seconds (at most ${MAX_TIMER_MS / 1000})`);
  return s * 1000;
}

/** the longest a timer can wait (setTimeout's limit: 2^31 - 1 ms, about 24.8 days) */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long a client waits for the reply to a request that itself waits up to `waitMs` on the server
 * (a get, a barrier): the server answers by then (with a value or its own timeout), so the client
 * allows that plus the time a reply takes to come back, bounded.
 */
export function replyDeadlineMs(waitMs: number): number {
  return Math.min(MAX_TIMER_MS, waitMs + Math.min(waitMs, 10_000));
}

export function fmtS(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** A broken promise of the protocol by the peer (a reply or request that cannot be right). */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/**
 * Newline-framed input, bounded: bytes accumulate until a newline, and a line that would pass
 * `maxBytes` is refused before it grows further (a peer that never sends a newline costs at most
 * that much memory). `partialSince` says since when an incomplete line waits (slow senders).
 */
export class LineBuffer {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  partialSince = 0;

  constructor(private readonly maxBytes = MAX_LINE_BYTES) {}

  /** The complete lines in `chunk` (after what came before); throws WireError on an oversized line. */
  push(chunk: Uint8Array, now = performance.now()): string[] {
    const lines: string[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      this.take(chunk.subarray(from, nl));
      lines.push(Buffer.concat(this.parts).toString("utf8"));
      this.parts = [];
      this.bytes = 0;
      from = nl + 1;
    }
    if (from < chunk.length) {
      if (this.bytes === 0) this.partialSince = now;
      this.take(chunk.slice(from)); // a copy: the socket may reuse its buffer
    }
    return lines;
  }

  get pendingBytes(): number {
    return this.bytes;
  }

  private take(part: Uint8Array): void {
    if (this.bytes + part.length > this.maxBytes) throw new WireError(`a line of more than ${this.maxBytes} bytes (no newline within the limit)`);
    if (part.length) this.parts.push(part);
    this.bytes += part.length;
  }
}

/**
 * What a socket has not taken yet. socket.write may take only part of a buffer; the rest waits here
 * and goes, in order, when the socket drains. Every store connection (server, both clients) writes
 * through one.
 */
export class OutQueue {
  private parts: Uint8Array[] = [];
  /** bytes waiting */
  bytes = 0;

  /** Write `data` now, or after what is still waiting. */
  send(write: (b: Uint8Array) => number, data: Uint8Array): void {
    if (this.parts.length === 0) {
      const n = Math.max(write(data), 0);
      if (n >= data.length) return;
      data = data.subarray(n);
    }
    this.parts.push(data);
    this.bytes += data.length;
  }

  /** Write what waits, as far as the socket takes it. */
  drain(write: (b: Uint8Array) => number): void {
    while (this.parts.length) {
      const head = this.parts[0], n = Math.max(write(head), 0);
      this.bytes -= Math.min(n, head.length);
      if (n < head.length) {
        this.parts[0] = head.subarray(n);
        return;
      }
      this.parts.shift();
    }
  }
}

/** What a store connection hands its socket: bytes in, room to write, the end. */
export interface ConnectionEvents {
  onData(chunk: Uint8Array): void;
  drain(): void;
  onClose(): void;
}

/**
 * Connect to host:port, retrying with a growing pause (the store may not be up yet) until
 * timeoutMs has passed; then the error `giveUp` makes of the last failure is thrown.
 */
export async function connectRetrying(hostname: string, port: number, timeoutMs: number, c: ConnectionEvents, giveUp: (lastErr: string) => Error): Promise<Socket> {
  const deadline = performance.now() + timeoutMs;
  let lastErr = "";
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await Bun.connect({
        hostname,
        port,
        socket: { data: (_s, chunk) => c.onData(chunk), drain: () => c.drain(), close: () => c.onClose(), error: () => c.onClose() },
      });
    } catch (e) {
      lastErr = (e as Error).message;
    }
    const left = deadline - performance.now();
    if (left <= 0) throw giveUp(lastErr);
    await Bun.sleep(Math.min(delay, left));
  }
}
