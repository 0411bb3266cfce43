// A resume under settings that change what the next steps compute is refused in one line naming
// each change (old → new) and the way to accept it (--accept-change); settings that do not
// (logging, evaluation, saving, monitors, micro-batch) stay free. One case per class of
// src/config/resume.ts, for our checkpoints, for a continuation of another folder's checkpoint
// and of an OLMo-core one; a stage-2 start (no trainer state) is no resume and is never checked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { CONFIG_FIELDS } from "../../src/config/fields.ts";
import { resumeRule, unclassifiedFields } from "../../src/config/resume.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string, base: string;
const env = { OLMO_BACKEND: "cpu" };
const more = "--data.allowRepetition=true"; // room for longer runs (free: it only allows a second epoch)

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("resume-check"));
  base = join(dir, "base");
  const r = await olmo(["train", cfgPath, `--run-dir=${base}`, "--quiet"], env); // 6 steps, cosine without tMaxSteps
  if (r.code !== 0) throw new Error(r.err);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let copies = 0;
/** A copy of the finished 6-step run, trained again with `args`. */
async function resume(args: string[], from = base) {
  const runDir = join(dir, `copy${copies++}`);
  cpSync(from, runDir, { recursive: true });
  const before = readFileSync(join(runDir, "metrics.jsonl"), "utf8");
  const r = await olmo(["train", cfgPath, `--run-dir=${runDir}`, "--quiet", more, ...args], env);
  return { ...r, runDir, before };
}

const ckpt6 = () => join(base, "stage1-step6-tokens1B");

/** Refused: one stderr line naming every change; nothing trained, nothing saved. */
function expectRefused(r: Awaited<ReturnType<typeof resume>>, changes: string[]): void {
  expect({ code: r.code, lines: r.err.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
  const line = r.err.trim();
  expect(line).toStartWith(`olmo: error: "${join(r.runDir, "stage1-step6-tokens1B")}" was trained with other settings: `);
  for (const c of changes) expect(line).toContain(c);
  expect(line).toContain(`resuming would change what the next steps compute. To continue with the new values add --accept-change=${changes.map((c) => c.split(" ")[0]).join(",")}`);
  expect(readFileSync(join(r.runDir, "metrics.jsonl"), "utf8")).toBe(r.before);
  expect(listCheckpoints(r.runDir).map((c) => c.step)).toEqual([4, 6]);
}

describe("every config field is classified", () => {
  test("no field of the schema lacks a resume rule; a new section would", () => {
    expect(unclassifiedFields()).toEqual([]);
    expect(CONFIG_FIELDS.length).toBeGreaterThan(50);
    expect(resumeRule("newsection.x")).toBeUndefined();
    expect(resumeRule("optim.schedule.warmupSteps")).toBe("computes");
    expect(resumeRule("eval.sets")).toBe("free");
  });
});

describe("changes that alter the resumed steps are refused", () => {
  test("the run's length under a cosine schedule that spans it (the LR of every step left moves)", async () => {
    expectRefused(await resume(["--train.steps=12"]), ["train.steps 6 → 12 (the cosine schedule spans the run: the LR of every step left changes)"]);
  }, 60_000);

  test("the length given as a token budget is named as the steps it means", async () => {
    const job = writeTinyJob("resume-budget", { train: { steps: undefined, budgetTokens: 384 } }); // 6 steps of 64 tokens
    try {
      const runDir = join(job.dir, "run");
      expect((await olmo(["train", job.cfgPath, `--run-dir=${runDir}`, "--quiet"], env)).code).toBe(0);
      const r = await olmo(["train", job.cfgPath, `--run-dir=${runDir}`, "--quiet", more, "--train.budgetTokens=768"], env);
      expect(r.code).toBe(2);
      expect(r.err.trim()).toStartWith(`olmo: error: "${join(runDir, "stage1-step6-tokens1B")}" was trained with other settings: train.steps 6 → 12 (the cosine schedule`);
    } finally {
      rmSync(job.dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("learning rate, batch, schedule kind and warmup, the skip rule — each named, old → new", async () => {
    expectRefused(await resume(["--optim.lr=0.02"]), ["optim.lr 0.01 → 0.02"]);
    expectRefused(await resume(["--train.globalBatchInstances=8"]), ["train.globalBatchInstances 4 → 8"]);
    expectRefused(await resume(['--optim.schedule={"kind":"linear","warmupSteps":2}']), ["optim.schedule.kind cosine → linear", "optim.schedule.alpha 0.1 → 0"]);
    expectRefused(await resume(["--optim.schedule.warmupSteps=3", "--optim.skipSteps"]), ["optim.schedule.warmupSteps 2 → 3", "optim.skipSteps false → true"]);
  }, 120_000);

  test("another sequence length is refused like a computing change; another data seed keeps the checkpoint's order, saying so", async () => {
    expectRefused(await resume(["--train.seqLen=32"]), ["train.seqLen 16 → 32"]);
    const seed = await resume(["--data.seed=8"]);
    expect({ code: seed.code, err: seed.err }).toEqual({ code: 0, err: "" });
    expect(seed.out).toContain("data: continuing the checkpoint's data order (seed 7), not data.seed 8");
  }, 60_000);
});

describe("accepting a change", () => {
  test("--accept-change continues under the new values, says so, and the next resume compares with them", async () => {
    const r = await resume(["--train.steps=12", "--accept-change=train.steps"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("resume: continuing with the changes accepted by --accept-change: train.steps 6 → 12");
    expect(metrics(r.runDir).at(-1)!.step).toBe(12);
    // the new checkpoints carry the new settings: resuming them again (here: nothing left) is not refused
    const again = await olmo(["train", cfgPath, `--run-dir=${r.runDir}`, "--quiet", more, "--train.steps=12"], env);
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: "" });
  }, 60_000);

  test("accepting one change leaves the others refused", async () => {
    expectRefused(await resume(["--train.steps=12", "--optim.lr=0.02", "--accept-change=train.steps"]), ["optim.lr 0.01 → 0.02"]);
  }, 60_000);

  test("an unknown field in --accept-change is refused with the nearest one", async () => {
    const r = await resume(["--accept-change=optim.lrr"]);
    expect(r.err.trim()).toBe("olmo: error: train: --accept-change optim.lrr is not a config field; did you mean optim.lr?");
  }, 60_000);
});

describe("changes that do not alter the resumed steps are free", () => {
  test("logging, evaluation, saving, monitors, sample, micro-batch, recompute", async () => {
    const r = await resume(["--train.steps=6", "--train.logEvery=2", "--checkpoint.saveInterval=2", "--checkpoint.keep=9", "--monitor.spikeWindow=16",
      "--train.samplePrompt=", "--train.microBatchInstances=1", "--train.recompute=block", `--eval.sets=[{"name":"h","paths":["${join(dir, "tokens.u32")}"],"instances":"windows"}]`]);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    expect(r.out).toContain("resumed from ");
  }, 60_000);

  test("the length, when the schedule does not span the run (constant, or cosine with its own tMaxSteps)", async () => {
    const constant = join(dir, "constant");
    const c = await olmo(["train", cfgPath, `--run-dir=${constant}`, "--quiet", '--optim.schedule={"kind":"constant","warmupSteps":2}'], env);
    expect(c.code).toBe(0);
    const r = await resume(['--optim.schedule={"kind":"constant","warmupSteps":2}', "--train.steps=9"], constant);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    expect(metrics(r.runDir).at(-1)!.step).toBe(9);
    const tmax = join(dir, "tmax");
    const t = await olmo(["train", cfgPath, `--run-dir=${tmax}`, "--quiet", "--optim.schedule.tMaxSteps=20"], env);
    expect(t.code).toBe(0);
    const s = await resume(["--optim.schedule.tMaxSteps=20", "--train.steps=9"], tmax);
    expect({ code: s.code, err: s.err }).toEqual({ code: 0, err: "" });
  }, 120_000);
});

describe("starting from another folder's checkpoint", () => {
  test("a stage-2 start (weights and optimizer state, fresh trainer state) is not a resume: not checked", async () => {
    const r = await olmo(["train", cfgPath, `--run-dir=${join(dir, "stage2")}`, "--quiet", `--checkpoint.loadPath=${ckpt6()}`,
      "--checkpoint.loadTrainerState=false", "--optim.lr=0.005", "--train.steps=2"], env);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
  }, 60_000);

  test("continuing its run (loadTrainerState true) is checked like a resume", async () => {
    const r = await olmo(["train", cfgPath, `--run-dir=${join(dir, "continued")}`, "--quiet", more, `--checkpoint.loadPath=${ckpt6()}`, "--optim.lr=0.02", "--train.steps=8"], env);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toStartWith(`olmo: error: "${ckpt6()}" was trained with other settings: train.steps 6 → 8 (the cosine schedule spans the run`);
    expect(r.err).toContain("optim.lr 0.01 → 0.02");
    expect(existsSync(join(dir, "continued", "metrics.jsonl"))).toBe(false);
  }, 60_000);

  test("an OLMo-core checkpoint: what its state carries (max_steps, the param groups' initial_lr, betas, eps) is compared", async () => {
    const oc = join(dir, "oc", "step6");
    const e = await olmo(["export-olmo-core", ckpt6(), "--out", oc], env);
    expect(e.code).toBe(0);
    const r = await olmo(["train", cfgPath, `--run-dir=${join(dir, "oc-run")}`, "--quiet", more, `--checkpoint.loadPath=${oc}`, "--optim.lr=0.02", "--optim.beta2=0.99", "--train.steps=8"], env);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe(`olmo: error: "${oc}" was trained with other settings: train.steps 6 → 8 (the cosine schedule spans the run: the LR of every step left changes), ` +
      "optim.lr 0.01 → 0.02, optim.beta2 0.95 → 0.99; resuming would change what the next steps compute. " +
      "To continue with the new values add --accept-change=train.steps,optim.lr,optim.beta2; to keep the run as it was, drop the changes (or train elsewhere with --run-dir)");
    const ok = await olmo(["train", cfgPath, `--run-dir=${join(dir, "oc-run")}`, "--quiet", more, `--checkpoint.loadPath=${oc}`, "--train.steps=8", "--accept-change=train.steps"], env);
    expect({ code: ok.code, err: ok.err }).toEqual({ code: 0, err: "" });
  }, 60_000);
});
