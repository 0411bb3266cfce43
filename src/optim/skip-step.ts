// The skip rule of OLMo-core's SkipStepAdamW (allenai/OLMo-core @ d7301e62,
// src/olmo_core/optim/skip_step_optimizer.py `SkipStepOptimizer.get_step_factor`; the 32B ran it with
// the defaults rolling_interval_length=128, sigma_factor=6):
//   - keep the current and the previous `window` values of the loss and of the gradient norm
//     (the setters of latest_loss / latest_grad_norm pop the oldest beyond window + 1);
//   - while fewer than max(2, window // 2) losses are recorded (the current one included), never skip;
//   - otherwise skip when  loss − mean > σ·std  or  gnorm − mean > σ·std,  mean and std (unbiased,
//     torch.std_mean's default correction) over the previous values only.
// A comparison with NaN is false in torch as here, so a NaN loss or norm is skipped, and while a
// non-finite value sits in the window every step is skipped (its mean and std are NaN), as in
// OLMo-core. OLMo-core's inputs: the batch's "CE loss" (`latest_loss = ce_batch_loss`,
// train/trainer.py) and the total gradient norm before clipping (`latest_grad_norm`,
// train/callbacks/grad_clipper.py). That "CE loss" is CE alone with the default loss, but CE + z-loss
// with `fused_loss=True`: the triton kernel adds `lse_square_scale · lse²` into the loss it returns
// (triton/cross_entropy_loss.py, `loss += z_loss`), which the trainer then logs and feeds to the rule
// as CE (all at d7301e62). The OLMo-2 32B ran fused_loss=True (src/scripts/train/OLMo2-32B.py and
// anneal/OLMo2-32B-anneal.py), so its rule saw CE + z: `loss: "ce+z"` (optim.skipStepLoss) is that.
// Here the loss is the global batch's, averaged over every rank, so all ranks take the same decision
// (OLMo-core's v1 trainer fed each rank its own loss). The statistics are computed in double
// (OLMo-core: fp32 tensors).
/** What the rule sees as the step's loss: the CE loss, or CE + z-loss (OLMo-core with fused_loss=True). */
export type SkipStepLoss = "ce" | "ce+z";

export interface SkipStepOptions {
  /** rolling_interval_length: how many previous values the statistics use */
  window: number;
  /** sigma_factor */
  sigmas: number;
  /** the loss the rule sees (default "ce") */
  loss?: SkipStepLoss;
}

/** The loss the rule sees from a step's CE and z-loss; NaN when either is not finite (the rule then skips). */
export function skipRuleLoss(kind: SkipStepLoss, ce: number, z: number): number {
  if (!Number.isFinite(z)) return NaN;
  return kind === "ce+z" ? ce + z : ce;
}

export interface SkipHistory {
  /** oldest first; at most window + 1 values (the last decision's current value included) */
  losses: number[];
  gradNorms: number[];
}

/** Mean and unbiased standard deviation (n − 1 in the denominator) of at least two values. */
export function meanStd(xs: number[]): { mean: number; std: number } {
  const n = xs.length;
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  let sq = 0;
  for (const x of xs) sq += (x - mean) * (x - mean);
  return { mean, std: Math.sqrt(sq / (n - 1)) };
}

export class SkipStepRule {
  private losses: number[] = [];
  private gradNorms: number[] = [];

  constructor(readonly opts: SkipStepOptions) {
    if (!Number.isInteger(opts.window) || opts.window < 2) throw new Error(`skip-step window ${opts.window} must be an integer ≥ 2`);
  }

  /** Record this step's loss and pre-clip gradient norm, then decide: true = skip the update. */
  decide(loss: number, gradNorm: number): boolean {
    const keep = this.opts.window + 1;
    this.losses.push(loss);
    this.gradNorms.push(gradNorm);
    if (this.losses.length > keep) this.losses.splice(0, this.losses.length - keep);
    if (this.gradNorms.length > keep) this.gradNorms.splice(0, this.gradNorms.length - keep);
    if (this.losses.length < Math.max(2, Math.floor(this.opts.window / 2))) return false;
    const l = meanStd(this.losses.slice(0, -1)), g = meanStd(this.gradNorms.slice(0, -1));
    const ok = loss - l.mean <= this.opts.sigmas * l.std && gradNorm - g.mean <= this.opts.sigmas * g.std;
    return !ok;
  }

  state(): SkipHistory {
    return { losses: this.losses.slice(), gradNorms: this.gradNorms.slice() };
  }

  /** Continue from a saved history (the newest window + 1 values are kept if the window shrank). */
  restore(h: SkipHistory): void {
    if (h.losses.length !== h.gradNorms.length) throw new Error(`skip-step history of ${h.losses.length} losses and ${h.gradNorms.length} norms`);
    const keep = this.opts.window + 1;
    this.losses = h.losses.slice(-keep);
    this.gradNorms = h.gradNorms.slice(-keep);
  }
}
