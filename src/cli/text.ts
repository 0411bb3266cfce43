// Text the commands share: byte counts, a model's one-line description, a byte-count progress bar.
import { type ModelConfig, paddedVocab } from "../model/config.ts";
import { paramSpecs, totalParams } from "../model/params.ts";
import { Progress } from "../progress.ts";

/** Bytes as decimal gigabytes, three decimals. */
export function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(3)} GB`;
}

/** A model's dimensions and parameter count on one line (olmo ckpt info). */
export function modelLine(m: ModelConfig): string {
  const n = totalParams(paramSpecs(m));
  return `d_model ${m.dModel}, ${m.nLayers} layers, ${m.nHeads} heads (${m.nKvHeads} kv), ffn ${m.ffnHidden}, vocab ${m.vocabSize} (padded ${paddedVocab(m)}), ` +
    `rope θ ${m.ropeTheta}, eps ${m.normEps} — ${n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : `${(n / 1e6).toFixed(2)}M`} params`;
}

/** A byte-count progress bar (MB units) for the streaming tools. */
export function byteProgress(label: string): { bar: Progress | null; cb: (done: number, total: number) => void } {
  let bar: Progress | null = null;
  return {
    get bar() { return bar; },
    cb: (done, total) => {
      bar ??= new Progress(label, Math.round(total / 1e6), "MB");
      bar.update(Math.round(done / 1e6));
    },
  };
}
