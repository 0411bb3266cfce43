// The training loop: for each optimizer step, gradient accumulation over micro-batches, one AdamW
// update with global-norm clipping, a one-line log, metrics.jsonl, checkpoints.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { type RunConfig, totalSteps } from "../config/schema.ts";
import { Olmo2, shiftLabels } from "../model/olmo2.ts";
import { ParamStore } from "../model/param-store.ts";
import { AdamW } from "../optim/adamw.ts";
import { lrAt } from "../optim/schedule.ts";
import { Progress, formatDuration, formatRate } from "./progress.ts";

/** Where batches come from: the data loader, already positioned for resume. */
export interface BatchSource {
  /** micro-batches of the next global batch for this rank, each [micro * T] int32 */
  nextBatch(): Int32Array[];
}

export interface StepRecord {
  step: number;
  loss: number;
  ce_loss: number;
  z_loss: number;
  grad_norm: number;
  lr: number;
  tokens: number;
  tokens_per_s: number;
  ms: number;
}

export interface TrainHooks {
  /** called after each step (checkpointing, evals) */
  afterStep?(step: number, record: StepRecord): void;
  log?(line: string): void;
  /** stop after this step even if the run is longer (its checkpoint hooks still run) */
  stopAfterStep?: number;
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
  readonly microPerStep: number;
  state: TrainerState = { step: 0, tokensProcessed: 0 };

  constructor(readonly backend: Backend, readonly cfg: RunConfig, readonly runDir: string) {
    const t = cfg.train;
    this.totalSteps = totalSteps(cfg);
    this.microPerStep = t.globalBatchInstances / t.microBatchInstances;
    this.params = new ParamStore(backend, cfg.model);
    this.model = new Olmo2(this.params, cfg.model, t.microBatchInstances, t.seqLen, { training: true });
    this.optim = new AdamW(this.params, {
      beta1: cfg.optim.beta1, beta2: cfg.optim.beta2, eps: cfg.optim.eps, weightDecay: cfg.optim.weightDecay,
      maxGradNorm: cfg.optim.maxGradNorm, stepIncrementBug: cfg.optim.stepIncrementBug,
    });
  }

  lrAtStep(step: number): number {
    return lrAt(this.cfg.optim.schedule, step, this.cfg.optim.lr, this.totalSteps);
  }

  /** One optimizer step over the given micro-batches. `step` is 1-based (OLMo: lr(1) is the first update). */
  trainStep(step: number, microBatches: Int32Array[]): StepRecord {
    const t0 = performance.now();
    const { seqLen: T, microBatchInstances: B } = this.cfg.train;
    const zMult = this.cfg.optim.zLossMult;
    // loss = (ΣCE + z·Σlse²) / N over the whole rank batch: every position but the last of each instance
    const nTotal = microBatches.length * B * (T - 1);
    this.params.zeroGrads();
    let ceSum = 0, lseSqSum = 0;
    for (const tokens of microBatches) {
      const sums = this.model.step(tokens, shiftLabels(tokens, B, T), zMult, 1 / nTotal);
      ceSum += sums.ceSum;
      lseSqSum += sums.lseSqSum;
    }
    const lr = this.lrAtStep(step);
    const { gradNorm } = this.optim.update(lr);
    this.backend.synchronize();
    const ms = performance.now() - t0;
    const tokens = microBatches.length * B * T;
    const ce = ceSum / nTotal, z = (zMult * lseSqSum) / nTotal;
    if (!Number.isFinite(ce + z)) throw new Error(`loss is not finite at step ${step} (ce ${ce}, z ${z})`);
    return { step, loss: ce + z, ce_loss: ce, z_loss: z, grad_norm: gradNorm, lr, tokens, tokens_per_s: tokens / (ms / 1000), ms };
  }

  /** Train from state.step+1 to totalSteps. */
  run(source: BatchSource, hooks: TrainHooks = {}): StepRecord[] {
    const log = hooks.log ?? ((l: string) => console.log(l));
    mkdirSync(this.runDir, { recursive: true });
    const metricsPath = join(this.runDir, "metrics.jsonl");
    const records: StepRecord[] = [];
    const firstStep = this.state.step + 1;
    const bar = new Progress("train", this.totalSteps);
    const width = String(this.totalSteps).length;
    const runStart = performance.now();
    for (let step = firstStep; step <= this.totalSteps; step++) {
      const micro = source.nextBatch();
      if (micro.length !== this.microPerStep) throw new Error(`batch source gave ${micro.length} micro-batches, expected ${this.microPerStep}`);
      const r = this.trainStep(step, micro);
      this.state = { step, tokensProcessed: this.state.tokensProcessed + r.tokens };
      records.push(r);
      appendFileSync(metricsPath, JSON.stringify({ ...r, tokens_processed: this.state.tokensProcessed, time_s: (performance.now() - runStart) / 1000 }) + "\n");
      if (step % this.cfg.train.logEvery === 0 || step === this.totalSteps || step === firstStep) {
        bar.clear();
        log(`step ${String(step).padStart(width)}/${this.totalSteps} | loss ${r.loss.toFixed(4)} | ce ${r.ce_loss.toFixed(4)} | ` +
          `gnorm ${r.grad_norm.toFixed(3)} | lr ${r.lr.toExponential(3)} | ${formatRate(r.tokens_per_s)} tok/s | ${r.ms.toFixed(0)} ms`);
      }
      bar.update(step);
      hooks.afterStep?.(step, r);
      if (hooks.stopAfterStep !== undefined && step >= hooks.stopAfterStep) break;
    }
    bar.done();
    const elapsed = (performance.now() - runStart) / 1000;
    if (records.length) log(`trained ${records.length} steps in ${formatDuration(elapsed)}`);
    return records;
  }

  free(): void {
    this.model.free();
    this.optim.free();
    this.params.free();
  }
}

export function writeResolvedConfig(runDir: string, cfg: RunConfig): void {
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, "config.json"), JSON.stringify(cfg, null, 2) + "\n");
}
