// Reading native checkpoints: per tensor (a streaming TensorSource for soup/export/info), element
// ranges of a tensor (a parallel rank's part at resume) or whole arenas. Every read verifies the
// crc32 of the stored bytes it reads (the slice's, or its 4 MiB blocks'), so a flipped byte is
// reported with the tensor's name instead of silently training on garbage.
import { closeSync, existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "../model/params.ts";
import { bytesOf } from "../tensor/dtype.ts";
import { lz4Decompress } from "./codec.ts";
import { Scratch, fileSize, openForRead, preadExact } from "./io.ts";
import { type CheckpointMeta, type Group, type SliceEntry, type TensorEntry, readCheckpointMeta } from "./native.ts";
import type { OnProgress, TensorSource } from "./source.ts";

/** Random access to the tensors of one checkpoint directory; files are opened on first use. */
export class NativeReader {
  readonly meta: CheckpointMeta;
  private readonly index = new Map<string, TensorEntry>();
  private readonly fds = new Map<string, number>();
  private readonly scratch = new Scratch();

  constructor(readonly path: string) {
    this.meta = readCheckpointMeta(path);
    for (const t of this.meta.tensors) this.index.set(`${t.group}/${t.name}`, t);
  }

  has(group: Group, name: string): boolean {
    return this.index.has(`${group}/${name}`);
  }

  entry(group: Group, name: string): TensorEntry {
    const t = this.index.get(`${group}/${name}`);
    if (!t) throw new UserError(`${this.path}: missing tensor ${name} (${group})`);
    return t;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      const p = join(this.path, file);
      if (!existsSync(p)) throw new UserError(`${this.path}: tensor file ${file} is missing`);
      fd = openForRead(p, "checkpoint");
      this.fds.set(file, fd);
    }
    return fd;
  }

  /** The one slice holding the whole tensor, and its element count. */
  private whole(group: Group, name: string): { s: SliceEntry; numel: number } {
    const t = this.entry(group, name);
    if (t.slices.length !== 1 || t.slices[0].ranges.some(([a, b], i) => a !== 0 || b !== t.shape[i])) {
      throw new UserError(`${this.path}: tensor ${name} is stored in ${t.slices.length} shards; resharding on load is not implemented yet`);
    }
    return { s: t.slices[0], numel: t.shape.reduce((a, b) => a * b, 1) };
  }

  /** Read one whole tensor into `out` (exactly its element count), verifying its checksum. */
  read(group: Group, name: string, out: Float32Array): void {
    const { s, numel } = this.whole(group, name);
    if (out.length !== numel) throw new UserError(`${this.path}: tensor ${name} has shape [${this.entry(group, name).shape}] (${numel} elements), expected ${out.length}`);
    const fd = this.fd(s.file);
    const filePath = join(this.path, s.file);
    const what = `tensor ${name} (${group})`;
    const stored = s.lz4 ? this.scratch.bytes(s.length) : bytesOf(out);
    if (!s.lz4 && s.length !== stored.length) throw new UserError(`${this.path}: ${what} stores ${s.length} bytes, expected ${stored.length}`);
    preadExact(fd, stored, s.offset, filePath, what);
    checkCrc(stored, s.crc32, filePath, what);
    if (s.lz4) lz4Decompress(stored, s.lz4, bytesOf(out), `${filePath}: ${what}`);
  }

  /**
   * Elements [start, start + out.length) of one tensor (flat, row-major), reading only the 4 MiB
   * checksum blocks that hold them and verifying each. Slices without block checksums (lz4) are
   * read and verified whole, then cut.
   */
  readRange(group: Group, name: string, start: number, out: Float32Array): void {
    const { s, numel } = this.whole(group, name);
    if (start < 0 || start + out.length > numel) throw new Error(`readRange: [${start}, ${start + out.length}) is outside ${name}'s ${numel} elements`);
    if (out.length === 0) return;
    if (!s.blockCrc32 || !s.blockBytes || s.lz4) {
      if (start === 0 && out.length === numel) return this.read(group, name, out);
      const whole = new Float32Array(numel);
      this.read(group, name, whole);
      out.set(whole.subarray(start, start + out.length));
      return;
    }
    const bb = s.blockBytes, lo = start * 4, hi = (start + out.length) * 4;
    const b0 = Math.floor(lo / bb), b1 = Math.ceil(hi / bb);
    const from = b0 * bb, to = Math.min(s.length, b1 * bb);
    const filePath = join(this.path, s.file);
    const what = `tensor ${name} (${group})`;
    const bytes = this.scratch.bytes(to - from);
    preadExact(this.fd(s.file), bytes, s.offset + from, filePath, what);
    for (let b = b0; b < b1; b++) {
      checkCrc(bytes.subarray(b * bb - from, Math.min(to, (b + 1) * bb) - from), s.blockCrc32[b], filePath, `${what}, block ${b}`);
    }
    bytesOf(out).set(bytes.subarray(lo - from, hi - from));
  }

  /** Total stored bytes and the check that every data file is long enough (cheap; no reads). */
  checkFileSizes(): void {
    const need = new Map<string, number>();
    for (const t of this.meta.tensors) for (const s of t.slices) need.set(s.file, Math.max(need.get(s.file) ?? 0, s.offset + s.length));
    for (const [file, bytes] of need) {
      const p = join(this.path, file);
      if (!existsSync(p)) throw new UserError(`${this.path}: tensor file ${file} is missing`);
      const size = fileSize(p);
      if (size < bytes) throw new UserError(`${p}: truncated: the index needs ${bytes} bytes, the file has ${size}`);
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

function checkCrc(stored: Uint8Array, want: number, filePath: string, what: string): void {
  const crc = Bun.hash.crc32(stored);
  if (crc !== want) {
    throw new UserError(`${filePath}: checksum mismatch in ${what}: stored crc32 ${want.toString(16)}, computed ${crc.toString(16)} (the file is corrupt)`);
  }
}

/** A native checkpoint's model weights as a streaming TensorSource. */
export class NativeSource implements TensorSource {
  readonly kind = "native" as const;
  readonly config: ModelConfig;
  readonly specs: ParamSpec[];
  readonly trainState: Record<string, unknown>;
  readonly reader: NativeReader;

  constructor(readonly path: string) {
    this.reader = new NativeReader(path);
    this.config = this.reader.meta.model;
    this.specs = paramSpecs(this.config);
    this.trainState = this.reader.meta.trainState ?? {};
    try {
      this.reader.checkFileSizes();
      for (const s of this.specs) {
        const e = this.reader.entry("model", s.name);
        if (e.shape.join(",") !== s.shape.join(",")) throw new UserError(`${path}: tensor ${s.name} has shape [${e.shape}], the stored config implies [${s.shape}]`);
      }
    } catch (e) {
      this.reader.close();
      throw e;
    }
  }

  read(name: string, out: Float32Array): void {
    this.reader.read("model", name, out);
  }

  close(): void {
    this.reader.close();
  }
}

export interface LoadedCheckpoint {
  path: string;
  meta: CheckpointMeta;
  config: ModelConfig;
  trainState: Record<string, unknown>;
  runConfig: unknown;
  dataCursor: unknown;
  rng: unknown;
  /** fp32 master parameters, paramSpecs(config) order */
  model: Float32Array;
  /** Adam moments when stored and requested (weights-only checkpoints have none) */
  adamM?: Float32Array;
  adamV?: Float32Array;
}

export interface LoadOptions {
  /** also load Adam moments when present (default true) */
  optimizer?: boolean;
  /** fill these (already allocated, e.g. reused host staging) instead of allocating */
  into?: { model?: Float32Array; adamM?: Float32Array; adamV?: Float32Array };
  onProgress?: OnProgress;
}

/** Load a whole native checkpoint into host arenas, verifying every checksum. */
export function loadCheckpoint(path: string, opts: LoadOptions = {}): LoadedCheckpoint {
  const r = new NativeReader(path);
  try {
    r.checkFileSizes();
    const config = r.meta.model;
    const specs = paramSpecs(config);
    const total = totalParams(specs);
    const withOptim = (opts.optimizer ?? true) && specs.every((s) => r.has("adam_m", s.name) && r.has("adam_v", s.name));
    const groups: [Group, "model" | "adamM" | "adamV"][] = [["model", "model"]];
    if (withOptim) groups.push(["adam_m", "adamM"], ["adam_v", "adamV"]);
    const out: Partial<Record<"model" | "adamM" | "adamV", Float32Array>> = {};
    let done = 0;
    for (const [g, key] of groups) {
      const arena = opts.into?.[key] ?? new Float32Array(total);
      if (arena.length !== total) throw new Error(`loadCheckpoint: ${key} buffer has ${arena.length} elements, the model has ${total}`);
      for (const s of specs) {
        r.read(g, s.name, arena.subarray(s.offset, s.offset + s.numel));
        done += s.numel * 4;
        opts.onProgress?.(done, groups.length * total * 4);
      }
      out[key] = arena;
    }
    return {
      path, meta: r.meta, config, trainState: r.meta.trainState ?? {}, runConfig: r.meta.runConfig, dataCursor: r.meta.dataCursor, rng: r.meta.rng,
      model: out.model!, adamM: out.adamM, adamV: out.adamV,
    };
  } finally {
    r.close();
  }
}

/** Read every stored tensor once (all groups), verifying checksums. Returns tensor count and bytes. */
export function verifyCheckpoint(path: string, onProgress?: OnProgress): { tensors: number; bytes: number; storedBytes: number } {
  const r = new NativeReader(path);
  try {
    r.checkFileSizes();
    const scratch = new Scratch();
    const bytes = r.meta.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * 4, 0);
    let done = 0, stored = 0;
    for (const t of r.meta.tensors) {
      const n = t.shape.reduce((x, y) => x * y, 1);
      r.read(t.group, t.name, scratch.f32(n));
      done += n * 4;
      stored += t.slices.reduce((a, s) => a + s.length, 0);
      onProgress?.(done, bytes);
    }
    return { tensors: r.meta.tensors.length, bytes, storedBytes: stored };
  } finally {
    r.close();
  }
}
