// The sharding map: for every parameter tensor, what one rank of a TP × DP (ZeRO-1) layout holds.
// The one owner of that knowledge: the parameter store allocates from it, the optimizer updates and
// norms over it, the checkpointer saves and loads the regions it names, init slices by it.
//
// Tensor parallelism (the TP style of each tensor is paramSpecs' `tp` field):
//   colwise 2-D [out, in] (q/k/v, gate/up):  rows [r·out/tp, (r+1)·out/tp)  (q/k/v: whole heads)
//   colwise 1-D (q_norm/k_norm weights):      the slice matching the rank's q/k columns
//   rowwise [out, in] (o_proj, down_proj):    columns [r·in/tp, (r+1)·in/tp)
//   vocab [V, C] (embedding, lm_head):        rows [r·V/tp, (r+1)·V/tp)   (V is the padded vocab)
//   replicated (the other norms):             the whole tensor on every rank of the TP group
// The local arena is the TP shards in paramSpecs order (gate and up stay adjacent: one [2F/tp, C]
// GEMM). A shard is a pure slice of the whole tensor, so initialization (generate whole, then slice)
// and checkpoints (stored as rectangles of the whole tensor) do not depend on the TP size.
//
// ZeRO-1 over the DP group: the local arena (numel elements) is split into dp ranges of
// S = ceil(numel / dp) elements; rank r owns [r·S, r·S + len) (the last ranges may be short or empty
// where the arena ends). Gradient and compute-copy arenas are padded to dp·S for the in-place
// reduce-scatter and all-gather. One process is the degenerate map: tp = dp = 1, owned range
// [0, numel), S = padded = numel.
import { UserError } from "../errors.ts";
import { type ModelConfig, paddedVocab } from "./config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "./params.ts";

/** What one rank holds of one full tensor: `rows` × `cols` starting at (row0, col0) of the full [R, Cols] view. */
export interface Shard {
  full: ParamSpec;
  /** the local spec: local shape, numel and offset in the local arena */
  local: ParamSpec;
  row0: number;
  rows: number;
  col0: number;
  cols: number;
}

/** A rectangle of a whole tensor, [row0, row1) × [col0, col1), holding local elements [from, to) of a shard. */
export interface ShardRegion {
  /** per dimension of the whole tensor: [[row0, row1], [col0, col1]], or [[col0, col1]] for a vector */
  ranges: [number, number][];
  from: number;
  to: number;
}

/** ZeRO-1's split of an arena of `numel` elements over `world` ranks: rank `rank` owns [start, start + len). */
export interface Zero1Range {
  numel: number;
  world: number;
  rank: number;
  /** range length (every rank's slice buffers have S elements; the padded arenas world·S) */
  S: number;
  padded: number;
  start: number;
  len: number;
}

export function zero1Range(numel: number, world: number, rank: number): Zero1Range {
  if (!Number.isInteger(world) || world < 1 || !Number.isInteger(rank) || rank < 0 || rank >= world) {
    throw new Error(`zero1Range: rank ${rank} of world ${world}`);
  }
  const S = Math.ceil(numel / world);
  const start = Math.min(numel, rank * S);
  return { numel, world, rank, S, padded: S * world, start, len: Math.max(0, Math.min(numel, start + S) - start) };
}

/** Throws a UserError naming the first dimension that tp does not divide. */
export function checkTpDivides(m: ModelConfig, tp: number): void {
  if (!Number.isInteger(tp) || tp < 1) throw new UserError(`tensor-parallel size ${tp} must be a positive integer`);
  const dims: [string, number][] = [["model.nHeads", m.nHeads], ["model.nKvHeads", m.nKvHeads], ["model.ffnHidden", m.ffnHidden],
    ["the padded vocabulary", paddedVocab(m)]];
  for (const [what, n] of dims) {
    if (n % tp !== 0) throw new UserError(`tensor parallelism tp=${tp} must divide ${what} (${n})`);
  }
}

function fullRC(s: ParamSpec): [number, number] {
  return s.shape.length === 1 ? [1, s.shape[0]] : [s.shape[0], s.shape[1]];
}

/** The TP shards of rank `rank` of `tp`, in arena order, with local offsets. */
export function tpShards(m: ModelConfig, tp: number, rank: number): Shard[] {
  checkTpDivides(m, tp);
  if (!Number.isInteger(rank) || rank < 0 || rank >= tp) throw new Error(`TP rank ${rank} is not in [0, ${tp})`);
  let offset = 0;
  return paramSpecs(m).map((full) => {
    const [R, Cc] = fullRC(full);
    let row0 = 0, rows = R, col0 = 0, cols = Cc;
    const oneD = full.shape.length === 1;
    if (full.tp === "colwise" || full.tp === "vocab") {
      if (oneD) { cols = Cc / tp; col0 = rank * cols; } else { rows = R / tp; row0 = rank * rows; }
    } else if (full.tp === "rowwise") {
      cols = Cc / tp;
      col0 = rank * cols;
    }
    const shape = oneD ? [cols] : [rows, cols];
    const numel = rows * cols;
    const local: ParamSpec = { ...full, shape, numel, offset };
    offset += numel;
    return { full, local, row0, rows, col0, cols };
  });
}

/** This rank's slice of a whole tensor (row-major). */
export function sliceShard(sh: Shard, whole: Float32Array, out: Float32Array = new Float32Array(sh.local.numel)): Float32Array {
  if (whole.length !== sh.full.numel) throw new Error(`${sh.full.name}: expected ${sh.full.numel} elements, got ${whole.length}`);
  readShardRange(sh, 0, sh.local.numel, out, (start, o) => o.set(whole.subarray(start, start + o.length)));
  return out;
}

/** Write a rank's shard into its place in the whole tensor (the inverse of sliceShard). */
export function placeShard(sh: Shard, shard: Float32Array, whole: Float32Array): void {
  if (shard.length !== sh.local.numel) throw new Error(`${sh.full.name}: shard has ${shard.length} elements, expected ${sh.local.numel}`);
  const C = fullRC(sh.full)[1];
  for (let r = 0; r < sh.rows; r++) whole.set(shard.subarray(r * sh.cols, (r + 1) * sh.cols), (sh.row0 + r) * C + sh.col0);
}

/**
 * Elements [lo, hi) of a shard (flat, row-major) into `out`, read through `readFull(start, o)`,
 * which fills `o` with elements [start, start + o.length) of the whole tensor. Shards of whole rows
 * (colwise, vocab, replicated) are one contiguous range of the whole tensor; column slices (rowwise)
 * read the full rows that cover [lo, hi) once and keep their columns. So a checkpoint load reads
 * about what the rank keeps, not every whole tensor.
 */
export function readShardRange(sh: Shard, lo: number, hi: number, out: Float32Array, readFull: (start: number, o: Float32Array) => void): void {
  if (lo < 0 || hi > sh.local.numel || hi < lo || out.length !== hi - lo) {
    throw new Error(`${sh.full.name}: range [${lo}, ${hi}) of ${sh.local.numel} elements into ${out.length}`);
  }
  if (hi === lo) return;
  const C = fullRC(sh.full)[1];
  if (sh.cols === C) return readFull(sh.row0 * C + lo, out);
  const r0 = Math.floor(lo / sh.cols), r1 = Math.ceil(hi / sh.cols);
  const rows = new Float32Array((r1 - r0) * C);
  readFull((sh.row0 + r0) * C, rows);
  for (let r = r0; r < r1; r++) {
    const a = Math.max(lo, r * sh.cols), b = Math.min(hi, (r + 1) * sh.cols);
    const src = (r - r0) * C + sh.col0 + (a - r * sh.cols);
    out.set(rows.subarray(src, src + (b - a)), a - lo);
  }
}

/**
 * Elements [lo, hi) of a shard (flat, row-major) as rectangles of the whole tensor whose row-major
 * order is the shard's: a partial first row, the whole rows, a partial last row (at most three).
 */
export function shardRegions(sh: Shard, lo: number, hi: number): ShardRegion[] {
  if (lo < 0 || hi > sh.local.numel || hi < lo) throw new Error(`${sh.full.name}: range [${lo}, ${hi}) of ${sh.local.numel} elements`);
  const out: ShardRegion[] = [];
  const oneD = sh.full.shape.length === 1, w = sh.cols;
  const push = (r0: number, r1: number, c0: number, c1: number, from: number, to: number) => {
    const cols: [number, number] = [sh.col0 + c0, sh.col0 + c1];
    out.push({ ranges: oneD ? [cols] : [[sh.row0 + r0, sh.row0 + r1], cols], from, to });
  };
  let a = lo;
  if (a < hi && a % w !== 0) { // partial first row
    const r = Math.floor(a / w), end = Math.min(hi, (r + 1) * w);
    push(r, r + 1, a - r * w, end - r * w, a, end);
    a = end;
  }
  const wholeRows = Math.floor((hi - a) / w);
  if (wholeRows > 0) {
    const r = a / w;
    push(r, r + wholeRows, 0, w, a, a + wholeRows * w);
    a += wholeRows * w;
  }
  if (a < hi) { // partial last row
    const r = a / w;
    push(r, r + 1, 0, hi - a, a, hi);
  }
  return out;
}

export interface Layout {
  tp: number;
  tpRank: number;
  dp: number;
  dpRank: number;
}

/** What this rank owns of one tensor: local elements [lo, hi) of its TP shard (empty when lo === hi). */
export interface Owned {
  shard: Shard;
  lo: number;
  hi: number;
}

/** The map of one rank: its TP shard of every tensor and its ZeRO-1 range of the local arena. */
export class ShardingMap {
  readonly shards: Shard[];
  /** the local arena layout (TP shards, paramSpecs order) */
  readonly specs: ParamSpec[];
  readonly numel: number;
  readonly zero1: Zero1Range;
  private readonly byName: Map<string, Shard>;

  constructor(readonly model: ModelConfig, readonly layout: Layout = { tp: 1, tpRank: 0, dp: 1, dpRank: 0 }) {
    this.shards = tpShards(model, layout.tp, layout.tpRank);
    this.specs = this.shards.map((s) => s.local);
    this.numel = totalParams(this.specs);
    this.zero1 = zero1Range(this.numel, layout.dp, layout.dpRank);
    this.byName = new Map(this.shards.map((s) => [s.full.name, s]));
  }

  /** true when this rank keeps the masters and moments of part of its arena only (ZeRO-1, dp > 1) */
  get slicedOptimizer(): boolean {
    return this.layout.dp > 1;
  }

  shard(name: string): Shard {
    const s = this.byName.get(name);
    if (!s) throw new Error(`no parameter ${name}`);
    return s;
  }

  /**
   * Identical on every rank of the TP group (a replicated tensor under tp > 1): its gradient norm is
   * counted once, and only TP rank 0 saves it. Without TP nothing is replicated.
   */
  replicated(name: string): boolean {
    return this.layout.tp > 1 && this.shard(name).full.tp === "replicated";
  }

  /** The part of tensor `name` inside this rank's ZeRO-1 range, in local elements of its shard. */
  owned(name: string): Owned {
    const shard = this.shard(name), s = shard.local;
    const { start, len } = this.zero1;
    const lo = Math.max(start, s.offset), hi = Math.min(start + len, s.offset + s.numel);
    return hi > lo ? { shard, lo: lo - s.offset, hi: hi - s.offset } : { shard, lo: 0, hi: 0 };
  }

  /** Every tensor this rank owns elements of, in arena order. */
  ownedParts(): Owned[] {
    return this.shards.map((s) => this.owned(s.full.name)).filter((o) => o.hi > o.lo);
  }

  /**
   * What this rank writes of tensor `name` in a checkpoint, as rectangles of the whole tensor: its
   * owned part, except replicated tensors, which only TP rank 0 writes (every rank has the same bits).
   */
  saveRegions(name: string): { owned: Owned; regions: ShardRegion[] } | null {
    const owned = this.owned(name);
    if (owned.hi <= owned.lo || (this.replicated(name) && this.layout.tpRank !== 0)) return null;
    return { owned, regions: shardRegions(owned.shard, owned.lo, owned.hi) };
  }

  /** Elements [lo, hi) of this rank's shard of `name`, read through ranges of the whole tensor. */
  readLocal(name: string, lo: number, hi: number, out: Float32Array, readFull: (start: number, o: Float32Array) => void): void {
    readShardRange(this.shard(name), lo, hi, out, readFull);
  }
}
