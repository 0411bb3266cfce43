// A reader for the subset of Python's pickle format that PyTorch checkpoints use (protocols 2–5:
// torch.save writes protocol 2, torch.distributed.checkpoint's `.metadata` Python's default, 4).
// Nothing is ever executed: a class or function reference (GLOBAL / STACK_GLOBAL) becomes a
// PyGlobal, a call (REDUCE) or object construction (NEWOBJ / NEWOBJ_EX) a PyObject record with its
// arguments, and BUILD attaches the state to that record. Two reductions are decoded because every
// protocol-2 pickle of bytes and of an OrderedDict uses them: `_codecs.encode(str, "latin1")` (how
// protocol 2 stores Python 3 bytes) and `collections.OrderedDict()`.
// Opcodes: Python's Lib/pickletools.py (CPython, any 3.x) documents each one used below.
//
// Safety: every length and count read from the stream is checked against the bytes that remain
// before anything is allocated, so a hostile file cannot make us allocate more than its own size;
// the stack, memo and mark stack grow by at most one entry per opcode byte. Protocol-0/1 text
// opcodes, extension registry codes (EXT*) and out-of-band buffers (NEXT_BUFFER) are refused.
import { UserError } from "../../errors.ts";

export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A REDUCE / NEWOBJ result: what would have been constructed, as a plain record. */
export class PyObject {
  state: PyValue = undefined;
  constructor(readonly cls: PyValue, readonly args: PyValue[], readonly kind: "reduce" | "newobj", readonly kwargs?: PyValue) {}
  get className(): string {
    return this.cls instanceof PyGlobal ? this.cls.qualified : "<dynamic>";
  }
}

/**
 * A dict: insertion-ordered entries (keys may be records, e.g. MetadataIndex). Entries are only
 * ever appended; string keys are indexed as they come (the first of a repeated key answers), so a
 * lookup costs O(1) however often a hostile pickle makes us look into one large dict (a memoized
 * dict shared by every record of a .metadata would otherwise cost records × entries).
 */
export class PyDict {
  private index: Map<string, PyValue> | null = null;
  private indexed = 0;
  constructor(readonly entries: [PyValue, PyValue][] = []) {}
  private lookup(): Map<string, PyValue> {
    const index = (this.index ??= new Map());
    for (; this.indexed < this.entries.length; this.indexed++) {
      const [k, v] = this.entries[this.indexed];
      if (typeof k === "string" && !index.has(k)) index.set(k, v);
    }
    return index;
  }
  get(key: string): PyValue {
    return this.lookup().get(key);
  }
  has(key: string): boolean {
    return this.lookup().has(key);
  }
}

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A persistent id (torch.save's storages): what BINPERSID popped. */
export class PyPersistent {
  constructor(readonly pid: PyValue) {}
}

/** A Python float that must stay a float when written (the reader returns plain numbers unless asked to keep floats). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyValue =
  | undefined // only as "no state yet"
  | PyFloat
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PyGlobal
  | PyObject
  | PyPersistent
  | Set<PyValue>;

const MARK = Symbol("mark");
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
type StackItem = PyValue | typeof MARK;

export interface UnpickleOptions {
  /** return Python floats as PyFloat (so 0.0 stays a float when the value is written again) */
  keepFloats?: boolean;
}

/** Unpickle `buf`. `where` names the file (and item) in errors. */
export function unpickle(buf: Uint8Array, where: string, opts: UnpickleOptions = {}): PyValue {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = buf.length;
  let pos = 0;
  let stack: StackItem[] = [];
  const marks: StackItem[][] = [];
  const memo = new Map<number, PyValue>();
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const bad = (msg: string): never => {
    throw new UserError(`${where}: not a valid pickle: ${msg}`);
  };
  const need = (n: number, what: string): void => {
    if (!(n >= 0) || pos + n > end) bad(`${what} of ${n} bytes at offset ${pos} runs past the end (${end} bytes)`);
  };
  // what the reduce/build steps materialize beyond the stream's own bytes (a memoized string encoded
  // again, a memoized dict's entries copied again): bounded by the file's size, so a few bytes of
  // opcodes cannot make the reader allocate gigabytes
  let built = 0;
  const spend = (n: number, what: string): void => {
    built += n;
    if (built > 2 * end + 4096) bad(`${what} at offset ${pos - 1} would build more than the file holds (${built} elements from ${end} bytes)`);
  };
  const u8 = () => (need(1, "an operand"), buf[pos++]);
  const u16 = () => (need(2, "an operand"), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4, "an operand"), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4, "an operand"), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = (): number => {
    need(8, "an operand");
    const lo = dv.getUint32(pos, true), hi = dv.getUint32(pos + 4, true);
    pos += 8;
    return hi * 2 ** 32 + lo; // a length: anything above 2^53 fails the bounds check anyway
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  const text = (n: number, what: string): string => {
    const b = take(n, what);
    try {
      return utf8.decode(b);
    } catch {
      return bad(`${what} at offset ${pos - n} is not UTF-8`);
    }
  };
  const line = (what: string): string => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) bad(`${what} at offset ${pos} has no end of line`);
    const s = new TextDecoder().decode(buf.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) bad(`stack underflow at offset ${pos - 1}`);
    const v = stack.pop()!;
    if (v === MARK) bad(`unexpected mark at offset ${pos - 1}`);
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (stack.length === 0 || v === MARK) bad(`empty stack at offset ${pos - 1}`);
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    const items = stack as PyValue[];
    if (marks.length === 0) bad(`no mark at offset ${pos - 1}`);
    stack = marks.pop()!;
    return items;
  };
  const longFrom = (b: Uint8Array): number | bigint => {
    // two's-complement little-endian of any length, in time linear in its bytes (one hex string:
    // shifting a growing BigInt byte by byte is quadratic, ~15 s for a 250 KB LONG4)
    if (b.length === 0) return 0;
    let hex = "";
    for (let i = b.length - 1; i >= 0; i--) hex += HEX_BYTE[b[i]];
    let v = BigInt(`0x${hex}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof PyDict)) bad(`SETITEM(S) on a ${typeName(d)} at offset ${pos - 1}`);
    if (items.length % 2) bad(`odd number of dict items at offset ${pos - 1}`);
    for (let i = 0; i < items.length; i += 2) (d as PyDict).entries.push([items[i], items[i + 1]]);
  };
  const appendItems = (l: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(l)) bad(`APPEND(S) on a ${typeName(l)} at offset ${pos - 1}`);
    for (const x of items) (l as PyValue[]).push(x);
  };

  while (pos < end) {
    const at = pos;
    const op = buf[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 5) bad(`protocol ${v} (supported: 2 to 5)`);
        break;
      }
      case 0x95: { // FRAME: a length hint; the bytes follow inline
        const n = u64();
        need(n, "a frame");
        break;
      }
      case 0x2e: // STOP
        if (stack.length !== 1) bad(`stack holds ${stack.length} items at STOP`);
        return pop();
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longFrom(take(u8(), "a LONG1"))); break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) bad(`negative LONG4 length at offset ${at}`);
        stack.push(longFrom(take(n, "a LONG4")));
        break;
      }
      case 0x47: { // BINFLOAT
        need(8, "a BINFLOAT");
        const f = dv.getFloat64(pos, false);
        pos += 8;
        stack.push(opts.keepFloats ? new PyFloat(f) : f);
        break;
      }
      case 0x58: stack.push(text(u32(), "a BINUNICODE string")); break;
      case 0x8c: stack.push(text(u8(), "a SHORT_BINUNICODE string")); break;
      case 0x8d: stack.push(text(u64(), "a BINUNICODE8 string")); break;
      case 0x54: { // BINSTRING (py2 str): bytes as latin-1 text
        const n = i32();
        stack.push(latin1(take(n, "a BINSTRING")));
        break;
      }
      case 0x55: stack.push(latin1(take(u8(), "a SHORT_BINSTRING"))); break;
      case 0x42: stack.push(take(u32(), "a BINBYTES").slice()); break;
      case 0x43: stack.push(take(u8(), "a SHORT_BINBYTES").slice()); break;
      case 0x8e: stack.push(take(u64(), "a BINBYTES8").slice()); break;
      case 0x96: stack.push(take(u64(), "a BYTEARRAY8").slice()); break;
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST (popMark replaces `stack`: pop first)
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); stack.push(new PyTuple(items)); break; } // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const d = new PyDict(), items = popMark(); setItems(d, items); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark(), s = top();
        if (!(s instanceof Set)) bad(`ADDITEMS on a ${typeName(s)} at offset ${at}`);
        for (const x of items) (s as Set<PyValue>).add(x);
        break;
      }
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line("a GLOBAL module"), name = line("a GLOBAL name");
        stack.push(new PyGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof name !== "string" || typeof module !== "string") bad(`STACK_GLOBAL needs two strings at offset ${at}`);
        stack.push(new PyGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!(args instanceof PyTuple)) bad(`REDUCE arguments are a ${typeName(args)}, not a tuple, at offset ${at}`);
        stack.push(reduce(fn, (args as PyTuple).items));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        if (!(args instanceof PyTuple)) bad(`NEWOBJ arguments are a ${typeName(args)} at offset ${at}`);
        stack.push(new PyObject(cls, (args as PyTuple).items, "newobj"));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop(), args = pop(), cls = pop();
        if (!(args instanceof PyTuple)) bad(`NEWOBJ_EX arguments are a ${typeName(args)} at offset ${at}`);
        stack.push(new PyObject(cls, (args as PyTuple).items, "newobj", kwargs));
        break;
      }
      case 0x62: { // BUILD
        const state = pop(), obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof PyDict && state instanceof PyDict) { // OrderedDict state
          spend(state.entries.length, "BUILD");
          for (const e of state.entries) obj.entries.push(e);
        }
        else bad(`BUILD on a ${typeName(obj)} at offset ${at}`);
        break;
      }
      case 0x51: stack.push(new PyPersistent(pop())); break; // BINPERSID
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      default:
        bad(`opcode 0x${op.toString(16).padStart(2, "0")}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ""} at offset ${at} is outside the supported subset (pickle protocols 2-5 without extensions or out-of-band buffers)`);
    }
  }
  return bad("no STOP opcode before the end");

  function memoGet(i: number): PyValue {
    if (!memo.has(i)) bad(`memo entry ${i} read before it was written`);
    return memo.get(i);
  }

  function reduce(fn: PyValue, args: PyValue[]): PyValue {
    if (fn instanceof PyGlobal) {
      if (fn.module === "_codecs" && fn.name === "encode" && typeof args[0] === "string" && (args[1] === "latin1" || args[1] === "latin-1")) {
        spend(args[0].length, "REDUCE _codecs.encode");
        return latin1Bytes(args[0]);
      }
      if (fn.module === "collections" && fn.name === "OrderedDict" && args.length === 0) return new PyDict();
      if (fn.module === "builtins" && fn.name === "bytearray" && args.length === 0) return new Uint8Array(0);
    }
    return new PyObject(fn, args, "reduce");
  }
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

export function typeName(v: PyValue): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "list";
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof PyObject) return `${v.className} object`;
  if (v instanceof PyGlobal) return `reference to ${v.qualified}`;
  if (v instanceof PyDict) return "dict";
  if (v instanceof PyTuple) return "tuple";
  if (v instanceof Set) return "set";
  if (v instanceof PyPersistent) return "persistent id";
  if (v instanceof PyFloat) return "float";
  return typeof v;
}

/** Items of a tuple or list (what Python code would iterate). */
export function seq(v: PyValue): PyValue[] | null {
  if (Array.isArray(v)) return v;
  if (v instanceof PyTuple) return v.items;
  return null;
}

/** A dataclass-like record's field: from its BUILD dict state. */
export function field(obj: PyValue, name: string): PyValue {
  if (obj instanceof PyObject && obj.state instanceof PyDict) return obj.state.get(name);
  if (obj instanceof PyDict) return obj.get(name);
  return undefined;
}
