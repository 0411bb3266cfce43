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
// OLMo-core. OLMo-core's inputs: the CE loss without z-loss (`latest_loss = ce_batch_loss`,
// train/trainer.py) and the total gradient norm before clipping (`latest_grad_norm`,
// train/callbacks/grad_clipper.py). Here the loss is the global batch's CE averaged over every
// rank, so all ranks take the same decision (OLMo-core's v1 trainer fed each rank its own loss).
// The statistics are computed in double (OLMo-core: fp32 tensors).
export interface SkipStepOptions {
  /** rolling_interval_length: how many previous values the statistics use */
  window: number;
  /** sigma_factor */
  sigmas: number;
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
