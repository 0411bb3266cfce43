// AdamW against OLMo-core's adamw_step, computed independently here in float64 (allenai/OLMo-core @
// d7301e62, src/olmo_core/optim/adamw.py): one update from a checkpoint that carries weights, both
// moments and per-tensor step counters, loaded through the trainer's checkpointer with
// loadTrainerState false (stage 2's load), with gradient clipping active; the counters frozen with
// stepIncrementBug and counting without; a skipped step changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { saveCheckpoint } from "../../src/checkpoint/native/write.ts";
import { validateConfig } from "../../src/config/load.ts";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { RunCheckpointer } from "../../src/train/checkpointing/checkpointer.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { TINY_MODEL } from "../support/tiny-job.ts";

const model = TINY_MODEL;
const mc = ModelConfigSchema.parse(model);
const specs = paramSpecs(mc), N = totalParams(specs);
const B1 = 0.9, B2 = 0.95, EPS = 1e-8, WD = 0.1, LR = 3e-3, MAX_NORM = 0.5;

let dir: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-adamw-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
}
const arena = (seed: number, f: (u: number) => number) => {
  const r = rand(seed);
  return Float32Array.from({ length: N }, () => f(r()));
};

function runConfig(loadPath: string, stepIncrementBug: boolean, extra: Record<string, unknown> = {}) {
  return validateConfig({
    name: "adamw", model, backend: "cpu",
    data: { paths: ["unused.u32"] },
    train: { seqLen: 16, globalBatchInstances: 1, microBatchInstances: 1, steps: 4 },
    optim: { lr: LR, beta1: B1, beta2: B2, eps: EPS, weightDecay: WD, maxGradNorm: MAX_NORM, stepIncrementBug,
      schedule: { kind: "constant", warmupSteps: 0 }, ...extra },
    checkpoint: { loadPath, loadTrainerState: false },
  }, "test");
}

/** OLMo-core's adamw_step for one tensor, float64, on gradients already clipped by torch's clip_grad_norm_. */
function referenceStep(p: number, g: number, m: number, v: number, step: number, wd: number): { p: number; m: number; v: number } {
  p *= 1 - LR * wd; // p.mul_(1 - step_factor * (lr * weight_decay))
  m = m + (1 - B1) * (g - m); // exp_avg.lerp_(grad, 1 - beta1)
  v = v * (1 - (1 - B2)) + (1 - B2) * g * g; // exp_avg_sq.mul_(1 - (1 - beta2)); add_(grad * grad, alpha=1 - beta2)
  const bc1 = 1 - B1 ** (step + 1), bc2 = 1 - B2 ** (step + 1);
  const denom = Math.sqrt(v) / Math.sqrt(bc2) + EPS;
  return { p: p - (LR / bc1) * (m / denom), m, v };
}

interface Loaded { trainer: Trainer; w0: Float32Array; m0: Float32Array; v0: Float32Array; g: Float32Array; counters: Record<string, number> }

function loadWith(counters: Record<string, number>, stepIncrementBug: boolean, tag: string, extra: Record<string, unknown> = {}): Loaded {
  const w0 = arena(1, (u) => (u - 0.5) * 0.2), m0 = arena(2, (u) => (u - 0.5) * 1e-3), v0 = arena(3, (u) => u * 1e-5 + 1e-9);
  const path = saveCheckpoint(dir, `src-${tag}`, { model: mc, tensors: { model: w0, adamM: m0, adamV: v0 }, trainState: { step: 9 }, optim: { step: counters } });
  const be = createBackend("cpu");
  const trainer = new Trainer(be, runConfig(path, stepIncrementBug, extra), join(dir, `run-${tag}`));
  const ck = new RunCheckpointer(trainer.cfg, trainer.runDir, trainer);
  ck.restoreOrInit(() => { throw new Error("not a fresh start"); }, { state: () => null, restore: () => {} }, () => {});
  const g = arena(4, (u) => (u - 0.5) * 0.05); // ‖g‖ ≈ 2.5 > MAX_NORM: clipping is active
  be.upload(trainer.params.grad, g);
  return { trainer, w0, m0, v0, g, counters };
}

function download(t: Trainer): { w: Float32Array; m: Float32Array; v: Float32Array } {
  const be = t.backend, w = new Float32Array(N), m = new Float32Array(N), v = new Float32Array(N);
  be.download(w, t.params.master);
  be.download(m, t.optim.m);
  be.download(v, t.optim.v);
  return { w, m, v };
}

function expectMatchesReference(l: Loaded, stats: { gradNorm: number; clipScale: number }): void {
  let sq = 0;
  for (const x of l.g) sq += x * x;
  const norm = Math.sqrt(sq), clip = Math.min(1, MAX_NORM / (norm + 1e-6));
  expect(Math.abs(stats.gradNorm - norm) / norm).toBeLessThan(1e-6);
  expect(Math.abs(stats.clipScale - clip) / clip).toBeLessThan(1e-6);
  const got = download(l.trainer);
  let worstP = 0, worstM = 0, worstV = 0;
  for (const s of specs) {
    const wd = s.decay ? WD : 0;
    for (let i = s.offset; i < s.offset + s.numel; i++) {
      const gi = l.g[i] * clip, r = referenceStep(l.w0[i], gi, l.m0[i], l.v0[i], l.counters[s.name], wd);
      // Tolerances from fp32 rounding: a few half-ulps (2^-24) of the operands' magnitudes; m may
      // cancel (m0 and g of opposite signs), so the update is measured against its uncancelled size.
      const u = 2 ** -24, step = l.counters[s.name] + 1;
      const mScale = Math.abs(l.m0[i]) + Math.abs(gi), vScale = l.v0[i] + gi * gi;
      const uScale = (LR / (1 - B1 ** step)) * mScale / (Math.sqrt(r.v / (1 - B2 ** step)) + EPS);
      worstP = Math.max(worstP, Math.abs(got.w[i] - r.p) / (4 * u * Math.abs(l.w0[i]) + 16 * u * uScale + 1e-15));
      worstM = Math.max(worstM, Math.abs(got.m[i] - r.m) / (4 * u * mScale));
      worstV = Math.max(worstV, Math.abs(got.v[i] - r.v) / (4 * u * vScale));
    }
  }
  expect(worstP).toBeLessThan(1);
  expect(worstM).toBeLessThan(1);
  expect(worstV).toBeLessThan(1);
}

describe("AdamW = OLMo-core's adamw_step (float64 reference), from a checkpoint's moments and counters", () => {
  const uniform = (c: number) => Object.fromEntries(specs.map((s) => [s.name, c]));

  for (const c of [0, 7, 1000]) {
    test(`counter ${c}, stepIncrementBug: the update uses the loaded counter and leaves it where it was`, () => {
      const l = loadWith(uniform(c), true, `bug${c}`);
      expect(Object.values(l.trainer.optim.counters())).toEqual(specs.map(() => c));
      const stats = l.trainer.optim.update(LR);
      expectMatchesReference(l, stats);
      expect(Object.values(l.trainer.optim.counters())).toEqual(specs.map(() => c));
      l.trainer.free();
    });
  }

  test("counter 5 without the bug: the update uses it, then it counts", () => {
    const l = loadWith(uniform(5), false, "nobug");
    expectMatchesReference(l, l.trainer.optim.update(LR));
    expect(Object.values(l.trainer.optim.counters())).toEqual(specs.map(() => 6));
    l.trainer.free();
  });

  test("per-tensor counters (an OLMo-core checkpoint may carry them): each tensor's bias correction uses its own", () => {
    const counters = Object.fromEntries(specs.map((s, i) => [s.name, i % 3 === 0 ? 2 : i % 3 === 1 ? 40 : 0]));
    const l = loadWith(counters, true, "pertensor");
    expectMatchesReference(l, l.trainer.optim.update(LR));
    expect(l.trainer.optim.counters()).toEqual(counters);
    l.trainer.free();
  });

  test("a skipped step changes nothing: weights, moments and counters stay, the norm is still reported", () => {
    // window 2: decisions start at the second step; a 100× gradient on the second step is a spike
    const l = loadWith(uniform(3), false, "skip", { skipSteps: true, skipStepWindow: 2, skipStepSigmas: 1 });
    const o = l.trainer.optim;
    expect(o.update(LR, { ce: 2.0, z: 0 }).skipped).toBe(false);
    const before = download(l.trainer), counters = o.counters();
    const g = l.g.map((x) => x * 100);
    l.trainer.backend.upload(l.trainer.params.grad, g);
    const stats = o.update(LR, { ce: 2.0, z: 0 });
    expect(stats.skipped).toBe(true);
    expect(stats.gradNorm).toBeGreaterThan(100);
    const after = download(l.trainer);
    expect(Buffer.from(after.w.buffer).equals(Buffer.from(before.w.buffer))).toBe(true);
    expect(Buffer.from(after.m.buffer).equals(Buffer.from(before.m.buffer))).toBe(true);
    expect(Buffer.from(after.v.buffer).equals(Buffer.from(before.v.buffer))).toBe(true);
    expect(o.counters()).toEqual(counters);
    expect(o.skipHistory()!.gradNorms).toHaveLength(2);
    l.trainer.free();
  });

  test("optim.skipStepLoss: the rule sees the CE loss, or CE + z-loss as OLMo-core's fused loss fed it (the 32B's choice)", () => {
    for (const kind of ["ce", "ce+z"] as const) {
      // window 6, 1σ (decisions from the third step): three quiet steps, then one whose z-loss alone jumps
      const l = loadWith(uniform(3), false, `skip-${kind}`, { skipSteps: true, skipStepWindow: 6, skipStepSigmas: 1, skipStepLoss: kind });
      const o = l.trainer.optim;
      const losses = [{ ce: 2.0, z: 0.01 }, { ce: 2.1, z: 0.01 }, { ce: 2.05, z: 0.01 }, { ce: 2.0, z: 5 }];
      const skipped = losses.map((loss) => {
        l.trainer.backend.upload(l.trainer.params.grad, l.g);
        return o.update(LR, loss).skipped;
      });
      expect({ kind, seen: o.skipHistory()!.losses }).toEqual({ kind, seen: losses.map((x) => (kind === "ce" ? x.ce : x.ce + x.z)) });
      expect({ kind, skipped }).toEqual({ kind, skipped: [false, false, false, kind === "ce+z"] });
      l.trainer.free();
    }
  });
});
