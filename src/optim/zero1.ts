// ZeRO-1 AdamW for data parallelism: the fp32 master weights and the optimizer state are sharded
// over the DP ranks.
//
// The flat fp32 gradient arena (padded to numel_pad = dp·S) is reduce-scattered (sum) in place, so
// rank r ends up owning the summed gradient of elements [r·S, r·S + len_r) (len_r = S except on the
// last rank(s), where the arena ends). Then:
//   grad norm  = sqrt(Σ_r |g_r|²): each rank's slice sum of squares all-gathered and summed in rank
//                order in double, so every rank gets the same bits
//   clip scale = min(1, maxNorm / (norm + 1e-6))                    (as AdamW / torch)
//   AdamW on the slice only: the rank's fp32 masters, m and v are S floats each (the ParamStore is
//   made with a master slice, zero1Store); the no-decay prefix (the input embedding) intersected
//   with the slice gets weight decay 0; the kernel also writes the slice's compute copy (bf16 on
//   CUDA, an fp32 copy on the CPU library)
//   all-gather of the compute copies in place (a padded act arena), so every rank holds the full
//   parameters for the next forward: 2 bytes per parameter on CUDA.
// Per parameter a rank keeps act + fp32 grad + 12/dp bytes of master and moments (what olmo plan counts).
//
// Collectives go through a PtrComm: NCCL over device pointers on CUDA, or hostPtrComm over the
// shared-memory Comm on the CPU library (whose pointers are host memory). In-place forms used:
// reduceScatter with send + rank·recvCount === recv, allGather with recv + rank·sendCount === send.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ModelConfig } from "../model/config.ts";
import { ParamStore } from "../model/param-store.ts";
import { type ParamSpec, noDecayPrefix, paramSpecs, totalParams } from "../model/params.ts";
import type { PtrComm } from "../parallel/comm.ts";
import type { AdamWOptions, MomentReader, StepStats } from "./adamw.ts";

/** How `numel` elements split over `world` ranks: rank r owns [start, start + len). */
export interface Zero1Shard {
  numel: number;
  world: number;
  rank: number;
  /** slice length (every rank's buffers have S elements; the padded arena has world·S) */
  S: number;
  padded: number;
  start: number;
  len: number;
}

export function zero1Shard(numel: number, world: number, rank: number): Zero1Shard {
  if (!Number.isInteger(world) || world < 1 || !Number.isInteger(rank) || rank < 0 || rank >= world) {
    throw new Error(`zero1Shard: rank ${rank} of world ${world}`);
  }
  const S = Math.ceil(numel / world);
  const start = Math.min(numel, rank * S);
  return { numel, world, rank, S, padded: S * world, start, len: Math.max(0, Math.min(numel, start + S) - start) };
}

/**
 * The parameters of one DP rank under ZeRO-1: fp32 masters for its slice only, a whole compute
 * copy padded to world·S elements (the all-gather target) and a padded gradient arena.
 * specs: the arena layout (a TP rank's shard specs under TP × DP).
 */
export function zero1Store(be: Backend, cfg: ModelConfig, specs: ParamSpec[] | undefined, world: number, rank: number): ParamStore {
  const layout = specs ?? paramSpecs(cfg);
  const { S, start, len, padded } = zero1Shard(totalParams(layout), world, rank);
  const p = new ParamStore(be, cfg, layout, { masterSlice: { start, len, capacity: S, actElements: padded } });
  allocPaddedGrads(p, world);
  return p;
}

/**
 * Give `params` a gradient arena padded to world·S elements (zeroed). Call before the model
 * allocates its gradients (Olmo2 only allocates when none exists).
 */
function allocPaddedGrads(params: ParamStore, world: number): void {
  if (params.grad) throw new Error("allocPaddedGrads: the gradient arena already exists");
  const { padded } = zero1Shard(params.numel, world, 0);
  params.grad = params.backend.alloc(padded * 4);
  params.backend.zero(params.grad, padded * 4);
}

/** Split doubles into f32 (hi, lo) pairs so that hi + lo carries ~48 bits through an f32 collective. */
function splitF64(values: number[], out: Float32Array, at: number): void {
  for (let i = 0; i < values.length; i++) {
    const hi = Math.fround(values[i]);
    out[at + 2 * i] = hi;
    out[at + 2 * i + 1] = Math.fround(values[i] - hi);
  }
}

/**
 * Sum small per-rank values over all ranks (collective). Each rank's values travel as f32 (hi, lo)
 * pairs through one all-gather and are summed in rank order in double: every rank gets the same
 * numbers, accurate to ~1e-14 relative. `scratch` is a device buffer of ≥ world·2·values.length floats.
 */
export function sumOverRanks(be: Backend, comm: PtrComm, scratch: DevPtr, values: number[]): number[] {
  const k = 2 * values.length, W = comm.world;
  if (W === 1) return values.slice();
  const host = new Float32Array(Math.max(256, W * k)); // ≥ 1 KiB: small typed arrays can move (perf-anchors §4)
  splitF64(values, host, 0);
  be.upload(scratch + comm.rank * k * 4, host.subarray(0, k));
  comm.allGather(scratch, scratch + comm.rank * k * 4, k, "f32");
  be.download(host.subarray(0, W * k), scratch);
  const out = new Array<number>(values.length).fill(0);
  for (let r = 0; r < W; r++) for (let i = 0; i < values.length; i++) out[i] += host[r * k + 2 * i] + host[r * k + 2 * i + 1];
  return out;
}

export class Zero1AdamW {
  /** Adam moments of this rank's slice (S floats each) */
  readonly m: DevPtr;
  readonly v: DevPtr;
  /** number of updates applied so far (the Adam step counter) */
  step = 0;
  readonly shard: Zero1Shard;
  private readonly be: Backend;
  /** small collective scratch: norms and loss sums (≥ world·8 floats) */
  readonly scratch: DevPtr;
  private readonly scratchFloats: number;
  private readonly prefix: number;

  /**
   * tp (tensor parallelism × DP): the TP group. The arena then holds a TP shard: the grad norm counts
   * the sharded tensors' squares summed over TP and the replicated ones (identical on every TP rank)
   * once.
   */
  constructor(readonly params: ParamStore, readonly opts: AdamWOptions, readonly comm: PtrComm, readonly tp?: PtrComm) {
    const be = (this.be = params.backend);
    this.shard = zero1Shard(params.numel, comm.world, comm.rank);
    if (!params.grad) throw new Error("Zero1AdamW: make the parameters with zero1Store (padded gradient arena)");
    if (!params.slicedMaster || params.masterStart !== this.shard.start || params.masterLen !== this.shard.len) {
      throw new Error("Zero1AdamW: the parameters must keep this rank's master slice (zero1Store)");
    }
    const S = this.shard.S;
    this.m = be.alloc(S * 4);
    this.v = be.alloc(S * 4);
    be.zero(this.m, S * 4);
    be.zero(this.v, S * 4);
    this.scratchFloats = Math.max(64, comm.world * 8);
    this.scratch = be.alloc(this.scratchFloats * 4);
    this.prefix = noDecayPrefix(params.specs);
  }

  /** Zero the whole padded gradient arena (the padding too: it went through the last all-gather). */
  zeroGrads(): void {
    this.be.zero(this.params.grad, this.shard.padded * 4);
  }

  /** Sum small per-rank numbers over the DP ranks (collective; see sumOverRanks). */
  sumOverRanks(values: number[]): number[] {
    if (2 * values.length * this.comm.world > this.scratchFloats) throw new Error(`sumOverRanks: ${values.length} values do not fit the scratch`);
    return sumOverRanks(this.be, this.comm, this.scratch, values);
  }

  /** Collective: reduce-scatter the gradients, clip on the global norm, update this rank's slice, all-gather. */
  update(lr: number): StepStats {
    const { beta1, beta2, eps, weightDecay, maxGradNorm, stepIncrementBug } = this.opts;
    const p = this.params, be = this.be, comm = this.comm;
    const { S, start, len, rank } = this.shard;
    const ab = be.actBytes;
    // the collectives' place of this rank in the padded arenas (start = rank·S unless the arena ended)
    const gMine = p.grad + rank * S * 4, g0 = p.grad + start * 4;
    // 1. reduce-scatter (sum), in place: this rank's slice of the arena holds the summed gradient
    comm.reduceScatter(gMine, p.grad, S, "f32", "sum");
    // 2. global grad norm from the slices' sums of squares
    let sq = 0;
    if (!this.tp && len > 0) {
      const out = new Float32Array(256);
      be.normSquared(this.scratch, g0, len, false);
      be.download(out.subarray(0, 1), this.scratch);
      sq = out[0];
    }
    const gradNorm = this.tp ? this.tpGradNorm(start, start + len) : Math.sqrt(this.sumOverRanks([sq])[0]);
    const clipScale = maxGradNorm > 0 && Number.isFinite(maxGradNorm) ? Math.min(1, maxGradNorm / (gradNorm + 1e-6)) : 1;
    // 3. AdamW on the slice (masters, moments and the compute copy), split at the no-decay prefix
    const t = stepIncrementBug ? 1 : this.step + 1;
    const bc1 = 1 - Math.pow(beta1, t), bc2 = 1 - Math.pow(beta2, t);
    const end = start + len, cut = Math.min(Math.max(this.prefix, start), end);
    for (const [a, b, wd] of [[start, cut, 0], [cut, end, weightDecay]] as const) {
      if (b <= a) continue;
      be.adamw(p.master + (a - start) * 4, p.act + a * ab, p.grad + a * 4, this.m + (a - start) * 4, this.v + (a - start) * 4, b - a,
        { lr, beta1, beta2, eps, weightDecay: wd, bc1, bc2, gradScale: clipScale });
    }
    // 4. all-gather the updated compute copies, in place in the padded act arena
    comm.allGather(p.act, p.act + rank * S * ab, S, be.actDtype);
    this.step++;
    return { gradNorm, clipScale };
  }

  /** Under TP: sharded and replicated squares of this slice, summed over DP, the sharded part over TP. */
  private tpGradNorm(start: number, end: number): number {
    const be = this.be, p = this.params;
    const sums = [0, 0]; // [sharded, replicated]
    const out = new Float32Array(256);
    for (const s of p.specs) {
      const lo = Math.max(start, s.offset), hi = Math.min(end, s.offset + s.numel);
      if (hi <= lo) continue;
      be.normSquared(this.scratch, p.grad + lo * 4, hi - lo, false);
      be.download(out.subarray(0, 1), this.scratch);
      sums[s.tp === "replicated" ? 1 : 0] += out[0];
    }
    const [sharded, replicated] = this.sumOverRanks(sums);
    // the sharded part summed over TP as an f32 (hi, lo) pair: ~48 bits through the f32 collective
    out[0] = Math.fround(sharded);
    out[1] = Math.fround(sharded - out[0]);
    be.upload(this.scratch, out.subarray(0, 2));
    this.tp!.allReduce(this.scratch, this.scratch, 2, "f32", "sum");
    be.download(out.subarray(0, 2), this.scratch);
    return Math.sqrt(out[0] + out[1] + replicated);
  }

  /** Resume: read this rank's slice of the moments, tensor by tensor (only the elements it keeps). */
  fillMoments(read: MomentReader): void {
    const { start, len } = this.shard, end = start + len;
    const host = new Float32Array(Math.max(256, ...this.params.specs.map((s) => s.numel)));
    for (const [group, base] of [["m", this.m], ["v", this.v]] as const) {
      for (const s of this.params.specs) {
        const lo = Math.max(start, s.offset), hi = Math.min(end, s.offset + s.numel);
        if (hi <= lo) continue;
        const view = host.subarray(0, hi - lo);
        read(s, group, lo - s.offset, hi - s.offset, view);
        this.be.upload(base + (lo - start) * 4, view);
      }
    }
  }

  free(): void {
    this.be.free(this.m);
    this.be.free(this.v);
    this.be.free(this.scratch);
  }
}
