// Global batches in OLMo-core's order (data_loader.py NumpyFSLDataLoader), sharded over DP ranks:
//   idx   = globalOrder(N, seed, epoch, chunk)            (PCG64(seed+epoch), epoch 1-based)
//   ipb   = globalBatchTokens / L;  batchesPerEpoch = floor(N / ipb)    (tail dropped)
//   batch b of epoch e = idx[b·ipb … (b+1)·ipb);  DP rank r takes its columns r, r+W, r+2W, …
// The cursor is the number of global batches consumed, so a resumed run (any world size) continues
// with exactly the batches the uninterrupted run would have seen: resume = skip
// floor(tokensProcessed / globalBatchTokens) whole global batches, then rebuild the same permutation.
import { createHash } from "node:crypto";
import { UserError } from "../errors.ts";
import type { Dataset } from "./dataset.ts";
import { type LoaderState, type OlmoCoreCursor, checkLoaderState, checkSavedCursor, isOlmoCoreCursor } from "./cursor.ts";
import { type ResumeOptions, type ResumeTarget, resumePosition } from "./resume.ts";
import type { TokenizerIds } from "./tokenizers.ts";
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
  /** the tokenizer's EOS and PAD ids (OLMo-core's fingerprint hashes them); null or absent: unknown */
  tokenIds?: TokenizerIds | null;
  /** the tokenizer's name, for messages */
  tokenizer?: string;
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
  private seedNow: number;
  readonly dpRank: number;
  readonly dpWorld: number;
  readonly allowRepetition: boolean;
  private fingerprintNow: string;
  private batchesProcessed = 0;
  private order: { epoch: number; idx: Uint32Array } | null = null;

  constructor(readonly dataset: Dataset, private readonly opts: LoaderOptions) {
    const L = (this.seqLen = dataset.seqLen);
    const gbt = opts.globalBatchTokens;
    this.dpWorld = opts.dpWorld ?? 1;
    this.dpRank = opts.dpRank ?? 0;
    this.seedNow = opts.seed;
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
    this.fingerprintNow = this.combinedFingerprint(this.seed);
  }

  /** the data-order seed (a resume continues with its checkpoint's) */
  get seed(): number {
    return this.seedNow;
  }

  /** the dataset fingerprint combined with the seed */
  get fingerprint(): string {
    return this.fingerprintNow;
  }

  private combinedFingerprint(seed: number): string {
    return createHash("sha256").update(`${this.dataset.fingerprint()},seed=${seed}`).digest("hex");
  }

  /** OLMo-core's fingerprint of the files, computed on first use; why not when the tokenizer's ids are unknown. */
  private olmoCoreFingerprint(): string | { unknown: string } {
    const ids = this.opts.tokenIds;
    if (!ids) {
      return { unknown: `its dataset fingerprint hashes the tokenizer's EOS and PAD ids, and data.tokenizer ${JSON.stringify(this.opts.tokenizer ?? "")} is not one olmo knows; set data.eosTokenId and data.padTokenId` };
    }
    return (this.olmoCoreFp ??= this.dataset.olmoCoreFingerprint(ids.pad, ids.eos));
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
    const oc = this.olmoCoreFingerprint();
    return {
      tokensProcessed: this.batchesProcessed * this.globalBatchTokens,
      batchesProcessed: this.batchesProcessed,
      epoch: 1 + Math.floor(this.batchesProcessed / this.batchesPerEpoch),
      seed: this.seed,
      fingerprint: this.fingerprint,
      filesFingerprint: this.dataset.filesFingerprint(),
      seqLen: this.seqLen,
      chunkTokens: this.dataset.maxTargetSeqLen,
      batchesPerEpoch: this.batchesPerEpoch,
      ...(typeof oc === "string" ? { olmoCoreFingerprint: oc } : {}),
    };
  }

  /**
   * Continue after a checkpoint, ours or OLMo-core's, by the one resume rule (resume.ts): the same
   * files and chunk length, the checkpoint's seed, the same token position (so a changed global
   * batch or sequence length resumes where the tokens stopped, as OLMo-core).
   */
  restore(state: LoaderState | OlmoCoreCursor, opts: ResumeOptions = {}): void {
    if (isOlmoCoreCursor(state)) checkSavedCursor(state);
    else checkLoaderState(state);
    const target: ResumeTarget = {
      seed: this.seed, seqLen: this.seqLen, chunkTokens: this.dataset.maxTargetSeqLen, globalBatchTokens: this.globalBatchTokens,
      batchesPerEpoch: this.batchesPerEpoch, filesFingerprint: this.dataset.filesFingerprint(),
      combinedFingerprint: (seed) => this.combinedFingerprint(seed), olmoCoreFingerprint: () => this.olmoCoreFingerprint(),
    };
    const { batchesProcessed, seed } = resumePosition(target, state, opts);
    if (seed !== this.seedNow) {
      this.seedNow = seed;
      this.fingerprintNow = this.combinedFingerprint(seed);
      this.order = null;
    }
    this.batchesProcessed = batchesProcessed;
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
