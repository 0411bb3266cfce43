// The tensor-parallel plan: one table (parameter name → colwise | rowwise | replicated | vocab),
// read off paramSpecs' `tp` field, and what each TP rank holds of every tensor. Init, the TP model
// and checkpoints all go through it.
//   colwise 2-D [out, in] (q/k/v, gate/up):  rows [r·out/tp, (r+1)·out/tp)  (q/k/v: whole heads)
//   colwise 1-D (q_norm/k_norm weights):      the slice matching the rank's q/k columns
//   rowwise [out, in] (o_proj, down_proj):    columns [r·in/tp, (r+1)·in/tp)
//   vocab [V, C] (embedding, lm_head):        rows [r·V/tp, (r+1)·V/tp)   (V is the padded vocab)
//   replicated (the other norms):             the whole tensor on every rank
// The local arena is the sharded specs in paramSpecs order (gate and up stay adjacent: one
// [2F/tp, C] GEMM). A rank's shard is a pure slice of the whole tensor, so initialization
// (generate whole with initTensor, then slice) and checkpoints (each rank stores its shard as
// rectangles of the whole tensor at save, reads its shard's ranges at load) are TP-size invariant.
import { UserError } from "../errors.ts";
import { type ModelConfig, paddedVocab } from "./config.ts";
import { type ParamSpec, type TpStyle, paramSpecs } from "./params.ts";

/** name → TP style, in arena order */
export function tpPlan(m: ModelConfig): Map<string, TpStyle> {
  return new Map(paramSpecs(m).map((s) => [s.name, s.tp]));
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

function fullRC(s: ParamSpec): [number, number] {
  return s.shape.length === 1 ? [1, s.shape[0]] : [s.shape[0], s.shape[1]];
}

/** The shards of rank `rank` of `tp`, in arena order, with local offsets. */
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

/** The local parameter specs of a TP rank (tp = 1: exactly paramSpecs). */
export function tpLocalSpecs(m: ModelConfig, tp: number, rank: number): ParamSpec[] {
  return tpShards(m, tp, rank).map((s) => s.local);
}

/** This rank's slice of a whole tensor (row-major). */
export function sliceShard(sh: Shard, whole: Float32Array, out: Float32Array = new Float32Array(sh.local.numel)): Float32Array {
  if (whole.length !== sh.full.numel) throw new Error(`${sh.full.name}: expected ${sh.full.numel} elements, got ${whole.length}`);
  readShardRange(sh, 0, sh.local.numel, out, (start, o) => o.set(whole.subarray(start, start + o.length)));
  return out;
}

/**
 * Elements [lo, hi) of this rank's shard (flat, row-major) into `out`, read through
 * `readFull(start, o)`, which fills `o` with elements [start, start + o.length) of the whole tensor.
 * Shards of whole rows (colwise, vocab, replicated) are one contiguous range of the whole tensor;
 * column slices (rowwise) read the full rows that cover [lo, hi) once and keep their columns. So a
 * checkpoint load reads about what the rank keeps, not every whole tensor.
 */
export function readShardRange(sh: Shard, lo: number, hi: number, out: Float32Array, readFull: (start: number, o: Float32Array) => void): void {
  if (lo < 0 || hi > sh.local.numel || hi < lo || out.length !== hi - lo) {
    throw new Error(`${sh.full.name}: range [${lo}, ${hi}) of ${sh.local.numel} elements into ${out.length}`);
  }
  if (hi === lo) return;
  const C = sh.full.shape.length === 1 ? sh.full.shape[0] : sh.full.shape[1];
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

/** A rectangle of a whole tensor, [row0, row1) × [col0, col1), holding local elements [from, to) of a shard. */
export interface ShardRegion {
  /** per dimension of the whole tensor: [[row0, row1], [col0, col1]], or [[col0, col1]] for a vector */
  ranges: [number, number][];
  from: number;
  to: number;
}

/**
 * Elements [lo, hi) of a shard (flat, row-major) as rectangles of the whole tensor whose row-major
 * order is the shard's: a partial first row, the whole rows, a partial last row (at most three).
 * What a rank owns of a tensor can so be stored and read back by whole-tensor coordinates.
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

/** Write a rank's shard into its place in the whole tensor (the inverse of sliceShard). */
export function placeShard(sh: Shard, shard: Float32Array, whole: Float32Array): void {
  if (shard.length !== sh.local.numel) throw new Error(`${sh.full.name}: shard has ${shard.length} elements, expected ${sh.local.numel}`);
  const C = sh.full.shape.length === 1 ? sh.full.shape[0] : sh.full.shape[1];
  for (let r = 0; r < sh.rows; r++) whole.set(shard.subarray(r * sh.cols, (r + 1) * sh.cols), (sh.row0 + r) * C + sh.col0);
}
