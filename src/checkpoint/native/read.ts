// Reading native checkpoints: per tensor (a streaming TensorSource for soup/export/info), element
// ranges of a tensor (a parallel rank's part at resume) or whole arenas. Every read verifies the
// crc32 of the stored bytes it reads (the slice's, or its 4 MiB blocks'), so a flipped byte is
// reported with the tensor's name instead of silently training on garbage.
import { closeSync, existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import type { ModelConfig } from "../../model/config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "../../model/params.ts";
import { bytesOf } from "../../tensor/dtype.ts";
import { lz4Decompress } from "../codec.ts";
import { Scratch, fileSize, openForRead, preadExact } from "../io.ts";
import { type ReadMetaOptions, readCheckpointMeta } from "./metadata.ts";
import { type CheckpointMeta, type Group, type SliceEntry, type TensorEntry, regionNumel } from "./format.ts";
import { claimsOptimizer } from "./validate.ts";
import type { OnProgress, TensorSource } from "../source.ts";

/**
 * Random access to the tensors of one checkpoint directory; files are opened on first use. The
 * whole index is validated at construction (validate.ts) against `opts.model` (default: the stored
 * config) for what `opts.needs` asks (default: whatever the checkpoint claims to hold).
 */
export class NativeReader {
  readonly meta: CheckpointMeta;
  private readonly index = new Map<string, TensorEntry>();
  private readonly fds = new Map<string, number>();
  private readonly scratch = new Scratch();

  constructor(readonly path: string, opts: ReadMetaOptions = {}) {
    this.meta = readCheckpointMeta(path, opts);
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

  /** A tensor's slices (which validation checked to tile it) and its [rows, cols] view. */
  private layoutOf(group: Group, name: string): { t: TensorEntry; numel: number; R: number; C: number } {
    const t = this.entry(group, name);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const [R, C] = t.shape.length === 1 ? [1, t.shape[0]] : [t.shape[0], t.shape.slice(1).reduce((a, b) => a * b, 1)];
    return { t, numel, R, C };
  }

  /** Read one whole tensor into `out` (exactly its element count), verifying its checksums. */
  read(group: Group, name: string, out: Float32Array): void {
    const { t, numel } = this.layoutOf(group, name);
    if (out.length !== numel) throw new UserError(`${this.path}: tensor ${name} has shape [${t.shape}] (${numel} elements), expected ${out.length}`);
    if (t.slices.length !== 1) return this.readRange(group, name, 0, out);
    const s = t.slices[0];
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
   * Elements [start, start + out.length) of one tensor (flat, row-major), assembled from the slices
   * (rectangles) that hold them. Of an uncompressed slice only the 4 MiB checksum blocks holding the
   * needed rows are read, each verified; lz4 slices and slices without block checksums are read and
   * verified whole.
   */
  readRange(group: Group, name: string, start: number, out: Float32Array): void {
    const { t, numel, C } = this.layoutOf(group, name);
    const end = start + out.length;
    if (start < 0 || end > numel) throw new Error(`readRange: [${start}, ${end}) is outside ${name}'s ${numel} elements`);
    if (out.length === 0) return;
    const rowLo = Math.floor(start / C), rowHi = Math.ceil(end / C);
    const what = `tensor ${name} (${group})`;
    for (const s of t.slices) {
      const [r0, r1] = t.shape.length === 1 ? [0, 1] : s.ranges[0];
      const [c0, c1] = s.ranges[s.ranges.length - 1];
      const w = c1 - c0, ra = Math.max(r0, rowLo), rb = Math.min(r1, rowHi);
      if (rb <= ra || w === 0) continue;
      // rows [ra, rb) of the slice, then per row the wanted columns ∩ [c0, c1)
      const rows = this.sliceRows(s, (ra - r0) * w, (rb - r0) * w, what);
      for (let r = ra; r < rb; r++) {
        const a = Math.max(c0, Math.max(start, r * C) - r * C), b = Math.min(c1, Math.min(end, (r + 1) * C) - r * C);
        if (b <= a) continue;
        const src = (r - ra) * w + (a - c0);
        out.set(rows.subarray(src, src + (b - a)), r * C + a - start);
      }
    }
  }

  /** Elements [lo, hi) of one slice's stored data, checksum-verified. */
  private sliceRows(s: SliceEntry, lo: number, hi: number, what: string): Float32Array {
    const filePath = join(this.path, s.file), fd = this.fd(s.file);
    const count = regionNumel(s.ranges);
    if (s.lz4 || !s.blockCrc32 || !s.blockBytes) {
      const stored = this.scratch.bytes(s.length);
      preadExact(fd, stored, s.offset, filePath, what);
      checkCrc(stored, s.crc32, filePath, what);
      const whole = new Float32Array(count);
      if (s.lz4) lz4Decompress(stored, s.lz4, bytesOf(whole), `${filePath}: ${what}`);
      else bytesOf(whole).set(stored.subarray(0, count * 4));
      return whole.subarray(lo, hi);
    }
    const bb = s.blockBytes, byteLo = lo * 4, byteHi = hi * 4;
    const b0 = Math.floor(byteLo / bb), b1 = Math.ceil(byteHi / bb);
    const from = b0 * bb, to = Math.min(s.length, b1 * bb);
    const bytes = this.scratch.bytes(to - from);
    preadExact(fd, bytes, s.offset + from, filePath, what);
    for (let b = b0; b < b1; b++) {
      checkCrc(bytes.subarray(b * bb - from, Math.min(to, (b + 1) * bb) - from), s.blockCrc32[b], filePath, `${what}, block ${b}`);
    }
    const out = new Float32Array(hi - lo);
    bytesOf(out).set(bytes.subarray(byteLo - from, byteHi - from));
    return out;
  }

  /** That every data file is long enough (cheap; no reads; construction already checked it). */
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
    this.reader = new NativeReader(path, { needs: { optimizer: false } });
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
  /** the Adam step counter of every tensor, with the moments */
  stepCounters?: Record<string, number>;
}

export interface LoadOptions {
  /** load the Adam moments: true requires them, false skips them; default: when the checkpoint has them */
  optimizer?: boolean;
  /** fill these (already allocated, e.g. reused host staging) instead of allocating */
  into?: { model?: Float32Array; adamM?: Float32Array; adamV?: Float32Array };
  onProgress?: OnProgress;
}

/** Load a whole native checkpoint into host arenas, verifying every checksum. */
export function loadCheckpoint(path: string, opts: LoadOptions = {}): LoadedCheckpoint {
  // a checkpoint that claims optimizer state must hold all of it (validated): never a silent skip
  const r = new NativeReader(path, opts.optimizer === undefined ? {} : { needs: { optimizer: opts.optimizer } });
  try {
    const config = r.meta.model;
    const specs = paramSpecs(config);
    const total = totalParams(specs);
    const withOptim = opts.optimizer ?? claimsOptimizer(r.meta);
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
      stepCounters: withOptim ? stepCountersOf(r.meta, path, specs.map((s) => s.name)) : undefined,
    };
  } finally {
    r.close();
  }
}

/**
 * The Adam step counters of a checkpoint by tensor name: its optim field, or (checkpoints written
 * before it) trainState.adamStep for every tensor. A counter missing or invalid for any of `names`
 * is refused in one line.
 */
export function stepCountersOf(meta: CheckpointMeta, path: string, names: string[]): Record<string, number> {
  const byName = meta.optim?.step;
  const legacy = (meta.trainState as { adamStep?: unknown } | undefined)?.adamStep ?? 0;
  const out: Record<string, number> = {};
  for (const n of names) {
    const c = byName ? byName[n] : legacy;
    if (typeof c !== "number" || !Number.isInteger(c) || c < 0) {
      throw new UserError(`${path}: the Adam step counter of ${n} is ${byName && !(n in byName) ? "missing" : `invalid (${JSON.stringify(c)})`}`);
    }
    out[n] = c;
  }
  return out;
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
