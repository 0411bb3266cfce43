// Reading OLMo-core checkpoints: a step folder `stepN/` with config.json (the experiment config),
// train/rank0.pt (trainer state) and model_and_optim/ (torch.distributed.checkpoint: .metadata and
// __{rank}_{n}.distcp files of torch.save blobs; see dcp-metadata.ts and ../torch/torch-save.ts). State-dict
// keys (OLMo-core d7301e62, distributed/checkpoint/__init__.py _prepare_state_dict, flattened by
// DCP's DefaultSavePlanner): model.<name>, optim.state.<name>.{exp_avg, exp_avg_sq, step} and
// optim.param_groups.<i>.<field> (or optim.param_groups.<name>.<field> when the optimizer state was
// flattened; OLMo-core's get_lr_from_checkpoint tells them apart by optim.param_groups.0.params).
// The reader hands out element ranges of WHOLE tensors in HF names, as NativeReader.readRange does:
// FSDP saves each rank's row block as one chunk, so a range reads only the bytes it needs inside the
// chunks' blobs (bf16/fp16 converted to fp32), and a model that does not match its config is refused.
import { closeSync, existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../../errors.ts";
import type { ModelConfig } from "../../model/config.ts";
import { type ParamSpec, paramSpecs } from "../../model/params.ts";
import { bytesOf, halfToF32 } from "../../tensor/dtype.ts";
import { type DcpMetadata, type DcpStorage, type DcpTensor, parseDcpMetadata } from "./dcp-metadata.ts";
import { Scratch, fileSize, openForRead } from "../io.ts";
import { modelConfigFromOlmoCore, readJsonObject } from "./config.ts";
import { hfNameOrThrow, olmoCoreName } from "./names.ts";
import { type OlmoCoreTrainState, readOlmoCoreTrainState } from "./train-state.ts";
import { PyFloat, type PyValue } from "../torch/pickle-read.ts";
import { checkPlainData } from "../torch/plain-data.ts";
import { DTYPE_BYTES, type TorchTensor, readTensorElements, readTorchArchive } from "../torch/torch-save.ts";
import { type KeptItem, MAX_KEPT_TENSOR_BYTES, derivedPath, keptValue } from "./items.ts";

export type OlmoCoreGroup = "model" | "adam_m" | "adam_v";

/** The DCP key of a tensor of `group` for OLMo-core parameter name `oc`. */
export function dcpKey(group: OlmoCoreGroup | "step", oc: string): string {
  return group === "model" ? `model.${oc}` : `optim.state.${oc}.${group === "adam_m" ? "exp_avg" : group === "adam_v" ? "exp_avg_sq" : "step"}`;
}

/** A step folder (model_and_optim/.metadata) or a model_and_optim folder itself (.metadata, no native index). */
export function isOlmoCoreCheckpoint(dir: string): boolean {
  return existsSync(join(dir, "model_and_optim", ".metadata")) || (existsSync(join(dir, ".metadata")) && !existsSync(join(dir, "metadata.msgpack")));
}

export interface OlmoCoreOpenOptions {
  /** an experiment config.json to take the model from instead of the step folder's */
  configPath?: string;
}

interface ChunkGeom {
  t: TorchTensor;
  fd: number;
  file: string;
}

export class OlmoCoreReader {
  /** the step folder (holds config.json and train/), or null when given a bare model_and_optim folder */
  readonly stepDir: string | null;
  readonly mcDir: string;
  readonly meta: DcpMetadata;
  readonly model: ModelConfig;
  readonly specs: ParamSpec[];
  /** the experiment config as written by OLMo-core (null without one) */
  readonly config: Record<string, any> | null;
  readonly trainState: OlmoCoreTrainState | null;
  /** the data-order seed: the trainer state's, else the config's data_loader.seed */
  readonly dataSeed: number | null;
  private readonly fds = new Map<string, number>();
  private readonly geoms = new Map<DcpStorage, ChunkGeom>();
  private readonly scratch = new Scratch();

  constructor(readonly path: string, opts: OlmoCoreOpenOptions = {}) {
    if (!existsSync(path)) throw new UserError(`checkpoint not found: ${path}`);
    if (existsSync(join(path, "model_and_optim", ".metadata"))) {
      this.stepDir = path;
      this.mcDir = join(path, "model_and_optim");
    } else if (existsSync(join(path, ".metadata"))) {
      this.mcDir = path;
      this.stepDir = existsSync(join(dirname(path), "train")) || existsSync(join(dirname(path), "config.json")) ? dirname(path) : null;
    } else {
      throw new UserError(`${path}: not an OLMo-core checkpoint: no model_and_optim/.metadata (torch.distributed.checkpoint metadata)`);
    }
    const metaPath = join(this.mcDir, ".metadata");
    this.meta = parseDcpMetadata(readFileSync(metaPath), metaPath);
    this.checkStorageBounds();
    const configPath = opts.configPath ?? (this.stepDir ? join(this.stepDir, "config.json") : null);
    if (!configPath || !existsSync(configPath)) {
      throw new UserError(`${path}: no config.json next to the checkpoint to take the model from; pass --config CFG (an OLMo-core experiment config.json)`);
    }
    this.config = readJsonObject(configPath, "OLMo-core experiment config");
    this.model = modelConfigFromOlmoCore(this.config, configPath);
    this.specs = paramSpecs(this.model);
    this.checkModel(configPath);
    const rank0 = this.stepDir ? join(this.stepDir, "train", "rank0.pt") : null;
    this.trainState = rank0 && existsSync(rank0) ? readOlmoCoreTrainState(rank0) : null;
    // OLMo-core names a step folder after its global step (Checkpointer.checkpoint_dirname): a folder must agree with itself
    const named = this.stepDir ? /^step(\d+)$/.exec(basename(this.stepDir)) : null;
    if (named && this.trainState && Number(named[1]) !== this.trainState.step) {
      throw new UserError(`${rank0}: the trainer state's global_step is ${this.trainState.step}, but the folder is named ${basename(this.stepDir!)}`);
    }
    const cfgSeed = this.config.data_loader?.seed;
    this.dataSeed = this.trainState?.dataLoader?.seed ?? (Number.isSafeInteger(cfgSeed) ? cfgSeed : null);
  }

  /**
   * Every item's bytes lie inside its file, no two items share a byte, and a tensor chunk's item is
   * at least as long as its elements: what DCP's writers produce (pytorch/pytorch
   * torch/distributed/checkpoint/filesystem.py _write_item at 0140b62d, OLMo-core
   * src/olmo_core/distributed/checkpoint/filesystem.py _write_items at 003ae116: items follow each
   * other in a file, offset = tell() before, length = tell() after − offset), and what bounds a
   * read by the bytes on disk: a few KB of metadata cannot make an import write gigabytes.
   * Cheap: one stat per file, one sort of the items.
   */
  private checkStorageBounds(): void {
    const sizes = new Map<string, number>();
    const items = new Map<string, { what: string; s: DcpStorage }[]>();
    const check = (what: string, s: DcpStorage) => {
      let size = sizes.get(s.relativePath);
      if (size === undefined) {
        const p = join(this.mcDir, s.relativePath);
        if (s.relativePath.includes("..") || !existsSync(p) || !statSync(p).isFile()) throw new UserError(`${this.mcDir}: item ${what} is stored in ${s.relativePath}, which is missing`);
        sizes.set(s.relativePath, (size = fileSize(p)));
        items.set(s.relativePath, []);
      }
      if (s.offset + s.length > size) {
        throw new UserError(`${join(this.mcDir, s.relativePath)}: item ${what} (bytes ${s.offset}..${s.offset + s.length}) runs past the end of the file (${size} bytes): truncated or corrupt`);
      }
      items.get(s.relativePath)!.push({ what, s });
    };
    for (const t of this.meta.tensors.values()) {
      for (const c of t.chunks) {
        check(t.fqn, c.storage);
        const bytes = c.sizes.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
        if (c.storage.length < bytes) {
          throw new UserError(`${join(this.mcDir, c.storage.relativePath)}: item ${t.fqn} at [${c.offsets}] holds ${c.storage.length} bytes, fewer than its ${bytes} bytes of [${c.sizes}] ${t.dtype} elements`);
        }
      }
    }
    for (const [fqn, s] of this.meta.bytes) check(fqn, s);
    for (const [rel, list] of items) {
      list.sort((a, b) => a.s.offset - b.s.offset);
      for (let i = 1; i < list.length; i++) {
        const a = list[i - 1], b = list[i];
        if (a.s.offset + a.s.length > b.s.offset) {
          throw new UserError(`${join(this.mcDir, rel)}: items ${a.what} (bytes ${a.s.offset}..${a.s.offset + a.s.length}) and ${b.what} (bytes ${b.s.offset}..${b.s.offset + b.s.length}) share bytes: every item of a DCP file has its own`);
        }
      }
    }
  }

  /** The checkpoint's model tensors are exactly the config's parameters, with its shapes. */
  private checkModel(configPath: string): void {
    const want = new Map(this.specs.map((s) => [olmoCoreName(s.name), s]));
    for (const fqn of this.meta.tensors.keys()) {
      if (!fqn.startsWith("model.")) continue;
      const oc = fqn.slice(6);
      hfNameOrThrow(oc, this.mcDir);
      if (!want.has(oc)) throw new UserError(`${this.mcDir}: tensor ${fqn} is not a parameter of the model in ${configPath} (a model with more layers?)`);
    }
    // the Adam state holds the moments and the counter of each parameter, nothing else olmo would drop
    for (const fqn of [...this.meta.tensors.keys(), ...this.meta.bytes.keys()]) {
      if (!fqn.startsWith("optim.state.")) continue;
      const last = fqn.lastIndexOf("."), oc = fqn.slice("optim.state.".length, last), field = fqn.slice(last + 1);
      if (!want.has(oc)) throw new UserError(`${this.mcDir}: ${fqn} is optimizer state of ${oc}, which is not a parameter of the model in ${configPath}`);
      if (!["exp_avg", "exp_avg_sq", "step"].includes(field)) {
        throw new UserError(`${this.mcDir}: ${fqn} is optimizer state olmo does not keep (AdamW's is exp_avg, exp_avg_sq and step; amsgrad's max_exp_avg_sq is not supported)`);
      }
    }
    for (const [oc, s] of want) {
      const t = this.meta.tensors.get(`model.${oc}`);
      if (!t) throw new UserError(`${this.mcDir}: tensor model.${oc} is missing (the model in ${configPath} has it, shape [${s.shape}])`);
      if (t.size.join(",") !== s.shape.join(",")) throw new UserError(`${this.mcDir}: tensor model.${oc} has shape [${t.size}], but ${configPath} implies [${s.shape}]: the model does not match the config`);
      for (const g of ["adam_m", "adam_v"] as const) {
        const m = this.meta.tensors.get(dcpKey(g, oc));
        if (m && m.size.join(",") !== s.shape.join(",")) throw new UserError(`${this.mcDir}: tensor ${m.fqn} has shape [${m.size}], its parameter [${s.shape}]`);
      }
    }
  }

  private tensorOf(group: OlmoCoreGroup | "step", hf: string): DcpTensor | undefined {
    return this.meta.tensors.get(dcpKey(group, olmoCoreName(hf)));
  }

  has(group: OlmoCoreGroup, hf: string): boolean {
    return this.tensorOf(group, hf) !== undefined;
  }

  /** Adam moments for every parameter (a weights-only checkpoint has none). */
  hasOptimizerState(): boolean {
    return this.specs.every((s) => this.has("adam_m", s.name) && this.has("adam_v", s.name));
  }

  private fd(rel: string): number {
    let fd = this.fds.get(rel);
    if (fd === undefined) this.fds.set(rel, (fd = openForRead(join(this.mcDir, rel), "checkpoint")));
    return fd;
  }

  /** A chunk's blob: its torch.save tensor, checked against the metadata. Parsed once. */
  private chunkTensor(t: DcpTensor, chunkSizes: number[], s: DcpStorage): ChunkGeom {
    let g = this.geoms.get(s);
    if (g) return g;
    const file = join(this.mcDir, s.relativePath), fd = this.fd(s.relativePath);
    const where = `${file}: item ${t.fqn} at ${s.offset}`;
    const a = readTorchArchive(fd, s.offset, s.length, where);
    const bt = a.tensor(a.root);
    if (!bt) throw new UserError(`${where}: the blob holds no tensor`);
    if (bt.dtype !== t.dtype) throw new UserError(`${where}: the blob is ${bt.dtype}, the metadata says ${t.dtype}`);
    const numel = (xs: number[]) => xs.reduce((x, y) => x * y, 1);
    if (numel(bt.shape) !== numel(chunkSizes) || (bt.shape.length === chunkSizes.length && bt.shape.join(",") !== chunkSizes.join(","))) {
      throw new UserError(`${where}: the blob's tensor has shape [${bt.shape}], the chunk [${chunkSizes}]`);
    }
    g = { t: bt, fd, file };
    this.geoms.set(s, g);
    return g;
  }

  /** Read elements [lo, lo + n) of a chunk (its own row-major order) as f32 into out[at..]. */
  private readChunkElements(g: ChunkGeom, what: string, lo: number, n: number, out: Float32Array, at: number): void {
    const es = DTYPE_BYTES[g.t.dtype];
    const dst = out.subarray(at, at + n);
    if (g.t.dtype === "f32") return readTensorElements(g.fd, g.t, lo, n, bytesOf(dst), `${g.file} (${what})`);
    if (g.t.dtype !== "bf16" && g.t.dtype !== "f16") throw new UserError(`${g.file}: ${what} is ${g.t.dtype}, not a floating-point tensor`);
    const raw = this.scratch.u16(n);
    readTensorElements(g.fd, g.t, lo, n, new Uint8Array(raw.buffer, raw.byteOffset, n * es), `${g.file} (${what})`);
    halfToF32(g.t.dtype, raw, dst);
  }

  /**
   * Elements [start, start + out.length) of one whole tensor (flat, row-major) as f32, assembled
   * from the chunks (rectangles: FSDP row blocks, or TP column blocks of 2-D tensors) that hold them.
   */
  readRange(group: OlmoCoreGroup, hf: string, start: number, out: Float32Array): void {
    const t = this.tensorOf(group, hf);
    if (!t) throw new UserError(`${this.mcDir}: missing tensor ${dcpKey(group, olmoCoreName(hf))}`);
    const numel = t.size.reduce((a, b) => a * b, 1);
    const end = start + out.length;
    if (start < 0 || end > numel) throw new Error(`readRange: [${start}, ${end}) is outside ${hf}'s ${numel} elements`);
    if (out.length === 0) return;
    // the tensor as [R, C]: rows along dim 0, the rest flattened
    const R = t.size.length === 0 ? 1 : t.size[0], C = R === 0 ? 0 : numel / R;
    for (const c of t.chunks) {
      const r0 = c.offsets[0] ?? 0, rs = c.sizes[0] ?? 1;
      let c0 = 0, cs = C;
      if (t.size.length === 2) [c0, cs] = [c.offsets[1], c.sizes[1]];
      else if (t.size.length > 2 && c.sizes.slice(1).some((s, d) => s !== t.size[d + 1])) {
        throw new UserError(`${this.mcDir}: ${t.fqn}: chunks split beyond dimension 0 of a ${t.size.length}-D tensor are not supported`);
      }
      if (rs === 0 || cs === 0) continue;
      const g = () => this.chunkTensor(t, c.sizes, c.storage);
      if (cs === C) {
        // full-width rows: the chunk is one flat range of the tensor
        const a = Math.max(start, r0 * C), b = Math.min(end, (r0 + rs) * C);
        if (a < b) this.readChunkElements(g(), t.fqn, a - r0 * C, b - a, out, a - start);
        continue;
      }
      const ra = Math.max(r0, Math.floor(start / C)), rb = Math.min(r0 + rs, Math.ceil(end / C));
      for (let r = ra; r < rb; r++) {
        const a = Math.max(c0, start - r * C), b = Math.min(c0 + cs, end - r * C);
        if (a < b) this.readChunkElements(g(), t.fqn, (r - r0) * cs + (a - c0), b - a, out, r * C + a - start);
      }
    }
  }

  /** One whole tensor into `out` (exactly its element count). */
  read(group: OlmoCoreGroup, hf: string, out: Float32Array): void {
    const t = this.tensorOf(group, hf);
    const n = t ? t.size.reduce((a, b) => a * b, 1) : -1;
    if (t && out.length !== n) throw new UserError(`${this.mcDir}: tensor ${t.fqn} has shape [${t.size}] (${n} elements), expected ${out.length}`);
    this.readRange(group, hf, 0, out);
  }

  /**
   * The step counters of `names` for loading them as optimizer state (our metadata keeps whole counts):
   * a one-line error for one that is absent or not a non-negative integer.
   */
  stepCounters(names: string[]): Record<string, number> {
    return Object.fromEntries(names.map((n) => {
      const c = this.stepCounter(n);
      if (c === null || !Number.isInteger(c) || c < 0) throw new UserError(`${this.mcDir}: optim.state of ${n} has moments but ${c === null ? "no" : `an invalid (${c})`} step counter`);
      return [n, c];
    }));
  }

  /** AdamW's step counter of one parameter (optim.state.<name>.step), or null when not stored. */
  stepCounter(hf: string): number | null {
    const t = this.tensorOf("step", hf);
    if (t) {
      if (t.size.reduce((a, b) => a * b, 1) !== 1) throw new UserError(`${this.mcDir}: ${t.fqn} has shape [${t.size}], a step counter is one number`);
      const v = new Float32Array(1);
      const c = t.chunks[0];
      this.readChunkElements(this.chunkTensor(t, c.sizes, c.storage), t.fqn, 0, 1, v, 0);
      return v[0];
    }
    const item = this.byteItem(dcpKey("step", olmoCoreName(hf)));
    return typeof item === "number" ? item : item instanceof PyFloat ? item.value : null;
  }

  /**
   * The value of a non-tensor item (e.g. optim.param_groups.0.fused), or undefined when absent:
   * checked to be plain data (a pickled call is refused, never passed on), floats as PyFloat.
   */
  byteItem(fqn: string): PyValue {
    const s = this.meta.bytes.get(fqn);
    if (!s) return undefined;
    const where = `${join(this.mcDir, s.relativePath)}: item ${fqn}`;
    const root = readTorchArchive(this.fd(s.relativePath), s.offset, s.length, where, { keepFloats: true }).root;
    checkPlainData(root, where);
    return root;
  }

  /**
   * Every item outside model.* and optim.state.* (the optimizer's param groups), as it was: a value
   * checked to be plain data, a tensor (a compiled optimizer's lr) with its dtype, shape and bytes.
   */
  keptItems(): KeptItem[] {
    const kept = (fqn: string) => !fqn.startsWith("model.") && !fqn.startsWith("optim.state.");
    const names = new Set(this.specs.map((s) => olmoCoreName(s.name)));
    const path = (fqn: string) => this.meta.paths.get(fqn) ?? derivedPath(fqn, names);
    const out: KeptItem[] = [];
    for (const fqn of this.meta.bytes.keys()) if (kept(fqn)) out.push(keptValue(fqn, path(fqn), this.byteItem(fqn)));
    for (const t of this.meta.tensors.values()) {
      if (!kept(t.fqn)) continue;
      const numel = t.size.reduce((a, b) => a * b, 1), bytes = numel * DTYPE_BYTES[t.dtype];
      const c = t.chunks[0];
      if (bytes > MAX_KEPT_TENSOR_BYTES || t.chunks.length !== 1 || c.sizes.join(",") !== t.size.join(",")) {
        throw new UserError(`${this.mcDir}: tensor ${t.fqn} [${t.size}] is neither model nor Adam state, and not a small whole tensor olmo can keep as it is (a param-group field)`);
      }
      const g = this.chunkTensor(t, c.sizes, c.storage), data = new Uint8Array(bytes);
      readTensorElements(g.fd, g.t, 0, numel, data, `${g.file} (${t.fqn})`);
      out.push({ fqn: t.fqn, path: path(t.fqn), dtype: t.dtype, shape: t.size, data: Buffer.from(data).toString("base64") });
    }
    return out;
  }

  /** "unflattened" (optim.param_groups.<i>.<field>) or "flattened" (optim.param_groups.<name>.<field>). */
  paramGroupFormat(): "unflattened" | "flattened" | null {
    if (this.meta.bytes.has("optim.param_groups.0.params")) return "unflattened";
    return [...this.meta.bytes.keys()].some((k) => k.startsWith("optim.param_groups.")) ? "flattened" : null;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.geoms.clear();
  }
}

/** Open an OLMo-core step folder (or its model_and_optim/). */
export function openOlmoCoreCheckpoint(dir: string, opts: OlmoCoreOpenOptions = {}): OlmoCoreReader {
  return new OlmoCoreReader(dir, opts);
}
