// Greedy sampling for the end-of-run sample: re-runs the forward over the growing sequence (the
// model is causal, so positions after the current one do not change its logits). KV-cached
// sampling with temperature/top-p belongs to `olmo generate`.
import type { ModelConfig } from "../model/config.ts";
import { Olmo2 } from "../model/olmo2.ts";
import type { ParamStore } from "../model/param-store.ts";

export function greedySample(store: ParamStore, cfg: ModelConfig, prompt_ids: number[], maxNewTokens: number, eos?: number): number[] {
  const T = Math.min(cfg.maxSeqLen, prompt_ids.length + maxNewTokens);
  const model = new Olmo2(store, cfg, 1, T, { training: false });
  const ids = prompt_ids.slice(0, T);
  const buf = new Int32Array(T);
  try {
    while (ids.length < T) {
      buf.fill(0);
      buf.set(ids);
      model.forward(buf);
      const logits = model.logitsRow(ids.length - 1);
      let best = 0;
      for (let j = 1; j < cfg.vocabSize; j++) if (logits[j] > logits[best]) best = j; // never a padding id
      ids.push(best);
      if (best === eos) break;
    }
  } finally {
    model.free();
  }
  return ids.slice(prompt_ids.length);
}
