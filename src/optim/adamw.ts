// AdamW over a sharding map (src/model/sharding.ts): one optimizer for every layout.
//   1. dp > 1: reduce-scatter (sum) the padded gradient arena in place, so this rank holds the summed
//      gradient of its ZeRO-1 range
//   2. the global gradient norm over the map (grad-norm.ts), clip scale min(1, max / (norm + 1e-6))
//      (torch clip_grads_with_norm_)
//   3. the skip rule, when enabled (skip-step.ts): a skipped step changes nothing — no weight decay,
//      moments and step counters frozen, no all-gather (the compute copy is still the last one)
//   4. AdamW on the owned range: fp32 masters, both moments and the compute copy (bf16 on CUDA), in
//      segments of equal weight decay (the input embedding is a no-decay prefix of the arena) and
//      equal step counter
//   5. dp > 1: all-gather the updated compute copies in place, so every rank has the whole parameters.
// The update is OLMo-core's adamw_step (allenai/OLMo-core @ d7301e62, src/olmo_core/optim/adamw.py),
// which is torch.optim.AdamW's: p ← p·(1 − lr·wd); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
// p ← p − lr/bc1 · m / (√v/√bc2 + eps), with bc_i = 1 − β_i^(step + 1).
//
// The step counter is optimizer state, one per tensor as OLMo-core keeps `state["step"]` per
// parameter: saved in checkpoints and restored with the moments. It counts applied updates; with
// `stepIncrementBug` it is never incremented (OLMo-core's SkipStepAdamW before PR #309/#317 read it
// for the bias correction and never wrote it), so the bias correction stays at the loaded counter's
// value: 0 for a fresh start (bc1 = 1 − β1, bc2 = 1 − β2, ≈2.24× the scheduled step size with
// β = (0.9, 0.95)), exactly 1 in fp32 once the counter is past a few hundred.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ParamStore } from "../model/param-store.ts";
import { noDecayPrefix } from "../model/params.ts";
import type { PtrComm } from "../parallel/comm/comm.ts";
import { RankSummer } from "../parallel/comm/sum-over-ranks.ts";
import { GradNorm } from "./grad-norm.ts";
import { type SkipHistory, type SkipStepLoss, type SkipStepOptions, SkipStepRule, skipRuleLoss } from "./skip-step.ts";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip the global L2 norm of the gradient to this value (0 or Infinity disables) */
  maxGradNorm: number;
  /** never increment the step counters (the as-trained OLMo-2 32B optimizer) */
  stepIncrementBug: boolean;
  /** SkipStepAdamW's rule; absent: never skip */
  skipSteps?: SkipStepOptions;
}

/** The optimizer's fields of a run config (`optim`), as the config schema validates them. */
export interface OptimSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
  stepIncrementBug: boolean;
  skipSteps: boolean;
  skipStepWindow: number;
  skipStepSigmas: number;
  skipStepLoss: SkipStepLoss;
}

/** AdamW's options from a run config's `optim` section. */
export function adamWOptions(o: OptimSettings): AdamWOptions {
  return {
    beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm, stepIncrementBug: o.stepIncrementBug,
    skipSteps: o.skipSteps ? { window: o.skipStepWindow, sigmas: o.skipStepSigmas, loss: o.skipStepLoss } : undefined,
  };
}

/** Fills `out` with local elements [lo, hi) of tensor `name`'s moment `group` (resume from a checkpoint). */
export type MomentReader = (name: string, group: "m" | "v", lo: number, hi: number, out: Float32Array) => void;

export interface StepStats {
  /** global L2 norm of the gradient before clipping */
  gradNorm: number;
  /** the scale applied to the gradient (1 when not clipped) */
  clipScale: number;
  /** the skip rule rejected this step: nothing was updated */
  skipped: boolean;
  /** the gradient norm (or the given loss) is NaN or infinite and the step was not skipped: nothing
   *  was updated either (an update would have made the weights non-finite); the run has diverged */
  nonFinite: boolean;
}

/** Collectives of the optimizer: the data-parallel group (ZeRO-1) and the tensor-parallel group. */
export interface OptimizerComms {
  dp?: PtrComm | null;
  tp?: PtrComm | null;
}

export class AdamW {
  /** Adam moments of this rank's owned range (S floats each; the whole arena without ZeRO-1) */
  readonly m: DevPtr;
  readonly v: DevPtr;
  /** the Adam step counter of each local tensor (arena order), as OLMo-core's `state["step"]` */
  readonly stepCounters: Float64Array;
  readonly skipRule: SkipStepRule | null;
  /** sums of a few numbers over the DP group (loss sums, norms); identity without DP */
  readonly dpSum: RankSummer;
  private readonly be: Backend;
  private readonly norm: GradNorm;
  private readonly dp: PtrComm | null;
  private readonly prefix: number;
  private readonly tensorIndex: Map<string, number>;

  constructor(readonly params: ParamStore, readonly opts: AdamWOptions, comms: OptimizerComms = {}) {
    const be = (this.be = params.backend), map = params.map;
    this.dp = comms.dp && comms.dp.world > 1 ? comms.dp : null;
    const tp = comms.tp && comms.tp.world > 1 ? comms.tp : null;
    if ((this.dp?.world ?? 1) !== map.layout.dp || (tp?.world ?? 1) !== map.layout.tp) {
      throw new Error(`AdamW: the parameters are laid out for tp=${map.layout.tp} dp=${map.layout.dp}, the communicators are tp=${tp?.world ?? 1} dp=${this.dp?.world ?? 1}`);
    }
    params.allocGrads();
    const S = map.zero1.S;
    this.m = be.alloc(S * 4);
    this.v = be.alloc(S * 4);
    be.zero(this.m, S * 4);
    be.zero(this.v, S * 4);
    this.stepCounters = new Float64Array(params.specs.length);
    this.skipRule = opts.skipSteps ? new SkipStepRule(opts.skipSteps) : null;
    this.dpSum = new RankSummer(be, this.dp);
    this.norm = new GradNorm(be, params, this.dpSum, tp);
    this.prefix = noDecayPrefix(params.specs);
    this.tensorIndex = new Map(params.specs.map((s, i) => [s.name, i]));
  }

  /**
   * One step from params.grad with learning rate `lr` (collective under DP/TP). `loss`: this step's
   * CE and z-loss of the whole global batch (the same on every rank), for the skip rule (which sees
   * one of them or their sum: skip-step.ts); a non-finite one is not applied.
   */
  update(lr: number, loss?: { ce: number; z: number }): StepStats {
    const ceLoss = loss && skipRuleLoss(this.opts.skipSteps?.loss ?? "ce", loss.ce, loss.z);
    const { beta1, beta2, eps, weightDecay, maxGradNorm, stepIncrementBug } = this.opts;
    const p = this.params, be = this.be, ab = be.actBytes;
    const { S, start, rank } = p.map.zero1;
    if (this.dp) this.dp.reduceScatter(p.grad + rank * S * 4, p.grad, S, "f32", "sum");
    const gradNorm = this.norm.compute();
    const clipScale = maxGradNorm > 0 && Number.isFinite(maxGradNorm) ? Math.min(1, maxGradNorm / (gradNorm + 1e-6)) : 1;
    if (this.skipRule) {
      if (ceLoss === undefined) throw new Error("AdamW.update: the skip rule needs this step's CE loss");
      if (this.skipRule.decide(ceLoss, gradNorm)) return { gradNorm, clipScale, skipped: true, nonFinite: false };
    }
    if (!Number.isFinite(gradNorm) || (ceLoss !== undefined && !Number.isFinite(ceLoss))) return { gradNorm, clipScale, skipped: false, nonFinite: true };
    for (const seg of this.segments()) {
      const t = this.stepCounters[seg.tensor] + 1;
      const bc1 = 1 - Math.pow(beta1, t), bc2 = 1 - Math.pow(beta2, t);
      const at = seg.a - start; // position in the owned-range buffers (masters under ZeRO-1, moments)
      be.adamw(p.master + (p.slicedMaster ? at : seg.a) * 4, p.separateAct ? p.act + seg.a * ab : 0, p.grad + seg.a * 4,
        this.m + at * 4, this.v + at * 4, seg.b - seg.a, { lr, beta1, beta2, eps, weightDecay: seg.wd, bc1, bc2, gradScale: clipScale });
    }
    if (!stepIncrementBug) for (let i = 0; i < this.stepCounters.length; i++) this.stepCounters[i]++;
    if (this.dp) this.dp.allGather(p.act, p.act + rank * S * ab, S, be.actDtype);
    return { gradNorm, clipScale, skipped: false, nonFinite: false };
  }

  /**
   * The owned parts of the tensors (the sharding map's answer) as arena segments of one weight decay
   * and one step counter, in arena order: the no-decay prefix, then the rest, split further only
   * where counters differ (never in a run of this trainer; a loaded checkpoint may carry per-tensor
   * counters).
   */
  private segments(): { a: number; b: number; wd: number; tensor: number }[] {
    const out: { a: number; b: number; wd: number; tensor: number }[] = [];
    for (const o of this.params.map.ownedParts()) {
      const i = this.tensorIndex.get(o.shard.full.name)!, lo = o.shard.local.offset + o.lo, hi = o.shard.local.offset + o.hi;
      for (const [x, y, wd] of [[lo, Math.min(hi, this.prefix), 0], [Math.max(lo, this.prefix), hi, this.opts.weightDecay]] as const) {
        if (y <= x) continue;
        const last = out.at(-1);
        if (last && last.b === x && last.wd === wd && this.stepCounters[last.tensor] === this.stepCounters[i]) last.b = y;
        else out.push({ a: x, b: y, wd, tensor: i });
      }
    }
    return out;
  }

  /** Step counters by tensor name (what a checkpoint stores). */
  counters(): Record<string, number> {
    return Object.fromEntries(this.params.specs.map((s, i) => [s.name, this.stepCounters[i]]));
  }

  /** Restore the step counters by tensor name; every local tensor must be given. */
  setCounters(byName: Record<string, number> | ((name: string) => number)): void {
    const get = typeof byName === "function" ? byName : (n: string) => byName[n];
    this.params.specs.forEach((s, i) => {
      const c = get(s.name);
      if (typeof c !== "number" || !Number.isFinite(c) || c < 0) throw new Error(`AdamW: no valid step counter for ${s.name} (${c})`);
      this.stepCounters[i] = c;
    });
  }

  skipHistory(): SkipHistory | null {
    return this.skipRule?.state() ?? null;
  }

  /** Resume: read this rank's owned part of both moments, tensor by tensor. */
  fillMoments(read: MomentReader): void {
    const map = this.params.map, start = map.zero1.start;
    const host = new Float32Array(Math.max(256, ...this.params.specs.map((s) => s.numel)));
    for (const [group, base] of [["m", this.m], ["v", this.v]] as const) {
      for (const o of map.ownedParts()) {
        const view = host.subarray(0, o.hi - o.lo);
        read(o.shard.full.name, group, o.lo, o.hi, view);
        this.be.upload(base + (o.shard.local.offset + o.lo - start) * 4, view);
      }
    }
  }

  free(): void {
    this.be.free(this.m);
    this.be.free(this.v);
    this.norm.free();
    this.dpSum.free();
  }
}
