// AdamW with decoupled weight decay over the parameter arena, in two groups: the input
// embedding (a prefix of the arena, no weight decay, as OLMo-2) and everything else.
// Global grad-norm clipping is folded into the update as a gradient scale.
//
// stepIncrementBug reproduces the as-trained OLMo-2 32B optimizer (olmo2-spec.md §2.3): before
// OLMo-core PR #309/#317 the Adam step counter was never incremented, so bias correction stayed at
// its step-1 values forever: bc1 = 1-β1, bc2 = 1-β2 (an effective LR ≈ 2.236× the scheduled one
// with β=(0.9,0.95), and no bias-correction decay). Off by default.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ParamStore } from "../model/param-store.ts";
import { type ParamSpec, noDecayPrefix } from "../model/params.ts";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip the global L2 norm of the gradient to this value (0 or Infinity disables) */
  maxGradNorm: number;
  stepIncrementBug: boolean;
}

/** Fills `out` with elements [lo, hi) of tensor `spec`'s moment `group` (resume from a checkpoint). */
export type MomentReader = (spec: ParamSpec, group: "m" | "v", lo: number, hi: number, out: Float32Array) => void;

export interface StepStats {
  /** global L2 norm of the gradient before clipping */
  gradNorm: number;
  /** the scale applied to the gradient (1 when not clipped) */
  clipScale: number;
}

export class AdamW {
  readonly m: DevPtr;
  readonly v: DevPtr;
  /** number of updates applied so far (the Adam step counter) */
  step = 0;
  private readonly be: Backend;
  private readonly normScratch: DevPtr;
  private readonly prefix: number;

  constructor(readonly params: ParamStore, readonly opts: AdamWOptions) {
    const be = (this.be = params.backend);
    this.m = be.alloc(params.numel * 4);
    this.v = be.alloc(params.numel * 4);
    be.zero(this.m, params.numel * 4);
    be.zero(this.v, params.numel * 4);
    this.normScratch = be.alloc(256);
    this.prefix = noDecayPrefix(params.specs);
  }

  gradNorm(): number {
    const out = new Float32Array(64);
    this.be.normSquared(this.normScratch, this.params.grad, this.params.numel, false);
    this.be.download(out.subarray(0, 1), this.normScratch);
    return Math.sqrt(out[0]);
  }

  /** Apply one update with learning rate `lr` to params from params.grad. */
  update(lr: number): StepStats {
    const { beta1, beta2, eps, weightDecay, maxGradNorm, stepIncrementBug } = this.opts;
    const gradNorm = this.gradNorm();
    // torch clip_grads_with_norm_: g *= min(1, max_norm / (total + 1e-6))
    const clipScale = maxGradNorm > 0 && Number.isFinite(maxGradNorm) ? Math.min(1, maxGradNorm / (gradNorm + 1e-6)) : 1;
    const t = stepIncrementBug ? 1 : this.step + 1;
    const bc1 = 1 - Math.pow(beta1, t), bc2 = 1 - Math.pow(beta2, t);
    const p = this.params, be = this.be;
    const groups: [number, number, number][] = [[0, this.prefix, 0], [this.prefix, p.numel - this.prefix, weightDecay]];
    for (const [start, n, wd] of groups) {
      if (n === 0) continue;
      be.adamw(p.master + start * 4, p.separateAct ? p.act + start * be.actBytes : 0, p.grad + start * 4, this.m + start * 4,
        this.v + start * 4, n, { lr, beta1, beta2, eps, weightDecay: wd, bc1, bc2, gradScale: clipScale });
    }
    this.step++;
    return { gradNorm, clipScale };
  }

  /** Fill both Adam moments tensor by tensor (resume). */
  fillMoments(read: MomentReader): void {
    const host = new Float32Array(Math.max(...this.params.specs.map((s) => s.numel)));
    for (const [group, base] of [["m", this.m], ["v", this.v]] as const) {
      for (const s of this.params.specs) {
        const view = host.subarray(0, s.numel);
        read(s, group, 0, s.numel, view);
        this.be.upload(base + s.offset * 4, view);
      }
    }
  }

  free(): void {
    this.be.free(this.m);
    this.be.free(this.v);
    this.be.free(this.normScratch);
  }
}
