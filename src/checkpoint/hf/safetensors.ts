// safetensors: read (one file or sharded through model.safetensors.index.json) and write (sharded,
// fp32 or bf16, with the index). Format: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the byte buffer
// that the offsets index. Reading validates the whole header up front — a bad file fails at open
// with one line naming the file and the problem — and then reads each tensor with positional reads
// straight into the caller's Float32Array (f32) or through one reused scratch (bf16/f16).
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../../errors.ts";
import { parseJson } from "../../input.ts";
import { bytesOf, f32ToBf16, halfToF32 } from "../../tensor/dtype.ts";
import { Scratch, fileSize, openForRead, preadExact, pwriteAll } from "../io.ts";
import { fsyncPath } from "../../output-dir.ts";

/**
 * Element sizes of every safetensors dtype (so any header can be validated); we decode three. A
 * Map: a dtype string from a file is looked up by own entries only ("toString" is no dtype).
 */
const ST_BYTES = new Map<string, number>(Object.entries({
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
}));
const DECODED = new Set(["F32", "BF16", "F16"]);
/** The reference implementation refuses headers above 100 MB; so do we (a garbage length is caught early). */
const MAX_HEADER_BYTES = 100_000_000;

export interface StEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** absolute byte range in `file` */
  start: number;
  end: number;
  file: string;
}

interface StFile {
  path: string;
  fd: number;
  entries: Map<string, StEntry>;
  metadata: Record<string, string>;
}

function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function openFile(path: string): StFile {
  const fd = openForRead(path, "safetensors");
  try {
    return parseHeader(path, fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function parseHeader(path: string, fd: number): StFile {
  const size = fileSize(path);
  const bad = (msg: string): never => {
    throw new UserError(`${path}: not a valid safetensors file: ${msg}`);
  };
  if (size < 8) bad(`${size} bytes is too small for the 8-byte header length`);
  const lenBuf = new Uint8Array(8);
  preadExact(fd, lenBuf, 0, path, "header length");
  const n = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
  if (n > size - 8) bad(`header length ${n} is beyond the file size ${size} (truncated or not safetensors)`);
  if (n > MAX_HEADER_BYTES) bad(`header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
  const hdr = new Uint8Array(n);
  preadExact(fd, hdr, 8, path, "header");
  let json: unknown;
  try {
    json = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(hdr));
  } catch (e) {
    bad(`header is not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) bad("header is not a JSON object");
  const dataStart = 8 + n;
  const entries = new Map<string, StEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, any>)) {
    if (name === "__metadata__") {
      metadata = v ?? {};
      continue;
    }
    if (typeof v !== "object" || v === null) bad(`entry "${name}" is not an object`);
    const { dtype, shape, data_offsets: off } = v;
    if (typeof dtype !== "string" || !ST_BYTES.has(dtype)) bad(`tensor ${name} has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) bad(`tensor ${name} has a bad shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0) || off[0] > off[1]) {
      bad(`tensor ${name} has bad data_offsets ${JSON.stringify(off)}`);
    }
    const esz = ST_BYTES.get(dtype)!;
    const need = numelOf(shape) * esz;
    if (off[1] - off[0] !== need) bad(`tensor ${name}: data_offsets span ${off[1] - off[0]} bytes but ${dtype}${JSON.stringify(shape)} needs ${need}`);
    if (off[0] % esz !== 0) bad(`tensor ${name}: data offset ${off[0]} is misaligned for ${dtype}`);
    if (dataStart + off[1] > size) {
      bad(`truncated body: tensor ${name} needs bytes up to ${dataStart + off[1]} but the file is ${size} bytes`);
    }
    entries.set(name, { name, dtype, shape, start: dataStart + off[0], end: dataStart + off[1], file: path });
  }
  const sorted = [...entries.values()].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) bad(`tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap`);
  }
  return { path, fd, entries, metadata };
}

/** A safetensors model: one file, or the shards named by model.safetensors.index.json. */
export class SafetensorsReader {
  private readonly scratch = new Scratch();
  private constructor(readonly source: string, private readonly files: StFile[], readonly entries: Map<string, StEntry>) {}

  /** `path`: a .safetensors file, an index .json, or a directory holding either. */
  static open(path: string): SafetensorsReader {
    if (!existsSync(path)) throw new UserError(`safetensors: not found: ${path}`);
    let target = path;
    if (statSync(path).isDirectory()) {
      const idx = join(path, "model.safetensors.index.json");
      const single = join(path, "model.safetensors");
      if (existsSync(idx)) target = idx;
      else if (existsSync(single)) target = single;
      else throw new UserError(`${path}: no model.safetensors or model.safetensors.index.json in this directory`);
    }
    if (!target.endsWith(".json")) {
      const f = openFile(target);
      return new SafetensorsReader(target, [f], f.entries);
    }
    let weightMap: Record<string, string>;
    try {
      weightMap = (parseJson(readFileSync(target, "utf8")) as { weight_map: Record<string, string> } | null)?.weight_map as Record<string, string>;
    } catch (e) {
      throw new UserError(`${target}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
    }
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) throw new UserError(`${target}: has no "weight_map" object`);
    for (const [name, file] of Object.entries(weightMap)) {
      // shard names are plain file names in this folder (transformers writes model-0000k-of-0000n.safetensors)
      if (typeof file !== "string" || !/^[^/\\]+\.safetensors$/.test(file)) {
        throw new UserError(`${target}: weight_map puts ${name} in ${JSON.stringify(file)?.slice(0, 60)}, not a .safetensors file name in this folder`);
      }
    }
    const files: StFile[] = [];
    const entries = new Map<string, StEntry>();
    try {
      const byFile = new Map<string, StFile>();
      for (const [name, file] of Object.entries(weightMap)) {
        let f = byFile.get(file);
        if (!f) {
          const p = join(dirname(target), file);
          if (!existsSync(p)) throw new UserError(`${target}: shard ${file} (holding ${name}) is missing: ${p} not found`);
          f = openFile(p);
          byFile.set(file, f);
          files.push(f);
        }
        const e = f.entries.get(name);
        if (!e) throw new UserError(`${target}: index puts ${name} in ${file}, but that shard has no such tensor`);
        entries.set(name, e);
      }
    } catch (e) {
      for (const f of files) closeSync(f.fd);
      throw e;
    }
    return new SafetensorsReader(target, files, entries);
  }

  entry(name: string): StEntry {
    const e = this.entries.get(name);
    if (!e) throw new UserError(`${this.source}: missing tensor ${name}`);
    return e;
  }

  /** Decode tensor `name` into `out` (exactly its element count) as f32. */
  read(name: string, out: Float32Array): void {
    const e = this.entry(name);
    const n = numelOf(e.shape);
    if (out.length !== n) throw new UserError(`${e.file}: tensor ${name} has ${n} elements ${JSON.stringify(e.shape)}, expected ${out.length}`);
    if (!DECODED.has(e.dtype)) throw new UserError(`${e.file}: tensor ${name} has dtype ${e.dtype}; supported: F32, BF16, F16`);
    const fd = this.files.find((f) => f.path === e.file)!.fd;
    if (e.dtype === "F32") return preadExact(fd, bytesOf(out), e.start, e.file, `tensor ${name}`);
    const half = this.scratch.u16(n);
    preadExact(fd, bytesOf(half), e.start, e.file, `tensor ${name}`);
    halfToF32(e.dtype === "BF16" ? "bf16" : "f16", half, out);
  }

  /** Decode elements [start, start + out.length) of tensor `name` (flat, row-major) as f32: reads only those bytes. */
  readRange(name: string, start: number, out: Float32Array): void {
    const e = this.entry(name);
    const n = numelOf(e.shape);
    if (start < 0 || start + out.length > n) throw new Error(`readRange: [${start}, ${start + out.length}) is outside ${name}'s ${n} elements`);
    if (!DECODED.has(e.dtype)) throw new UserError(`${e.file}: tensor ${name} has dtype ${e.dtype}; supported: F32, BF16, F16`);
    const fd = this.files.find((f) => f.path === e.file)!.fd;
    if (e.dtype === "F32") return preadExact(fd, bytesOf(out), e.start + start * 4, e.file, `tensor ${name}`);
    const half = this.scratch.u16(out.length);
    preadExact(fd, bytesOf(half), e.start + start * 2, e.file, `tensor ${name}`);
    halfToF32(e.dtype === "BF16" ? "bf16" : "f16", half, out);
  }

  close(): void {
    for (const f of this.files) closeSync(f.fd);
    this.files.length = 0;
  }
}

export interface StWriteOptions {
  dtype: "f32" | "bf16";
  /** a new shard starts before a tensor that would push the current one past this size */
  maxShardBytes: number;
}

interface Shard {
  file: string;
  names: string[];
  header: Uint8Array;
  dataBytes: number;
}

/**
 * Streams tensors into sharded safetensors. Every shape is known up front, so each shard's header
 * is final before its first byte of data: tensors are then appended in the planned order with one
 * reused conversion buffer, never holding more than one tensor.
 */
export class SafetensorsWriter {
  private readonly shards: Shard[] = [];
  private readonly shardOf = new Map<string, number>();
  private readonly order: string[] = [];
  private next = 0;
  private fd = -1;
  private cur = -1;
  private pos = 0;
  private readonly scratch = new Scratch();

  constructor(readonly dir: string, tensors: { name: string; shape: number[] }[], readonly opts: StWriteOptions) {
    const esz = opts.dtype === "bf16" ? 2 : 4;
    const stDtype = opts.dtype === "bf16" ? "BF16" : "F32";
    let group: { name: string; shape: number[] }[] = [];
    let bytes = 0;
    const groups: (typeof group)[] = [];
    for (const t of tensors) {
      const b = numelOf(t.shape) * esz;
      if (group.length && bytes + b > opts.maxShardBytes) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
      group.push(t);
      bytes += b;
    }
    if (group.length) groups.push(group);
    const pad = (k: number) => String(k).padStart(5, "0");
    groups.forEach((g, k) => {
      const file = groups.length === 1 ? "model.safetensors" : `model-${pad(k + 1)}-of-${pad(groups.length)}.safetensors`;
      const json: Record<string, unknown> = { __metadata__: { format: "pt" } };
      let off = 0;
      for (const t of g) {
        const nb = numelOf(t.shape) * esz;
        json[t.name] = { dtype: stDtype, shape: t.shape, data_offsets: [off, off + nb] };
        off += nb;
        this.shardOf.set(t.name, k);
        this.order.push(t.name);
      }
      // The header is padded with spaces to 8 bytes so the data (and every f32 in it) is aligned.
      let text = JSON.stringify(json);
      text += " ".repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
      const body = new TextEncoder().encode(text);
      const header = new Uint8Array(8 + body.length);
      new DataView(header.buffer).setBigUint64(0, BigInt(body.length), true);
      header.set(body, 8);
      this.shards.push({ file, names: g.map((t) => t.name), header, dataBytes: off });
    });
  }

  /** Tensors must come in the order given to the constructor. */
  write(name: string, data: Float32Array): void {
    const want = this.order[this.next];
    if (name !== want) throw new Error(`SafetensorsWriter: got ${name}, expected ${want ?? "no more tensors"}`);
    const k = this.shardOf.get(name)!;
    if (k !== this.cur) {
      this.closeShard();
      this.cur = k;
      this.fd = openSync(join(this.dir, this.shards[k].file), "w");
      pwriteAll(this.fd, this.shards[k].header, 0);
      this.pos = this.shards[k].header.length;
    }
    const bytes = this.opts.dtype === "bf16" ? bytesOf(f32ToBf16(data, this.scratch.u16(data.length))) : bytesOf(data);
    pwriteAll(this.fd, bytes, this.pos);
    this.pos += bytes.length;
    this.next++;
  }

  private closeShard(): void {
    if (this.fd < 0) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }

  /** Close the open shard without finishing (the caller removes the folder). */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Close the last shard and write model.safetensors.index.json. Returns the shard file names. */
  finish(): string[] {
    if (this.next !== this.order.length) throw new Error(`SafetensorsWriter: ${this.order.length - this.next} tensors were never written`);
    this.closeShard();
    const weight_map: Record<string, string> = {};
    for (const s of this.shards) for (const n of s.names) weight_map[n] = s.file;
    const total_size = this.shards.reduce((a, s) => a + s.dataBytes, 0);
    writeFileSync(join(this.dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size }, weight_map }, null, 2) + "\n");
    fsyncPath(this.dir);
    return this.shards.map((s) => s.file);
  }
}
