// Checkpoints of a training run: save every saveInterval steps and at the end, keeping the last K,
// synchronously or on a worker thread (checkpoint.async), never from a non-finite state; how a run
// starts (resume, checkpoint.loadPath, or scratch) is restore.ts's, which restoreOrInit calls.
// Tensors move between device and disk one at a time, so host memory stays at one tensor.
import { join } from "node:path";
import type { Backend, DevPtr } from "../../backend/backend.ts";
import { NativeWriter } from "../../checkpoint/native/write.ts";
import { type EphemeralSaves, checkpointName, pruneCheckpoints } from "../../checkpoint/naming.ts";
import { stagingPath } from "../../output-dir.ts";
import { type RunConfig, globalBatchTokens } from "../../config/schema.ts";
import { DivergedError, UserError } from "../../errors.ts";
import type { ParamSpec } from "../../model/params.ts";
import type { Owned, ShardRegion } from "../../model/sharding.ts";
import { AsyncSaver } from "./async-save.ts";
import { type DataStateful, type RunContext, restoreOrInit } from "./restore.ts";
import type { SaveRegion } from "./async-save-protocol.ts";
import { Progress } from "../../progress.ts";
import type { Trainer } from "../trainer.ts";
import type { CheckpointMeta, Group } from "../../checkpoint/native/format.ts";
import { WORKER_FILES } from "../../workers.ts";

interface SavedTrainState {
  step: number;
  tokensProcessed: number;
}

export class RunCheckpointer {
  private latest: string | null = null;
  /** the step being saved (for messages) */
  private savingStep = 0;
  /** the background writer of checkpoint.async (null: synchronous saves) */
  private readonly saver: AsyncSaver | null = null;
  /** how long rank 0's background writer waits for the other ranks' parts */
  private readonly partsTimeoutMs: number = 0;
  /** device scratch of the finiteness check */
  private scratch: DevPtr = 0;
  /** the OLMo-core optimizer's form the run's state came from (restore.ts), written into each checkpoint */
  private olmoCoreForm: unknown;

  /**
   * leaderPid: rank 0's process id, which names a parallel save's shared temporary directory (so
   * that a later run can tell a dead save's debris by it)
   */
  constructor(readonly cfg: RunConfig, readonly runDir: string, readonly trainer: Trainer, readonly leaderPid = process.pid,
    log: (l: string) => void = () => {}) {
    if (cfg.checkpoint.async) {
      this.partsTimeoutMs = saveTimeoutMs();
      let saver = AsyncSaver.open(this.snapshotFloats(), trainer.backend, log);
      // every rank saves the same way (the synchronous save has collectives the asynchronous one has not)
      if (trainer.anyRank(!saver)) {
        saver?.close();
        saver = null;
        log(`checkpoint.async: a worker thread could not start on every rank (e.g. a binary built without ${WORKER_FILES.save}); saving synchronously`);
      }
      this.saver = saver;
    }
  }

  latestName(): string | null {
    return this.latest;
  }

  /** Returns the checkpoint path resumed from, or null for a fresh start (restore.ts). */
  restoreOrInit(initTensor: (spec: ParamSpec, out: Float32Array) => void, data: DataStateful, log: (l: string) => void, acceptChanges: readonly string[] = []): string | null {
    const run: RunContext = { cfg: this.cfg, runDir: this.runDir, trainer: this.trainer, acceptChanges };
    const resumed = restoreOrInit(run, initTensor, data, log);
    this.olmoCoreForm = run.olmoCoreForm;
    if (resumed) this.latest = resumed;
    return resumed;
  }

  /**
   * Save at the interval, at the last step, and when forced; first report a finished or failed
   * background save. `dataState` is asked for only when a save happens.
   */
  maybeSave(step: number, dataState: () => unknown, force = false): void {
    this.pollAsync();
    const { saveInterval: every, ephemeralInterval: eph } = this.cfg.checkpoint;
    if (!force && step !== this.trainer.totalSteps && !(every > 0 && step % every === 0) && !(eph && step % eph === 0)) return;
    this.save(step, dataState());
  }

  /**
   * Save a checkpoint; collective when the run has several ranks. Every rank writes what it owns
   * (its TP shard; under ZeRO-1 its slice of the fp32 masters and Adam moments; replicated tensors
   * from TP rank 0) into the same temporary directory, with no gathers: each rank moves 1/world of
   * the checkpoint. Rank 0 then merges the ranks' slice indexes into the metadata, written last, and
   * publishes the directory; it returns the path, the others null. Tensors are stored as rectangles
   * of the whole tensors, so any TP×DP layout resumes any checkpoint. With checkpoint.async the
   * writing happens on a worker thread (async-save.ts) and this returns null once the snapshot is
   * taken; the path is known when the write is published (finish(), or the next save).
   */
  save(step: number, dataState: unknown): string | null {
    const { cfg, trainer } = this;
    this.savingStep = step;
    const main = trainer.isMain, world = trainer.tpWorld * trainer.dpWorld;
    const rank = trainer.dpRank * trainer.tpWorld + trainer.tpRank;
    const name = checkpointName({ stage: cfg.stage, ingredient: cfg.ingredient, step, globalBatchTokens: globalBatchTokens(cfg) });
    const finalPath = join(this.runDir, name);
    const tmp = stagingPath(finalPath, this.leaderPid);
    const opts = { compress: cfg.checkpoint.compress, tmp, rank };
    const parts = world > 1 ? { world, tp: trainer.tpWorld, dp: trainer.dpWorld } : null;
    if (this.saver) this.published(this.saver.wait()); // at most one save in flight
    let w: NativeWriter | null = null;
    try {
      if (main) w = new NativeWriter(finalPath, cfg.model, opts); // creates the temporary directory
      if (world > 1) trainer.worldBarrier();
      if (this.saver) {
        const regions: SaveRegion[] = [];
        let at = 0;
        this.forEachOwned((n) => this.saver!.pool.subarray(at, at + n), (group, sname, regs, lo) => {
          for (const r of regs) regions.push({ group, name: sname, ranges: r.ranges, at: at + r.from - lo, length: r.to - r.from });
          at += regs.at(-1)!.to - lo;
        });
        this.saver.begin({ step, finalPath, tmp, runDir: this.runDir, model: cfg.model, rank, main, parts, partsTimeoutMs: this.partsTimeoutMs,
          keep: cfg.checkpoint.keep, ephemeral: ephemeralOf(cfg), compress: cfg.checkpoint.compress, meta: main ? this.metaAt(step, dataState) : {}, regions });
        return null;
      }
      w ??= new NativeWriter(finalPath, cfg.model, { ...opts, joinTmp: true });
      const host = new Float32Array(Math.max(...trainer.params.specs.map((s) => s.numel)));
      this.forEachOwned((n) => host.subarray(0, n), (group, sname, regs, lo, view) => {
        for (const r of regs) w!.addRegion(group, sname, r.ranges, view.subarray(r.from - lo, r.to - lo));
      });
      if (!main) w.finishPart();
      if (world > 1) trainer.worldBarrier(); // every rank's part is on disk
      if (main) w.finish(this.metaAt(step, dataState), parts ?? undefined);
    } catch (e) {
      w?.abort();
      throw e;
    }
    if (!main) return null;
    pruneCheckpoints(this.runDir, cfg.checkpoint.keep, ephemeralOf(cfg));
    this.latest = finalPath;
    return this.latest;
  }

  /** Wait for a save still being written in the background (the end of a run, a stop). */
  finish(): void {
    if (this.saver) this.published(this.saver.wait());
  }

  /** Stop the background writer (a save in flight is abandoned: its temporary folder is debris). */
  close(): void {
    this.saver?.close();
    if (this.scratch) this.trainer.backend.free(this.scratch);
    this.scratch = 0;
  }

  /**
   * The masters and moments every rank keeps are finite, else a DivergedError on every rank (agreed
   * with one collective: a rank alone leaving a collective save would hang the others).
   */
  private checkFinite(): void {
    const { trainer } = this, map = trainer.map;
    this.scratch ||= trainer.backend.alloc(1024);
    // each buffer holds the owned range of the arena (the whole arena without ZeRO-1)
    const bad = firstNonFinite(trainer.backend, this.scratch,
      [["model", trainer.params.master], ["adam_m", trainer.optim.m], ["adam_v", trainer.optim.v]], map.zero1.start, map.zero1.len, map.ownedParts());
    if (trainer.anyRank(bad !== null)) {
      throw new DivergedError(`training diverged at step ${this.savingStep}: ${bad ?? "the state of another rank is"} NaN, infinite or beyond ~1e19 ` +
        "(their squares overflow); this state is not saved", this.savingStep);
    }
  }

  private pollAsync(): void {
    if (this.saver) this.published(this.saver.poll());
  }

  private published(path: string | null): void {
    if (path && this.trainer.isMain) this.latest = path;
  }

  /** The metadata rank 0 writes: run config, train state, data cursor, optimizer state beyond the moments. */
  private metaAt(step: number, dataState: unknown): Pick<CheckpointMeta, "runConfig" | "trainState" | "dataCursor" | "optim"> {
    const trainer = this.trainer;
    const trainState: SavedTrainState = { step, tokensProcessed: trainer.state.tokensProcessed };
    const history = trainer.optim.skipHistory();
    return { runConfig: this.cfg, trainState: { ...trainState, ...(this.olmoCoreForm ? { olmoCore: this.olmoCoreForm } : {}) }, dataCursor: dataState,
      optim: { step: trainer.optim.counters(), ...(history ? { skipHistory: history } : {}) } };
  }

  /** Floats of one snapshot: what this rank saves of the model and both moments. */
  private snapshotFloats(): number {
    const map = this.trainer.map;
    return 3 * this.trainer.params.specs.reduce((a, s) => {
      const part = map.saveRegions(s.name);
      return a + (part ? part.owned.hi - part.owned.lo : 0);
    }, 0);
  }

  /**
   * This rank's part, tensor by tensor: for each group (model, both moments) and tensor, download
   * the elements it owns into `target(n)` and hand them, with their rectangles of the whole tensor,
   * to `visit`. Refuses non-finite values: no checkpoint is ever written from a diverged state.
   */
  private forEachOwned(target: (n: number) => Float32Array,
    visit: (group: Group, name: string, regions: ShardRegion[], lo: number, view: Float32Array) => void): void {
    const { trainer } = this;
    const be = trainer.backend, store = trainer.params, optim = trainer.optim, map = trainer.map;
    const own0 = map.zero1.start;
    this.checkFinite();
    const bar = trainer.isMain ? new Progress("save", store.specs.length * 3) : null;
    let done = 0;
    try {
      // under ZeRO-1 the masters and moments are buffers of the owned range only
      for (const [group, base, sliced] of [["model", store.master, store.slicedMaster], ["adam_m", optim.m, true], ["adam_v", optim.v, true]] as const) {
        for (const s of store.specs) {
          bar?.update(++done);
          const part = map.saveRegions(s.name);
          if (!part) continue;
          const { lo, hi } = part.owned, at = s.offset + lo;
          const view = target(hi - lo);
          be.download(view, base + (sliced ? at - own0 : at) * 4);
          visit(group, s.name, part.regions, lo, view);
        }
      }
    } finally {
      bar?.done();
    }
  }
}

/**
 * What of this rank's state is not finite, or null: the sum of squares of each buffer (the owned
 * range [start, start + len) of the arena) is finite unless a value is NaN or infinite (or beyond
 * ~1e19, equally diverged); one device reduction per buffer, the tensor looked up only on failure.
 */
function firstNonFinite(be: Backend, scratch: DevPtr, groups: [Group, DevPtr][], start: number, len: number, parts: Owned[]): string | null {
  const host = new Float32Array(256); // ≥ 1 KiB: small typed arrays can move under FFI
  const sq = (p: DevPtr, n: number) => {
    be.normSquared(scratch, p, n, false);
    be.download(host.subarray(0, 1), scratch);
    return host[0];
  };
  for (const [group, base] of groups) {
    if (len === 0 || Number.isFinite(sq(base, len))) continue;
    const bad = parts.find((o) => !Number.isFinite(sq(base + (o.shard.local.offset + o.lo - start) * 4, o.hi - o.lo)));
    const what = group === "model" ? "the weights" : `Adam's ${group === "adam_m" ? "first" : "second"} moment`;
    return `${what}${bad ? ` of ${bad.shard.full.name}` : ""} are`;
  }
  return null;
}

/** The run's ephemeral saves, for pruning (checkpoint.ephemeralInterval). */
function ephemeralOf(cfg: RunConfig): EphemeralSaves | undefined {
  const e = cfg.checkpoint.ephemeralInterval;
  return e ? { every: e, saveInterval: cfg.checkpoint.saveInterval } : undefined;
}

/** How long rank 0's background writer waits for the other ranks' parts (OLMO_SAVE_TIMEOUT_S, default 1800). */
function saveTimeoutMs(): number {
  const raw = process.env.OLMO_SAVE_TIMEOUT_S;
  if (raw === undefined || raw === "") return 1_800_000;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new UserError(`OLMO_SAVE_TIMEOUT_S="${raw}" must be a positive number of seconds`);
  return s * 1000;
}
