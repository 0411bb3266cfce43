// Evaluate a model read tensor by tensor (an HF folder, a native checkpoint, an arena in tests)
// outside a training run: the perplexity of an eval set and the accuracy of a multiple-choice task
// through the in-loop evaluators (lm-eval.ts, mc-eval.ts) on a model built for evaluation, and the
// loss with the global gradient norm of fixed-length instances as one batch (`olmo eval --grad`).
// The loss is OLMo's: (ΣCE + z·Σlse²)/N over shifted labels.
import type { Backend } from "../backend/backend.ts";
import type { EvalInstances } from "../data/eval-instances.ts";
import type { McQuestion } from "../data/mc-task.ts";
import { UserError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { Olmo2, shiftLabels } from "../model/olmo2.ts";
import { ParamStore } from "../model/param-store.ts";
import type { ParamSpec } from "../model/params.ts";
import { LmEvaluator, type LmEvalResult } from "./lm-eval.ts";
import { type McEvalResult, McScorer, mcSeqLen } from "./mc-eval.ts";

export interface EvalResult {
  ce_loss: number;
  z_loss: number;
  loss: number;
  n_tokens: number;
  grad_norm?: number;
}

/** Cut a token array into consecutive instances of T tokens (the tail is dropped). */
export function cutInstances(tokens: Uint32Array | Int32Array, T: number, vocab: number, source: string): { tokens_BT: Int32Array; B: number } {
  const B = Math.floor(tokens.length / T);
  if (B === 0) throw new UserError(`${source}: ${tokens.length} tokens is fewer than one instance of --seq-len ${T}`);
  const out = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const t = tokens[i];
    if (t >= vocab || t < 0) throw new UserError(`${source}: token id ${t} at position ${i} is outside the vocabulary (size ${vocab})`);
    out[i] = t;
  }
  return { tokens_BT: out, B };
}

/** Parameters arrive tensor by tensor (from an HF folder, a checkpoint, or an arena in tests). */
export type ParamFill = (spec: ParamSpec, out: Float32Array) => void;

export function arenaFill(arena: Float32Array): ParamFill {
  return (s, out) => out.set(arena.subarray(s.offset, s.offset + s.numel));
}

export function evaluate(be: Backend, cfg: ModelConfig, fill: ParamFill, tokens_BT: Int32Array, B: number, T: number,
  opts: { zLossMult: number; grad: boolean }): EvalResult {
  if (T > cfg.maxSeqLen) throw new UserError(`--seq-len ${T} exceeds the model's max_position_embeddings ${cfg.maxSeqLen}`);
  const store = new ParamStore(be, cfg);
  store.fillEach(fill);
  const model = new Olmo2(store, cfg, B, T, { training: opts.grad });
  const targets = shiftLabels(tokens_BT, B, T);
  const nTok = B * (T - 1);
  if (opts.grad) store.zeroGrads();
  const s = model.step(tokens_BT, targets, opts.zLossMult, opts.grad ? 1 / nTok : 0);
  const ce = s.ceSum / s.nTokens, z = (opts.zLossMult * s.lseSqSum) / s.nTokens;
  const result: EvalResult = { ce_loss: ce, z_loss: z, loss: ce + z, n_tokens: s.nTokens };
  if (opts.grad) {
    const scratch = be.alloc(256);
    be.normSquared(scratch, store.grad, store.numel, false);
    const out = new Float32Array(64);
    be.download(out.subarray(0, 1), scratch);
    be.free(scratch);
    result.grad_norm = Math.sqrt(out[0]);
  }
  model.free();
  store.free();
  return result;
}

/** The model's weights in a parameter store of their own (freed by the caller). */
function loadStore(be: Backend, cfg: ModelConfig, fill: ParamFill): ParamStore {
  const store = new ParamStore(be, cfg);
  store.fillEach(fill);
  return store;
}

/** Perplexity of an eval set, `batch` instances per forward: the in-loop evaluator's numbers, bit for bit at the same batch. */
export function evaluateSet(be: Backend, cfg: ModelConfig, fill: ParamFill, set: EvalInstances, opts: { zLossMult: number; batch: number }): LmEvalResult {
  if (set.seqLen > cfg.maxSeqLen) throw new UserError(`--seq-len ${set.seqLen} exceeds the model's max_position_embeddings ${cfg.maxSeqLen}`);
  const store = loadStore(be, cfg, fill);
  const model = new Olmo2(store, cfg, opts.batch, set.seqLen, { training: false });
  try {
    return new LmEvaluator(model, { zLossMult: opts.zLossMult }).evaluate(set);
  } finally {
    model.free();
    store.free();
  }
}

/** Accuracy of a multiple-choice task under the four normalizations. */
export function evaluateTask(be: Backend, cfg: ModelConfig, fill: ParamFill, questions: McQuestion[]): McEvalResult {
  const store = loadStore(be, cfg, fill);
  const model = new Olmo2(store, cfg, 1, mcSeqLen(questions, cfg.maxSeqLen), { training: false });
  try {
    return new McScorer(model).evaluate(questions);
  } finally {
    model.free();
    store.free();
  }
}
