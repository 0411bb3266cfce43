// The monitors of every step (src/train/monitors.ts): the device peak behind MFU, the spike
// detector's statistic (SkipStepAdamW's: σ above the previous window's mean, unbiased), the
// allocator peak per step (reset after each), host RSS, and the fields a run writes.
import { describe, expect, test } from "bun:test";
import { createBackend } from "../../src/backend/native-backend.ts";
import { MonitorSchema } from "../../src/config/eval-schema.ts";
import { H100_PEAK_FLOPS } from "../../src/train/plan.ts";
import { devicePeakFlops, SpikeDetector, StepMonitors } from "../../src/train/monitors.ts";
import type { StepRecord } from "../../src/metrics/records.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const rec = (step: number, loss: number, gradNorm = 1): StepRecord => ({
  step, loss, ce_loss: loss, z_loss: 0, grad_norm: gradNorm, lr: 1e-3, tokens: 1000, tokens_per_s: 5000, ms: 200, step_skipped: 0,
});

describe("monitors", () => {
  test("dense bf16 peak by device name (H100 and H200 variants, A100); none on the CPU", () => {
    const cases: [string, number | null][] = [
      ["NVIDIA H100 80GB HBM3", H100_PEAK_FLOPS], ["NVIDIA H100 PCIe", 756.5e12], ["NVIDIA H100 NVL", 835.5e12],
      ["NVIDIA H200", H100_PEAK_FLOPS], ["NVIDIA H200 NVL", 835.5e12], ["NVIDIA A100-SXM4-80GB", 312e12], ["cpu (OpenBLAS, 2 threads)", null],
    ];
    for (const [name, peak] of cases) expect({ name, peak: devicePeakFlops(name) }).toEqual({ name, peak });
  });

  test("spike: more than σ unbiased standard deviations above the previous window's mean, once half the window is recorded", () => {
    const d = new SpikeDetector(8, 3);
    const base = [5, 5.1, 4.9, 5.05];
    expect([100, 100, 100].map((x, i) => (i < 3 ? new SpikeDetector(8, 3) : d).observe(x))).toEqual([null, null, null]); // too few recorded
    for (const x of base) expect(d.observe(x)).toBeNull();
    const mean = 5.0125, std = Math.sqrt(base.reduce((a, x) => a + (x - mean) ** 2, 0) / 3);
    expect(d.observe(5.2)).toBeNull(); // (5.2 − 5.0125) / 0.0854 = 2.2σ
    expect(d.observe(Number.NaN)).toBeNull();
    const z = new SpikeDetector(8, 3);
    for (const x of base) z.observe(x);
    expect(z.observe(6)).toBeCloseTo((6 - mean) / std, 9);
    const flat = new SpikeDetector(4, 6);
    for (let i = 0; i < 3; i++) flat.observe(2);
    expect(flat.observe(2.5)).toBe(Infinity);
  });

  test("a step's fields: MFU, the allocator peak during the step (then reset), host RSS, spikes with a log line", () => {
    ensureNativeBuilt("cpu");
    const be = createBackend("cpu");
    const cfg = MonitorSchema.parse({ spikeWindow: 8, spikeSigmas: 4, peakFlops: 1e12 });
    const m = new StepMonitors(be, cfg, 6e6, 2);
    const base = be.memory().allocatedBytes;
    const big = be.alloc(64 << 20);
    be.free(big);
    const a = m.observe(rec(1, 5));
    expect(a.fields.mem_peak_bytes).toBe(base + (64 << 20));
    expect(m.observe(rec(2, 5.01)).fields.mem_peak_bytes).toBe(base); // reset after each step
    expect(a.fields.mfu).toBeCloseTo((6e6 * 5000) / (2 * 1e12), 12);
    expect(a.fields.rss_bytes).toBeGreaterThan(10 << 20);
    for (let s = 3; s <= 8; s++) expect(m.observe(rec(s, 5 + 0.01 * (s % 2))).notes).toEqual([]);
    const spike = m.observe(rec(9, 9, 50));
    expect({ loss: spike.fields.loss_spike, gnorm: spike.fields.grad_norm_spike }).toEqual({ loss: 1, gnorm: 1 });
    expect(spike.notes[0]).toMatch(/^loss spike: 9\.0000 is \d+\.\dσ above the mean of the previous 8 steps$/);
    expect(spike.notes[1]).toMatch(/^grad-norm spike: 50\.000 is ∞σ above/);
    expect({ spikes: m.spikes, maxPeak: m.maxMemPeakBytes }).toEqual({ spikes: 2, maxPeak: base + (64 << 20) });
    expect(new StepMonitors(be, MonitorSchema.parse({}), 6e6, 1).observe(rec(1, 5)).fields.mfu).toBeUndefined(); // CPU: no known peak
  });
});
