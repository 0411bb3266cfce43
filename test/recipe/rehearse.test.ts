// The recipe rehearsal in its small form: stage 1 → three ingredients → soup → HF export → eval,
// on the CPU. The soup's weights are exactly the fp32 mean of the ingredients' final weights.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { loadHfModel } from "../../src/checkpoint/hf/folder.ts";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { loadConfig } from "../../src/config/load.ts";
import { totalSteps } from "../../src/config/schema.ts";
import { lrAt } from "../../src/optim/schedule.ts";
import { REHEARSAL_SCALES, type RehearsalResult, rehearse } from "../../src/recipe/rehearse.ts";
import { readRun } from "../../src/metrics/report.ts";
import { chartsFor } from "../../src/metrics/report-data.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string;
let r: RehearsalResult;

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-rehearse-"));
  const recipe = {
    stage1: await loadConfig(join(root, "configs/stage1.ts")),
    ingredients: await Promise.all([1, 2, 3].map((k) => loadConfig(join(root, `configs/stage2-ingredient${k}.ts`)))),
  };
  r = await rehearse(createBackend("cpu"), recipe, { scale: REHEARSAL_SCALES.small, workDir: join(dir, "work"), log: () => {} });
}, 300_000); // ~7 s on 2 idle cores; a hook does not get the command line's --timeout
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("rehearse --small", () => {
  test("runs every stage and evaluates every model on the held-out documents", () => {
    expect(r.rows.map((x) => [x.name, x.steps])).toEqual([
      ["stage1", 8], ["stage2-ingredient1", 2], ["stage2-ingredient2", 2], ["stage2-ingredient3", 6], ["soup", 2],
    ]);
    for (const x of r.rows) {
      expect(x.evalLoss).toBeGreaterThan(0);
      expect(x.evalLoss).toBeLessThan(Math.log(100352) + 1);
    }
    // training moved the model: every trained model beats the uniform-distribution loss
    for (const x of r.rows.slice(0, 4)) expect(x.trainLoss!).toBeLessThan(Math.log(100352));
  });

  test("each run's in-loop held-out loss at its end equals its exported model's through olmo eval's path, bit for bit", () => {
    for (const x of r.rows.slice(0, 4)) expect({ name: x.name, loss: x.inLoopEvalLoss }).toEqual({ name: x.name, loss: x.evalLoss });
    expect(r.rows[4].inLoopEvalLoss).toBeNull(); // the soup is not trained: only the exported eval
    // ...recorded in a folder of its own, which olmo report draws beside the ingredients
    const soup = readRun(join(dir, "work", "soup"));
    expect(soup.history.evals.map((e) => [e.eval, e.loss])).toEqual([["heldout", r.rows[4].evalLoss]]);
    const charts = chartsFor([...r.rows.slice(1, 4).map((x) => readRun(join(x.checkpoint, ".."))), soup]);
    expect(charts.filter((c) => c.eval).map((c) => c.title)).toEqual(["Eval: heldout"]);
  });

  test("the ingredients follow the recipe: stage-1 weights, own seeds, LR from the stage-1 schedule's end to 0", () => {
    const s1 = r.configs.stage1;
    const lr2 = lrAt(s1.optim.schedule, totalSteps(s1), s1.optim.lr, totalSteps(s1));
    expect(r.configs.ingredients.map((c) => c.data.seed)).toEqual([1110, 2662, 2662]);
    for (const c of r.configs.ingredients) {
      expect(c.optim.lr).toBe(lr2);
      expect(c.optim.schedule).toMatchObject({ kind: "linear", warmupSteps: 0, alpha: 0 });
      expect(c.checkpoint).toMatchObject({ loadPath: r.rows[0].checkpoint, loadTrainerState: false });
      expect(c.optim.stepIncrementBug).toBe(true);
    }
    expect(s1.data.maxTargetSeqLen).toBe(2 * s1.train.seqLen); // the stage-1 chunking ratio
    // fresh trainer state: steps restart at 1; Adam moments carried over from stage 1
    const ck = loadCheckpoint(r.rows[1].checkpoint);
    expect(ck.trainState).toMatchObject({ step: 2 });
    // ...with stage 1's step counters, frozen there (stepIncrementBug) through the ingredient's steps
    const s1Counters = loadCheckpoint(r.rows[0].checkpoint).stepCounters!;
    expect(new Set(Object.values(s1Counters))).toEqual(new Set([totalSteps(s1)]));
    expect(ck.stepCounters).toEqual(s1Counters);
  });

  test("the soup's weights are exactly the fp32 mean of the three ingredients", () => {
    const [a, b, c] = r.rows.slice(1, 4).map((x) => loadCheckpoint(x.checkpoint, { optimizer: false }).model);
    const soup = loadCheckpoint(r.soupDir, { optimizer: false }).model;
    expect(soup.length).toBe(a.length);
    const w = 1 / 3;
    const want = new Float32Array(a.length);
    let worst = 0;
    for (let i = 0; i < a.length; i++) {
      // fp32 accumulation, in input order, as OLMo-core's merge scripts
      want[i] = Math.fround(Math.fround(Math.fround(w * a[i]) + w * b[i]) + w * c[i]);
      worst = Math.max(worst, Math.abs(soup[i] - (a[i] + b[i] + c[i]) / 3));
    }
    expect(Buffer.from(soup.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    expect(worst).toBeLessThan(1e-6);
    // the ingredients really differ (different data orders / lengths), so the average means something
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(false);
    // and the HF export (fp32) the eval read is the same soup
    expect(Buffer.from(loadHfModel(r.rows[4].hf).params.buffer).equals(Buffer.from(soup.buffer))).toBe(true);
  });

  test("olmo rehearse refuses a non-empty folder that is not a previous rehearsal", () => {
    const busy = join(dir, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "precious.txt"), "x");
    const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "rehearse", "--small", "--out", busy], { cwd: root });
    expect(p.exitCode).toBe(2);
    expect(p.stderr.toString()).toMatch(/not empty and not a previous rehearsal/);
  });
});
