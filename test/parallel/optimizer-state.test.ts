// The optimizer state beyond the moments, end to end through `olmo train` at 1 process, DP=2, TP=2
// and TP=2 × DP=2: the Adam step counter is saved in every checkpoint and restored with the moments,
// also with checkpoint.loadTrainerState false (stage 2's load); with optim.stepIncrementBug it never
// moves, without it counts; the skip rule's decisions land in metrics.jsonl and its history in the
// checkpoint, so a resume in the middle of a run is bitwise the uninterrupted run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { readCheckpointMeta } from "../../src/checkpoint/native/metadata.ts";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, seedFromStep4, writeTinyJob } from "./run-compare.ts";

let dir: string;
let cfgPath: string;
let step4: string;

const layouts: [string, string[], Record<string, string>][] = [
  ["one process", [], {}],
  ["DP=2", ["launch", "--nproc-per-node", "2", "--"], {}],
  ["TP=2", ["launch", "--nproc-per-node", "2", "--"], { OLMO_TP: "2" }],
  ["TP=2 × DP=2", ["launch", "--nproc-per-node", "4", "--"], { OLMO_TP: "2" }],
];

function train(launch: string[], env: Record<string, string>, runDir: string, over: string[]) {
  return olmo([...launch, "train", cfgPath, "--run-dir", runDir, "--quiet", ...over], env);
}

const countersOf = (ckptDir: string) => new Set(Object.values(loadCheckpoint(ckptDir).stepCounters!));
const newest = (runDir: string) => listCheckpoints(runDir).at(-1)!.path;

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("optstate"));
  const base = join(dir, "base");
  const r = await olmo(["train", cfgPath, "--run-dir", base, "--quiet", "--train.steps=4"]);
  expect(r.err).toBe("");
  step4 = newest(base);
  expect(countersOf(step4)).toEqual(new Set([4]));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the Adam step counter is optimizer state", () => {
  for (const [name, launch, env] of layouts) {
    test(`${name}: loaded with the moments when loadTrainerState is false; frozen with stepIncrementBug, counting without`, async () => {
      const stage2 = ["--stage=2", "--ingredient=1", `--checkpoint.loadPath=${step4}`, "--checkpoint.loadTrainerState=false", "--train.steps=2"];
      const frozen = join(dir, `frozen-${name}`), counting = join(dir, `counting-${name}`);
      const a = await train(launch, env, frozen, [...stage2, "--optim.stepIncrementBug=true"]);
      expect(a.err).toBe("");
      expect(a.code).toBe(0);
      const b = await train(launch, env, counting, stage2);
      expect(b.err).toBe("");
      // 2 fresh trainer steps from the step-4 state: the counter was 4 before them
      expect(metrics(frozen).map((m) => m.step)).toEqual([1, 2]);
      expect(countersOf(newest(frozen))).toEqual(new Set([4]));
      expect(countersOf(newest(counting))).toEqual(new Set([6]));
      // the two runs' first updates used the same counter (4), so their step-1 losses and norms agree
      expect(metrics(frozen)[0].loss).toBe(metrics(counting)[0].loss);
    }, 60_000);
  }

  test("olmo ckpt info shows the counter", async () => {
    const r = await olmo(["ckpt", "info", step4, "--quick"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/adam step\s+4 \(every tensor\)/);
  });
});

describe("the skip rule (optim.skipSteps) in training", () => {
  // a short window and a low threshold so that this tiny run skips some steps
  const skip = ["--optim.skipSteps=true", "--optim.skipStepWindow=3", "--optim.skipStepSigmas=0.5", "--train.steps=10", "--checkpoint.saveInterval=0"];

  for (const [name, launch, env] of [layouts[0], layouts[3]]) {
    test(`${name}: step_skipped in metrics.jsonl; interrupted at step 7 and resumed, bitwise the uninterrupted run`, async () => {
      const whole = join(dir, `skip-whole-${name}`), parts = join(dir, `skip-parts-${name}`);
      const w = await train(launch, env, whole, skip);
      expect(w.err).toBe("");
      const p1 = await train(launch, env, parts, [...skip, "--stop-after", "7"]);
      expect(p1.err).toBe("");
      const p2 = await train(launch, env, parts, skip);
      expect(p2.err).toBe("");
      const mw = metrics(whole), mp = metrics(parts);
      const skipped = mw.map((m) => (m as unknown as { step_skipped: number }).step_skipped);
      expect(skipped[0]).toBe(0); // nothing is decided on the first value
      expect(skipped.some((s) => s === 1)).toBe(true);
      expect(mp).toHaveLength(mw.length);
      for (let i = 0; i < mw.length; i++) {
        expect([mp[i].loss, mp[i].grad_norm, (mp[i] as unknown as { step_skipped: number }).step_skipped])
          .toEqual([mw[i].loss, mw[i].grad_norm, skipped[i]]);
      }
      const cw = loadCheckpoint(newest(whole)), cp = loadCheckpoint(newest(parts));
      expect(Buffer.from(cp.model.buffer).equals(Buffer.from(cw.model.buffer))).toBe(true);
      expect(Buffer.from(cp.adamV!.buffer).equals(Buffer.from(cw.adamV!.buffer))).toBe(true);
      // skipped steps do not count: the counter is the number of applied updates
      expect(countersOf(newest(whole))).toEqual(new Set([skipped.filter((s) => s === 0).length]));
      expect(readCheckpointMeta(newest(whole)).optim!.skipHistory!.losses).toHaveLength(4);
    }, 90_000);
  }

  test("a skipped step is always on the step log, marked", async () => {
    const runDir = join(dir, "skip-log");
    const r = await olmo(["train", cfgPath, "--run-dir", runDir, ...skip, "--train.logEvery=100"]);
    expect(r.code).toBe(0);
    const lines = r.out.split("\n").filter((l) => l.includes("skipped (loss or grad-norm spike"));
    const skippedSteps = metrics(runDir).filter((m) => (m as unknown as { step_skipped: number }).step_skipped === 1).map((m) => m.step);
    expect(lines.length).toBe(skippedSteps.length);
    expect(r.out).toContain("skip rule: loss/grad-norm > 0.5σ over the last 3 steps");
  }, 60_000);
});

test("seedFromStep4 still works with the counters (a run resumed from a copied checkpoint keeps counting)", async () => {
  const runDir = join(dir, "resume-copy");
  seedFromStep4(join(dir, "base"), runDir);
  // the base run was 4 steps long: continuing to the config's 6 is a change the resume check names
  const r = await olmo(["train", cfgPath, "--run-dir", runDir, "--quiet", "--accept-change=train.steps"]);
  expect(r.err).toBe("");
  expect(countersOf(newest(runDir))).toEqual(new Set([6]));
}, 60_000);
