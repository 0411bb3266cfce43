// A small-scale rehearsal of the whole OLMo-2 recipe on the CPU, through the same code paths as
// the real run: stage 1 (runTraining) → three stage-2 ingredients initialized from the stage-1
// final checkpoint (weights + Adam moments, fresh trainer state, their own data seeds, LR linear
// from the stage-1 LR at its last step to 0) → uniform soup of the ingredients (streaming fp32,
// src/checkpoint/soup.ts) → HF export of every final model → loss of each on held-out tokens.
// The data is the embedded run's: the Brown corpus split by document (src/data/brown/split.ts);
// each run evaluates the held-out documents in-loop at its end (the `eval` section, as any run),
// and every exported model, the soup included, is evaluated on them again by `olmo eval`'s path.
//
// The rehearsal configs are DERIVED from the shipped recipe configs (configs/stage1.ts,
// configs/stage2-ingredient*.ts): the optimizer (betas, WD, clip, z-loss, stepIncrementBug, the skip rule),
// schedule shapes (the cosine truncated at the same fraction of t_max, linear to 0), data seeds,
// chunking, stage/ingredient numbers, load-without-trainer-state and the 1:1:3 budget ratio come
// from them; only sizes, the peak LR and warmup are scaled so a tiny model learns in seconds.
import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { HfSink, HfSource } from "../checkpoint/hf/folder.ts";
import { NativeWriter } from "../checkpoint/native/write.ts";
import { checkpointName } from "../checkpoint/naming.ts";
import { copyModel, openSource, soup, soupWeights } from "../checkpoint/soup.ts";
import type { TensorSource } from "../checkpoint/source.ts";
import { validateConfig } from "../config/load.ts";
import { type RunConfig, type RunConfigInput, globalBatchTokens, totalSteps } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { openEvalInstances } from "../data/eval-instances.ts";
import { DOLMA2_EOS_ID } from "../data/index.ts";
import { lrAt } from "../optim/schedule.ts";
import { embeddedBrownSplit } from "../data/brown/files.ts";
import { evaluateSet } from "../eval/evaluate.ts";
import { runTraining } from "../train/run.ts";
import { metricsPath } from "../metrics/metrics-log.ts";
import { readMetricsHistory } from "../metrics/metrics-history.ts";
import { recordEval } from "../metrics/run-metrics.ts";

/** The shipped recipe, validated: stage 1 and the stage-2 ingredients in order. */
export interface Recipe {
  stage1: RunConfig;
  ingredients: RunConfig[];
}

export interface RehearsalScale {
  model: { dModel: number; nLayers: number; nHeads: number; nKvHeads: number; ffnHidden: number };
  seqLen: number;
  globalBatchInstances: number;
  microBatchInstances: number;
  stage1Steps: number;
  /** rehearsal steps that stand for 100B tokens of a stage-2 budget (so 100B : 300B stays 1 : 3) */
  stepsPer100B: number;
  /** peak LR: the recipe's 6e-4 is tuned for 32B on 8M-token batches, far too low for a toy */
  peakLr: number;
  /** held-out instances of seqLen tokens: windows of the held-out documents, never trained on */
  evalInstances: number;
}

export const REHEARSAL_SCALES: Record<"small" | "full", RehearsalScale> = {
  // the CI form: seconds
  small: {
    model: { dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 64 },
    seqLen: 32, globalBatchInstances: 4, microBatchInstances: 2, stage1Steps: 8, stepsPer100B: 2, peakLr: 1e-2, evalInstances: 8,
  },
  // `bun run rehearse`: a couple of minutes on 2 cores
  full: {
    model: { dModel: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 128 },
    seqLen: 64, globalBatchInstances: 4, microBatchInstances: 4, stage1Steps: 150, stepsPer100B: 15, peakLr: 1e-2, evalInstances: 32,
  },
};

export interface RehearsalFiles {
  workDir: string;
  trainFile: string;
  heldoutFile: string;
}

/** Scaled-down copies of the recipe's configs, writing under workDir. */
export function rehearsalConfigs(recipe: Recipe, scale: RehearsalScale, files: RehearsalFiles): Recipe {
  const r1 = recipe.stage1, T = scale.seqLen;
  const model = { ...r1.model, ...scale.model, maxSeqLen: T };
  const train = { seqLen: T, globalBatchInstances: scale.globalBatchInstances, microBatchInstances: scale.microBatchInstances, logEvery: 1_000_000 };
  // in-loop at each run's end: the held-out set as the final table evaluates it
  const evalCfg = { everySteps: 0, atEnd: true, sets: [heldoutSet(files, scale)] };
  const data = (real: RunConfig) => ({
    paths: [files.trainFile], dtype: "uint32" as const, seed: real.data.seed, tokenizer: real.data.tokenizer,
    // keep OLMo-core's chunking ratio (stage 1: pairs of instances), none where the recipe has none
    maxTargetSeqLen: real.data.maxTargetSeqLen ? (real.data.maxTargetSeqLen / real.train.seqLen) * T : undefined,
    allowRepetition: true,
  });
  const s1Real = r1.optim.schedule;
  if (s1Real.kind !== "cosine") throw new UserError(`rehearse: stage 1 schedule is ${s1Real.kind}; the rehearsal scales a cosine`);
  const realSteps1 = totalSteps(r1);
  const S1 = scale.stage1Steps;
  const stage1 = validateConfig({
    name: r1.name, runDir: join(files.workDir, r1.name), stage: r1.stage, model, data: data(r1),
    train: { ...train, steps: S1, initSeed: r1.train.initSeed },
    optim: {
      ...r1.optim, lr: scale.peakLr,
      // stopped at the same fraction of the cosine as the real run (721,901 of 774,861)
      schedule: { ...s1Real, warmupSteps: Math.max(1, Math.round(S1 / 10)), tMaxSteps: Math.ceil((S1 * (s1Real.tMaxSteps ?? realSteps1)) / realSteps1) },
    },
    checkpoint: { ...r1.checkpoint, saveInterval: Math.ceil(S1 / 2), keep: 2, loadPath: undefined },
    eval: evalCfg,
    backend: "cpu",
  } satisfies RunConfigInput, "rehearsal stage 1");
  const stage1Final = join(stage1.runDir!, finalName(stage1));
  // the recipe's rule: stage 2 starts where stage 1's schedule stopped
  const lr2 = lrAt(stage1.optim.schedule, totalSteps(stage1), stage1.optim.lr, totalSteps(stage1));
  const tokensPer100B = scale.stepsPer100B * scale.globalBatchInstances * T;
  const ingredients = recipe.ingredients.map((real) => {
    if (real.train.budgetTokens === undefined) throw new UserError(`rehearse: ${real.name} has no token budget to scale`);
    return validateConfig({
      name: real.name, runDir: join(files.workDir, real.name), stage: real.stage, ingredient: real.ingredient, model, data: data(real),
      // rounded so 100e9 maps to exactly stepsPer100B whole batches (float ratios would ceil one step over)
      train: { ...train, budgetTokens: Math.round((real.train.budgetTokens * tokensPer100B) / 100e9), initSeed: real.train.initSeed },
      optim: { ...real.optim, lr: lr2 },
      checkpoint: { ...real.checkpoint, saveInterval: 0, keep: 1, loadPath: stage1Final },
      eval: evalCfg,
      backend: "cpu",
    } satisfies RunConfigInput, `rehearsal ${real.name}`);
  });
  return { stage1, ingredients };
}

export function finalName(cfg: RunConfig): string {
  return checkpointName({ stage: cfg.stage, ingredient: cfg.ingredient, step: totalSteps(cfg), globalBatchTokens: globalBatchTokens(cfg) });
}

/** The held-out eval set: the first evalInstances windows of the held-out documents. */
function heldoutSet(files: RehearsalFiles, scale: RehearsalScale) {
  return { name: "heldout", paths: [files.heldoutFile], instances: "windows" as const, maxTokens: scale.evalInstances * scale.seqLen };
}

/** The embedded run's split of the Brown corpus: train on its training documents, evaluate on the held-out ones. */
export async function splitCorpus(workDir: string, heldoutTokens: number, log: (l: string) => void, cacheDir?: string): Promise<RehearsalFiles> {
  const split = await embeddedBrownSplit(cacheDir, log);
  if (heldoutTokens > split.heldoutTokens) throw new UserError(`rehearse: ${heldoutTokens} held-out tokens asked, the held-out documents have ${split.heldoutTokens}`);
  return { workDir, trainFile: split.train, heldoutFile: split.heldout };
}

export interface RehearsalRow {
  name: string;
  steps: number;
  checkpoint: string;
  hf: string;
  lrStart: number;
  /** train loss of the last step (null for the soup, which is not trained) */
  trainLoss: number | null;
  /** held-out loss of the exported model */
  evalLoss: number;
  /** the run's own in-loop held-out loss at its last step (null for the soup) */
  inLoopEvalLoss: number | null;
}

export interface RehearsalResult {
  configs: Recipe;
  rows: RehearsalRow[];
  soupDir: string;
  soupWeights: number[];
  seconds: number;
}

/** The loss of the run's last step and its last evaluation of the held-out set (its history: metrics-history.ts). */
function lastLosses(runDir: string): { train: number; eval: number | null } {
  const h = readMetricsHistory(metricsPath(runDir));
  const evals = h.evals.filter((e) => e.eval === "heldout");
  return { train: h.steps.column("loss")![h.steps.length - 1], eval: evals.length ? evals[evals.length - 1].loss ?? null : null };
}

export async function rehearse(be: Backend, recipe: Recipe, opts: { scale: RehearsalScale; workDir: string; log: (l: string) => void; trainLog?: (l: string) => void; cacheDir?: string }): Promise<RehearsalResult> {
  const t0 = performance.now();
  const { scale, workDir, log } = opts;
  const T = scale.seqLen;
  const files = await splitCorpus(workDir, scale.evalInstances * T, log, opts.cacheDir);
  const cfgs = rehearsalConfigs(recipe, scale, files);
  const trainLog = opts.trainLog ?? (() => {});
  const runs = [cfgs.stage1, ...cfgs.ingredients];
  for (const cfg of runs) {
    log(`[rehearse] ${cfg.name}: ${totalSteps(cfg)} steps, lr ${cfg.optim.lr.toExponential(4)} (${cfg.optim.schedule.kind}), data seed ${cfg.data.seed}` +
      (cfg.checkpoint.loadPath ? `, from ${finalName(cfgs.stage1)}` : ""));
    await runTraining(be, cfg, cfg.runDir!, { quiet: true, log: trainLog });
  }
  const finals = runs.map((c) => join(c.runDir!, finalName(c)));

  // the soup: a uniform mean of the ingredients' final checkpoints, as configs/soup.ts / `olmo soup`
  const soupDir = join(workDir, "stage2-soup");
  const weights = soupWeights(cfgs.ingredients.length);
  const sources: TensorSource[] = [];
  try {
    for (const p of finals.slice(1)) sources.push(openSource(p));
    soup(sources, new NativeWriter(soupDir, sources[0].config, { meta: { trainState: { ...sources[0].trainState, soup: { sources: finals.slice(1), weights } } } }), weights);
  } finally {
    for (const s of sources) s.close();
  }
  log(`[rehearse] souped ${sources.length} ingredients (weights ${weights.map((w) => +w.toFixed(4)).join(", ")}) → ${soupDir}`);

  // every final model through HF export and back, then the loss on the held-out tokens
  const h = heldoutSet(files, scale);
  const set = openEvalInstances({ paths: h.paths, dtype: "uint32", seqLen: T, vocabSize: cfgs.stage1.model.vocabSize, layout: h.instances,
    eosId: DOLMA2_EOS_ID, maxTokens: h.maxTokens, source: files.heldoutFile });
  const rows: RehearsalRow[] = [];
  const models = [...runs.map((c, i) => ({ name: c.name, cfg: c as RunConfig | null, ckpt: finals[i] })), { name: "soup", cfg: null, ckpt: soupDir }];
  for (const m of models) {
    const hf = join(workDir, "hf", m.name);
    const src = openSource(m.ckpt);
    try {
      copyModel(src, new HfSink(hf, src.config, { dtype: "f32" }));
    } finally {
      src.close();
    }
    const hfSrc = new HfSource(hf);
    let r;
    try {
      // the runs' micro-batch: the same forwards as their in-loop evaluation
      r = evaluateSet(be, hfSrc.config, (s, out) => hfSrc.read(s.name, out), set, { zLossMult: cfgs.stage1.optim.zLossMult, batch: scale.microBatchInstances });
    } finally {
      hfSrc.close();
    }
    const own = m.cfg ? lastLosses(m.cfg.runDir!) : null;
    // the soup has no run of its own: its evaluation goes into a folder `olmo report` draws beside the ingredients
    if (!m.cfg) recordEval(join(workDir, "soup"), { step: totalSteps(cfgs.ingredients[0]), eval: h.name, kind: "lm", ...r, checkpoint: m.ckpt });
    rows.push({
      name: m.name, steps: m.cfg ? totalSteps(m.cfg) : totalSteps(cfgs.ingredients[0]), checkpoint: m.ckpt, hf,
      lrStart: m.cfg ? m.cfg.optim.lr : 0, trainLoss: own?.train ?? null, evalLoss: r.loss, inLoopEvalLoss: own?.eval ?? null,
    });
  }
  return { configs: cfgs, rows, soupDir, soupWeights: weights, seconds: (performance.now() - t0) / 1000 };
}

export function formatRehearsal(r: RehearsalResult): string {
  const head = `${"model".padEnd(20)} ${"steps".padStart(6)} ${"lr start".padStart(10)} ${"train loss".padStart(10)} ${"eval loss".padStart(10)}`;
  const lines = r.rows.map((x) =>
    `${x.name.padEnd(20)} ${String(x.steps).padStart(6)} ${(x.trainLoss === null ? "-" : x.lrStart.toExponential(3)).padStart(10)} ` +
    `${(x.trainLoss === null ? "-" : x.trainLoss.toFixed(4)).padStart(10)} ${x.evalLoss.toFixed(4).padStart(10)}`);
  return [head, "-".repeat(head.length), ...lines].join("\n");
}
