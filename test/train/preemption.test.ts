// Preemption: SIGTERM or SIGUSR1 (what SLURM sends before a time limit or a preemption) makes a run
// finish its step, save a checkpoint and exit with code 75; every rank stops after the same step;
// the next start resumes, and the run ends bitwise equal to one that was never stopped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, root, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("preempt"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const long = ["--train.steps=400", "--data.allowRepetition=true", "--checkpoint.saveInterval=0", "--quiet"];
const lines = (runDir: string) => (existsSync(join(runDir, "metrics.jsonl")) ? readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").length - 1 : 0);

/** Start `args`, send `signal` once metrics.jsonl has `afterSteps` lines, wait for the exit. */
async function interrupted(args: string[], env: Record<string, string>, runDir: string, signal: NodeJS.Signals, afterSteps: number) {
  const p = Bun.spawn([process.execPath, join(root, "src/cli/main.ts"), ...args], {
    cwd: root, env: { ...process.env, OLMO_THREADS: "1", ...env }, stdout: "pipe", stderr: "pipe",
  });
  while (lines(runDir) < afterSteps) {
    if (p.exitCode !== null) break;
    await Bun.sleep(20);
  }
  p.kill(signal);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code };
}

describe("preemption", () => {
  for (const [name, launch, env, signal] of [
    ["one process, SIGTERM", [], {}, "SIGTERM"],
    ["one process, SIGUSR1", [], {}, "SIGUSR1"],
    ["olmo launch, DP=2, SIGTERM to the launcher", ["launch", "--nproc-per-node", "2", "--"], {}, "SIGTERM"],
  ] as const) {
    test(`${name}: the step finishes, a checkpoint is saved, exit 75; the next start resumes to a bitwise-identical end`, async () => {
      const whole = join(dir, `whole-${name}`), stopped = join(dir, `stopped-${name}`);
      const w = await olmo([...launch, "train", cfgPath, "--run-dir", whole, ...long], env);
      expect(w.err).toBe("");
      const s = await interrupted([...launch, "train", cfgPath, "--run-dir", stopped, ...long], env, stopped, signal, 10);
      expect(s.code).toBe(75);
      const at = metrics(stopped).at(-1)!.step;
      expect(at).toBeGreaterThanOrEqual(10);
      expect(at).toBeLessThan(400);
      expect(listCheckpoints(stopped).map((c) => c.step)).toEqual([at]); // saved where it stopped
      expect(s.out).toContain(`stopped after step ${at} on ${signal}`);
      const r = await olmo([...launch, "train", cfgPath, "--run-dir", stopped, ...long], env);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(metrics(stopped).map((m) => m.loss)).toEqual(metrics(whole).map((m) => m.loss));
      const a = loadCheckpoint(listCheckpoints(stopped).at(-1)!.path), b = loadCheckpoint(listCheckpoints(whole).at(-1)!.path);
      expect(Buffer.from(a.model.buffer).equals(Buffer.from(b.model.buffer))).toBe(true);
      expect(Buffer.from(a.adamV!.buffer).equals(Buffer.from(b.adamV!.buffer))).toBe(true);
    }, 90_000);
  }
});
