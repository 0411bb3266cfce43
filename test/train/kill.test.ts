// kill -9 at random moments of a run that saves (and prunes) every step, synchronously and in the
// background (checkpoint.async): whatever instant the
// process dies at — mid-step, mid-save, mid-prune — every checkpoint that looks complete loads
// completely (every checksum), the next `olmo train` takes over the dead run's lock and resumes, and
// the run finishes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { verifyCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { writeTinyJob } from "../parallel/run-compare.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string, cfgPath: string;
const STEPS = 3000; // batches in one epoch of the data

beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("kill", { tokens: 64 * (STEPS + 10), train: { steps: STEPS, logEvery: 100000 }, checkpoint: { saveInterval: 1, keep: 2 } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function train(runDir: string, ...extra: string[]) {
  return Bun.spawn([process.execPath, "src/cli/main.ts", "train", cfgPath, `--run-dir=${runDir}`, "--quiet", ...extra], {
    cwd: root, env: { ...process.env, OLMO_THREADS: "1", OLMO_BACKEND: "cpu" }, stdout: "pipe", stderr: "pipe",
  });
}

// The killed runs are long (more epochs of the same data) so that no kill lands after the end, however
// fast the machine; the finishing run is then asked for 20 steps more than the newest checkpoint.
const LONG = ["--train.steps=1000000", "--data.allowRepetition=true"];
for (const [mode, extra] of [["synchronous", []], ["asynchronous (checkpoint.async)", ["--checkpoint.async=true"]]] as const) {
  test(`${mode} saves: kill -9 at random moments while saving and pruning every step: no complete-looking checkpoint is corrupt, every resume finishes`, async () => {
    const runDir = join(dir, `run-${extra.length}`);
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const steps: number[] = [];
    for (let kill = 0; kill < 10; kill++) {
      const p = train(runDir, ...extra, ...LONG);
      await Bun.sleep(400 + rand() * 1600);
      p.kill("SIGKILL");
      expect(await p.exited).not.toBe(0);
      const ckpts = listCheckpoints(runDir);
      for (const c of ckpts) expect(verifyCheckpoint(c.path).tensors).toBeGreaterThan(0); // throws on any damage
      steps.push(ckpts.at(-1)?.step ?? 0);
    }
    // the kills landed while the run progressed (saves every step, prunes to 2)
    expect(new Set(steps).size).toBeGreaterThan(3);
    const end = Math.max(...steps) + 20;
    const last = train(runDir, ...extra, `--train.steps=${end}`, "--data.allowRepetition=true", "--accept-change=train.steps");
    const [code, err] = [await last.exited, await new Response(last.stderr).text()];
    expect({ code, err: err.split("\n").filter((l) => /error/.test(l)) }).toEqual({ code: 0, err: [] });
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([end - 1, end]);
    // the debris of interrupted saves and deletes is gone after the finishing run's prunes
    expect(readdirSync(runDir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  }, 90_000);
}
