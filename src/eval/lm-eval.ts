// Perplexity of an evaluation set: the model forward only (gradScale 0: no backward, nothing
// written to the gradients), the training loss's own sums (Σ CE, Σ lse², labelled tokens) reduced
// over the data-parallel ranks, so an eval loss means what the training loss means:
// CE = ΣCE/n, z = zLossMult·Σlse²/n, loss = CE + z, perplexity = e^CE (OLMo-core's LMEvaluator
// reports CE loss and PPL = exp(CE) per label: allenai/OLMo-core @ d7301e62 src/olmo_core/eval/lm_evaluator.py).
//
// Batches have the model's shape [B, T]. DP rank r takes instances r, r+W, r+2W, … (as the training
// loader deals columns); a short last batch is filled with unscored rows. Under TP every rank of a
// group runs the same instances (the model's collectives need it) and gets the same sums. The
// model is the trainer's own (its activation arenas are reused: eval allocates nothing) or, for
// `olmo eval`, one built for evaluation.
import { type EvalInstances, IGNORE_TARGET } from "../data/eval-instances.ts";
import type { Olmo2 } from "../model/olmo2.ts";

export interface LmEvalResult {
  ce_loss: number;
  z_loss: number;
  loss: number;
  /** e^ce_loss */
  ppl: number;
  /** labelled (scored) tokens, all ranks */
  n_tokens: number;
  n_instances: number;
  ms: number;
  /** tokens forwarded per second, all ranks (B·T per forward, unscored rows included) */
  tokens_per_s: number;
}

export interface LmEvalOptions {
  zLossMult: number;
  dpRank?: number;
  dpWorld?: number;
  /** sums over the DP group, the same bits on every rank (the optimizer's RankSummer); identity without DP */
  sumOverDp?: (values: number[]) => number[];
}

export class LmEvaluator {
  private readonly tokens_BT: Int32Array;
  private readonly targets_BT: Int32Array;

  constructor(readonly model: Olmo2, readonly opts: LmEvalOptions) {
    this.tokens_BT = new Int32Array(model.B * model.T);
    this.targets_BT = new Int32Array(model.B * model.T);
  }

  evaluate(set: EvalInstances): LmEvalResult {
    const { B, T } = this.model;
    if (set.seqLen !== T) throw new Error(`eval instances of ${set.seqLen} tokens for a model of ${T}`);
    const r = this.opts.dpRank ?? 0, W = this.opts.dpWorld ?? 1;
    const t0 = performance.now();
    const mine = set.count > r ? Math.ceil((set.count - r) / W) : 0;
    let ceSum = 0, lseSqSum = 0, nTokens = 0, forwards = 0;
    for (let k = 0; k < mine; k += B) {
      for (let b = 0; b < B; b++) {
        const i = r + (k + b) * W;
        if (k + b < mine) set.fill(i, this.tokens_BT, this.targets_BT, b * T);
        else {
          this.tokens_BT.fill(0, b * T, (b + 1) * T);
          this.targets_BT.fill(IGNORE_TARGET, b * T, (b + 1) * T);
        }
      }
      const s = this.model.step(this.tokens_BT, this.targets_BT, this.opts.zLossMult, 0);
      ceSum += s.ceSum;
      lseSqSum += s.lseSqSum;
      nTokens += s.nTokens;
      forwards++;
    }
    const sum = this.opts.sumOverDp ?? ((v: number[]) => v);
    [ceSum, lseSqSum, nTokens, forwards] = sum([ceSum, lseSqSum, nTokens, forwards]);
    const ms = performance.now() - t0;
    const ce = ceSum / nTokens, z = (this.opts.zLossMult * lseSqSum) / nTokens;
    return { ce_loss: ce, z_loss: z, loss: ce + z, ppl: Math.exp(ce), n_tokens: nTokens, n_instances: set.count, ms,
      tokens_per_s: (forwards * B * T) / (ms / 1000) };
  }
}
