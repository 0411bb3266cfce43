// checkpoint.ephemeralInterval, OLMo-core's ephemeral_save_interval (train/callbacks/checkpointer.py
// at d7301e62; the 32B's anneal script saved every 1000 steps and ephemerally every 500, which is why
// the released stage-2 folders include step 11500 and 35500): saves at that interval, and each
// such save removes the older ephemeral ones; the permanent ones (saveInterval) and the final one stay.
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { olmo, writeTinyJob } from "../parallel/run-compare.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test("ephemeral saves every 2 steps keep only the newest; permanent saves every 4 and the final step stay", async () => {
  ensureNativeBuilt("cpu");
  const { dir, cfgPath } = writeTinyJob("ephemeral", { tokens: 16 * 60, train: { steps: 9 }, checkpoint: { saveInterval: 4, ephemeralInterval: 2, keep: 10 } });
  dirs.push(dir);
  const r = await olmo(["train", cfgPath, "--run-dir", `${dir}/run`, "--quiet"]);
  expect(r.err).toBe("");
  expect(listCheckpoints(`${dir}/run`).map((c) => c.step)).toEqual([4, 6, 8, 9]);
  // a resume continues the rule: the next ephemeral save (step 10) removes step 6; step 9, the first
  // run's last, is at neither interval and stays (as OLMo-core's ephemeral_only removal leaves it)
  const more = await olmo(["train", cfgPath, "--run-dir", `${dir}/run`, "--quiet", "--train.steps=11", "--accept-change=train.steps"]);
  expect(more.err).toBe("");
  expect(listCheckpoints(`${dir}/run`).map((c) => c.step)).toEqual([4, 8, 9, 10, 11]);
}, 60_000);
