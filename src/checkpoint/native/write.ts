// The native checkpoint format: a directory holding
//   model.rank{r}.bin   fp32 master parameters of rank r, in arena (paramSpecs) order
//   optim.rank{r}.bin   Adam first moments, then second moments, same order
//   metadata.msgpack    written LAST: format version, model config, run config, train state, data
//                       cursor, RNG state, and the tensor index (name, group, logical shape, dtype,
//                       and per-rank slices: index ranges of the logical tensor, file, byte offset,
//                       length, crc32, optional lz4 chunking; uncompressed slices also carry a crc32
//                       per 4 MiB block for ranged reads)
// metadata.ts encodes the index with its own checksum; validate.ts checks all of it before use.
// Saving goes to `<final>.tmp-<pid>`, fsyncs every file and the directory, then renames; so a
// directory with metadata is complete, and a kill -9 at any point leaves the previous checkpoint as
// the newest complete one. A parallel save writes the same directory from every rank: each rank its
// own files with the rectangles of each tensor it owns (slices with index ranges), an index part
// per rank, and rank 0 merges the parts into the metadata last; readers assemble any element range
// of a tensor from its slices, so every TP/DP layout reads every checkpoint.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { UserError } from "../../errors.ts";
import type { ModelConfig } from "../../model/config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "../../model/params.ts";
import { bytesOf } from "../../tensor/dtype.ts";
import { lz4Compress } from "../codec.ts";
import { type CheckpointMeta, type Group, type OptimMeta, type SliceEntry, type TensorEntry, regionNumel, slicesNumel } from "./format.ts";
import { checksum, crc32Combine, crc32Combiner, pwriteAll } from "../io.ts";
import { FORMAT, FORMAT_VERSION, encodeMetadata, packr } from "./metadata.ts";
import { METADATA_FILE } from "../naming.ts";
import type { OnProgress, TensorSink } from "../source.ts";
import { checkWritablePath, fsyncPath, publishDir, removeDeadStaging, stagingPath, writeFileAtomic } from "../../output-dir.ts";

const GROUP_FILE: Record<Group, string> = { model: "model", adam_m: "optim", adam_v: "optim" };

/** Checksum block of ranged reads: 4 MiB (a 32B model's index then holds ~100k block checksums). */
export const CRC_BLOCK_BYTES = 4 << 20;
let blockCombiner: ((crc1: number, crc2: number) => number) | null = null; // built at the first save (~4 ms)
const appendBlockCrc = (whole: number, crc: number) => (blockCombiner ??= crc32Combiner(CRC_BLOCK_BYTES))(whole, crc);

export interface SaveOptions {
  /** lz4-compress tensor slices (see codec.ts for what it buys) */
  compress?: boolean;
  onProgress?: OnProgress;
}

type MetaFields = Partial<Pick<CheckpointMeta, "runConfig" | "trainState" | "dataCursor" | "rng" | "optim">>;

export interface NativeWriterOptions extends SaveOptions {
  /** for progress: total bytes that will be added */
  totalBytes?: number;
  rank?: number;
  /** metadata used when finish() is called without arguments (the TensorSink path) */
  meta?: MetaFields;
  /** the temporary directory (default `<final>.tmp-<pid>`); a parallel save names rank 0's */
  tmp?: string;
  /** join a temporary directory that rank 0's writer already created (ranks > 0 of a parallel save) */
  joinTmp?: boolean;
}

/** A parallel save's shape: every rank writes its part, rank 0 merges `world` parts into the index. */
export interface PartsLayout {
  world: number;
  tp: number;
  dp: number;
}

/** The slice index a rank > 0 of a parallel save leaves for rank 0 (appears whole: written, then renamed). */
export const partFile = (rank: number) => `part.rank${rank}.msgpack`;

/**
 * Builds one checkpoint directory. Tensors are appended to per-rank files; finish() writes the
 * metadata last and publishes the directory. Also a TensorSink (model group) for import and soup.
 */
export class NativeWriter implements TensorSink {
  readonly tmp: string;
  /** slices written by this rank, by `${group}/${name}` */
  private readonly tensors = new Map<string, TensorEntry>();
  private readonly files = new Map<string, { fd: number; pos: number }>();
  private readonly specs: Map<string, ParamSpec>;
  private doneBytes = 0;

  constructor(readonly finalPath: string, readonly model: ModelConfig, readonly opts: NativeWriterOptions = {}) {
    this.tmp = opts.tmp ?? stagingPath(finalPath);
    if (!opts.joinTmp) {
      // the longest file inside: part.rank<r>.msgpack.tmp-<pid>
      checkWritablePath(finalPath, "checkpoint", 48);
      removeDeadStaging(finalPath);
      rmSync(this.tmp, { recursive: true, force: true });
      mkdirSync(this.tmp, { recursive: true });
    } else if (!existsSync(this.tmp)) {
      throw new UserError(`checkpoint save: rank ${opts.rank ?? 0} cannot see rank 0's ${this.tmp}: the run folder must be on a filesystem every rank shares`);
    }
    this.specs = new Map(paramSpecs(model).map((s) => [s.name, s]));
  }

  /** Append one whole tensor of `group` to this rank's file for that group. */
  add(group: Group, name: string, data: Float32Array): void {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`NativeWriter: ${name} is not a parameter of this model`);
    this.addRegion(group, name, spec.shape.map((d) => [0, d] as [number, number]), data);
  }

  /**
   * Append a rectangle of one tensor (`ranges`: [start, end) per dimension, data row-major within
   * it) to this rank's file: what a parallel rank owns of the tensor.
   */
  addRegion(group: Group, name: string, ranges: [number, number][], data: Float32Array): void {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`NativeWriter: ${name} is not a parameter of this model`);
    if (ranges.length !== spec.shape.length || ranges.some(([a, b], i) => !(0 <= a && a <= b && b <= spec.shape[i]))) {
      throw new Error(`NativeWriter: region ${JSON.stringify(ranges)} is outside ${name} [${spec.shape}]`);
    }
    const area = regionNumel(ranges);
    if (data.length !== area) throw new Error(`NativeWriter: ${name} region ${JSON.stringify(ranges)} has ${area} elements, got ${data.length}`);
    const rank = this.opts.rank ?? 0;
    const file = `${GROUP_FILE[group]}.rank${rank}.bin`;
    let f = this.files.get(file);
    if (!f) {
      f = { fd: openSync(join(this.tmp, file), "w"), pos: 0 };
      this.files.set(file, f);
    }
    const raw = bytesOf(data);
    const slice: SliceEntry = { rank, ranges: ranges.map(([a, b]) => [a, b] as [number, number]), file, offset: f.pos, length: 0, crc32: 0 };
    if (this.opts.compress) {
      let crc = 0;
      const start = f.pos;
      slice.lz4 = lz4Compress(raw, (c) => {
        pwriteAll(f!.fd, c, f!.pos);
        f!.pos += c.length;
        crc = Bun.hash.crc32(c, crc); // running crc over the stored (compressed) bytes
      });
      slice.length = f.pos - start;
      slice.crc32 = crc;
    } else {
      // one pass over the bytes: a crc32 per block, the slice's crc32 combined from them
      slice.blockBytes = CRC_BLOCK_BYTES;
      slice.blockCrc32 = [];
      let whole = 0;
      for (let o = 0; o < raw.length; o += CRC_BLOCK_BYTES) {
        const block = raw.subarray(o, o + CRC_BLOCK_BYTES), crc = checksum(block);
        slice.blockCrc32.push(crc);
        whole = o === 0 ? crc : block.length === CRC_BLOCK_BYTES ? appendBlockCrc(whole, crc) : crc32Combine(whole, crc, block.length);
      }
      slice.crc32 = whole;
      pwriteAll(f.fd, raw, f.pos);
      f.pos += raw.length;
      slice.length = raw.length;
    }
    const key = `${group}/${name}`;
    const entry = this.tensors.get(key) ?? { name, group, shape: spec.shape, dtype: "f32" as const, slices: [] };
    entry.slices.push(slice);
    this.tensors.set(key, entry);
    this.doneBytes += raw.length;
    this.opts.onProgress?.(this.doneBytes, this.opts.totalBytes ?? this.doneBytes);
  }

  write(name: string, data: Float32Array): void {
    this.add("model", name, data);
  }

  private closeFiles(): void {
    for (const { fd } of this.files.values()) {
      fsyncSync(fd);
      closeSync(fd);
    }
    this.files.clear();
  }

  /** A rank > 0 of a parallel save: fsync its data files and leave its slice index for rank 0. */
  finishPart(): void {
    this.closeFiles();
    const p = join(this.tmp, partFile(this.opts.rank ?? 0));
    // written whole (staged, then renamed): rank 0 of an asynchronous save polls for it, and must never read half of it
    writeFileAtomic(p, packr.pack(JSON.parse(JSON.stringify([...this.tensors.values()]))), "checkpoint part");
  }

  /**
   * The index of every tensor: this writer's slices and, for a parallel save, those of the other
   * ranks' parts; tensors in parameter order per group, each checked to be covered exactly.
   */
  private mergedIndex(parts?: PartsLayout): TensorEntry[] {
    const all = new Map(this.tensors);
    for (let r = 1; r < (parts?.world ?? 1); r++) {
      const p = join(this.tmp, partFile(r));
      if (!existsSync(p)) throw new Error(`checkpoint save: rank ${r} left no part index in ${this.tmp}`);
      for (const t of packr.unpack(readFileSync(p)) as TensorEntry[]) {
        const key = `${t.group}/${t.name}`;
        const e = all.get(key);
        if (e) e.slices.push(...t.slices);
        else all.set(key, t);
      }
      rmSync(p);
    }
    const out: TensorEntry[] = [];
    for (const group of ["model", "adam_m", "adam_v"] as Group[]) {
      for (const spec of this.specs.values()) {
        const t = all.get(`${group}/${spec.name}`);
        if (!t) {
          if (group === "model") throw new Error(`checkpoint save: no slice of ${spec.name}`);
          continue;
        }
        const area = slicesNumel(t);
        if (area !== spec.numel) throw new Error(`checkpoint save: the slices of ${spec.name} (${group}) cover ${area} of ${spec.numel} elements`);
        t.slices.sort((a, b) => a.rank - b.rank || a.offset - b.offset);
        out.push(t);
      }
    }
    return out;
  }

  /**
   * fsync data files, write metadata last, fsync, rename into place. Returns the final path.
   * parts: a parallel save, called on rank 0 once every other rank's finishPart() returned.
   */
  finish(meta: MetaFields = this.opts.meta ?? {}, parts?: PartsLayout): string {
    this.closeFiles();
    const full: CheckpointMeta = {
      format: FORMAT,
      version: FORMAT_VERSION,
      name: basename(this.finalPath),
      createdAt: new Date().toISOString(),
      model: this.model,
      runConfig: meta.runConfig ?? null,
      trainState: meta.trainState ?? {},
      dataCursor: meta.dataCursor ?? null,
      rng: meta.rng ?? null,
      ...(meta.optim ? { optim: meta.optim } : {}),
      layout: parts ? { world: parts.world, tp: parts.tp, dp: parts.dp } : { world: 1, tp: 1, dp: 1 },
      tensors: this.mergedIndex(parts),
    };
    const metaPath = join(this.tmp, METADATA_FILE);
    writeFileSync(metaPath, encodeMetadata(full));
    fsyncPath(metaPath);
    // Re-saving an existing name (e.g. after resuming at that step) swaps the old one aside first;
    // its temporary name keeps it invisible to findLatestCheckpoint until it is removed.
    publishDir(this.tmp, this.finalPath, { replace: true });
    return this.finalPath;
  }

  /** Remove the temp directory (a save that failed part way; a joining rank only closes its files). */
  abort(): void {
    for (const { fd } of this.files.values()) closeSync(fd);
    this.files.clear();
    if (!this.opts.joinTmp) rmSync(this.tmp, { recursive: true, force: true });
  }
}

export interface CheckpointContents {
  /** model shape: defines the arena layout (paramSpecs order) */
  model: ModelConfig;
  /** the resolved run config (any JSON-able object) */
  runConfig?: unknown;
  /** e.g. {step, tokensProcessed}; any JSON-able object */
  trainState?: Record<string, unknown>;
  dataCursor?: unknown;
  rng?: unknown;
  /** optimizer state beyond the moments (step counters; with the moments) */
  optim?: OptimMeta;
  /** host arenas in paramSpecs order: fp32 master params and (optionally) Adam moments */
  tensors: { model: Float32Array; adamM?: Float32Array; adamV?: Float32Array };
}

/** Save a checkpoint as `<dir>/<name>` (atomically). Returns its path. */
export function saveCheckpoint(dir: string, name: string, c: CheckpointContents, opts: SaveOptions = {}): string {
  const specs = paramSpecs(c.model);
  const total = totalParams(specs);
  const groups: [Group, Float32Array | undefined][] = [["model", c.tensors.model], ["adam_m", c.tensors.adamM], ["adam_v", c.tensors.adamV]];
  for (const [g, a] of groups) {
    if (a && a.length !== total) throw new Error(`saveCheckpoint: ${g} arena has ${a.length} elements, the model has ${total}`);
  }
  if (!!c.tensors.adamM !== !!c.tensors.adamV) throw new Error("saveCheckpoint: give both Adam moments or neither");
  mkdirSync(dir, { recursive: true });
  const present = groups.filter(([, a]) => a) as [Group, Float32Array][];
  const w = new NativeWriter(join(dir, name), c.model, { ...opts, totalBytes: present.length * total * 4 });
  try {
    // Arena order == file order: each group is written as consecutive slices of one buffer.
    for (const [g, arena] of present) for (const s of specs) w.add(g, s.name, arena.subarray(s.offset, s.offset + s.numel));
    return w.finish({ runConfig: c.runConfig, trainState: c.trainState, dataCursor: c.dataCursor, rng: c.rng, optim: c.optim });
  } catch (e) {
    w.abort();
    throw e;
  }
}

