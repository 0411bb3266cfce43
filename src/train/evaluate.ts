// Evaluate a model on fixed-length instances as one batch: CE, z-loss, total loss (OLMo's
// definition: (ΣCE + z·Σlse²)/N over shifted labels) and optionally the global gradient norm.
import type { Backend } from "../backend/backend.ts";
import { UserError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { Olmo2, shiftLabels } from "../model/olmo2.ts";
import { ParamStore } from "../model/param-store.ts";
import type { ParamSpec } from "../model/params.ts";

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
