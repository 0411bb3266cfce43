// How a run starts: from the newest complete checkpoint in its folder (a resume), from
// checkpoint.loadPath (native, OLMo-core or HF; with or without the trainer state, as OLMo-2's
// stage 2), or from scratch. Every tensor is read as the sharding map says this rank keeps it (its
// TP shard, its ZeRO-1 slice of the moments), one tensor at a time.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HfSource } from "../../checkpoint/hf/folder.ts";
import { resolveCheckpointArg } from "../../checkpoint/locate.ts";
import { findLatestCheckpoint } from "../../checkpoint/naming.ts";
import { isOlmoCoreCheckpoint } from "../../checkpoint/olmo-core/read.ts";
import { configMismatch } from "../../checkpoint/source.ts";
import { describeChanges, resumeChanges, resumeRefusal } from "../../config/resume.ts";
import type { RunConfig } from "../../config/schema.ts";
import { UserError } from "../../errors.ts";
import { paddedVocab } from "../../model/config.ts";
import type { ParamSpec } from "../../model/params.ts";
import { Progress } from "../../progress.ts";
import type { Trainer } from "../trainer.ts";
import { type StateSource, openNativeState, openOlmoCoreState } from "./state-sources.ts";
import type { OlmoCoreOrigin } from "../../checkpoint/olmo-core/import.ts";

/** What the data loader saves and restores (opaque here). */
export interface DataStateful {
  state(): unknown;
  restore(state: unknown): void;
}

/** The run being started: its config, its folder and its trainer (whose state is filled). */
export interface RunContext {
  cfg: RunConfig;
  runDir: string;
  trainer: Trainer;
  /** set when the optimizer state came from OLMo-core (directly or through our checkpoints): its form, carried on */
  olmoCoreForm?: OlmoCoreOrigin;
  /** config fields whose change since the checkpoint the user accepted (olmo train --accept-change) */
  acceptChanges?: readonly string[];
}

/** β = (0.9, 0.95): bias correction at step 1 scales the step by √(1 − β2) / (1 − β1) */
const frozenAtStepOneFactor = (b1: number, b2: number) => Math.sqrt(1 - b2) / (1 - b1);

/** Returns the checkpoint path resumed from, or null for a fresh start. */
export function restoreOrInit(run: RunContext, initTensor: (spec: ParamSpec, out: Float32Array) => void, data: DataStateful, log: (l: string) => void): string | null {
  const store = run.trainer.params;
  const latest = findLatestCheckpoint(run.runDir);
  if (latest) {
    const src = openNativeState(latest);
    checkSettings(run, src, log);
    loadState(run, src, { optimizer: true, trainer: true, data }, log);
    return latest;
  }
  if (!run.cfg.checkpoint.loadPath) {
    // each tensor generated whole from (seed, name), then this rank's part kept
    const init = shardedRange(run.trainer, (full, start, o) => {
      const whole = new Float32Array(full.numel);
      initTensor(full, whole);
      o.set(whole.subarray(start, start + o.length));
    });
    store.fillEach((s, out) => init(s.name, 0, s.numel, out));
    warnFrozenCounter(run, log);
    return null;
  }
  // a run folder (stage 1's) means its newest complete checkpoint
  const loc = resolveCheckpointArg(run.cfg.checkpoint.loadPath);
  if (loc.note) log(`checkpoint.loadPath: ${loc.note}`);
  const from = loc.path;
  let what: string;
  const trainerState = run.cfg.checkpoint.loadTrainerState;
  const native = existsSync(join(from, "metadata.msgpack"));
  if (native || isOlmoCoreCheckpoint(from)) {
    // an OLMo-core step folder (the release's "OLMo format") loads like ours: weights, moments, counters
    const src = native ? openNativeState(from) : openOlmoCoreState(from);
    // continuing another folder's run (its trainer state) is a resume too; a stage-2 start is not
    if (trainerState) checkSettings(run, src, log);
    loadState(run, src, { optimizer: true, trainer: trainerState, data }, log);
    what = `${native ? "" : " (an OLMo-core checkpoint)"}${trainerState ? "" : " (weights and optimizer state; fresh step, data order and LR)"}`;
  } else if (existsSync(join(from, "config.json"))) {
    what = " (weights only: an HF folder has no optimizer state)";
    const src = new HfSource(from);
    try {
      checkModel(run.cfg, src.config, from);
      const read = shardedRange(run.trainer, (f, start, o) => src.readRange(f.name, start, o));
      store.fillEach((s, out) => read(s.name, 0, s.numel, out));
    } finally {
      src.close();
    }
  } else {
    throw new UserError(`checkpoint.loadPath ${from}: neither a native checkpoint (metadata.msgpack), an OLMo-core step folder (model_and_optim/.metadata) nor an HF folder (config.json)`);
  }
  log(`initialized from ${from}${what}`);
  warnFrozenCounter(run, log);
  return null;
}

/**
 * Continuing a run under other settings than it was trained with (a longer cosine schedule, another
 * LR or batch) is refused in one line naming each change, unless the user accepted it
 * (src/config/resume.ts owns which fields count). Before anything large is read.
 */
function checkSettings(run: RunContext, src: StateSource, log: (l: string) => void): void {
  let saved;
  try {
    saved = src.savedSettings();
  } catch (e) {
    src.close();
    throw e;
  }
  if (!saved) {
    log(`resume check: "${src.path}" carries no run config to compare this run's with`);
    return;
  }
  // a checkpoint past the new end is its own refusal (after loading: checkResumePoint in run.ts)
  const step = src.trainState().step;
  const changes = resumeChanges(saved, run.cfg).filter((c) => !(c.rule === "length" && typeof c.now === "number" && c.now < step));
  const refusal = resumeRefusal(`"${src.path}"`, changes, run.cfg, run.acceptChanges ?? []);
  if (refusal) {
    src.close();
    throw new UserError(refusal);
  }
  if (changes.length) log(`resume: continuing with the changes accepted by --accept-change: ${describeChanges(changes)}`);
}

/** What `olmo train` would do with this run folder (--print-config): start, or resume and whether the check lets it. */
export function resumePreview(cfg: RunConfig, runDir: string, acceptChanges: readonly string[]): string {
  const latest = findLatestCheckpoint(runDir);
  if (!latest) return `start: no checkpoint in ${runDir} yet${cfg.checkpoint.loadPath ? ` (from checkpoint.loadPath ${cfg.checkpoint.loadPath})` : ""}`;
  const src = openNativeState(latest);
  try {
    const saved = src.savedSettings();
    if (!saved) return `resume from ${latest} (it carries no run config to compare with)`;
    const changes = resumeChanges(saved, cfg);
    const refusal = resumeRefusal(`"${latest}"`, changes, cfg, acceptChanges);
    return refusal ? `would refuse to resume: ${refusal}` : `resume from ${latest} at step ${src.trainState().step}${changes.length ? ` with the accepted changes ${describeChanges(changes)}` : ""}`;
  } finally {
    src.close();
  }
}

/** stepIncrementBug with counters at 0: say what that means (it is not what stage 2 ran with). */
function warnFrozenCounter(run: RunContext, log: (l: string) => void): void {
  const o = run.cfg.optim;
  if (!o.stepIncrementBug || run.trainer.optim.stepCounters.some((c) => c !== 0)) return;
  log(`warning: optim.stepIncrementBug with an Adam step counter of 0 that never moves: the bias correction stays at step 1's, ` +
    `a step ${frozenAtStepOneFactor(o.beta1, o.beta2).toFixed(3)}× the schedule's at every step (the OLMo-2 32B stage 2 inherited stage 1's counter instead)`);
}

function checkModel(cfg: RunConfig, found: RunConfig["model"], path: string): void {
  const diff = configMismatch(cfg.model, found, paddedVocab);
  if (diff) throw new UserError(`${path}: checkpoint is of another model: ${diff}`);
}

/**
 * Load a checkpoint (native or OLMo-core): the weights, and (what.optimizer) the optimizer state,
 * all of it or none: both moments of every tensor with its step counter (OLMo-core restores the
 * whole optimizer state also when the trainer state is not loaded, as the 32B's stage 2 did);
 * (what.trainer) the step, tokens, data position and the skip rule's history.
 */
function loadState(run: RunContext, src: StateSource, what: { optimizer: boolean; trainer: boolean; data: DataStateful }, log: (l: string) => void): void {
  try {
    checkModel(run.cfg, src.model, src.path);
    const store = run.trainer.params, optim = run.trainer.optim;
    const names = store.specs.map((s) => s.name);
    const missing = names.flatMap((n) => (["adam_m", "adam_v"] as const).filter((g) => !src.has(g, n)).map((g) => `${g} of ${n}`));
    const withOptim = what.optimizer && missing.length < 2 * names.length;
    if (what.optimizer && missing.length > 0 && withOptim) {
      throw new UserError(`${src.path}: incomplete optimizer state: ${missing.length} of ${2 * names.length} moment tensors missing (first: ${missing[0]}); ` +
        "refusing to continue with part of the Adam state fresh");
    }
    if (what.trainer && !withOptim) {
      throw new UserError(`${src.path}: holds no optimizer state, which continuing its run needs (it would go on with fresh Adam moments); ` +
        "to start a run from its weights, set checkpoint.loadTrainerState false");
    }
    const counters = withOptim ? src.counters(names) : null;
    // before reading gigabytes: the trainer state must be there to continue from
    const ts = what.trainer ? src.trainState() : null;
    const bar = new Progress("load", store.specs.length * (withOptim ? 3 : 1));
    let done = 0;
    // ranged reads: a TP rank reads its shard, a ZeRO-1 rank its slice of the moments
    const model = shardedRange(run.trainer, (f, start, o) => src.readRange("model", f.name, start, o));
    store.fillEach((s, out) => {
      model(s.name, 0, s.numel, out);
      bar.update(++done);
    });
    if (withOptim) {
      const moments = { m: shardedRange(run.trainer, (f, start, o) => src.readRange("adam_m", f.name, start, o)),
        v: shardedRange(run.trainer, (f, start, o) => src.readRange("adam_v", f.name, start, o)) };
      optim.fillMoments((name, group, lo, hi, out) => {
        moments[group](name, lo, hi, out);
        bar.update(++done);
      });
      optim.setCounters(counters!);
      run.olmoCoreForm = src.olmoCoreForm();
    }
    bar.done();
    if (what.optimizer && !withOptim) log(`${src.path} holds no optimizer state: the Adam moments and step counters start at zero`);
    if (ts) {
      run.trainer.state = { step: ts.step, tokensProcessed: ts.tokensProcessed };
      const cursor = src.dataCursor();
      if (cursor != null) what.data.restore(cursor);
      const history = src.skipHistory();
      if (history && optim.skipRule) optim.skipRule.restore(history);
    }
  } finally {
    src.close();
  }
}

/**
 * Elements [lo, hi) of a local tensor from a reader of element ranges of whole tensors, mapped
 * through the rank's TP shard (the sharding map), so a rank reads about what it keeps, any TP size
 * loads any checkpoint, and initialization does not depend on the TP size.
 */
function shardedRange(trainer: Trainer, readFull: (full: ParamSpec, start: number, out: Float32Array) => void): (name: string, lo: number, hi: number, out: Float32Array) => void {
  const map = trainer.map;
  return (name, lo, hi, out) => map.readLocal(name, lo, hi, out, (start, o) => readFull(map.shard(name).full, start, o));
}
