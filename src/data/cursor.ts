// The data positions a checkpoint saves: ours (LoaderState, written by DataLoader.state) and
// OLMo-core's as imported (OlmoCoreCursor), and the check that a saved one is well formed before a
// resume (data/resume.ts) or `olmo ckpt info` uses it. A leaf: the loader, the resume rule and the
// checkpoint formats import it.
import { UserError } from "../errors.ts";

/** What the trainer saves with a checkpoint and hands back to restore(). */
export interface LoaderState {
  /** global tokens consumed (all ranks): batchesProcessed · globalBatchTokens */
  tokensProcessed: number;
  /** global batches consumed */
  batchesProcessed: number;
  /** epoch of the next batch (1-based) */
  epoch: number;
  seed: number;
  /** dataset fingerprint combined with the seed (and, inside, the lengths) */
  fingerprint: string;
  /** the parts the resume rule compares (data/resume.ts); absent in older checkpoints */
  filesFingerprint?: string;
  seqLen?: number;
  /** the order's chunk length: data.maxTargetSeqLen, or seqLen without it */
  chunkTokens?: number;
  /** global batches per epoch (so the position converts to OLMo-core's per-epoch count; absent in older checkpoints) */
  batchesPerEpoch?: number;
  /** OLMo-core's fingerprint of the same files (NumpyDatasetBase.fingerprint "v1.1"), for exports */
  olmoCoreFingerprint?: string;
}

/**
 * OLMo-core's data-loader position (its train/rank0.pt `data_loader`), as a checkpoint imported from
 * OLMo-core carries it. Unlike ours it counts within the epoch: OLMo-core's loader resets
 * batches_processed and tokens_processed at the end of every epoch and numbers epochs from 1
 * (allenai/OLMo-core @ d7301e62, src/olmo_core/data/data_loader.py reset / reshuffle). The
 * fingerprint is NumpyDatasetBase.fingerprint (version "v1.1", numpy_dataset.py), which
 * Dataset.olmoCoreFingerprint computes for our files.
 */
export interface OlmoCoreCursor {
  olmoCore: {
    epoch: number; batchesProcessed: number; tokensProcessed: number; seed: number; fingerprint: string; fingerprintVersion: string;
    /** instance length and chunking (max_target_sequence_length / sequence_length) the order was drawn for; the
     *  v1.1 fingerprint covers the files only, so these are compared on their own (null: not recorded) */
    sequenceLength?: number | null;
    chunk?: number | null;
  };
}

export function isOlmoCoreCursor(state: unknown): state is OlmoCoreCursor {
  return typeof state === "object" && state !== null && "olmoCore" in state;
}

/** A saved cursor, ours or OLMo-core's, must be well formed: one line naming the first field that is not. */
export function checkSavedCursor(state: unknown): void {
  if (!isOlmoCoreCursor(state)) return checkLoaderState(state);
  const c = state.olmoCore as unknown as Record<string, unknown>;
  for (const [k, min] of [["epoch", 1], ["tokensProcessed", 0], ["seed", 0]] as const) {
    if (!Number.isSafeInteger(c?.[k]) || (c[k] as number) < min) {
      throw new UserError(`the OLMo-core data-loader state is malformed: ${k} is ${JSON.stringify(c?.[k])?.slice(0, 40)}`);
    }
  }
  if (typeof c.fingerprint !== "string") throw new UserError("the OLMo-core data-loader state is malformed: no dataset fingerprint");
}

/** A saved cursor must be a LoaderState: one line naming the first field that is not. */
export function checkLoaderState(state: unknown): asserts state is LoaderState {
  const s = state as Record<string, unknown> | null;
  if (typeof s !== "object" || s === null || Array.isArray(s)) throw new UserError("the checkpoint's data-loader state is missing or malformed (not a map)");
  const nat = (k: string, min: number) => {
    if (!Number.isSafeInteger(s[k]) || (s[k] as number) < min) throw new UserError(`the checkpoint's data-loader state is malformed: ${k} is ${JSON.stringify(s[k])?.slice(0, 40)}, expected an integer >= ${min}`);
  };
  nat("tokensProcessed", 0);
  nat("batchesProcessed", 0);
  nat("epoch", 1);
  nat("seed", 0);
  if (typeof s.fingerprint !== "string") throw new UserError("the checkpoint's data-loader state is malformed: no fingerprint");
  if (s.filesFingerprint !== undefined && typeof s.filesFingerprint !== "string") throw new UserError("the checkpoint's data-loader state is malformed: filesFingerprint is not a string");
  for (const k of ["seqLen", "chunkTokens", "batchesPerEpoch"]) if (s[k] !== undefined) nat(k, 1);
  if (s.seqLen !== undefined && s.chunkTokens !== undefined && (s.chunkTokens as number) % (s.seqLen as number) !== 0) {
    throw new UserError(`the checkpoint's data-loader state is malformed: chunkTokens ${s.chunkTokens} is not a multiple of seqLen ${s.seqLen}`);
  }
}
