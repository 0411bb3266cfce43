// Divergence is a user situation: one line on stderr naming the step and the last finite loss, exit
// code 2, no stack trace, and the newest checkpoint is intact (no checkpoint is written from
// non-finite weights; a non-finite step is never applied).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native-read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("diverge"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("lr 1e30: one line naming the step and the last finite loss; the checkpoint saved before it loads with finite weights", async () => {
  const runDir = join(dir, "lr");
  const r = await olmo(["train", cfgPath, "--run-dir", runDir, "--quiet", "--optim.lr=1e30", "--checkpoint.saveInterval=1"]);
  expect(r.code).toBe(2);
  const lines = r.err.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^olmo: error: training diverged: the loss is not finite at step 2 .*the last finite loss was \d+\.\d{4} at step 1; .*the newest checkpoint .*stage1-step1-tokens1B is intact$/);
  const ck = listCheckpoints(runDir);
  expect(ck.map((c) => c.name)).toEqual(["stage1-step1-tokens1B"]);
  const w = loadCheckpoint(ck[0].path);
  expect(w.model.every(Number.isFinite) && w.adamV!.every(Number.isFinite)).toBe(true);
  expect(metrics(runDir).map((m) => m.step)).toEqual([1]); // the diverged step is not logged as trained
}, 30_000);

test("an eps that is 0 in float32 is refused before training", async () => {
  const r = await olmo(["train", cfgPath, "--run-dir", join(dir, "eps"), "--quiet", "--optim.eps=1e-300"]);
  expect(r.code).toBe(2);
  expect(r.err.trim()).toEndWith("invalid config at optim.eps: eps rounds to 0 in float32, the optimizer's precision (use e.g. 1e-8)");
});
