// The tiny job the training tests run, in one place: its model (4 heads / 2 kv heads, F 32, padded
// V 256: OLMo-2's shape at a size a 2-core machine trains in seconds, with GQA and TP=2 divisibility),
// its token file, and its default config sections (6 steps of 4 instances × 16 tokens).
import { writeFileSync } from "node:fs";
import type { RunConfigInput } from "../../src/config/schema.ts";

export const TINY_MODEL = { dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 32, vocabSize: 256, maxSeqLen: 64 };

/** The tiny job's token file: `count` tokens below 250 (by default 40 instances of 16). */
export function writeTinyTokens(path: string, count = 16 * 40): void {
  writeFileSync(path, Uint32Array.from({ length: count }, (_, i) => (i * 7 + (i >> 3)) % 250));
}

/** What a test changes of the tiny job: fields of its sections, merged over the defaults. */
export interface TinyJobOverrides {
  train?: Partial<RunConfigInput["train"]>;
  optim?: Partial<RunConfigInput["optim"]>;
  checkpoint?: Partial<NonNullable<RunConfigInput["checkpoint"]>>;
  /** top-level fields (backend, threads, eval, ...), set after the sections */
  top?: Partial<RunConfigInput>;
}

/** The tiny job's config over the token file at `tokensPath`. */
export function tinyRunConfig(name: string, tokensPath: string, over: TinyJobOverrides = {}): RunConfigInput {
  return {
    name,
    model: TINY_MODEL,
    data: { paths: [tokensPath], seed: 7 },
    train: { seqLen: 16, globalBatchInstances: 4, microBatchInstances: 2, steps: 6, logEvery: 100, ...over.train },
    optim: { lr: 1e-2, schedule: { kind: "cosine", warmupSteps: 2, alpha: 0.1 }, ...over.optim },
    checkpoint: { saveInterval: 4, keep: 5, ...over.checkpoint },
    backend: "cpu",
    ...over.top,
  };
}
