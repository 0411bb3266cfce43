// ShmComm: collectives between processes on one host over a shared file mapping.
//
// Rank 0 creates a file in /dev/shm (tmpfs; else the tmp dir), every rank maps it with
// Bun.mmap(path, { shared: true }) (MAP_SHARED: a store by one process is visible to the others),
// the name travels through the rendezvous store, and rank 0 unlinks it once all ranks mapped it,
// so a crash leaves nothing behind.
//
// Layout: a header of 64-byte lines (line 0: magic, world, slot bytes; line 1+r: rank r's barrier
// generation and the descriptors of its last two barriers), then two sets × world slots.
//
// Synchronization: Bun's mmap gives an ArrayBuffer, not a SharedArrayBuffer, so Atomics.wait/notify
// are refused on it (measured: "Typed array for wait/waitAsync/notify must wrap a SharedArrayBuffer");
// Atomics.load/store work. Every header word has ONE writer (its rank), so no read-modify-write is
// needed: barrier g = "store gen[r] = g, then wait until gen[q] >= g for all q". Waiting spins on
// Atomics.load briefly, then sleeps in growing steps (Atomics.wait on a private SharedArrayBuffer:
// a sub-millisecond sleep), which keeps oversubscribed hosts (more ranks than cores) usable.
//
// Slot reuse: the two sets alternate per chunk operation. A rank reads a set only between the
// barrier that follows the writes of that operation and its arrival at the next barrier, and writes
// set s again two operations later, after a barrier that every rank has reached, so no extra
// "done reading" barrier is needed.
//
// Every barrier also publishes (opcode, element count, op/root); a rank that sees a different
// descriptor from a peer throws (mismatched collective calls would otherwise corrupt silently).
// A rank whose process exits without close() raises its "exited" word, and every rank publishes its
// pid and pid namespace, so a peer waiting for a rank that is gone (exited, or SIGKILLed: its pid is
// gone or a zombie) or a rank asked to stop by a signal while it waits acts at once instead of after
// OLMO_COMM_TIMEOUT_S: peer-wait.ts has the rules (under `olmo launch`, OLMO_LAUNCHED=1, peers don't
// race to fail: the launcher stops them and names the rank that failed first).
import { closeSync, existsSync, ftruncateSync, openSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import { type Comm, type ReduceOp, checkArgs, checkRoot, reduceInto } from "./comm.ts";
import { commTimeoutMs } from "../env.ts";
import { pidNamespace } from "../../process.ts";
import { stopSignal } from "../stop-signals.ts";
import { PeerWait } from "./peer-wait.ts";
import { listRanks } from "../store/rendezvous.ts";
import type { Rendezvous } from "../store/rendezvous.ts";

const MAGIC = 0x6f6c6d6f; // "olmo"
const LINE = 16; // int32 words per 64-byte header line
const EXITED = 7; // word of a rank's line: 1 once its process exited without close()
const PID = 8; // word of a rank's line: its process id
const PID_NS = 9; // word of a rank's line: its pid namespace (low 32 bits of the inode; 0 = unknown)
const OP = { allReduce1: 1, allReduce2: 2, allGather: 3, reduceScatter: 4, broadcast: 5, barrier: 6, allReduceSmall: 7 } as const;
const REDUCE_CODE: Record<ReduceOp, number> = { sum: 0, max: 1, avg: 2 };

export const DEFAULT_SLOT_BYTES = 8 << 20;

export interface ShmCommOptions {
  /** bytes per rank per set (the chunk size of large collectives) */
  slotBytes?: number;
  /** give up waiting for a peer after this long (OLMO_COMM_TIMEOUT_S, default 600 s) */
  timeoutMs?: number;
  /** microseconds to spin before the first sleep (OLMO_COMM_SPIN_US, default 100: Linux rounds
   *  short sleeps up to ~60 µs, so spinning that long costs less latency than sleeping) */
  spinUs?: number;
  /** allReduce of at most this many bytes takes one barrier: every rank reduces the whole buffer
   *  itself, in rank order, so the bits still agree (default 256 KiB) */
  smallBytes?: number;
  /** store key prefix of this communicator, unique per group (default "olmo/shm-comm") */
  key?: string;
  /** the global ranks of the members, in group-rank order: errors name ranks as the job knows them */
  globalRanks?: number[];
}

export class ShmComm implements Comm {
  private hdr: Int32Array;
  /** slots[set][rank] */
  private slots: Float32Array[][];
  private slotFloats: number;
  private gen = 0;
  private op = 0;
  private sleeper = new Int32Array(new SharedArrayBuffer(4));
  private readonly timeoutMs: number;
  private readonly spinMs: number;
  private readonly smallFloats: number;
  private readonly peerWait: PeerWait;
  /** group rank → the job's rank, for messages */
  private readonly global: (q: number) => number;
  private readonly onExit = () => Atomics.store(this.hdr, LINE * (1 + this.rank) + EXITED, 1);

  private constructor(readonly rank: number, readonly world: number, private map: Uint8Array, slotBytes: number, opts: ShmCommOptions) {
    const headerBytes = headerSize(world);
    this.hdr = new Int32Array(map.buffer, map.byteOffset, headerBytes / 4);
    this.slotFloats = slotBytes / 4;
    this.slots = [0, 1].map((set) =>
      Array.from({ length: world }, (_, q) => new Float32Array(map.buffer, map.byteOffset + headerBytes + (set * world + q) * slotBytes, this.slotFloats)));
    this.timeoutMs = opts.timeoutMs ?? commTimeoutMs();
    const g = opts.globalRanks;
    this.global = (q) => g?.[q] ?? q;
    const me = LINE * (1 + rank);
    const ns = pidNamespace();
    Atomics.store(this.hdr, me + PID, process.pid);
    Atomics.store(this.hdr, me + PID_NS, ns === null ? 0 : ns | 0 || 1);
    const line = (q: number) => LINE * (1 + q);
    this.peerWait = new PeerWait(rank, {
      exited: (q) => Atomics.load(this.hdr, line(q) + EXITED) !== 0,
      // a pid names the same process only within one pid namespace
      pid: (q) => (ns !== null && Atomics.load(this.hdr, line(q) + PID_NS) === (ns | 0 || 1) ? Atomics.load(this.hdr, line(q) + PID) : null),
      global: this.global,
    }, process.env.OLMO_LAUNCHED !== "1", stopSignal);
    process.on("exit", this.onExit);
    this.spinMs = (opts.spinUs ?? Number(process.env.OLMO_COMM_SPIN_US ?? 100)) / 1000;
    this.smallFloats = Math.min(this.slotFloats, (opts.smallBytes ?? 256 << 10) / 4);
  }

  /** Collective: every rank of the job calls this with the same store and world. */
  static async create(store: Rendezvous, rank: number, world: number, opts: ShmCommOptions = {}): Promise<ShmComm> {
    const slotBytes = opts.slotBytes ?? DEFAULT_SLOT_BYTES;
    const key = opts.key ?? "olmo/shm-comm";
    if (slotBytes % 64 !== 0 || slotBytes < 64) throw new Error(`ShmComm: slotBytes ${slotBytes} must be a positive multiple of 64`);
    const bytes = headerSize(world) + 2 * world * slotBytes;
    let path: string;
    if (rank === 0) {
      const dir = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
      path = join(dir, `olmo-comm-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
      const fd = openSync(path, "wx+", 0o600);
      try {
        ftruncateSync(fd, bytes);
      } finally {
        closeSync(fd);
      }
      const hdr = new Int32Array(Bun.mmap(path, { shared: true }).buffer, 0, 4);
      hdr[1] = world;
      hdr[2] = slotBytes;
      Atomics.store(hdr, 0, MAGIC);
      await store.set(`${key}/path`, path);
    } else {
      path = await store.get(`${key}/path`);
    }
    let comm: ShmComm;
    try {
      const map = Bun.mmap(path, { shared: true });
      if (map.byteLength !== bytes) throw new Error(`ShmComm: ${path} has ${map.byteLength} bytes, expected ${bytes} (ranks disagree on world or slot size)`);
      comm = new ShmComm(rank, world, map, slotBytes, opts);
      const h = comm.hdr;
      if (Atomics.load(h, 0) !== MAGIC || h[1] !== world || h[2] !== slotBytes) {
        throw new Error(`ShmComm: ${path} header (world ${h[1]}, slot ${h[2]}) does not match this rank's (world ${world}, slot ${slotBytes})`);
      }
    } finally {
      // Everyone has mapped (or failed) before rank 0 unlinks; the mappings outlive the name.
      await store.barrier(`${key}/mapped`, rank, world);
      if (rank === 0) unlinkSync(path);
    }
    return comm;
  }

  // ---- synchronization ----

  /** Arrive at the next barrier with a descriptor, then wait for every peer to arrive. */
  private sync(opcode: number, count: number, aux: number): void {
    const g = ++this.gen;
    const h = this.hdr;
    const me = LINE * (1 + this.rank);
    const d = me + 1 + 3 * (g & 1);
    h[d] = opcode;
    h[d + 1] = count;
    h[d + 2] = aux;
    Atomics.store(h, me, g);
    const W = this.world;
    let q = 0;
    let spins = 0;
    let sleepMs = 0.005;
    let start = 0;
    let deadline = 0;
    while (q < W) {
      if (((Atomics.load(h, LINE * (1 + q)) - g) | 0) >= 0) {
        q++;
        continue;
      }
      if ((++spins & 63) !== 0) continue;
      const now = performance.now();
      if (start === 0) {
        start = now;
        deadline = now + this.timeoutMs;
      }
      if (now - start < this.spinMs) continue;
      if (now > deadline) this.timeout(g);
      this.peerWait.poll(() => this.missing(g), now);
      Atomics.wait(this.sleeper, 0, 0, sleepMs);
      sleepMs = Math.min(sleepMs * 2, 1);
    }
    for (let p = 0; p < W; p++) {
      const pd = LINE * (1 + p) + 1 + 3 * (g & 1);
      if (h[pd] !== opcode || h[pd + 1] !== count || h[pd + 2] !== aux) {
        throw new Error(`ShmComm: collective mismatch at barrier ${g}: rank ${this.rank} does (op ${opcode}, n ${count}, ${aux}), rank ${p} does (op ${h[pd]}, n ${h[pd + 1]}, ${h[pd + 2]})`);
      }
    }
  }

  /** the group ranks that have not arrived at barrier g */
  private missing(g: number): number[] {
    const out = [];
    for (let q = 0; q < this.world; q++) if (((Atomics.load(this.hdr, LINE * (1 + q)) - g) | 0) < 0) out.push(q);
    return out;
  }

  private timeout(g: number): never {
    const missing = this.missing(g).map(this.global);
    throw new UserError(`shared-memory collective timed out after ${this.timeoutMs / 1000} s on rank ${this.global(this.rank)}: rank(s) ${listRanks(missing)} never arrived or stopped answering (OLMO_COMM_TIMEOUT_S)`);
  }

  private nextSet(): Float32Array[] {
    return this.slots[this.op++ & 1];
  }

  private static count(n: number): number {
    if (n > 0x7fffffff) throw new Error(`ShmComm: ${n} elements exceed 2^31-1`);
    return n;
  }

  // ---- collectives ----

  allReduce(buf: Float32Array, op: ReduceOp): void {
    const n = ShmComm.count(buf.length), W = this.world, r = this.rank;
    if (n <= this.smallFloats) {
      // one barrier: publish, then every rank reduces everything in rank order (same bits everywhere)
      const set = this.nextSet();
      set[r].set(buf);
      this.sync(OP.allReduceSmall, n, REDUCE_CODE[op]);
      reduceInto(buf, 0, set, 0, n, op);
      return;
    }
    for (let off = 0; off < n; off += this.slotFloats) {
      const c = Math.min(n - off, this.slotFloats);
      const set = this.nextSet();
      set[r].set(buf.subarray(off, off + c));
      this.sync(OP.allReduce1, n, REDUCE_CODE[op]);
      // my segment of this chunk: reduce it in rank order into buf, then publish it in my slot
      const lo = Math.floor((r * c) / W), hi = Math.floor(((r + 1) * c) / W);
      reduceInto(buf, off + lo, set, lo, hi - lo, op);
      set[r].set(buf.subarray(off + lo, off + hi), lo);
      this.sync(OP.allReduce2, n, REDUCE_CODE[op]);
      for (let q = 0; q < W; q++) {
        if (q === r) continue;
        const qlo = Math.floor((q * c) / W), qhi = Math.floor(((q + 1) * c) / W);
        buf.set(set[q].subarray(qlo, qhi), off + qlo);
      }
    }
  }

  allGather(send: Float32Array, recv: Float32Array): void {
    checkArgs("allGather", this.world, send, recv);
    const m = ShmComm.count(send.length), W = this.world, r = this.rank;
    for (let off = 0; off < m || (m === 0 && off === 0); off += this.slotFloats) {
      const c = Math.min(m - off, this.slotFloats);
      const set = this.nextSet();
      set[r].set(send.subarray(off, off + c));
      this.sync(OP.allGather, m, 0);
      for (let q = 0; q < W; q++) recv.set(set[q].subarray(0, c), q * m + off);
      if (m === 0) break;
    }
  }

  reduceScatter(send: Float32Array, recv: Float32Array, op: ReduceOp): void {
    checkArgs("reduceScatter", this.world, send, recv);
    const m = ShmComm.count(recv.length), W = this.world, r = this.rank;
    const step = Math.floor(this.slotFloats / W);
    if (step < 1) throw new Error(`ShmComm: slot of ${this.slotFloats} floats is smaller than world ${W}`);
    for (let off = 0; off < m || (m === 0 && off === 0); off += step) {
      const c = Math.min(m - off, step);
      const set = this.nextSet();
      for (let q = 0; q < W; q++) set[r].set(send.subarray(q * m + off, q * m + off + c), q * c);
      this.sync(OP.reduceScatter, m, REDUCE_CODE[op]);
      reduceInto(recv, off, set, r * c, c, op);
      if (m === 0) break;
    }
  }

  broadcast(buf: Float32Array, root: number): void {
    checkRoot(root, this.world);
    const n = ShmComm.count(buf.length);
    for (let off = 0; off < n || (n === 0 && off === 0); off += this.slotFloats) {
      const c = Math.min(n - off, this.slotFloats);
      const set = this.nextSet();
      if (this.rank === root) set[root].set(buf.subarray(off, off + c));
      this.sync(OP.broadcast, n, root);
      if (this.rank !== root) buf.set(set[root].subarray(0, c), off);
      if (n === 0) break;
    }
  }

  barrier(): void {
    this.sync(OP.barrier, 0, 0);
  }

  close(): void {
    process.off("exit", this.onExit);
    // Bun unmaps when the view is collected; drop our references so that can happen.
    this.slots = [];
    this.hdr = new Int32Array(0);
  }
}

function headerSize(world: number): number {
  return Math.ceil((64 * (1 + world)) / 4096) * 4096;
}
