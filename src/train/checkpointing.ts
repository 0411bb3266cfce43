// Checkpoints of a training run: resume from the newest complete checkpoint in the run folder,
// or initialize from checkpoint.loadPath (native or HF; with or without trainer state, as OLMo-2
// stage 2), or from scratch; save every saveInterval steps and at the end, keeping the last K.
// Tensors move between device and disk one at a time, so host memory stays at one tensor.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HfSource } from "../checkpoint/hf.ts";
import { NativeReader } from "../checkpoint/native-read.ts";
import { NativeWriter } from "../checkpoint/native.ts";
import { checkpointName, findLatestCheckpoint, pruneCheckpoints, tempDirFor } from "../checkpoint/naming.ts";
import { configMismatch } from "../checkpoint/source.ts";
import { type RunConfig, globalBatchTokens } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { paddedVocab } from "../model/config.ts";
import { Zero1AdamW } from "../optim/zero1.ts";
import type { ParamSpec } from "../model/params.ts";
import { readShardRange, shardRegions, tpShards } from "../model/tp-plan.ts";
import { Progress } from "./progress.ts";
import type { Trainer } from "./trainer.ts";

/** What the data loader saves and restores (opaque here). */
export interface DataStateful {
  state(): unknown;
  restore(state: unknown): void;
}

interface SavedTrainState {
  step: number;
  tokensProcessed: number;
  adamStep: number;
}

export class RunCheckpointer {
  private latest: string | null = null;

  /**
   * leaderPid: rank 0's process id, which names a parallel save's shared temporary directory (so
   * that a later run can tell a dead save's debris by it)
   */
  constructor(readonly cfg: RunConfig, readonly runDir: string, readonly trainer: Trainer, readonly leaderPid = process.pid) {}

  latestName(): string | null {
    return this.latest;
  }

  /**
   * Elements [lo, hi) of a local tensor from a reader of element ranges of whole tensors: under TP
   * mapped through the rank's shard (tp-plan.ts readShardRange), so a rank reads about what it keeps,
   * any TP size loads any checkpoint, and initialization does not depend on the TP size.
   */
  private shardedRange(readFull: (full: ParamSpec, start: number, out: Float32Array) => void): (s: ParamSpec, lo: number, hi: number, out: Float32Array) => void {
    const shards = this.trainer.shards;
    if (!shards) return (s, lo, _hi, out) => readFull(s, lo, out);
    return (s, lo, hi, out) => {
      const sh = shards.get(s.name)!;
      readShardRange(sh, lo, hi, out, (start, o) => readFull(sh.full, start, o));
    };
  }

  /** Returns the checkpoint path resumed from, or null for a fresh start. */
  restoreOrInit(initTensor: (spec: ParamSpec, out: Float32Array) => void, data: DataStateful, log: (l: string) => void): string | null {
    const store = this.trainer.params;
    const latest = findLatestCheckpoint(this.runDir);
    if (latest) {
      this.loadNative(latest, { optimizer: true, trainer: true, data });
      this.latest = latest;
      return latest;
    }
    const from = this.cfg.checkpoint.loadPath;
    if (!from) {
      // each tensor generated whole from (seed, name), then this rank's part kept
      const init = this.shardedRange((full, start, o) => {
        const whole = new Float32Array(full.numel);
        initTensor(full, whole);
        o.set(whole.subarray(start, start + o.length));
      });
      store.fillEach((s, out) => init(s, 0, s.numel, out));
      return null;
    }
    let what: string;
    if (existsSync(join(from, "metadata.msgpack"))) {
      this.loadNative(from, { optimizer: true, trainer: this.cfg.checkpoint.loadTrainerState, data });
      what = this.cfg.checkpoint.loadTrainerState ? "" : " (weights and optimizer state; fresh step, data order and LR)";
    } else if (existsSync(join(from, "config.json"))) {
      what = " (weights only: an HF folder has no optimizer state)";
      const src = new HfSource(from);
      try {
        this.checkModel(src.config, from);
        const read = this.shardedRange((f, start, o) => src.readRange(f.name, start, o));
        store.fillEach((s, out) => read(s, 0, s.numel, out));
      } finally {
        src.close();
      }
    } else {
      throw new UserError(`checkpoint.loadPath ${from}: neither a native checkpoint (metadata.msgpack) nor an HF folder (config.json)`);
    }
    log(`initialized from ${from}${what}`);
    return null;
  }

  private checkModel(found: RunConfig["model"], path: string): void {
    const diff = configMismatch(this.cfg.model, found, paddedVocab);
    if (diff) throw new UserError(`${path}: checkpoint is of another model: ${diff}`);
  }

  private loadNative(path: string, what: { optimizer: boolean; trainer: boolean; data: DataStateful }): void {
    const r = new NativeReader(path);
    try {
      this.checkModel(r.meta.model, path);
      r.checkFileSizes();
      const store = this.trainer.params, optim = this.trainer.optim;
      const bar = new Progress("load", store.specs.length * 3);
      let done = 0;
      // ranged reads: a TP rank reads its shard, a ZeRO-1 rank its slice of the moments
      const model = this.shardedRange((f, start, o) => r.readRange("model", f.name, start, o));
      store.fillEach((s, out) => {
        model(s, 0, s.numel, out);
        bar.update(++done);
      });
      const ts = (r.meta.trainState ?? {}) as Partial<SavedTrainState>;
      if (what.optimizer && store.specs.every((s) => r.has("adam_m", s.name))) {
        const moments = { m: this.shardedRange((f, start, o) => r.readRange("adam_m", f.name, start, o)),
          v: this.shardedRange((f, start, o) => r.readRange("adam_v", f.name, start, o)) };
        optim.fillMoments((s, group, lo, hi, out) => {
          moments[group](s, lo, hi, out);
          bar.update(++done);
        });
        optim.step = ts.adamStep ?? 0;
      }
      bar.done();
      if (what.trainer) {
        this.trainer.state = { step: ts.step ?? 0, tokensProcessed: ts.tokensProcessed ?? 0 };
        if (r.meta.dataCursor != null) what.data.restore(r.meta.dataCursor);
      }
    } finally {
      r.close();
    }
  }

  /** Save at the interval, at the last step, and when forced. */
  maybeSave(step: number, dataState: unknown, force = false): void {
    const every = this.cfg.checkpoint.saveInterval;
    if (!force && step !== this.trainer.totalSteps && !(every > 0 && step % every === 0)) return;
    this.save(step, dataState);
  }

  /**
   * Save a checkpoint; collective when the run has several ranks. Every rank writes what it owns
   * (its TP shard; under ZeRO-1 its slice of the fp32 masters and Adam moments; replicated tensors
   * from TP rank 0) into the same temporary directory, with no gathers: each rank moves 1/world of
   * the checkpoint. Rank 0 then merges the ranks' slice indexes into the metadata, written last, and
   * publishes the directory; it returns the path, the others null. Tensors are stored as rectangles
   * of the whole tensors, so any TP×DP layout resumes any checkpoint.
   */
  save(step: number, dataState: unknown): string | null {
    const { cfg, trainer } = this;
    const main = trainer.isMain, world = trainer.tpWorld * trainer.dpWorld;
    const rank = trainer.dpRank * trainer.tpWorld + trainer.tpRank;
    const name = checkpointName({ stage: cfg.stage, ingredient: cfg.ingredient, step, globalBatchTokens: globalBatchTokens(cfg) });
    const finalPath = join(this.runDir, name);
    const tmp = tempDirFor(finalPath, this.leaderPid);
    const opts = { compress: cfg.checkpoint.compress, tmp, rank };
    let w: NativeWriter | null = null;
    try {
      if (main) w = new NativeWriter(finalPath, cfg.model, opts); // creates the temporary directory
      if (world > 1) trainer.worldBarrier();
      w ??= new NativeWriter(finalPath, cfg.model, { ...opts, joinTmp: true });
      this.writeOwned(w);
      if (!main) w.finishPart();
      if (world > 1) trainer.worldBarrier(); // every rank's part is on disk
      if (main) {
        const trainState: SavedTrainState = { step, tokensProcessed: trainer.state.tokensProcessed, adamStep: trainer.optim.step };
        w.finish({ runConfig: cfg, trainState: { ...trainState }, dataCursor: dataState },
          world > 1 ? { world, tp: trainer.tpWorld, dp: trainer.dpWorld } : undefined);
      }
    } catch (e) {
      w?.abort();
      throw e;
    }
    if (!main) return null;
    pruneCheckpoints(this.runDir, cfg.checkpoint.keep);
    this.latest = finalPath;
    return this.latest;
  }

  /** This rank's part: for each group and tensor, the elements it owns, as rectangles of the whole tensor. */
  private writeOwned(w: NativeWriter): void {
    const { trainer } = this;
    const be = trainer.backend, store = trainer.params, optim = trainer.optim;
    const shards = trainer.shards ?? new Map(tpShards(this.cfg.model, 1, 0).map((sh) => [sh.full.name, sh]));
    // the arena elements this rank owns: its ZeRO-1 slice, else all of its (TP-local) arena
    const zero1 = optim instanceof Zero1AdamW ? optim.shard : null;
    const [own0, own1] = zero1 ? [zero1.start, zero1.start + zero1.len] : [0, store.numel];
    const host = new Float32Array(Math.max(...store.specs.map((s) => s.numel)));
    const bar = trainer.isMain ? new Progress("save", store.specs.length * 3) : null;
    let done = 0;
    try {
      // masters and moments of a ZeRO-1 rank are buffers of its slice only
      for (const [group, base, sliced] of [["model", store.master, store.slicedMaster], ["adam_m", optim.m, !!zero1], ["adam_v", optim.v, !!zero1]] as const) {
        for (const s of store.specs) {
          bar?.update(++done);
          const sh = shards.get(s.name)!;
          if (sh.full.tp === "replicated" && trainer.tpRank !== 0) continue;
          const lo = Math.max(own0, s.offset), hi = Math.min(own1, s.offset + s.numel);
          if (hi <= lo) continue;
          const view = host.subarray(0, hi - lo);
          be.download(view, base + (sliced ? lo - own0 : lo) * 4);
          const first = lo - s.offset;
          for (const r of shardRegions(sh, first, hi - s.offset)) w.addRegion(group, s.name, r.ranges, view.subarray(r.from - first, r.to - first));
        }
      }
    } finally {
      bar?.done();
    }
  }
}
