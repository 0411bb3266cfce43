// The one rule for continuing a data position, ours (LoaderState) or OLMo-core's (its trainer
// state's data_loader, OlmoCoreCursor). It follows OLMo-core's NumpyDataLoaderBase /
// NumpyFSLDataLoader.load_state_dict (allenai/OLMo-core @ d7301e62, src/olmo_core/data/data_loader.py)
// where that is sound, and is stricter where it is not:
//   - the files must be the same (OLMo-core: the dataset fingerprint; it only warns when the
//     fingerprint versions differ, olmo refuses: it cannot tell the data is the same);
//   - the order is a shuffle of max-target-length chunks (max_target_sequence_length, or the sequence
//     length without one: numpy_dataset.py and _build_global_indices shuffle whole chunks, and the
//     chunk count is the same for every sequence length that divides it), so that length must be
//     the same; the sequence length may change (OLMo-core compares max_target_sequence_length only).
//     Without a max target on either side OLMo-core lets the sequence length change although the
//     order then differs: olmo refuses that;
//   - a different data seed: OLMo-core warns and continues with the checkpoint's seed, so the order
//     goes on as it was; so does olmo;
//   - the position is the token count: floor(tokens / global batch tokens) batches into the epoch.
import { UserError } from "../errors.ts";
import type { LoaderState, OlmoCoreCursor } from "./cursor.ts";

/** What the resuming run has. */
export interface ResumeTarget {
  seed: number;
  seqLen: number;
  /** the order's chunk length: data.maxTargetSeqLen, or seqLen without it */
  chunkTokens: number;
  globalBatchTokens: number;
  batchesPerEpoch: number;
  /** our fingerprint of the files alone (dtype, vocabulary, names, sizes, limits) */
  filesFingerprint: string;
  /** our older combined fingerprint (files, lengths and seed) at a given seed */
  combinedFingerprint(seed: number): string;
  /** OLMo-core's fingerprint of the files, or why it cannot be computed (the tokenizer's ids unknown) */
  olmoCoreFingerprint(): string | { unknown: string };
}

export interface ResumeOptions {
  /** continue even though the data differs (from the same token position, with this run's data and seed) */
  ignoreFingerprintMismatch?: boolean;
  /** one line for each thing the resume adopts or allows (the run prints them) */
  note?: (line: string) => void;
}

const IGNORE = "restore the original data, or set data.ignoreFingerprintMismatch to continue with this data from the same token position";

/** Where to continue: global batches already consumed, and the seed the order continues with. */
export function resumePosition(t: ResumeTarget, saved: LoaderState | OlmoCoreCursor, o: ResumeOptions = {}): { batchesProcessed: number; seed: number } {
  const note = o.note ?? (() => {});
  if ("olmoCore" in saved) {
    const c = saved.olmoCore;
    const chunkTokens = c.sequenceLength != null ? c.sequenceLength * (c.chunk ?? 1) : null;
    if (!o.ignoreFingerprintMismatch) {
      if (c.fingerprintVersion !== "v1.1") {
        throw new UserError(`resume from OLMo-core: its dataset fingerprint is version ${JSON.stringify(c.fingerprintVersion)}, this olmo compares "v1.1" only; ${IGNORE}`);
      }
      checkChunks(chunkTokens, c.sequenceLength ?? null, t, "resume from OLMo-core");
      const fp = t.olmoCoreFingerprint();
      if (typeof fp !== "string") throw new UserError(`resume from OLMo-core: ${fp.unknown}`);
      if (c.fingerprint !== fp) {
        throw new UserError("resume from OLMo-core: the dataset differs from the one the checkpoint was trained on (OLMo-core's fingerprint covers the files' names and sizes, " +
          `their dtype and the tokenizer's EOS and PAD ids: data.tokenizer, data.eosTokenId, data.padTokenId); ${IGNORE}`);
      }
    }
    const seed = adoptSeed(c.seed, t, o, note);
    noteSeqLen(c.sequenceLength ?? null, t, note);
    return { batchesProcessed: (c.epoch - 1) * t.batchesPerEpoch + Math.floor(c.tokensProcessed / t.globalBatchTokens), seed };
  }
  if (!o.ignoreFingerprintMismatch) {
    if (saved.filesFingerprint !== undefined) {
      checkChunks(saved.chunkTokens ?? null, saved.seqLen ?? null, t, "resume");
      if (saved.filesFingerprint !== t.filesFingerprint) throw new UserError(`resume: the dataset differs from the checkpoint's (files, sizes, dtype or vocabulary); ${IGNORE}`);
    } else if (saved.fingerprint !== t.combinedFingerprint(saved.seed)) {
      // a checkpoint from before the parts were recorded: one fingerprint over files, lengths and seed
      throw new UserError(`resume: the dataset differs (files, sizes, dtype or sequence lengths) from the checkpoint's; ${IGNORE}`);
    }
  }
  const seed = adoptSeed(saved.seed, t, o, note);
  noteSeqLen(saved.seqLen ?? null, t, note);
  return { batchesProcessed: Math.floor(saved.tokensProcessed / t.globalBatchTokens), seed };
}

function checkChunks(chunkTokens: number | null, seqLen: number | null, t: ResumeTarget, what: string): void {
  if (chunkTokens === null || chunkTokens === t.chunkTokens) return;
  const was = seqLen !== null && seqLen === chunkTokens ? `instances of ${seqLen} tokens` : `chunks of ${chunkTokens} tokens (instances of ${seqLen})`;
  throw new UserError(`${what}: the checkpoint's data order shuffles ${was}, this run's ${t.chunkTokens === t.seqLen ? `instances of ${t.seqLen} tokens` : `chunks of ${t.chunkTokens} tokens`} ` +
    `(data.maxTargetSeqLen, else train.seqLen): the order would not continue; set data.maxTargetSeqLen ${chunkTokens} (a sequence length that divides it may differ)`);
}

function adoptSeed(saved: number, t: ResumeTarget, o: ResumeOptions, note: (l: string) => void): number {
  if (saved === t.seed || o.ignoreFingerprintMismatch) return t.seed;
  note(`data: continuing the checkpoint's data order (seed ${saved}), not data.seed ${t.seed}; a resume keeps its run's order, as OLMo-core does`);
  return saved;
}

function noteSeqLen(saved: number | null, t: ResumeTarget, note: (l: string) => void): void {
  if (saved !== null && saved !== t.seqLen) {
    note(`data: instances are now ${t.seqLen} tokens (the checkpoint's were ${saved}); the order of ${t.chunkTokens}-token chunks continues at the same token`);
  }
}
