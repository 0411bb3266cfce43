// Global batches in OLMo-core's order (data_loader.py NumpyFSLDataLoader), sharded over DP ranks:
//   idx   = globalOrder(N, seed, epoch, chunk)            (PCG64(seed+epoch), epoch 1-based)
//   ipb   = globalBatchTokens / L;  batchesPerEpoch = floor(N / ipb)    (tail dropped)
//   batch b of epoch e = idx[b·ipb … (b+1)·ipb);  DP rank r takes its columns r, r+W, r+2W, …
// The cursor is the number of global batches consumed, so a resumed run (any world size) continues
// with exactly the batches the uninterrupted run would have seen: resume = skip
// floor(tokensProcessed / globalBatchTokens) whole global batches, then rebuild the same permutation.
import { createHash } from "node:crypto";
import { UserError } from "../errors.ts";
import { DOLMA2_EOS, DOLMA2_PAD } from "../model/config.ts";
import type { Dataset } from "./dataset.ts";
import { readCachedOrder, writeCachedOrder } from "./order-cache.ts";
import { globalOrder } from "./pcg64.ts";

export interface LoaderOptions {
  /** global batch size in tokens (all DP ranks, all micro-batches); a multiple of seqLen·dpWorld */
  globalBatchTokens: number;
  /** instances per micro-batch (gradient accumulation); default: the whole rank batch */
  microBatchInstances?: number;
  /** data-order seed (OLMo-core data_loader.seed); epoch e uses PCG64(seed + e) */
  seed: number;
  dpRank?: number;
  dpWorld?: number;
  /** allow more than one epoch (each epoch reshuffles with seed + epoch) */
  allowRepetition?: boolean;
  /** cache each epoch's order here (a large mix takes seconds to shuffle); an OLMo-core work_dir's cached order is reused */
  orderCacheDir?: string;
}

/** What the trainer saves with a checkpoint and hands back to restore(). */
export interface LoaderState {
  /** global tokens consumed (all ranks): batchesProcessed · globalBatchTokens */
  tokensProcessed: number;
  /** global batches consumed */
  batchesProcessed: number;
  /** epoch of the next batch (1-based) */
  epoch: number;
  seed: number;
  /** dataset fingerprint combined with the seed */
  fingerprint: string;
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
}

export interface Batch {
  /** 0-based global batch index over the whole run (all epochs) */
  index: number;
  /** 1-based training step this batch is for (index + 1) */
  step: number;
  epoch: number;
  /** this rank's micro-batches, each [b·T] int32 tokens, row-major (labels are shifted by the model) */
  microBatches: Int32Array[];
  /** this rank's global instance ids, in micro-batch row order */
  instanceIds: Uint32Array;
}

/** steps = ceil(budget / global batch tokens): 100e9 at 2048×4096 → 11921. */
export function stepsForBudget(budgetTokens: number, globalBatchTokens: number): number {
  if (!(budgetTokens > 0)) throw new UserError(`token budget must be > 0, got ${budgetTokens}`);
  if (!(globalBatchTokens > 0)) throw new UserError(`global batch must be > 0 tokens, got ${globalBatchTokens}`);
  return Math.ceil(budgetTokens / globalBatchTokens);
}

export class DataLoader {
  readonly seqLen: number;
  readonly globalBatchTokens: number;
  readonly instancesPerBatch: number;
  readonly rankInstances: number;
  readonly microBatchInstances: number;
  readonly batchesPerEpoch: number;
  /** OLMo-core's fingerprint of the files, computed on first use */
  private olmoCoreFp: string | undefined;
  readonly seed: number;
  readonly dpRank: number;
  readonly dpWorld: number;
  readonly allowRepetition: boolean;
  readonly fingerprint: string;
  private batchesProcessed = 0;
  private order: { epoch: number; idx: Uint32Array } | null = null;

  constructor(readonly dataset: Dataset, private readonly opts: LoaderOptions) {
    const L = (this.seqLen = dataset.seqLen);
    const gbt = opts.globalBatchTokens;
    this.dpWorld = opts.dpWorld ?? 1;
    this.dpRank = opts.dpRank ?? 0;
    this.seed = opts.seed;
    this.allowRepetition = !!opts.allowRepetition;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new UserError(`data seed must be a non-negative integer, got ${this.seed}`);
    if (!Number.isInteger(this.dpWorld) || this.dpWorld < 1 || !Number.isInteger(this.dpRank) || this.dpRank < 0 || this.dpRank >= this.dpWorld) {
      throw new UserError(`DP rank ${this.dpRank} of world ${this.dpWorld} is not valid`);
    }
    if (!Number.isInteger(gbt) || gbt <= 0 || gbt % L !== 0) throw new UserError(`global batch of ${gbt} tokens is not a positive multiple of the sequence length ${L}`);
    this.globalBatchTokens = gbt;
    this.instancesPerBatch = gbt / L;
    if (this.instancesPerBatch % this.dpWorld !== 0) {
      throw new UserError(`global batch of ${this.instancesPerBatch} instances does not split over ${this.dpWorld} DP ranks`);
    }
    this.rankInstances = this.instancesPerBatch / this.dpWorld;
    this.microBatchInstances = opts.microBatchInstances ?? this.rankInstances;
    if (!Number.isInteger(this.microBatchInstances) || this.microBatchInstances < 1 || this.rankInstances % this.microBatchInstances !== 0) {
      throw new UserError(`micro-batch of ${this.microBatchInstances} instances does not divide the rank batch of ${this.rankInstances}`);
    }
    // OLMo-core drops the tail of the (chunk-expanded) order that does not fill a global batch.
    const ordered = Math.floor(dataset.numInstances / dataset.chunk) * dataset.chunk;
    this.batchesPerEpoch = Math.floor(ordered / this.instancesPerBatch);
    if (this.batchesPerEpoch < 1) {
      throw new UserError(`the data has ${dataset.numInstances} instances of ${L} tokens, fewer than one global batch of ${this.instancesPerBatch}`);
    }
    this.fingerprint = createHash("sha256").update(`${dataset.fingerprint()},seed=${this.seed}`).digest("hex");
  }

  /** Steps for a token budget; an error if that needs more than one epoch without allowRepetition. */
  steps(budgetTokens: number): number {
    const steps = stepsForBudget(budgetTokens, this.globalBatchTokens);
    if (steps > this.batchesPerEpoch && !this.allowRepetition) {
      throw new UserError(`a budget of ${budgetTokens} tokens needs ${steps} steps of ${this.globalBatchTokens} tokens, but the data gives only ${this.batchesPerEpoch} ` +
        `(${this.batchesPerEpoch * this.globalBatchTokens} tokens) per epoch; lower the budget, add data, or allow repetition (several epochs)`);
    }
    return steps;
  }

  /** The whole global batch `index` (all DP ranks), as global instance ids. */
  globalBatch(index: number): { epoch: number; instanceIds: Uint32Array } {
    const epoch = 1 + Math.floor(index / this.batchesPerEpoch);
    if (epoch > 1 && !this.allowRepetition) {
      throw new UserError(`the data is exhausted after ${this.batchesPerEpoch} global batches (one epoch); allow repetition to run more epochs`);
    }
    const b = index % this.batchesPerEpoch;
    const idx = this.epochOrder(epoch);
    return { epoch, instanceIds: idx.subarray(b * this.instancesPerBatch, (b + 1) * this.instancesPerBatch) };
  }

  /** This rank's share of global batch `index`, assembled into micro-batches (random access). */
  batchAt(index: number): Batch {
    const { epoch, instanceIds: all } = this.globalBatch(index);
    const ids = new Uint32Array(this.rankInstances);
    for (let k = 0; k < this.rankInstances; k++) ids[k] = all[this.dpRank + k * this.dpWorld];
    const L = this.seqLen, mb = this.microBatchInstances;
    const microBatches: Int32Array[] = [];
    for (let m = 0; m < this.rankInstances / mb; m++) {
      const out = new Int32Array(mb * L);
      for (let k = 0; k < mb; k++) this.dataset.readInstance(ids[m * mb + k], out, k * L);
      microBatches.push(out);
    }
    return { index, step: index + 1, epoch, microBatches, instanceIds: ids };
  }

  nextBatch(): Batch {
    const batch = this.batchAt(this.batchesProcessed);
    this.batchesProcessed++;
    return batch;
  }

  state(): LoaderState {
    return {
      tokensProcessed: this.batchesProcessed * this.globalBatchTokens,
      batchesProcessed: this.batchesProcessed,
      epoch: 1 + Math.floor(this.batchesProcessed / this.batchesPerEpoch),
      seed: this.seed,
      fingerprint: this.fingerprint,
      batchesPerEpoch: this.batchesPerEpoch,
      olmoCoreFingerprint: (this.olmoCoreFp ??= this.dataset.olmoCoreFingerprint(DOLMA2_PAD, DOLMA2_EOS)),
    };
  }

  /**
   * Continue after a checkpoint: skip floor(tokensProcessed / globalBatchTokens) global batches (so
   * a changed global batch size resumes at the same token position, as OLMo-core). A different
   * dataset or seed is an error unless ignoreFingerprintMismatch (then this loader's data and seed
   * are used from that token position on).
   */
  restore(state: LoaderState | OlmoCoreCursor, opts: { ignoreFingerprintMismatch?: boolean } = {}): void {
    if (isOlmoCoreCursor(state)) return this.restoreOlmoCore(state.olmoCore, opts);
    checkLoaderState(state);
    if (state.fingerprint !== this.fingerprint && !opts.ignoreFingerprintMismatch) {
      const why = state.seed !== this.seed ? `the data seed differs (checkpoint ${state.seed}, now ${this.seed})` : "the dataset differs (files, sizes, dtype or sequence lengths)";
      throw new UserError(`resume: ${why}; the data order would not continue where the run stopped — restore the original data/seed or override with ignore-fingerprint-mismatch`);
    }
    this.batchesProcessed = Math.floor(state.tokensProcessed / this.globalBatchTokens);
  }

  /** Continue where an OLMo-core run's loader stopped (the same files, seed and global batch). */
  private restoreOlmoCore(c: OlmoCoreCursor["olmoCore"], opts: { ignoreFingerprintMismatch?: boolean }): void {
    checkSavedCursor({ olmoCore: c });
    if (!opts.ignoreFingerprintMismatch) {
      const d = this.dataset;
      if (c.sequenceLength != null && c.sequenceLength !== d.seqLen) {
        throw new UserError(`resume from OLMo-core: its instances are ${c.sequenceLength} tokens, this run's ${d.seqLen} (train.seqLen): the order would not continue; use ${c.sequenceLength} or override with ignore-fingerprint-mismatch`);
      }
      if (c.chunk != null && c.chunk !== d.chunk) {
        throw new UserError(`resume from OLMo-core: its order shuffles chunks of ${c.chunk} instances, this run's of ${d.chunk} (data.maxTargetSeqLen / train.seqLen); the order would not continue`);
      }
      if (c.seed !== this.seed) throw new UserError(`resume from OLMo-core: the data seed differs (checkpoint ${c.seed}, now ${this.seed}); set data.seed ${c.seed} or override with ignore-fingerprint-mismatch`);
      if (c.fingerprintVersion !== "v1.1") {
        throw new UserError(`resume from OLMo-core: its dataset fingerprint is version ${JSON.stringify(c.fingerprintVersion)}, this olmo compares "v1.1" only; override with ignore-fingerprint-mismatch if the data is the same`);
      }
      if (c.fingerprint !== (this.olmoCoreFp ??= this.dataset.olmoCoreFingerprint(DOLMA2_PAD, DOLMA2_EOS))) {
        throw new UserError("resume from OLMo-core: the dataset differs from the one the checkpoint was trained on (file names, sizes or dtype); " +
          "the data order would not continue where the run stopped — use the same token files, or override with ignore-fingerprint-mismatch");
      }
    }
    this.batchesProcessed = (c.epoch - 1) * this.batchesPerEpoch + Math.floor(c.tokensProcessed / this.globalBatchTokens);
  }

  /** The epoch's full order, computed once per epoch (or mapped from the order cache, order-cache.ts). */
  private epochOrder(epoch: number): Uint32Array {
    if (this.order?.epoch === epoch) return this.order.idx;
    const N = this.dataset.numInstances, c = this.dataset.chunk;
    const key = { numInstances: N, chunk: c, epoch, seed: this.seed, used: this.batchesPerEpoch * this.instancesPerBatch };
    const dir = this.opts.orderCacheDir;
    let idx = dir ? readCachedOrder(dir, key) : null;
    if (!idx) {
      idx = globalOrder(N, this.seed, epoch, c).subarray(0, key.used);
      if (dir) writeCachedOrder(dir, key, idx);
    }
    this.order = { epoch, idx };
    return idx;
  }
}
