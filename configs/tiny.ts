// The embedded default run: `bun run train` (no argument) trains this on the CPU in a few minutes.
// A tiny OLMo-2 (all the architecture: reordered norm, QK-norm, RoPE, GQA, SwiGLU, untied head,
// the real padded dolma2 vocabulary) on the Brown corpus, tokenized with cl100k_base: 480 of its 500
// documents; the other 20 (every 25th, src/data/brown/split.ts) are the held-out set evaluated
// every 100 steps and at the end.
import type { RunConfigInput } from "../src/config/schema.ts";

export default {
  name: "tiny",
  model: {
    dModel: 64,
    nLayers: 4,
    nHeads: 4,
    nKvHeads: 2,
    ffnHidden: 256,
    vocabSize: 100278, // dolma2; padded to 100352 for the embedding and head
    maxSeqLen: 1024,
  },
  data: { embedded: "brown", seed: 34521 },
  train: {
    seqLen: 128,
    globalBatchInstances: 4,
    microBatchInstances: 2,
    steps: 400,
    logEvery: 50,
    samplePrompt: "The jury said",
    sampleTokens: 24,
  },
  optim: {
    lr: 1e-2,
    weightDecay: 0.1,
    schedule: { kind: "cosine", warmupSteps: 20, alpha: 0.1 },
  },
  checkpoint: { saveInterval: 200, keep: 2 },
  // the held-out documents in training's layout (128-token windows), the first 16,384 tokens of them
  eval: { everySteps: 100, sets: [{ embedded: "brown-heldout", instances: "windows", maxTokens: 16384 }] },
  backend: "auto",
} satisfies RunConfigInput;
