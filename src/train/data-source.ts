// A run's data, from its config: token files / a mix file / the embedded Brown corpus (prepared
// once into a cache through the same `olmo prepare` path; its training part, the held-out documents
// split off by src/train/brown-split.ts), opened as fixed-length instances in
// OLMo-core's global order (src/data), and handed to the trainer one global batch per step.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { RunConfig } from "../config/schema.ts";
import { globalBatchTokens, totalSteps } from "../config/schema.ts";
import { DataLoader, DOLMA2_EOS_ID, type LoaderState, openDataset, prepareDocuments } from "../data/index.ts";
import { UserError } from "../errors.ts";
import { brownDocuments, embeddedBrownTokens } from "./brown-corpus.ts";
import { type CorpusSplit, splitByDocument } from "./brown-split.ts";
import type { BatchSource } from "./trainer.ts";

export interface RunData {
  source: BatchSource;
  /** the cursor saved in checkpoints */
  state(): LoaderState;
  restore(state: unknown): void;
  numInstances: number;
  numTokens: number;
}

/** Tokenize the Brown corpus once (cl100k_base, EOS after each document) into uint32 token files. */
export async function brownTokenFiles(cacheDir: string, log: (l: string) => void): Promise<string[]> {
  const dir = join(cacheDir, "brown-cl100k");
  const parts = () => (existsSync(dir) ? readdirSync(dir).filter((f) => /^part-\d+\.npy$/.test(f)).sort().map((f) => join(dir, f)) : []);
  if (parts().length > 0) return parts();
  const embedded = embeddedBrownTokens();
  if (embedded) {
    // a compiled binary: copy the embedded token files out (they must be real files to be mmapped)
    mkdirSync(dir, { recursive: true });
    for (const [i, src] of embedded.entries()) {
      const dst = join(dir, `part-${String(i).padStart(5, "0")}.npy`);
      writeFileSync(`${dst}.tmp-${process.pid}`, readFileSync(src));
      renameSync(`${dst}.tmp-${process.pid}`, dst);
    }
    log(`unpacked the embedded corpus (Brown, cl100k_base) → ${dir}`);
    return parts();
  }
  const res = await prepareDocuments(brownDocuments(), dir, {});
  log(`prepared the embedded corpus: ${res.documents} Brown documents, ${res.tokens} tokens (cl100k_base) → ${dir}`);
  return res.files.map((f) => f.path);
}

/** The embedded corpus split by document (src/train/brown-split.ts): `data.embedded` trains on
 *  `train`, the eval set `embedded: "brown-heldout"` is `heldout`. */
export async function embeddedBrownSplit(cacheDir: string | undefined, log: (l: string) => void): Promise<CorpusSplit> {
  const dir = cacheDir ?? resolve(process.env.OLMO_CACHE ?? ".olmo-cache");
  return splitByDocument(await brownTokenFiles(dir, log), join(dir, "brown-cl100k-split"), DOLMA2_EOS_ID);
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
      loader.restore(state as LoaderState, { ignoreFingerprintMismatch: d.ignoreFingerprintMismatch });
    },
  };
}
