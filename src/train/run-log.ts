// The lines a run prints about itself, apart from the progress bar: the opening lines (what runs,
// where it resumed, what the optimizer will do), one line per logged step, and the closing loss and
// monitor lines. Text only: the numbers come from the trainer, its records and its monitors.
import type { Backend } from "../backend/backend.ts";
import { type RunConfig, globalBatchTokens } from "../config/schema.ts";
import { paramSpecs, totalParams } from "../model/params.ts";
import type { StepRecord } from "../metrics/records.ts";
import { formatDuration, formatRate } from "../progress.ts";
import type { StepMonitors } from "./monitors.ts";

/** The first line: the run, its backend, its size and layout, its folder. */
export function openingLine(cfg: RunConfig, be: Backend, o: { runtime?: string; tp: number; dpWorld: number; runDir: string; totalSteps: number; activationBytes: number }): string {
  const { tp, dpWorld, runDir } = o;
  return `olmo-bun: ${cfg.name} | backend ${be.name} (${be.deviceName}${o.runtime ? `; ${o.runtime}` : ""}) | ${(totalParams(paramSpecs(cfg.model)) / 1e6).toFixed(2)}M params | ` +
    `${o.totalSteps} steps × ${globalBatchTokens(cfg)} tokens | act ${(o.activationBytes / 2 ** 20).toFixed(0)} MiB | ` +
    `${tp > 1 ? `tensor parallel × ${tp} | ` : ""}${dpWorld > 1 ? `data parallel × ${dpWorld} (ZeRO-1) | ` : ""}run ${runDir}`;
}

/** Where a resumed run continues (and which restart of the job this is). */
export function resumedLine(resumed: string, step: number, totalSteps: number): string {
  const restart = Number(process.env.OLMO_RESTART_COUNT || process.env.TORCHELASTIC_RESTART_COUNT || 0);
  return `resumed from ${resumed} at step ${step}${step === totalSteps ? " (the run is complete: nothing to train)" : ""}` +
    `${restart > 0 ? ` (restart ${restart} of the job)` : ""}`;
}

/** What the optimizer will do: its counter (and whether it moves) and the skip rule. */
export function optimizerLine(cfg: RunConfig, counters: Float64Array): string {
  const o = cfg.optim;
  const lo = Math.min(...counters), hi = Math.max(...counters);
  const counter = lo === hi ? `${lo}` : `${lo}…${hi} (per tensor)`;
  return `optimizer: AdamW β=(${o.beta1}, ${o.beta2}) eps ${o.eps} wd ${o.weightDecay} clip ${o.maxGradNorm} | Adam step counter ${counter}` +
    `${o.stepIncrementBug ? " (frozen: optim.stepIncrementBug)" : ""} | ` +
    (o.skipSteps ? `skip rule: loss/grad-norm > ${o.skipStepSigmas}σ over the last ${o.skipStepWindow} steps` : "no skip rule");
}

/** The evaluations before the first step (eval.atStart, or a resume). */
export function evalStepLine(step: number, totalSteps: number, evalSummary: string): string {
  return `step ${String(step).padStart(String(totalSteps).length)}/${totalSteps} | ${evalSummary}`;
}

/**
 * One logged step: its numbers, a skip, the evaluations that ran after it, and (last, so that what
 * precedes it keeps its place) the time to the end of the run at this attempt's pace so far.
 */
export function stepLine(step: number, totalSteps: number, r: StepRecord, mfu: number | undefined, evalSummary: string | null, etaS?: number): string {
  const width = String(totalSteps).length;
  return `step ${String(step).padStart(width)}/${totalSteps} | loss ${r.loss.toFixed(4)} | ce ${r.ce_loss.toFixed(4)} | ` +
    `gnorm ${r.grad_norm.toFixed(3)} | lr ${r.lr.toExponential(3)} | ${formatRate(r.tokens_per_s)} tok/s | ` +
    `${mfu !== undefined ? `MFU ${(100 * mfu).toFixed(1)}% | ` : ""}${r.ms.toFixed(0)} ms` +
    (r.step_skipped ? " | skipped (loss or grad-norm spike: no update)" : "") + (evalSummary ? ` | ${evalSummary}` : "") +
    (etaS !== undefined && step < totalSteps ? ` | ETA ${formatDuration(etaS)}` : "");
}

/** Seconds to the end of the run: the wall time per step of the steps this attempt trained (evaluations and saves included), times the steps left. */
export function etaSeconds(elapsedS: number, stepsDone: number, stepsLeft: number): number {
  return (elapsedS / Math.max(stepsDone, 1)) * stepsLeft;
}

/** The loss from the first to the last step trained, with the last held-out losses beside it. */
export function lossLine(records: StepRecord[], heldOutLast: Iterable<[string, { loss: number; step: number }]> | undefined): string {
  const first = records[0], last = records[records.length - 1];
  const meanTps = records.reduce((a, r) => a + r.tokens_per_s, 0) / records.length;
  // single-step losses are noisy at small batches: also show the mean of the first and last tenth
  const k = Math.max(1, Math.floor(records.length / 10));
  const mean = (rs: StepRecord[]) => rs.reduce((a, r) => a + r.loss, 0) / rs.length;
  // the held-out loss beside it: the same definition (CE + z-loss), on data never trained on
  const heldOut = [...(heldOutLast ?? [])].map(([name, r]) => ` | ${name} ${r.loss.toFixed(4)} (step ${r.step})`).join("");
  return `loss: first ${first.loss.toFixed(4)} (step ${first.step}) → last ${last.loss.toFixed(4)} (step ${last.step}); ` +
    `mean of first ${k} steps ${mean(records.slice(0, k)).toFixed(4)} → last ${k} steps ${mean(records.slice(-k)).toFixed(4)}${heldOut} | ${formatRate(meanTps)} tok/s`;
}

/** What the monitors saw over the steps trained: spikes, skipped steps, peak memory, the MFU peak. */
export function monitorLine(cfg: RunConfig, m: StepMonitors, records: StepRecord[]): string {
  const skipped = records.filter((r) => r.step_skipped).length;
  // the spike check compares a step with at least half a window of previous steps of this attempt
  const spikes = m.spikeCheckedSteps === 0
    ? `spike check not armed: it needs ${m.spikeArmingSteps} steps of history and this run trained ${records.length}`
    : `${m.spikes} loss/grad-norm spike${m.spikes === 1 ? "" : "s"} (> ${cfg.monitor.spikeSigmas}σ over the previous ${cfg.monitor.spikeWindow} steps` +
      `${m.spikeCheckedSteps < records.length ? `; the first ${records.length - m.spikeCheckedSteps} steps built its history` : ""})`;
  return `monitor: ${spikes}` +
    `${cfg.optim.skipSteps ? `, ${skipped} step${skipped === 1 ? "" : "s"} skipped by the skip rule` : ""} | peak device memory ${(m.maxMemPeakBytes / 2 ** 20).toFixed(0)} MiB` +
    ` | host RSS ${(m.maxRssBytes / 2 ** 20).toFixed(0)} MiB${m.peakFlops ? ` | MFU against ${(m.peakFlops / 1e12).toFixed(1)} TFLOP/s per device` : ""}`;
}
