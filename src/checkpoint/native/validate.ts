// The one check of a native checkpoint's index before anything in it is used (reader construction,
// resume, `olmo ckpt info`): every field's type, every tensor of the model present once with its
// shape and dtype, the slices of each tensor tiling it exactly (no gap, no overlap), every slice's
// bytes inside its file and not overlapping another's, the block checksums present and combining to
// the slice's, the train state and optimizer fields well formed, and, where a resume
// needs the optimizer, the Adam moments of every tensor. Any defect is one line (UserError) naming
// the checkpoint and the entry; nothing here allocates more than the index itself holds.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import type { ModelConfig } from "../../model/config.ts";
import { type ParamSpec, paramSpecs } from "../../model/params.ts";
import { crc32Combine, crc32Combiner } from "../io.ts";
import type { CheckpointMeta, Group, SliceEntry, TensorEntry } from "./format.ts";
import { parseCheckpointName } from "../naming.ts";

export interface CheckpointNeeds {
  /** the Adam moments of every tensor (a resume); false: weights only (export, soup, eval) */
  optimizer: boolean;
}

const GROUPS: Group[] = ["model", "adam_m", "adam_v"];
const FILE_OF: Record<Group, string> = { model: "model", adam_m: "optim", adam_v: "optim" };
const TRAIN_COUNTERS = ["step", "tokensProcessed", "adamStep"] as const;

type Rec = Record<string, unknown>;
const isObj = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isNat = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** A value in a message: JSON, cut short (a crafted index must not make a megabyte-long line). */
export function shown(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Whether the checkpoint says it holds optimizer state (any Adam moment, or optimizer counters). */
export function claimsOptimizer(meta: unknown): boolean {
  if (!isObj(meta)) return false;
  const tensors = Array.isArray(meta.tensors) ? meta.tensors : [];
  return meta.optim !== undefined || tensors.some((t) => isObj(t) && (t.group === "adam_m" || t.group === "adam_v"));
}

/** combiners by block size (building one costs ~4 ms; each call then ~40 ns) */
const combiners = new Map<number, (crc1: number, crc2: number) => number>();

/** The slice's crc32 from its blocks' (crc32 of A‖B from both parts and B's length). */
function combinedBlocks(crcs: number[], blockBytes: number, length: number): number {
  let full = combiners.get(blockBytes);
  if (!full) combiners.set(blockBytes, (full = crc32Combiner(blockBytes)));
  let whole = crcs[0];
  for (let b = 1; b < crcs.length; b++) {
    const len = Math.min(blockBytes, length - b * blockBytes);
    whole = len === blockBytes ? full(whole, crcs[b]) : crc32Combine(whole, crcs[b], len);
  }
  return whole;
}

/**
 * Validate `meta` (as decoded from metadata.msgpack) against `model` (the stored config, or the run's
 * when resuming) and return it typed. `path` is the checkpoint directory: the data files are stat'ed
 * (never read) to check that every slice's bytes exist.
 */
export function validateCheckpoint(meta: unknown, path: string, model: ModelConfig, needs: CheckpointNeeds): CheckpointMeta {
  const fail = (msg: string): never => {
    throw new UserError(`${path}: invalid checkpoint index (metadata.msgpack): ${msg}`);
  };
  if (!isObj(meta)) return fail("not a map");
  for (const k of ["name", "createdAt"]) if (typeof meta[k] !== "string") fail(`${k} is ${shown(meta[k])}, expected a string`);
  const layout = meta.layout;
  if (!isObj(layout) || ![layout.world, layout.tp, layout.dp].every((x) => isNat(x) && x >= 1) || (layout.world as number) !== (layout.tp as number) * (layout.dp as number)) {
    fail(`layout is ${shown(layout)}, expected {world, tp, dp} with world = tp × dp`);
  }
  const world = (layout as Rec).world as number;
  checkTrainState(meta.trainState, meta.name as string, fail);
  // the cursor's fields are the data loader's to check (checkLoaderState, at restore and in ckpt info)
  if (meta.dataCursor != null && !isObj(meta.dataCursor)) fail(`dataCursor is ${shown(meta.dataCursor)}, expected a map`);
  if (!Array.isArray(meta.tensors)) return fail(`tensors is ${shown(meta.tensors)}, expected a list`);
  const tensors = meta.tensors as unknown[];
  // paramSpecs is generated from the (possibly crafted) config: bound its length by the index first
  const specCount = 3 + 11 * model.nLayers;
  if (specCount > tensors.length) fail(`the stored config has ${model.nLayers} layers (${specCount} tensors) but the index lists ${tensors.length} tensors`);
  const specs = new Map(paramSpecs(model).map((s) => [s.name, s]));
  if (specs.size !== specCount) throw new Error(`validateCheckpoint: ${specs.size} parameters, expected ${specCount}`);

  const seen = new Map<string, TensorEntry>();
  const bytesInFile = new Map<string, [number, number, string][]>();
  for (const [i, t] of tensors.entries()) {
    const e = checkTensor(t, i, specs, world, fail);
    const key = `${e.group}/${e.name}`;
    if (seen.has(key)) fail(`tensor ${e.name} (${e.group}) is listed twice`);
    seen.set(key, e);
    for (const s of e.slices) {
      const list = bytesInFile.get(s.file) ?? [];
      list.push([s.offset, s.offset + s.length, `${e.name} (${e.group})`]);
      bytesInFile.set(s.file, list);
    }
  }
  const missing = (group: Group) => [...specs.keys()].filter((n) => !seen.has(`${group}/${n}`));
  const noModel = missing("model");
  if (noModel.length) fail(`${noModel.length} of ${specs.size} model tensors are missing (first: ${noModel[0]})`);
  for (const group of ["adam_m", "adam_v"] as Group[]) {
    const m = missing(group);
    if (m.length === 0 || (m.length === specs.size && !needs.optimizer)) continue;
    // some moments but not all is a damaged index whatever is asked; none is a weights-only checkpoint
    fail(m.length === specs.size
      ? `it holds no optimizer state (no ${group} tensors), which a resume needs (a weights-only checkpoint starts a run through checkpoint.loadPath)`
      : `the ${group} moments of ${m.length} of ${specs.size} tensors are missing (first: ${m[0]}); a resume would restart their Adam state`);
  }
  if (meta.optim !== undefined) checkOptim(meta.optim, specs, fail);
  checkFiles(path, bytesInFile, fail);
  return meta as unknown as CheckpointMeta;
}

function checkTrainState(ts: unknown, name: string, fail: (m: string) => never): void {
  if (!isObj(ts)) fail(`trainState is ${shown(ts)}, expected a map`);
  const st = ts as Rec;
  for (const k of TRAIN_COUNTERS) {
    if (st[k] !== undefined && !isNat(st[k])) fail(`trainState.${k} is ${shown(st[k])}, expected a non-negative integer`);
  }
  // the directory name carries the step too: a checkpoint must agree with itself
  const parts = parseCheckpointName(name);
  if (parts && st.step !== undefined && st.step !== parts.step) fail(`trainState.step is ${st.step} but the checkpoint is named ${name} (step ${parts.step})`);
}

function checkTensor(t: unknown, i: number, specs: Map<string, ParamSpec>, world: number, fail: (m: string) => never): TensorEntry {
  if (!isObj(t)) return fail(`tensors[${i}] is ${shown(t)}, expected a map`);
  if (typeof t.name !== "string") fail(`tensors[${i}].name is ${shown(t.name)}, expected a string`);
  const name = t.name as string;
  const group = t.group as Group;
  if (!GROUPS.includes(group)) fail(`tensor ${name}: group ${shown(t.group)} is not one of ${GROUPS.join(", ")}`);
  const what = `tensor ${name} (${group})`;
  const spec = specs.get(name);
  if (!spec) fail(`${what} is not a parameter of the stored model`);
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length !== spec!.shape.length || shape.some((d, k) => d !== spec!.shape[k])) {
    fail(`${what} has shape ${shown(shape)}, the model config implies [${spec!.shape}]`);
  }
  if (t.dtype !== "f32") fail(`${what} has dtype ${shown(t.dtype)}, expected "f32"`);
  if (!Array.isArray(t.slices) || t.slices.length === 0) fail(`${what}: slices is ${shown(t.slices)}, expected a non-empty list`);
  const slices = (t.slices as unknown[]).map((s, k) => checkSlice(s, `${what} slice ${k}`, spec!.shape, group, world, fail));
  checkTiling(slices, spec!.shape, what, fail);
  return t as unknown as TensorEntry;
}

function checkSlice(s: unknown, what: string, shape: number[], group: Group, world: number, fail: (m: string) => never): SliceEntry {
  if (!isObj(s)) return fail(`${what} is ${shown(s)}, expected a map`);
  if (!isNat(s.rank) || s.rank >= world) fail(`${what}: rank ${shown(s.rank)} is not a rank of the layout's ${world}`);
  const r = s.ranges;
  if (!Array.isArray(r) || r.length !== shape.length || r.some((p, k) => !Array.isArray(p) || p.length !== 2 || !isNat(p[0]) || !isNat(p[1]) || p[0] > p[1] || p[1] > shape[k])) {
    fail(`${what}: ranges ${shown(r)} are not [start, end) pairs inside [${shape}]`);
  }
  const file = `${FILE_OF[group]}.rank${s.rank}.bin`;
  if (s.file !== file) fail(`${what}: file ${shown(s.file)}, expected ${file}`);
  if (!isNat(s.offset) || !isNat(s.length)) fail(`${what}: offset ${shown(s.offset)} / length ${shown(s.length)} are not non-negative byte counts`);
  if (!isU32(s.crc32)) fail(`${what}: crc32 ${shown(s.crc32)} is not a 32-bit checksum`);
  const rawBytes = (r as [number, number][]).reduce((a, [lo, hi]) => a * (hi - lo), 1) * 4;
  const length = s.length as number;
  if (s.lz4 !== undefined) {
    const z = s.lz4;
    if (!isObj(z) || z.rawBytes !== rawBytes || !isNat(z.chunkRawBytes) || z.chunkRawBytes < 1 || !Array.isArray(z.chunks) ||
        z.chunks.length !== Math.ceil(rawBytes / (z.chunkRawBytes as number)) || !z.chunks.every(isNat) || (z.chunks as number[]).reduce((a, b) => a + b, 0) !== length) {
      fail(`${what}: lz4 chunking ${shown(z)} does not describe ${rawBytes} bytes stored in ${length}`);
    }
    if (s.blockCrc32 !== undefined) fail(`${what}: an lz4 slice has block checksums`);
    return s as unknown as SliceEntry;
  }
  if (length !== rawBytes) fail(`${what} stores ${length} bytes, its ranges hold ${rawBytes}`);
  if (s.blockCrc32 === undefined && s.blockBytes === undefined) return s as unknown as SliceEntry; // whole-slice crc only (older saves)
  const bb = s.blockBytes, crcs = s.blockCrc32;
  if (!isNat(bb) || bb < 1 || !Array.isArray(crcs) || crcs.length !== Math.ceil(length / bb) || !crcs.every(isU32)) {
    fail(`${what}: block checksums (${shown(bb)} bytes, ${Array.isArray(crcs) ? crcs.length : shown(crcs)} crcs) do not cover its ${length} bytes`);
  }
  if (length > 0 && combinedBlocks(crcs as number[], bb as number, length) !== s.crc32) fail(`${what}: its block checksums do not combine to its crc32 (the index is corrupt)`);
  return s as unknown as SliceEntry;
}

/**
 * The slices' rectangles must cover the tensor exactly once. In its [rows, cols] view, within every
 * band of rows between consecutive slice edges, the column ranges of the slices spanning that band
 * must follow each other from 0 to cols with no gap or overlap.
 */
function checkTiling(slices: SliceEntry[], shape: number[], what: string, fail: (m: string) => never): void {
  const flat = shape.length === 1;
  const R = flat ? 1 : shape[0], C = shape[shape.length - 1];
  const rect = slices
    .map((s) => ({ r: flat ? [0, 1] : s.ranges[0], c: s.ranges[s.ranges.length - 1] }))
    .filter(({ r, c }) => r[1] > r[0] && c[1] > c[0]);
  if (shape.length > 2) fail(`${what}: tensors of ${shape.length} dimensions are not supported`);
  const edges = [...new Set([0, R, ...rect.flatMap(({ r }) => r)])].sort((a, b) => a - b);
  for (let k = 0; k + 1 < edges.length; k++) {
    const y = edges[k];
    const cols = rect.filter(({ r }) => r[0] <= y && y < r[1]).map(({ c }) => c).sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [lo, hi] of cols) {
      if (lo !== at) fail(`its slices ${lo < at ? "overlap" : "leave a gap"} at row ${y}, column ${Math.min(lo, at)}: they do not tile [${shape}] (${what})`);
      at = hi;
    }
    if (at !== C) fail(`its slices leave a gap at row ${y}, columns ${at}..${C}: they do not tile [${shape}] (${what})`);
  }
}

function checkOptim(o: unknown, specs: Map<string, ParamSpec>, fail: (m: string) => never): void {
  if (!isObj(o) || !isObj(o.step)) return fail(`optim is ${shown(o)}, expected {step: {tensor: count}}`);
  const step = o.step;
  for (const [name, n] of Object.entries(step)) {
    if (!specs.has(name)) fail(`optim.step names ${shown(name)}, which is not a parameter of the model`);
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) fail(`optim.step of ${name} is ${shown(n)}, expected a non-negative integer`);
  }
  const absent = [...specs.keys()].filter((n) => !(n in step));
  if (absent.length) fail(`optim.step has no counter for ${absent.length} of ${specs.size} tensors (first: ${absent[0]})`);
  const h = o.skipHistory;
  if (h !== undefined && (!isObj(h) || !Array.isArray(h.losses) || !Array.isArray(h.gradNorms) || ![...h.losses, ...h.gradNorms].every((x) => typeof x === "number"))) {
    fail(`optim.skipHistory is ${shown(h)}, expected {losses: number[], gradNorms: number[]}`);
  }
}

/** Every slice's bytes lie inside its file, and no two slices share a byte. */
function checkFiles(path: string, bytesInFile: Map<string, [number, number, string][]>, fail: (m: string) => never): void {
  for (const [file, ranges] of bytesInFile) {
    ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let k = 1; k < ranges.length; k++) {
      if (ranges[k][0] < ranges[k - 1][1]) fail(`${file}: the bytes of ${ranges[k - 1][2]} and ${ranges[k][2]} overlap`);
    }
    const p = join(path, file);
    if (!existsSync(p)) throw new UserError(`${path}: tensor file ${file} is missing`);
    const need = ranges.reduce((a, x) => Math.max(a, x[1]), 0), size = statSync(p).size;
    if (size < need) throw new UserError(`${p}: truncated: the index needs ${need} bytes, the file has ${size}`);
  }
}
