// A run's data, from its config: token files / a mix file / the embedded Brown corpus (prepared
// once into a cache through the same `olmo prepare` path; its training part, the held-out documents
// split off by src/data/brown/split.ts), opened as fixed-length instances in
// OLMo-core's global order (src/data), and handed to the trainer one global batch per step.
import type { RunConfig } from "../config/schema.ts";
import { globalBatchTokens, totalSteps } from "../config/schema.ts";
import { DataLoader, type LoaderState, openDataset } from "../data/index.ts";
import { UserError } from "../errors.ts";
import { embeddedBrownSplit } from "../data/brown/files.ts";
import { tokenizerIds } from "../data/tokenizers.ts";
import type { BatchSource } from "./trainer.ts";

export interface RunData {
  source: BatchSource;
  /** the cursor saved in checkpoints */
  state(): LoaderState;
  restore(state: unknown): void;
  numInstances: number;
  numTokens: number;
}

export async function openRunData(cfg: RunConfig, opts: { log: (l: string) => void; cacheDir?: string; dpRank?: number; dpWorld?: number }): Promise<RunData> {
  const d = cfg.data, T = cfg.train.seqLen;
  const paths = d.embedded ? [(await embeddedBrownSplit(opts.cacheDir, opts.log)).train] : d.paths;
  const dataset = openDataset({
    paths, mixFile: d.mixFile, baseDir: d.baseDir, tokenizer: d.tokenizer, dtype: d.dtype, seqLen: T,
    maxTargetSeqLen: d.maxTargetSeqLen, vocabSize: cfg.model.vocabSize,
  });
  const loader = new DataLoader(dataset, {
    globalBatchTokens: globalBatchTokens(cfg), microBatchInstances: cfg.train.microBatchInstances, seed: d.seed,
    allowRepetition: d.allowRepetition, dpRank: opts.dpRank, dpWorld: opts.dpWorld,
    tokenIds: tokenizerIds(d.tokenizer, d.eosTokenId, d.padTokenId), tokenizer: d.tokenizer,
  });
  // fail now, not hours in, when the data cannot cover the run
  loader.steps(totalSteps(cfg) * globalBatchTokens(cfg));
  return {
    source: { nextBatch: () => loader.nextBatch().microBatches },
    numInstances: dataset.numInstances,
    numTokens: dataset.numTokens,
    state: () => loader.state(),
    restore(state: unknown) {
      if (!state || typeof state !== "object") throw new UserError("checkpoint has no data cursor to resume from");
      loader.restore(state as LoaderState, { ignoreFingerprintMismatch: d.ignoreFingerprintMismatch, note: opts.log });
    },
  };
}
