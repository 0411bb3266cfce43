// One training run end to end: data, model (fresh, resumed, or initialized from a checkpoint),
// the loop, checkpoints, the final summary and a greedy sample.
// Started as one rank of several (olmo launch, torchrun, srun), it joins the job and trains data
// parallel over all ranks with ZeRO-1, or with OLMO_TP = tp > 1 Megatron tensor parallel inside groups
// of tp consecutive ranks and data parallel (ZeRO-1) across them; collectives are NCCL on the CUDA
// library, shared memory on the CPU library. Rank 0 logs and writes config.json and metrics.jsonl;
// every rank writes its part of each checkpoint.
import type { Backend } from "../backend/backend.ts";
import { NativeBackend } from "../backend/native-backend.ts";
import type { RunConfig } from "../config/schema.ts";
import { DivergedError, PREEMPTED_EXIT_CODE, UserError } from "../errors.ts";
import { DOLMA2_EOS } from "../model/config.ts";
import { type RankEnv, readRankEnv, tensorParallel } from "../parallel/env.ts";
import { type Parallel, deviceComms, initParallel } from "../parallel/init.ts";
import { type StopSignal, stopSignal, watchStopSignals } from "../parallel/stop-signals.ts";
import { checkTpDivides } from "../model/sharding.ts";
import { initTensor } from "../model/init.ts";
import { RUN_FOLDER_RESERVE_BYTES, findLatestCheckpoint } from "../checkpoint/naming.ts";
import { checkWritablePath } from "../output-dir.ts";
import { greedySample, samplePromptIds } from "./sample.ts";
import { type RunData, openRunData } from "./run-data.ts";
import { RunCheckpointer } from "./checkpointing/checkpointer.ts";
import { checkLoadPath, checkMemoryFits } from "./preflight.ts";
import { acquireRunLock } from "./run-lock.ts";
import { InLoopEval } from "./in-loop-eval.ts";
import { Trainer, writeResolvedConfig } from "./trainer.ts";
import { lossLine, monitorLine, openingLine, optimizerLine, resumedLine } from "./run-log.ts";
import type { StepRecord } from "../metrics/records.ts";

export interface RunOptions {
  quiet?: boolean;
  /** stop after this step (tests of interrupted runs; `olmo train --stop-after`) */
  stopAfterStep?: number;
  log?: (line: string) => void;
  /** tensor-parallel size (default: $OLMO_TP or 1); the world splits into tp × dp (TP groups of consecutive ranks) */
  tp?: number;
  /** where the backend and thread count came from (cli/runtime.ts), for the first log line */
  runtime?: string;
  /** config fields allowed to differ from the checkpoint a resume continues (src/config/resume.ts) */
  acceptChanges?: readonly string[];
}

/** How a run ended: at its end (or --stop-after), or stopped by a signal with a checkpoint (src/parallel/stop-signals.ts). */
export interface RunOutcome {
  stoppedBy: StopSignal | null;
}

/**
 * The step a run continues from must make sense for this run: within its length (a checkpoint past
 * the end is of another run, or its step is damaged), and before --stop-after (else the trainer
 * would run one step and stop without saving it).
 */
function checkResumePoint(step: number, total: number, stopAfter: number | undefined, from: string): void {
  if (step > total) throw new UserError(`${from}: the checkpoint is at step ${step}, beyond this run's ${total} steps (a checkpoint of another run, or train.steps/budgetTokens changed)`);
  if (stopAfter !== undefined && stopAfter <= step) {
    throw new UserError(`--stop-after ${stopAfter}: the run is already at step ${step} (${from}); nothing to train before it`);
  }
}

export async function runTraining(be: Backend, cfg: RunConfig, runDir: string, opts: RunOptions = {}): Promise<RunOutcome> {
  const tp = tensorParallel(opts.tp);
  const env = readRankEnv();
  // before anything is created: the checkpoints of a run folder too deep for the filesystem would
  // fail only at the first save, after the steps before it were trained
  checkWritablePath(runDir, "run folder", RUN_FOLDER_RESERVE_BYTES);
  // one trainer per run folder; the ranks of one job share it, and rank 0 holds the lock for them
  const lock = env.rank === 0 ? acquireRunLock(runDir) : null;
  try {
    return await trainHoldingLock(be, cfg, runDir, opts, tp, env);
  } finally {
    lock?.release();
  }
}

/**
 * Join the job and build the run: communicators, the data (opened before anything large is
 * allocated), the preflight checks, the trainer. On a failure a single process closes the job itself.
 */
async function openRun(be: Backend, cfg: RunConfig, runDir: string, tp: number, par: Parallel, log: (l: string) => void): Promise<{ trainer: Trainer; data: RunData; dpWorld: number }> {
  const { rank, world } = par.env;
  const main = rank === 0;
  let trainer: Trainer;
  let data: RunData;
  // data-parallel rank and size: every rank of a TP group reads the same instances
  let dpRank = rank, dpWorld = world;
  try {
    checkTpDivides(cfg.model, tp);
    const comms = await deviceComms(par, be, tp);
    dpRank = comms.dims.dpRank;
    dpWorld = comms.dims.dp;
    // before anything large is allocated: the data opens, the checkpoint to start from exists, the
    // memory plan fits (rank 0 opens the data first: the embedded corpus is tokenized into a shared cache once)
    // (the free memory is measured before rank 0 goes on to allocate, so every rank sees the same host)
    const free = be.deviceMemory().freeBytes;
    if (!main && par.store) await par.store.barrier("olmo/data", rank, world);
    data = await openRunData(cfg, { log, dpRank, dpWorld });
    if (main && par.store) await par.store.barrier("olmo/data", rank, world);
    checkLoadPath(cfg, runDir);
    checkMemoryFits(cfg, be, tp, dpWorld, par.env.localWorld, free);
    trainer = new Trainer(be, cfg, runDir, { dp: comms.dp, tp: comms.tp });
  } catch (e) {
    if (world > 1) throw e; // the launcher (or the shm exit flag) stops the other ranks
    await par.close();
    throw e;
  }
  return { trainer, data, dpWorld };
}

async function trainHoldingLock(be: Backend, cfg: RunConfig, runDir: string, opts: RunOptions, tp: number, env: RankEnv): Promise<RunOutcome> {
  // the CPU library's ranks share memory on one host; the CUDA library's use NCCL (and may span nodes)
  const par = await initParallel({ env, hostCollectives: be.hostView !== undefined });
  const { rank, world } = par.env;
  const main = rank === 0;
  const log = !main ? () => {} : opts.log ?? ((l: string) => console.log(l));
  const { trainer, data, dpWorld } = await openRun(be, cfg, runDir, tp, par, log);
  // a parallel save's shared temporary directory is named after rank 0's pid
  const leaderPid = par.store ? Number(await par.store.fromRank0("olmo/leader-pid", rank, String(process.pid))) : process.pid;
  let ckpt: RunCheckpointer;
  try {
    ckpt = new RunCheckpointer(cfg, runDir, trainer, leaderPid, log);
  } catch (e) {
    trainer.free();
    throw e;
  }
  // SIGINT (Ctrl-C), SIGTERM, SIGUSR1: stop after the step with a checkpoint; again, later: at once
  // the stop signals are caught by the native library (its handler runs wherever the signal lands)
  if (!(be instanceof NativeBackend)) throw new Error("runTraining: needs a NativeBackend (the native library catches the stop signals)");
  const signals = watchStopSignals(be.library, { announce: main });
  let ok = false;
  let stoppedBy: StopSignal | null = null;
  let evals: InLoopEval | null = null;
  try {
    // the end-of-run sample's prompt is checked now, not after the training it follows
    const wantSample = main && tp === 1 && cfg.train.samplePrompt !== "" && cfg.train.sampleTokens > 0;
    const sampleIds = wantSample ? await samplePromptIds(cfg.train.samplePrompt, cfg.model) : null;
    // every rank must resume from the same checkpoint (or all start fresh): a rank that sees another
    // newest checkpoint is on a run folder that is not shared
    if (par.store) {
      const mine = findLatestCheckpoint(runDir) ?? "(none)";
      const leader = await par.store.fromRank0("olmo/resume-from", rank, mine);
      if (leader !== mine) {
        throw new UserError(`rank ${rank} sees the newest checkpoint ${mine} but rank 0 sees ${leader}: ${runDir} must be a folder every rank shares`);
      }
    }
    const resumed = ckpt.restoreOrInit((s, out) => initTensor(s, out, cfg.model.initStd, cfg.train.initSeed), data, log, opts.acceptChanges);
    checkResumePoint(trainer.state.step, trainer.totalSteps, opts.stopAfterStep, resumed ?? runDir);
    log(openingLine(cfg, be, { runtime: opts.runtime, tp, dpWorld, runDir, totalSteps: trainer.totalSteps, activationBytes: trainer.model.activationBytes }));
    if (resumed) log(resumedLine(resumed, trainer.state.step, trainer.totalSteps));
    log(optimizerLine(cfg, trainer.optim.stepCounters));
    // rank 0 first, as for the training data: an embedded eval set is tokenized into the shared cache once
    if (!main && par.store) await par.store.barrier("olmo/eval", rank, world);
    evals = await InLoopEval.open(trainer, log);
    if (main && par.store) await par.store.barrier("olmo/eval", rank, world);
    if (evals) log(`eval: ${evals.plan()}`);
    // only once the data, any checkpoint and the eval sets opened: a run that fails on bad input leaves nothing behind
    if (main) writeResolvedConfig(runDir, cfg);
    const ev = evals;
    let records: StepRecord[];
    try {
      records = await trainer.run(data.source, {
        log: opts.quiet ? () => {} : log,
        // an interrupted run (--stop-after, a preemption signal) saves where it stops, so it can resume there
        evaluate: ev ? (step, first) => (ev.due(step, first) ? ev.run(step) : null) : undefined,
        afterStep: (step, _r, stopping) => ckpt.maybeSave(step, () => data.state(), stopping || step === opts.stopAfterStep),
        stopAfterStep: opts.stopAfterStep,
        stopRequested: () => stopSignal() !== null,
      });
      ckpt.finish(); // the last save may still be written in the background
      // nobody exits before rank 0 published it (a launcher may stop the job when one rank exits)
      if (trainer.stoppedAtStep !== null && world > 1) trainer.worldBarrier();
    } catch (e) {
      if (!(e instanceof DivergedError)) throw e;
      // a save still being written in the background is of a finite state: let it land first
      try {
        ckpt.finish();
      } catch {
        // its failure is not this error's story
      }
      // no checkpoint is written from non-finite weights (checkpointing.ts checks), so the newest one is intact
      const newest = findLatestCheckpoint(runDir);
      throw new UserError(`${e.message}; ${newest ? `the newest checkpoint ${newest} is intact` : "no checkpoint was saved before it"}`);
    }
    if (records.length > 0) {
      log(lossLine(records, evals?.last));
      log(monitorLine(cfg, trainer.monitors, records));
    }
    const saved = ckpt.latestName();
    if (saved) log(`checkpoint: ${saved}`);
    if (trainer.stoppedAtStep !== null) {
      stoppedBy = stopSignal();
      log(`stopped after step ${trainer.stoppedAtStep} on ${stoppedBy}: rerun the same command to resume from ${saved ?? "its checkpoint"} (exit code ${PREEMPTED_EXIT_CODE})`);
    } else if (main && tp > 1 && cfg.train.samplePrompt && cfg.train.sampleTokens > 0) {
      log("sample: skipped under tensor parallelism (olmo generate on the checkpoint samples from it)");
    } else if (sampleIds) {
      const { cl100k } = await import("../data/index.ts");
      const enc = await cl100k();
      const ids = greedySample(trainer.params, cfg.model, sampleIds, cfg.train.sampleTokens, DOLMA2_EOS);
      const text = enc.decode(ids.filter((t) => t < 100256));
      log(`sample (greedy): ${JSON.stringify(cfg.train.samplePrompt + text)}`);
    }
    ok = true;
  } finally {
    signals.release();
    ckpt.close();
    evals?.free();
    trainer.free();
  }
  // collective: on failure a rank just exits, and the launcher (or the shm exit flag) stops the rest
  if (ok || world === 1) await par.close();
  return { stoppedBy };
}
