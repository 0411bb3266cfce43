// Where the recipe's data and checkpoints live: ONE root each, from the environment, so a user
// points the shipped configs at their copy without editing them.
//   OLMO_DATA_ROOT  the folder the mix files' relative paths are joined to (it holds preprocessed/...,
//                   mirrored from http://olmo-data.org/preprocessed/...)
//   OLMO_CKPT_ROOT  one run folder per stage/ingredient is created under it
//   OLMO_STAGE1_CKPT the checkpoint stage 2 starts from: default our own final stage-1 checkpoint
//                   under OLMO_CKPT_ROOT; or the released one in OLMo-core's format, e.g. a copy of
//                   https://olmo-checkpoints.org/ai2-llm/peteish32/step721901/ (its weights, Adam
//                   moments and step counters; allenai/OLMo-core src/scripts/official/OLMo-2-0325-32B.csv)
import { join } from "node:path";

export const DATA_ROOT = process.env.OLMO_DATA_ROOT ?? "/data/olmo";
export const CKPT_ROOT = process.env.OLMO_CKPT_ROOT ?? "/checkpoints/olmo2-32b";
export const STAGE1_CKPT_OVERRIDE: string | undefined = process.env.OLMO_STAGE1_CKPT || undefined;

/** the OLMo-core mix lists shipped in configs/mixes/ (absolute, so any working directory works) */
export function mixFile(name: "OLMoE-mix-0824" | "dolmino100" | "dolmino300" | "v3-small-ppl-validation"): string {
  return join(import.meta.dir, "mixes", `${name}.txt`);
}

/** a stage's run folder: each gets its own, so resume and keep-K pruning never see another stage's checkpoints */
export function runDirOf(name: string): string {
  return join(CKPT_ROOT, name);
}

/**
 * OLMo-core's in-loop perplexity evaluation of the OLMo-2 runs: the 11 v3-small validation sets
 * (allenai/OLMo-core @ d7301e62 src/olmo_core/internal/experiment.py build_common_components:
 * LMEvaluatorCallbackConfig on DataMix.v3_small_ppl_validation, NumpyDatasetType.padded_fsl — one
 * document per instance — at the training sequence length, eval_interval=1000), under
 * OLMO_DATA_ROOT/eval-data/perplexity/v3_small_dolma2-tokenizer/<set>/val/part-0-00000.npy.
 * Not the whole set each time there: its evaluator reads the set with a NumpyFSLDataLoader of
 * 2 × rank_microbatch_size × W tokens per batch (4W documents on W data-parallel ranks), reshuffled
 * at every evaluation (Evaluator.__iter__ calls reshuffle: a new epoch of seed 0) and cut to whole
 * batches (total_size drops N mod 4W documents), so each evaluation left out a different few
 * (train/callbacks/evaluator_callback.py, eval/evaluator.py, data/data_loader.py @ d7301e62).
 * olmo evaluates every document of the set, in order, at every evaluation (src/train/in-loop-eval.ts):
 * evaluations are comparable step to step and do not depend on the number of ranks; they differ from
 * OLMo-core's numbers by the share of the few documents OLMo-core left out.
 * For OLMo-2's tokenizer DataMix.build substitutes {TOKENIZER} with "dolma2-tokenizer" in this list
 * (not "allenai/dolma2-tokenizer" as in the training mixes).
 */
export const V3_SMALL_PPL_VALIDATION = {
  mixFile: mixFile("v3-small-ppl-validation"),
  baseDir: DATA_ROOT,
  tokenizer: "dolma2-tokenizer",
  instances: "documents",
} as const;
