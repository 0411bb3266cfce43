// Checkpoints of a training run: resume from the newest complete checkpoint in the run folder,
// or initialize from checkpoint.loadPath (native or HF; with or without trainer state, as OLMo-2
// stage 2), or from scratch; save every saveInterval steps and at the end, keeping the last K.
// Tensors move between device and disk one at a time, so host memory stays at one tensor.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HfSource } from "../checkpoint/hf.ts";
import { NativeReader } from "../checkpoint/native-read.ts";
import { NativeWriter } from "../checkpoint/native.ts";
import { checkpointName, findLatestCheckpoint, pruneCheckpoints } from "../checkpoint/naming.ts";
import { configMismatch } from "../checkpoint/source.ts";
import { type RunConfig, globalBatchTokens } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { paddedVocab } from "../model/config.ts";
import { Zero1AdamW } from "../optim/zero1.ts";
import type { ParamSpec } from "../model/params.ts";
import { placeShard, readShardRange, sliceShard, tpShards } from "../model/tp-plan.ts";
import { gatherToHost } from "../parallel/gather.ts";
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

  constructor(readonly cfg: RunConfig, readonly runDir: string, readonly trainer: Trainer) {}

  latestName(): string | null {
    return this.latest;
  }

  /**
   * A per-tensor fill for the local arena from a reader of whole tensors: without TP the reader
   * itself; under TP the whole tensor is read (or generated) and this rank's slice kept, so any TP
   * size loads any checkpoint and initialization does not depend on the TP size.
   */
  private sharded(read: (full: ParamSpec, out: Float32Array) => void): (s: ParamSpec, out: Float32Array) => void {
    const shards = this.trainer.shards;
    if (!shards) return read;
    return (s, out) => {
      const sh = shards.get(s.name)!;
      if (sh.full.tp === "replicated") return read(sh.full, out);
      const whole = new Float32Array(sh.full.numel);
      read(sh.full, whole);
      sliceShard(sh, whole, out);
    };
  }

  /**
   * Elements [lo, hi) of a local tensor from a reader of element ranges of whole tensors: under TP
   * mapped through the rank's shard (tp-plan.ts readShardRange), so a rank reads about what it keeps.
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
      store.fillEach(this.sharded(initTensor));
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
        store.fillEach(this.sharded((s, out) => src.read(s.name, out)));
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
   * Under data parallelism (ZeRO-1) this is collective: every rank takes part in gathering the Adam
   * moments, rank 0 writes the checkpoint (the same format as one process, so it resumes at any DP
   * size) and the others return null.
   */
  save(step: number, dataState: unknown): string | null {
    const optim = this.trainer.optim;
    if (this.trainer.tpComm) return this.saveTp(step, dataState);
    if (optim instanceof Zero1AdamW) return this.saveZero1(step, dataState, optim);
    const be = this.trainer.backend, store = this.trainer.params;
    return this.writeCheckpoint(step, dataState, (w) => {
      const host = new Float32Array(Math.max(...store.specs.map((s) => s.numel)));
      const bar = new Progress("save", store.specs.length * 3);
      let done = 0;
      try {
        for (const [group, base] of [["model", store.master], ["adam_m", optim.m], ["adam_v", optim.v]] as const) {
          for (const s of store.specs) {
            const view = host.subarray(0, s.numel);
            be.download(view, base + s.offset * 4);
            w!.add(group, s.name, view);
            bar.update(++done);
          }
        }
      } finally {
        bar.done();
      }
    });
  }

  /**
   * The frame every save variant shares: the checkpoint name, a writer on rank 0 only, the body
   * (collective where it gathers), the train state and metadata last, pruning to the last K.
   */
  private writeCheckpoint(step: number, dataState: unknown, body: (w: NativeWriter | null) => void): string | null {
    const { cfg, trainer } = this;
    const main = trainer.isMain;
    const name = checkpointName({ stage: cfg.stage, ingredient: cfg.ingredient, step, globalBatchTokens: globalBatchTokens(cfg) });
    const w = main ? new NativeWriter(join(this.runDir, name), cfg.model, { compress: cfg.checkpoint.compress }) : null;
    try {
      body(w);
      if (w) {
        const trainState: SavedTrainState = { step, tokensProcessed: trainer.state.tokensProcessed, adamStep: trainer.optim.step };
        w.finish({ runConfig: cfg, trainState: { ...trainState }, dataCursor: dataState });
      }
    } catch (e) {
      w?.abort();
      throw e;
    }
    if (!main) return null;
    pruneCheckpoints(this.runDir, cfg.checkpoint.keep);
    this.latest = join(this.runDir, name);
    return this.latest;
  }

  /**
   * Under tensor parallelism this is collective: each sharded tensor (weights and both moments) is
   * gathered over the TP group and rank 0 writes the whole tensors, in the single-process format
   * (any TP size resumes it). With TP × DP (ZeRO-1) a tensor's moments are first gathered over the DP
   * group to DP rank 0, whose TP group then assembles the whole tensor. One tensor at a time: host
   * memory on rank 0 is one whole tensor, device memory a bounded staging buffer.
   */
  private saveTp(step: number, dataState: unknown): string | null {
    const { cfg, trainer } = this;
    const be = trainer.backend, store = trainer.params, tp = trainer.tpComm!, optim = trainer.optim;
    const perRank = Array.from({ length: tp.world }, (_, r) => tpShards(cfg.model, tp.world, r));
    const zero1 = optim instanceof Zero1AdamW ? optim : null;
    const dp0 = trainer.dpRank === 0; // only DP rank 0's TP group assembles tensors
    const maxNumel = Math.max(...store.specs.map((s) => s.numel));
    const local = new Float32Array(maxNumel);
    const staging = zero1 && dp0 ? be.alloc(maxNumel * 4) : 0; // gathered moments go back to the device for the TP gather
    return this.writeCheckpoint(step, dataState, (w) => {
      const bar = w ? new Progress("save", store.specs.length * 3) : null;
      let done = 0;
      try {
        for (const [group, base] of [["model", store.master], ["adam_m", optim.m], ["adam_v", optim.v]] as const) {
          store.specs.forEach((s, i) => {
            const view = local.subarray(0, s.numel);
            let src = base + s.offset * 4;
            if (zero1) {
              zero1.gatherRange(group === "model" ? "master" : group === "adam_m" ? "m" : "v", s.offset, s.offset + s.numel, dp0 ? view : null);
              if (dp0) be.upload((src = staging), view);
            }
            const sh = perRank[0][i];
            if (sh.full.tp === "replicated") {
              if (w) {
                if (src !== staging) be.download(view, src);
                w.add(group, s.name, view);
              }
            } else if (dp0) {
              const all = w ? new Float32Array(s.numel * tp.world) : null;
              gatherToHost(be, tp, src, s.numel, all);
              if (w && all) {
                const whole = new Float32Array(sh.full.numel);
                for (let r = 0; r < tp.world; r++) placeShard(perRank[r][i], all.subarray(r * s.numel, (r + 1) * s.numel), whole);
                w.add(group, s.name, whole);
              }
            }
            bar?.update(++done);
          });
        }
      } finally {
        bar?.done();
        if (staging) be.free(staging);
      }
    });
  }

  /** ZeRO-1 without TP: each tensor's fp32 masters and moments are gathered from their owners to rank 0. */
  private saveZero1(step: number, dataState: unknown, optim: Zero1AdamW): string | null {
    const store = this.trainer.params;
    return this.writeCheckpoint(step, dataState, (w) => {
      const host = new Float32Array(Math.max(...store.specs.map((s) => s.numel)));
      const bar = w ? new Progress("save", store.specs.length * 3) : null;
      let done = 0;
      try {
        for (const [group, which] of [["model", "master"], ["adam_m", "m"], ["adam_v", "v"]] as const) {
          for (const s of store.specs) {
            const view = host.subarray(0, s.numel);
            optim.gatherRange(which, s.offset, s.offset + s.numel, w ? view : null); // collective
            w?.add(group, s.name, view);
            bar?.update(++done);
          }
        }
      } finally {
        bar?.done();
      }
    });
  }
}
