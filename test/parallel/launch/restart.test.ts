// Restarts: `olmo launch --max-restarts N` starts every local rank again when one dies (here a rank
// killed with SIGKILL in the middle of training); they resume from the newest complete checkpoint
// and the run ends bitwise equal to one that never failed. A user error is not restarted, and a rank
// that stopped on a preemption signal is not a failure.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../../support/build.ts";
import { historyRows } from "../../support/metrics-rows.ts";
import { olmo, root, writeTinyJob } from "../run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("restart"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const job = ["--train.steps=300", "--data.allowRepetition=true", "--checkpoint.saveInterval=20", "--checkpoint.keep=2", "--quiet"];
/** the run's history of step losses (a restarted run logs the steps after its checkpoint again: the reader keeps the last) */
function lastPerStep(runDir: string): { step: number; loss: number }[] {
  return historyRows(runDir).filter((r) => r.eval === undefined).map((r) => ({ step: r.step as number, loss: r.loss as number }));
}
const lines = (runDir: string) => (existsSync(join(runDir, "metrics.jsonl")) ? readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").length - 1 : 0);

/** pids of the direct children of `pid` */
function children(pid: number): number[] {
  const p = `/proc/${pid}/task/${pid}/children`;
  return existsSync(p) ? readFileSync(p, "utf8").trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

describe("olmo launch --max-restarts", () => {
  test("a rank killed mid-run: all ranks restart from the newest checkpoint and end bitwise equal to an uninterrupted run", async () => {
    const whole = join(dir, "whole"), restarted = join(dir, "restarted");
    const launch = ["launch", "--nproc-per-node", "2"];
    const w = await olmo([...launch, "--", "train", cfgPath, "--run-dir", whole, ...job]);
    expect(w.code).toBe(0);
    const p = Bun.spawn([process.execPath, join(root, "src/cli/main.ts"), ...launch, "--max-restarts", "2", "--", "train", cfgPath, "--run-dir", restarted, ...job],
      { cwd: root, env: { ...process.env, OLMO_THREADS: "1" }, stdout: "pipe", stderr: "pipe" });
    while (lines(restarted) < 50 && p.exitCode === null) await Bun.sleep(20);
    const ranks = children(p.pid);
    expect(ranks).toHaveLength(2);
    process.kill(ranks[1], "SIGKILL");
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(code).toBe(0);
    expect(err).toContain("rank 1 was killed by SIGKILL");
    expect(err).toContain("restart 1 of 2");
    expect(out).toMatch(/resumed from \S+ at step \d+ \(restart 1 of the job\)/);
    expect(lastPerStep(restarted)).toEqual(lastPerStep(whole));
    const a = loadCheckpoint(listCheckpoints(restarted).at(-1)!.path), b = loadCheckpoint(listCheckpoints(whole).at(-1)!.path);
    expect(Buffer.from(a.model.buffer).equals(Buffer.from(b.model.buffer))).toBe(true);
    expect(Buffer.from(a.adamM!.buffer).equals(Buffer.from(b.adamM!.buffer))).toBe(true);
  }, 120_000);

  test("a user error is not restarted", async () => {
    const r = await olmo(["launch", "--nproc-per-node", "2", "--max-restarts", "3", "--", "train", cfgPath, "--run-dir", join(dir, "bad"), "--quiet", "--optim.lr=-1"]);
    expect(r.code).toBe(2);
    expect(r.err).not.toContain("restart 1");
  }, 60_000);
});
