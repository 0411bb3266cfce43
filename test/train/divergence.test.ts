// Divergence is a user situation: one line on stderr naming the step and the last finite loss, exit
// code 2, no stack trace, and the newest checkpoint is intact: a non-finite step is never applied,
// and no checkpoint is written from a diverged state (NaN, infinite or overflowing weights/moments).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("diverge"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const oneLine = (err: string) => {
  const lines = err.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0];
};

test("lr 1e30 from the start: the loss at step 2 is not finite; the blown-up step-1 state was never saved", async () => {
  const runDir = join(dir, "lr");
  const r = await olmo(["train", cfgPath, "--run-dir", runDir, "--quiet", "--optim.lr=1e30", "--train.steps=3"]);
  expect(r.code).toBe(2);
  expect(oneLine(r.err)).toMatch(/^olmo: error: training diverged: the loss is not finite at step 2 .*the last finite loss was \d+\.\d{4} at step 1; this step's update was not applied .*; no checkpoint was saved before it$/);
  expect(metrics(runDir).map((m) => m.step)).toEqual([1]); // the diverged step is not logged as trained
});

test("a run that diverges after a resume: the save of the diverged state is refused, the newest checkpoint is intact", async () => {
  const runDir = join(dir, "resume");
  const a = await olmo(["train", cfgPath, "--run-dir", runDir, "--quiet", "--checkpoint.saveInterval=1", "--stop-after", "2"]);
  expect(a.err).toBe("");
  const r = await olmo(["train", cfgPath, "--run-dir", runDir, "--quiet", "--checkpoint.saveInterval=1", "--optim.lr=1e30", "--accept-change=optim.lr"]);
  expect(r.code).toBe(2);
  expect(oneLine(r.err)).toMatch(/^olmo: error: training diverged at step 3: the weights of \S+ are NaN, infinite or beyond ~1e19 \(their squares overflow\); this state is not saved; the newest checkpoint \S+stage1-step2-tokens1B is intact$/);
  const ck = listCheckpoints(runDir);
  expect(ck.at(-1)!.name).toBe("stage1-step2-tokens1B");
  const w = loadCheckpoint(ck.at(-1)!.path);
  expect(w.model.every(Number.isFinite) && w.adamV!.every(Number.isFinite)).toBe(true);
}, 30_000);

test("an eps that is 0 in float32 is refused before training", async () => {
  const r = await olmo(["train", cfgPath, "--run-dir", join(dir, "eps"), "--quiet", "--optim.eps=1e-300"]);
  expect(r.code).toBe(2);
  expect(oneLine(r.err)).toEndWith("invalid config at optim.eps: eps rounds to 0 in float32, the optimizer's precision (use e.g. 1e-8)");
});
