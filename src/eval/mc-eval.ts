// Multiple-choice scoring by the log-likelihood of each continuation, as OLMo's in-loop downstream
// evaluation (allenai/OLMo @ 0c816eb8 olmo/eval/downstream.py: ICLMultiChoiceTaskDataset.prep_examples
// builds query = context + continuation[:-1], cut from the left to the model's context, and
// ICLMetric.update sums the log-probabilities of the continuation's tokens; the predicted choice
// is the argmax, ties to the first, as torch.argmax). Accuracy under four normalizations, named as
// oe-eval names them (downstream.py's METRIC_FROM_OE_EVAL maps acc_raw → acc, acc_per_char →
// len_norm, acc_uncond → pmi_dc):
//   acc_raw        Σ log p                              (OLMo "acc")
//   acc_per_token  Σ log p / continuation tokens        (no OLMo metric_type; oe-eval's per-token accuracy)
//   acc_per_char   Σ log p / continuation characters    (OLMo "len_norm": cont_str_len, the leading space not counted)
//   acc_uncond     Σ log p(c | context) − Σ log p(c | uncond prompt)
// The unconditional score is PMI against the task's domain-conditional prompt (OLMo's
// doc_to_domain_conditional). OLMo's "pmi_dc" divides the two sums instead of subtracting them;
// as both are negative, that ratio ranks highest the choice the context helps least, so we take
// the difference, the PMI-DC of Holtzman et al. 2021 ("Surface Form Competition").
//
// Each (question, choice) is one forward of a [1, T] model (T: the longest query of the task)
// through model.step with the continuation's positions as the only targets: the returned Σ CE is
// exactly −Σ log p, from the training loss's own kernels, under TP too. DP rank r scores questions
// r, r+W, …; the counts are summed over the ranks.
import type { McQuestion } from "../data/mc-task.ts";
import { IGNORE_TARGET } from "../data/eval-instances.ts";
import type { Olmo2 } from "../model/olmo2.ts";

export const MC_METRICS = ["acc_raw", "acc_per_token", "acc_per_char", "acc_uncond"] as const;
export type McMetric = (typeof MC_METRICS)[number];

export interface McEvalResult extends Record<McMetric, number> {
  n_questions: number;
  ms: number;
}

/** What a question's choices scored: Σ log p given the context and given the unconditional prompt. */
export interface ChoiceScores {
  logp: number[];
  logpUncond: number[];
}

/** The longest row a task needs: its queries and unconditional queries, capped at maxSeqLen. */
export function mcSeqLen(questions: McQuestion[], maxSeqLen: number): number {
  let T = 2;
  for (const q of questions) {
    for (const c of q.choices) T = Math.max(T, q.context.length + c.tokens.length - 1, q.uncond.length + c.tokens.length - 1);
  }
  return Math.min(T, maxSeqLen);
}

/** The four predictions of one question; each is the index of its best choice (first on ties). */
export function predictions(q: McQuestion, s: ChoiceScores): Record<McMetric, number> {
  const argmax = (f: (i: number) => number): number => {
    let best = 0;
    for (let i = 1; i < q.choices.length; i++) if (f(i) > f(best)) best = i;
    return best;
  };
  return {
    acc_raw: argmax((i) => s.logp[i]),
    acc_per_token: argmax((i) => s.logp[i] / q.choices[i].tokens.length),
    acc_per_char: argmax((i) => s.logp[i] / q.choices[i].chars),
    acc_uncond: argmax((i) => s.logp[i] - s.logpUncond[i]),
  };
}

export class McScorer {
  private readonly tokens_T: Int32Array;
  private readonly targets_T: Int32Array;

  /** model: B = 1, T ≥ mcSeqLen of the tasks it scores */
  constructor(readonly model: Olmo2) {
    if (model.B !== 1) throw new Error(`McScorer: a model of batch 1, got ${model.B}`);
    this.tokens_T = new Int32Array(model.T);
    this.targets_T = new Int32Array(model.T);
  }

  /** Σ log p(continuation | prefix): the query prefix + continuation[:-1], cut from the left to T. */
  logLikelihood(prefix: number[], continuation: number[]): number {
    const T = this.model.T;
    const query = [...prefix, ...continuation.slice(0, -1)].slice(-T);
    // OLMo's actual_ctx_len: where the continuation starts in the (possibly cut) query
    const ctxLen = query.length - continuation.length + 1;
    if (ctxLen < 1) throw new Error(`a continuation of ${continuation.length} tokens does not fit a context of ${T}`);
    this.tokens_T.fill(0);
    this.tokens_T.set(query);
    this.targets_T.fill(IGNORE_TARGET);
    for (let j = 0; j < continuation.length; j++) this.targets_T[ctxLen - 1 + j] = continuation[j];
    return -this.model.step(this.tokens_T, this.targets_T, 0, 0).ceSum;
  }

  scores(q: McQuestion): ChoiceScores {
    return {
      logp: q.choices.map((c) => this.logLikelihood(q.context, c.tokens)),
      logpUncond: q.choices.map((c) => this.logLikelihood(q.uncond, c.tokens)),
    };
  }

  evaluate(questions: McQuestion[], opts: { dpRank?: number; dpWorld?: number; sumOverDp?: (v: number[]) => number[] } = {}): McEvalResult {
    const t0 = performance.now();
    const r = opts.dpRank ?? 0, W = opts.dpWorld ?? 1;
    const correct = MC_METRICS.map(() => 0);
    let n = 0;
    for (let i = r; i < questions.length; i += W) {
      const q = questions[i];
      const p = predictions(q, this.scores(q));
      MC_METRICS.forEach((m, k) => (correct[k] += p[m] === q.gold ? 1 : 0));
      n++;
    }
    const totals = (opts.sumOverDp ?? ((v: number[]) => v))([n, ...correct]);
    const out = { n_questions: totals[0], ms: performance.now() - t0 } as McEvalResult;
    MC_METRICS.forEach((m, k) => (out[m] = totals[k + 1] / totals[0]));
    return out;
  }
}
