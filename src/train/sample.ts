// Greedy sampling for the end-of-run sample: re-runs the forward over the growing sequence (the
// model is causal, so positions after the current one do not change its logits). KV-cached
// sampling with temperature/top-p belongs to `olmo generate`.
import { UserError } from "../errors.ts";
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

/**
 * The end-of-run sample's prompt as token ids (cl100k_base, special tokens such as <|endoftext|>
 * as their ids, as `olmo generate`), checked when the run starts rather than after hours of
 * training: it must encode to ids inside the model's vocabulary and leave room for new tokens.
 */
export async function samplePromptIds(prompt: string, m: ModelConfig): Promise<number[]> {
  const { cl100k } = await import("../data/index.ts");
  const ids = (await cl100k()).encode(prompt, "all");
  const what = `train.samplePrompt ${JSON.stringify(prompt.length > 40 ? `${prompt.slice(0, 37)}...` : prompt)}`;
  if (ids.length === 0) throw new UserError(`${what} encodes to no tokens (set it to "" for no sample)`);
  const bad = ids.find((id) => id >= m.vocabSize);
  if (bad !== undefined) {
    throw new UserError(`${what} encodes to token id ${bad}, outside this model's vocabulary of ${m.vocabSize} (the sample uses the cl100k_base/dolma2 tokenizer); set train.samplePrompt to "" for no sample`);
  }
  if (ids.length >= m.maxSeqLen) throw new UserError(`${what} is ${ids.length} tokens: the model's maxSeqLen ${m.maxSeqLen} leaves no room for a sampled token`);
  return ids;
}
