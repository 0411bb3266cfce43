// A pickler for the same subset pickle-read.ts reads, protocol 2 (what torch.save writes; any
// Python 3 unpickler reads it). Values are the reader's records: PyGlobal for a class or function
// reference, PyObject for a REDUCE (call) or NEWOBJ (construction) followed by BUILD when it has a
// state, PyPersistent for torch.save's storage references. A JS number is a Python int when it is
// an integer; wrap a float in PyFloat (lr 1.0 must stay a float). Opcode encodings: CPython's
// Lib/pickle.py (_Pickler.save_* for protocol 2).
import { PyDict, PyFloat, PyGlobal, PyObject, PyPersistent, PyTuple, type PyValue } from "./pickle-read.ts";

type PyOut = PyValue;

class Sink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(4096);
  private n = 0;
  private readonly dv = () => new DataView(this.cur.buffer);
  private room(k: number): void {
    if (this.n + k <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.n));
    this.cur = new Uint8Array(Math.max(4096, k));
    this.n = 0;
  }
  byte(b: number): void {
    this.room(1);
    this.cur[this.n++] = b;
  }
  u16(v: number): void {
    this.room(2);
    this.dv().setUint16(this.n, v, true);
    this.n += 2;
  }
  i32(v: number): void {
    this.room(4);
    this.dv().setInt32(this.n, v, true);
    this.n += 4;
  }
  u32(v: number): void {
    this.room(4);
    this.dv().setUint32(this.n, v, true);
    this.n += 4;
  }
  f64be(v: number): void {
    this.room(8);
    this.dv().setFloat64(this.n, v, false);
    this.n += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.cur.set(b, this.n);
    this.n += b.length;
  }
  done(): Uint8Array {
    this.chunks.push(this.cur.subarray(0, this.n));
    const total = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

const enc = new TextEncoder();
const BATCH = 1000; // items per APPENDS / SETITEMS, as CPython's pickler

/** Pickle one value (protocol 2). */
export function pickle(v: PyValue): Uint8Array {
  const s = new Sink();
  s.byte(0x80); // PROTO
  s.byte(2);
  write(s, v);
  s.byte(0x2e); // STOP
  return s.done();
}

function writeInt(s: Sink, v: number | bigint): void {
  if (typeof v === "number" && v >= 0 && v < 256) {
    s.byte(0x4b); // BININT1
    s.byte(v);
  } else if (typeof v === "number" && v >= 0 && v < 65536) {
    s.byte(0x4d); // BININT2
    s.u16(v);
  } else if (typeof v === "number" && v >= -(2 ** 31) && v < 2 ** 31) {
    s.byte(0x4a); // BININT
    s.i32(v);
  } else {
    // LONG1 (LONG4 beyond 255 bytes): little-endian two's complement, the shortest that keeps the
    // sign; through one hex string, linear in the size (byte-by-byte shifts are quadratic)
    const x = BigInt(v);
    const magnitude = x < 0n ? -x - 1n : x; // n bytes hold -2^(8n-1) ≤ x < 2^(8n-1)
    const n = Math.floor((magnitude === 0n ? 0 : magnitude.toString(2).length) / 8) + 1;
    const hex = (x < 0n ? (1n << BigInt(8 * n)) + x : x).toString(16).padStart(2 * n, "0");
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = parseInt(hex.slice(2 * (n - 1 - i), 2 * (n - i)), 16);
    if (n < 256) {
      s.byte(0x8a);
      s.byte(n);
    } else {
      s.byte(0x8b);
      s.i32(n);
    }
    s.bytes(bytes);
  }
}

function writeItems(s: Sink, items: PyOut[], op: number, pairs: boolean): void {
  const step = pairs ? 2 * BATCH : BATCH;
  for (let i = 0; i < items.length; i += step) {
    s.byte(0x28); // MARK
    for (const x of items.slice(i, i + step)) write(s, x);
    s.byte(op);
  }
}

function write(s: Sink, v: PyOut): void {
  if (v === null) return s.byte(0x4e);
  if (v === true) return s.byte(0x88);
  if (v === false) return s.byte(0x89);
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`pickle: ${v} is not an integer; wrap floats in PyFloat`);
    return writeInt(s, v);
  }
  if (typeof v === "bigint") return writeInt(s, v);
  if (v instanceof PyFloat) {
    s.byte(0x47); // BINFLOAT
    return s.f64be(v.value);
  }
  if (typeof v === "string") {
    const b = enc.encode(v);
    s.byte(0x58); // BINUNICODE
    s.u32(b.length);
    return s.bytes(b);
  }
  if (v instanceof Uint8Array) {
    // protocol 2 has no bytes opcode: CPython writes _codecs.encode(latin-1 text, "latin1")
    let t = "";
    for (let i = 0; i < v.length; i += 8192) t += String.fromCharCode(...v.subarray(i, i + 8192));
    return write(s, new PyObject(new PyGlobal("_codecs", "encode"), [t, "latin1"], "reduce"));
  }
  if (Array.isArray(v)) {
    s.byte(0x5d); // EMPTY_LIST
    return writeItems(s, v, 0x65, false); // APPENDS
  }
  if (v instanceof PyTuple) {
    const items = v.items as PyOut[];
    if (items.length === 0) return s.byte(0x29);
    if (items.length <= 3) {
      for (const x of items) write(s, x);
      return s.byte([0x85, 0x86, 0x87][items.length - 1]); // TUPLE1..3
    }
    s.byte(0x28);
    for (const x of items) write(s, x);
    return s.byte(0x74); // TUPLE
  }
  if (v instanceof PyDict) {
    s.byte(0x7d); // EMPTY_DICT
    return writeItems(s, v.entries.flat() as PyOut[], 0x75, true); // SETITEMS
  }
  if (v instanceof PyGlobal) {
    s.byte(0x63); // GLOBAL
    return s.bytes(enc.encode(`${v.module}\n${v.name}\n`));
  }
  if (v instanceof PyPersistent) {
    write(s, v.pid as PyOut);
    return s.byte(0x51); // BINPERSID
  }
  if (v instanceof PyObject) {
    write(s, v.cls as PyOut);
    write(s, new PyTuple(v.args));
    s.byte(v.kind === "newobj" ? 0x81 : 0x52); // NEWOBJ : REDUCE
    if (v.state !== undefined) {
      write(s, v.state as PyOut);
      s.byte(0x62); // BUILD
    }
    return;
  }
  throw new Error(`pickle: cannot write ${v === undefined ? "undefined" : "a set"}`);
}

/** A dataclass instance as CPython pickles it: cls.__new__(cls) (NEWOBJ) then BUILD with its fields. */
export function dataclassRecord(module: string, name: string, fields: [string, PyOut][]): PyObject {
  const o = new PyObject(new PyGlobal(module, name), [], "newobj");
  o.state = new PyDict(fields);
  return o;
}
