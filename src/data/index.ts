// src/data: OLMo token files → fixed-length instances → OLMo-core's global order → per-rank batches.
// Hands out typed arrays only (never imports the backend).
//
// The trainer's API:
//   const ds = openDataset({ paths | mixFile, baseDir?, tokenizer?, dtype?, seqLen, maxTargetSeqLen?, vocabSize, tokenLimits? })
//       ds.numInstances, ds.numTokens, ds.locate(i) → {fileIndex, path, label, tokenOffset}, ds.fingerprint()
//   const loader = new DataLoader(ds, { globalBatchTokens, microBatchInstances?, seed, dpRank?, dpWorld?,
//                                       allowRepetition?, orderCacheDir? })
//       loader.steps(budgetTokens)  → ceil(budget / globalBatchTokens); UserError if it needs >1 epoch
//                                      without allowRepetition
//       loader.nextBatch()          → { index, step, epoch, microBatches: Int32Array[] (each [mb·T]),
//                                       instanceIds: Uint32Array }   (this rank's share, r::dpWorld)
//       loader.batchAt(index)       → the same for any global batch (random access; `olmo data inspect`)
//       loader.state()              → LoaderState { tokensProcessed, batchesProcessed, epoch, seed, fingerprint }
//       loader.restore(state, { ignoreFingerprintMismatch? })  → skips tokensProcessed / globalBatchTokens batches
//   stepsForBudget(budgetTokens, globalBatchTokens)       100e9 at 2048×4096 → 11921
//   globalOrder(N, seed, epoch, chunk?)                   numpy PCG64(seed+epoch) shuffle, bit-exact
//   planSourceMixture({ sources, requestedTokens, globalBatchTokens, seqLen, dtype }) → { paths, labels, tokenLimits, sources }
//       (then openDataset({ paths, labels, tokenLimits, ... }))
//   prepareDocuments(docs, outDir, { maxFileTokens?, eosId?, onDocument? }) → { files, documents, tokens }
//   readDocuments(paths, onBytes?)                        .txt / .jsonl / .jsonl.gz → documents
// Every user mistake (missing file, bad size, token ≥ vocab, empty mix, budget beyond the data,
// fingerprint mismatch) is a one-line UserError.
export { Dataset, type DatasetOptions, type InstanceLocation, openDataset } from "./dataset.ts";
export { type Batch, DataLoader, type LoaderOptions, stepsForBudget } from "./loader.ts";
export type { LoaderState } from "./cursor.ts";
export { DOLMA2_TOKENIZER, type MixEntry, parseMix, readMixFile } from "./mix.ts";
export { type MixturePlan, type MixtureSource, planSourceMixture } from "./mixture.ts";
export { globalOrder, PCG64, randomInterval, seedSequenceState, shuffleInPlace } from "./pcg64.ts";
export { cl100k, DEFAULT_MAX_FILE_TOKENS, DOLMA2_EOS_ID, inputBytes, type PrepareOptions, type PrepareResult, prepareDocuments, readDocuments } from "./prepare.ts";
export { dtypeBytes, dtypeForVocab, type TokenDtype, TokenFile } from "./token-file.ts";
