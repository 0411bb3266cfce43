// Data parallelism with ZeRO-1 on the CPU library, end to end: `olmo launch --nproc-per-node 2 --
// train CFG` against one process on the same config. Each DP rank takes one micro-batch of the
// global batch, gradients are reduce-scattered, Adam state is sharded; the loss curve and the final
// weights and moments must match the single-process run to fp32 tolerance, and the dp=2 checkpoint
// (same format as dp=1) resumes in one process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { zero1Range } from "../../src/model/sharding.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { expectWeightsClose, maxRel, metrics, olmo, root, seedFromStep4, writeTinyJob } from "./run-compare.ts";

let dir: string;
let cfgPath: string;

beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("dp"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("data parallel (ZeRO-1) on the CPU library", () => {
  test("Backend.hostView: a zero-copy view of CPU-library memory that the GC never frees", () => {
    const be = createBackend("cpu");
    expect(be.hostView).toBeDefined();
    const n = 1 << 12, p = be.alloc(n * 4);
    be.upload(p, Float32Array.from({ length: n }, (_, i) => i));
    for (let k = 0; k < 2000; k++) new Float32Array(be.hostView!(p, n * 4))[k % n] += 0.5; // many short-lived views
    Bun.gc(true);
    const back = new Float32Array(n);
    be.download(back, p);
    expect(back[0]).toBe(0.5);
    expect(back[1999]).toBe(1999.5);
    expect(back[n - 1]).toBe(n - 1);
    expect(be.hostView!(p + 8, 4).byteLength).toBe(4);
    be.free(p);
  });

  test("zero1Range: ranges cover the arena once, padded to a multiple of dp", () => {
    for (const [n, w] of [[10, 3], [9, 3], [1, 4], [7, 1]]) {
      const shards = Array.from({ length: w }, (_, r) => zero1Range(n, w, r));
      expect(shards.reduce((a, s) => a + s.len, 0)).toBe(n);
      for (const s of shards) expect(s.padded).toBe(s.S * w);
      for (let r = 1; r < w; r++) expect(shards[r].start).toBe(Math.min(n, shards[r - 1].start + shards[r - 1].S));
    }
  });

  test("launch --nproc-per-node 2 matches one process: loss curve, weights, moments; its checkpoint resumes at dp=1", async () => {
    const one = join(dir, "one"), two = join(dir, "two");
    const [r1, r2] = await Promise.all([
      olmo(["train", cfgPath, "--run-dir", one, "--quiet"]),
      olmo(["launch", "--nproc-per-node", "2", "--", "train", cfgPath, "--run-dir", two, "--quiet"]),
    ]);
    expect(r1.err).toBe("");
    expect(r1.code).toBe(0);
    expect(r2.err).toBe("");
    expect(r2.code).toBe(0);
    // rank 0 alone prints the run summary
    expect(r2.out).toContain("[rank 0] olmo-bun: dp |");
    expect(r2.out).toContain("data parallel × 2 (ZeRO-1)");
    expect(r2.out).not.toContain("[rank 1]");

    const m1 = metrics(one), m2 = metrics(two);
    expect(m2.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < m1.length; i++) {
      expect(Math.abs(m2[i].loss - m1[i].loss) / m1[i].loss).toBeLessThan(1e-6);
      // the same sums in another order (each rank has other instances): fp32 rounding, grown by Adam over steps
      expect(Math.abs(m2[i].grad_norm - m1[i].grad_norm) / m1[i].grad_norm).toBeLessThan(1e-4);
      expect(m2[i].tokens).toBe(m1[i].tokens);
      expect(m2[i].tokens_processed).toBe(m1[i].tokens_processed);
    }
    expect(m1[5].loss).toBeLessThan(m1[0].loss);

    const c1 = listCheckpoints(one), c2 = listCheckpoints(two);
    expect(c2.map((c) => c.name)).toEqual(c1.map((c) => c.name));
    const w1 = loadCheckpoint(c1.at(-1)!.path), w2 = loadCheckpoint(c2.at(-1)!.path);
    expectWeightsClose(w2.model, w1.model);
    expect(maxRel(w2.adamM!, w1.adamM!)).toBeLessThan(1e-3);
    expect(maxRel(w2.adamV!, w1.adamV!)).toBeLessThan(1e-3);
    expect(w2.trainState).toMatchObject({ step: 6, tokensProcessed: 6 * 64 });
    expect(new Set(Object.values(w2.stepCounters!))).toEqual(new Set([6]));

    // dp=2 → dp=1: resume one process from the dp=2 run's step-4 checkpoint for steps 5 and 6
    const resumed = join(dir, "resumed");
    seedFromStep4(two, resumed);
    const r3 = await olmo(["train", cfgPath, "--run-dir", resumed, "--quiet"]);
    expect(r3.err).toBe("");
    expect(r3.code).toBe(0);
    expect(r3.out).toContain("resumed from");
    const m3 = metrics(resumed);
    expect(m3.map((m) => m.step)).toEqual([5, 6]);
    for (const m of m3) expect(Math.abs(m.loss - m1[m.step - 1].loss) / m1[m.step - 1].loss).toBeLessThan(1e-6);
    const w3 = loadCheckpoint(listCheckpoints(resumed).at(-1)!.path);
    expectWeightsClose(w3.model, w1.model);
  }, 60_000);

  test("dp=1 → dp=2: two ranks resume the one-process checkpoint", async () => {
    const one = join(dir, "one"), back = join(dir, "back");
    seedFromStep4(one, back);
    const r = await olmo(["launch", "--nproc-per-node", "2", "--", "train", cfgPath, "--run-dir", back, "--quiet"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const m1 = metrics(one), mb = metrics(back);
    expect(mb.map((m) => m.step)).toEqual([5, 6]);
    for (const m of mb) expect(Math.abs(m.loss - m1[m.step - 1].loss) / m1[m.step - 1].loss).toBeLessThan(1e-6);
    const wb = loadCheckpoint(listCheckpoints(back).at(-1)!.path), w1 = loadCheckpoint(listCheckpoints(one).at(-1)!.path);
    expectWeightsClose(wb.model, w1.model);
    expect(maxRel(wb.adamV!, w1.adamV!)).toBeLessThan(1e-3);
  }, 60_000);

  test("dp=2 with gradient accumulation (2 micro-batches per rank) matches one process", async () => {
    const over = ["--train.globalBatchInstances=8", "--train.steps=4", "--checkpoint.saveInterval=0", "--quiet"];
    const one = join(dir, "acc1"), two = join(dir, "acc2");
    const [r1, r2] = await Promise.all([
      olmo(["train", cfgPath, "--run-dir", one, ...over]),
      olmo(["launch", "--nproc-per-node", "2", "--", "train", cfgPath, "--run-dir", two, ...over]),
    ]);
    expect([r1.err, r2.err]).toEqual(["", ""]);
    expect([r1.code, r2.code]).toEqual([0, 0]);
    const m1 = metrics(one), m2 = metrics(two);
    expect(m2.map((m) => m.tokens_processed)).toEqual([128, 256, 384, 512]);
    for (let i = 0; i < m1.length; i++) expect(Math.abs(m2[i].loss - m1[i].loss) / m1[i].loss).toBeLessThan(1e-6);
    expectWeightsClose(loadCheckpoint(listCheckpoints(two).at(-1)!.path).model, loadCheckpoint(listCheckpoints(one).at(-1)!.path).model);
  }, 60_000);
});
