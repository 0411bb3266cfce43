// The training loop: for each optimizer step, gradient accumulation over micro-batches, one AdamW
// update with global-norm clipping, the monitors (src/train/monitors.ts), in-loop evaluations when
// due, a one-line log, metrics.jsonl and TensorBoard events (src/metrics/run-metrics.ts), checkpoints.
import { mkdirSync } from "node:fs";
import { writeFileAtomic } from "../output-dir.ts";
import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { type RunConfig, totalSteps } from "../config/schema.ts";
import { Olmo2, shiftLabels } from "../model/olmo2.ts";
import { ParamStore } from "../model/param-store.ts";
import { ShardingMap } from "../model/sharding.ts";
import { AdamW, adamWOptions } from "../optim/adamw.ts";
import type { PtrComm } from "../parallel/comm/comm.ts";
import { RankSummer } from "../parallel/comm/sum-over-ranks.ts";
import { DivergedError, UserError } from "../errors.ts";
import { lrAt } from "../optim/schedule.ts";
import { StepMonitors } from "./monitors.ts";
import { flopsPerToken } from "./plan.ts";
import { Progress, formatDuration } from "../progress.ts";
import { RunMetrics } from "../metrics/run-metrics.ts";
import { etaSeconds, evalStepLine, stepLine } from "./run-log.ts";
import type { MetricsRecord, StepRecord } from "../metrics/records.ts";

/** Where batches come from: the data loader, already positioned for resume. */
export interface BatchSource {
  /** micro-batches of the next global batch for this rank, each [micro * T] int32 */
  nextBatch(): Int32Array[];
}

export interface TrainHooks {
  /** called after each step is logged (checkpointing); `stopping`: the run stops after this step */
  afterStep?(step: number, record: StepRecord, stopping: boolean): void;
  /**
   * A stop asked for on this rank (a preemption signal). Checked after every step and agreed over
   * all ranks (one tiny collective per step), so every rank stops after the same step.
   */
  stopRequested?(): boolean;
  /**
   * Evaluations due at `step` — called on every rank (collective), before the first step (`first`,
   * step = the resumed step) and after each update: their records for metrics.jsonl and a summary
   * for the step line, or null when none is due.
   */
  evaluate?(step: number, first: boolean): { records: MetricsRecord[]; summary: string } | null;
  log?(line: string): void;
  /** stop after this step even if the run is longer (its checkpoint hooks still run) */
  stopAfterStep?: number;
}

/** Communicators over the backend's pointers (parallel/init.ts deviceComms: NCCL or shared memory). */
export interface TrainerOptions {
  /** the data-parallel group: world > 1 trains with ZeRO-1 (src/model/sharding.ts, src/optim/adamw.ts) */
  dp?: PtrComm;
  /** the tensor-parallel group: world > 1 trains Megatron TP (src/model/olmo2.ts with opts.tp) */
  tp?: PtrComm;
}

export interface TrainerState {
  step: number;
  tokensProcessed: number;
}

export class Trainer {
  readonly params: ParamStore;
  readonly model: Olmo2;
  readonly optim: AdamW;
  readonly totalSteps: number;
  /** micro-batches per optimizer step on this rank */
  readonly microPerStep: number;
  readonly dpRank: number;
  readonly dpWorld: number;
  readonly tpRank: number;
  readonly tpWorld: number;
  readonly tpComm: PtrComm | null;
  readonly dpComm: PtrComm | null;
  /** what this rank holds of every tensor: its TP shard and ZeRO-1 range */
  readonly map: ShardingMap;
  /** throughput/MFU, memory and spike monitors of every step */
  readonly monitors: StepMonitors;
  state: TrainerState = { step: 0, tokensProcessed: 0 };
  /** the step after which the last run() stopped on request (null: it ran to its end or to stopAfterStep) */
  stoppedAtStep: number | null = null;
  /** sums over the TP group (the stop agreement) */
  private readonly tpSum: RankSummer | null = null;
  /** the last step with a finite loss, for the divergence message */
  private lastFinite: { step: number; loss: number } | null = null;

  constructor(readonly backend: Backend, readonly cfg: RunConfig, readonly runDir: string, opts: TrainerOptions = {}) {
    const t = cfg.train;
    this.totalSteps = totalSteps(cfg);
    this.dpRank = opts.dp?.rank ?? 0;
    this.dpWorld = opts.dp?.world ?? 1;
    this.tpRank = opts.tp?.rank ?? 0;
    this.tpWorld = opts.tp?.world ?? 1;
    this.tpComm = this.tpWorld > 1 ? opts.tp! : null;
    this.dpComm = this.dpWorld > 1 ? opts.dp! : null;
    if (t.globalBatchInstances % (t.microBatchInstances * this.dpWorld) !== 0) {
      throw new UserError(`train.globalBatchInstances ${t.globalBatchInstances} is not divisible by train.microBatchInstances ${t.microBatchInstances} × ${this.dpWorld} data-parallel ranks`);
    }
    this.microPerStep = t.globalBatchInstances / (t.microBatchInstances * this.dpWorld);
    this.map = new ShardingMap(cfg.model, { tp: this.tpWorld, tpRank: this.tpRank, dp: this.dpWorld, dpRank: this.dpRank });
    this.params = new ParamStore(backend, cfg.model, this.map);
    this.model = new Olmo2(this.params, cfg.model, t.microBatchInstances, t.seqLen, { training: true, tp: this.tpComm ?? undefined, recompute: t.recompute });
    this.optim = new AdamW(this.params, adamWOptions(cfg.optim), { dp: this.dpComm, tp: this.tpComm });
    if (this.tpComm) this.tpSum = new RankSummer(backend, this.tpComm);
    this.monitors = new StepMonitors(backend, cfg.monitor, flopsPerToken(cfg), this.dpWorld * this.tpWorld);
  }

  /** Collective: true on every rank when `flag` is true on any rank of the run. */
  anyRank(flag: boolean): boolean {
    let v = flag ? 1 : 0;
    if (this.dpComm) v = this.optim.dpSum.sum([v])[0];
    if (this.tpComm) v = this.tpSum!.sum([v])[0];
    return v > 0;
  }

  /** Collective over every rank of the run: the TP group's barrier, then the DP group's (whose
   *  members cover every TP group). */
  worldBarrier(): void {
    this.tpComm?.barrier();
    this.dpComm?.barrier();
  }

  /** rank 0 of the data-parallel group logs, writes metrics and saves checkpoints */
  get isMain(): boolean {
    return this.dpRank === 0 && this.tpRank === 0;
  }

  lrAtStep(step: number): number {
    return lrAt(this.cfg.optim.schedule, step, this.cfg.optim.lr, this.totalSteps);
  }

  /** One optimizer step over the given micro-batches. `step` is 1-based (OLMo: lr(1) is the first update). */
  trainStep(step: number, microBatches: Int32Array[]): StepRecord {
    const t0 = performance.now();
    const { seqLen: T, microBatchInstances: B } = this.cfg.train;
    const zMult = this.cfg.optim.zLossMult;
    // loss = (ΣCE + z·Σlse²) / N over the whole global batch (all DP ranks, as OLMo-core): every
    // position but the last of each instance
    const nTotal = microBatches.length * B * (T - 1) * this.dpWorld;
    this.params.zeroGrads();
    let ceSum = 0, lseSqSum = 0;
    for (const tokens of microBatches) {
      const sums = this.model.step(tokens, shiftLabels(tokens, B, T), zMult, 1 / nTotal);
      ceSum += sums.ceSum;
      lseSqSum += sums.lseSqSum;
    }
    // the sums of the whole global batch (the model already reduced them over TP)
    [ceSum, lseSqSum] = this.optim.dpSum.sum([ceSum, lseSqSum]);
    const ce = ceSum / nTotal, z = (zMult * lseSqSum) / nTotal;
    const lr = this.lrAtStep(step);
    // a non-finite z-loss (with a finite CE) must not be applied either: the optimizer sees NaN
    const { gradNorm, skipped, nonFinite } = this.optim.update(lr, { ce, z });
    this.backend.synchronize();
    const ms = performance.now() - t0;
    const tokens = microBatches.length * B * T * this.dpWorld;
    // a step the skip rule rejected left the weights as they were: training goes on, as in OLMo-core
    if (!skipped && (nonFinite || !Number.isFinite(ce + z))) {
      const what = !Number.isFinite(ce + z) ? `the loss is not finite at step ${step} (ce ${ce}, z ${z})` : `the gradient norm is ${gradNorm} at step ${step}`;
      const last = this.lastFinite ? `the last finite loss was ${this.lastFinite.loss.toFixed(4)} at step ${this.lastFinite.step}` : "no step had a finite loss";
      throw new DivergedError(`training diverged: ${what}; ${last}; this step's update was not applied (try a lower optim.lr, or optim.skipSteps)`, step);
    }
    if (Number.isFinite(ce + z)) this.lastFinite = { step, loss: ce + z };
    return { step, loss: ce + z, ce_loss: ce, z_loss: z, grad_norm: gradNorm, lr, tokens, tokens_per_s: tokens / (ms / 1000), ms,
      step_skipped: skipped ? 1 : 0 };
  }

  /**
   * Train from state.step+1 to totalSteps, or until a stop is requested (then `stopped` is set;
   * src/parallel/stop-signals.ts records the signals asking for it whenever they arrive).
   */
  async run(source: BatchSource, hooks: TrainHooks = {}): Promise<StepRecord[]> {
    const main = this.isMain;
    const log = !main ? () => {} : hooks.log ?? ((l: string) => console.log(l));
    if (main) mkdirSync(this.runDir, { recursive: true });
    const sink = main ? new RunMetrics(this.runDir, { tensorboard: this.cfg.monitor.tensorboard, resumedAfter: this.state.step,
      devices: this.dpWorld * this.tpWorld, config: this.cfg, log }) : null;
    const records: StepRecord[] = [];
    const firstStep = this.state.step + 1;
    const bar = new Progress("train", this.totalSteps, "", main ? process.stderr : ({ isTTY: false } as NodeJS.WriteStream));
    const runStart = performance.now();
    const stamp = (r: MetricsRecord): MetricsRecord => ({ ...r, tokens_processed: this.state.tokensProcessed, time_s: (performance.now() - runStart) / 1000 });
    try {
      const atStart = hooks.evaluate?.(this.state.step, true);
      if (atStart) {
        sink?.write(atStart.records.map(stamp));
        log(evalStepLine(this.state.step, this.totalSteps, atStart.summary));
      }
      const loopStart = performance.now();
      for (let step = firstStep; step <= this.totalSteps; step++) {
        const micro = source.nextBatch();
        if (micro.length !== this.microPerStep) throw new Error(`batch source gave ${micro.length} micro-batches, expected ${this.microPerStep}`);
        const r = this.trainStep(step, micro);
        this.state = { step, tokensProcessed: this.state.tokensProcessed + r.tokens };
        records.push(r);
        const mon = this.monitors.observe(r);
        const ev = hooks.evaluate?.(step, false) ?? null;
        sink?.write([stamp({ ...r, ...mon.fields }), ...(ev?.records ?? []).map(stamp)]);
        // a skipped step, a spike or an evaluation is always logged: it is an event, not a sample
        if (step % this.cfg.train.logEvery === 0 || step === this.totalSteps || step === firstStep || r.step_skipped || ev || mon.notes.length) {
          bar.clear();
          const eta = etaSeconds((performance.now() - loopStart) / 1000, step - firstStep + 1, this.totalSteps - step);
          log(stepLine(step, this.totalSteps, r, mon.fields.mfu, ev ? ev.summary : null, eta));
          for (const n of mon.notes) log(`  ${n}`);
        }
        bar.update(step);
        let stop = false;
        if (hooks.stopRequested) {
          await new Promise((resolve) => setImmediate(resolve)); // the event loop turns once per step
          stop = this.anyRank(hooks.stopRequested());
        }
        hooks.afterStep?.(step, r, stop);
        if (stop) {
          this.stoppedAtStep = step;
          break;
        }
        if (hooks.stopAfterStep !== undefined && step >= hooks.stopAfterStep) break;
      }
    } finally {
      sink?.close();
    }
    bar.done();
    const elapsed = (performance.now() - runStart) / 1000;
    if (records.length) log(`trained ${records.length} steps in ${formatDuration(elapsed)}`);
    return records;
  }

  free(): void {
    this.tpSum?.free();
    this.model.free();
    this.optim.free();
    this.params.free();
  }
}

export function writeResolvedConfig(runDir: string, cfg: RunConfig): void {
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, "config.json"), JSON.stringify(cfg, null, 2) + "\n", "run config");
}
