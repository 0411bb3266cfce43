// What a run watches besides its loss, as OLMo-core's callbacks do (allenai/OLMo-core @ d7301e62,
// src/olmo_core/train/callbacks/): speed_monitor.py (tokens/s and MFU = flops/token · tokens/s ÷
// the device's peak, the PaLM definition), gpu_memory_monitor.py (the allocator's peak per step,
// then reset), and a spike monitor of the loss and gradient norm with the statistic of
// SkipStepAdamW's rule (src/optim/skip-step.ts), which here only reports: with optim.skipSteps the
// optimizer itself skips (and the step record's step_skipped counts it).
import type { Backend } from "../backend/backend.ts";
import type { MonitorConfig } from "../config/eval-schema.ts";
import { meanStd } from "../optim/skip-step.ts";
import { H100_PEAK_FLOPS } from "./plan.ts";
import type { StepRecord } from "../metrics/records.ts";

/**
 * Dense bf16 tensor-core peak of one device, from its name: NVIDIA's datasheets give the sparse
 * figure, twice the dense one (nvidia.com/en-us/data-center/h100/ and /h200/: H100 SXM and H200 SXM
 * 1,979 TFLOP/s, H100 NVL and H200 NVL 1,671, H100 PCIe 1,513; A100 312 dense). The H200 has the
 * H100's tensor cores with more memory. OLMo-core's speed monitor has H100 (989, PCIe 756) and A100.
 * null where unknown (the CPU library): no MFU then.
 */
export function devicePeakFlops(deviceName: string): number | null {
  const n = deviceName.toUpperCase();
  if (n.includes("H100") || n.includes("H200")) {
    if (n.includes("NVL")) return 835.5e12;
    if (n.includes("PCIE")) return 756.5e12;
    return H100_PEAK_FLOPS;
  }
  if (n.includes("A100")) return 312e12;
  return null;
}

/** A value more than `sigmas` unbiased standard deviations above the mean of the previous `window`. */
export class SpikeDetector {
  private readonly history: number[] = [];
  /** how many previous values the last observation was compared with */
  compared = 0;

  /** previous values needed before a value is checked (SkipStepAdamW's window / 2) */
  readonly armingSteps: number;
  /** values checked so far (observed with enough history) */
  checked = 0;

  constructor(readonly window: number, readonly sigmas: number) {
    this.armingSteps = Math.max(2, Math.floor(window / 2));
  }

  /** Record x; returns how many σ above the window's mean it is when that exceeds the threshold, else null. */
  observe(x: number): number | null {
    const prev = this.history.slice();
    this.compared = prev.length;
    this.history.push(x);
    if (this.history.length > this.window) this.history.shift();
    if (prev.length < this.armingSteps) return null;
    this.checked++;
    if (!Number.isFinite(x)) return null;
    const { mean, std } = meanStd(prev);
    const z = std > 0 ? (x - mean) / std : x > mean ? Infinity : 0;
    return z > this.sigmas ? z : null;
  }
}

export interface MonitorFields {
  /** model FLOPs utilization of one device, a fraction (only where the peak is known) */
  mfu?: number;
  /** most bytes allocated on the device during the step (backend.memory: the allocator's own count) */
  mem_peak_bytes: number;
  /** host resident set size after the step */
  rss_bytes: number;
  loss_spike: number;
  grad_norm_spike: number;
}

export class StepMonitors {
  readonly peakFlops: number | null;
  private readonly loss: SpikeDetector;
  private readonly gradNorm: SpikeDetector;
  /** over the steps observed: spikes logged, the highest device peak and host RSS */
  spikes = 0;
  maxMemPeakBytes = 0;
  maxRssBytes = 0;

  /** steps of history the spike check needs first (its history starts empty at every start of a run) */
  get spikeArmingSteps(): number {
    return this.loss.armingSteps;
  }

  /** steps the spike check has compared with their history */
  get spikeCheckedSteps(): number {
    return this.loss.checked;
  }

  /** devices: ranks of the run (tp × dp); flopsPerToken: the PaLM count (src/train/plan.ts) */
  constructor(readonly be: Backend, cfg: MonitorConfig, readonly flopsPerToken: number, readonly devices: number) {
    this.peakFlops = cfg.peakFlops ?? devicePeakFlops(be.deviceName);
    this.loss = new SpikeDetector(cfg.spikeWindow, cfg.spikeSigmas);
    this.gradNorm = new SpikeDetector(cfg.spikeWindow, cfg.spikeSigmas);
    be.resetPeakMemory();
  }

  /** The monitors' fields for a step, and a log line for each spike. */
  observe(r: StepRecord): { fields: MonitorFields; notes: string[] } {
    const notes: string[] = [];
    const spike = (d: SpikeDetector, what: string, x: number): number => {
      const z = d.observe(x);
      if (z === null) return 0;
      this.spikes++;
      notes.push(`${what} spike: ${x.toPrecision(5)} is ${Number.isFinite(z) ? z.toFixed(1) : "∞"}σ above the mean of the previous ${d.compared} steps`);
      return 1;
    };
    const fields: MonitorFields = {
      mem_peak_bytes: this.be.memory().peakBytes,
      rss_bytes: process.memoryUsage.rss(),
      loss_spike: spike(this.loss, "loss", r.loss),
      grad_norm_spike: spike(this.gradNorm, "grad-norm", r.grad_norm),
    };
    if (this.peakFlops) fields.mfu = (this.flopsPerToken * r.tokens_per_s) / (this.devices * this.peakFlops);
    this.maxMemPeakBytes = Math.max(this.maxMemPeakBytes, fields.mem_peak_bytes);
    this.maxRssBytes = Math.max(this.maxRssBytes, fields.rss_bytes);
    this.be.resetPeakMemory();
    return { fields, notes };
  }
}
