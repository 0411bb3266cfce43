// Real torchrun (PyTorch 2.6's elastic agent: test/parallel/fixtures/torchrun26.ts) starting olmo
// ranks, as a user would: standalone and c10d rendezvous; --max-restarts 1 with a rank SIGKILLed
// after a checkpoint and during a save. Every run ends bitwise equal to `olmo launch` of the same
// job. And the time a restart after a dead peer takes: the other rank, blocked in a shared-memory
// collective, must stop within seconds (by itself, or on torchrun's SIGTERM), not after torchrun's
// 30 s grace and SIGKILL (issue 20 item 6: 39-47 s per restart before). The stand-in agent store
// tests (test/parallel/store/torchrun.test.ts) stay as the fast unit tests of the protocol.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, watch } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../../src/checkpoint/naming.ts";
import { freePort } from "../../../src/parallel/launch/launcher.ts";
import { ensureNativeBuilt } from "../../support/build.ts";
import { torch26Status } from "../../support/torch26.ts";
import { type Rdzv, startTorchrun, torchrunRanks } from "../fixtures/torchrun26.ts";
import { olmo, writeTinyJob } from "../run-compare.ts";
import { historyRows } from "../../support/metrics-rows.ts";

const status = torch26Status();
const skip = status !== true;
const needs = skip ? ` [skipped: ${status}]` : "";
if (skip) console.warn(`torchrun-real: skipped: ${status}`);

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("torchrun-real"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LONG = ["--train.steps=300", "--data.allowRepetition=true", "--checkpoint.saveInterval=20", "--checkpoint.keep=2", "--quiet"];
const lines = (runDir: string) => (existsSync(join(runDir, "metrics.jsonl")) ? readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").length - 1 : 0);

/** The last record of every step (a restarted run logs the steps after its checkpoint again). */
/** The run's step records as the one reader sees them (restart markers applied, abandoned attempts left out). */
function lastPerStep(runDir: string): { step: number; loss: number; grad_norm: number }[] {
  return historyRows(runDir).filter((r) => r.eval === undefined).map((r) => ({ step: r.step as number, loss: r.loss as number, grad_norm: r.grad_norm as number }));
}

/** Every checkpoint of `a` is bitwise the same-named one of `b` (weights, both moments). */
function expectSameCheckpoints(a: string, b: string): void {
  const [ca, cb] = [listCheckpoints(a), listCheckpoints(b)];
  expect(ca.map((c) => c.name)).toEqual(cb.map((c) => c.name));
  for (let i = 0; i < ca.length; i++) {
    const [x, y] = [loadCheckpoint(ca[i].path), loadCheckpoint(cb[i].path)];
    for (const k of ["model", "adamM", "adamV"] as const) expect({ ckpt: ca[i].name, k, same: Buffer.from(x[k]!.buffer).equals(Buffer.from(y[k]!.buffer)) }).toEqual({ ckpt: ca[i].name, k, same: true });
  }
}

async function finished(p: ReturnType<typeof startTorchrun>) {
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code };
}

/** Poll until torchrun's ranks are all new processes (a restart), or it exited; seconds since `t0`. */
async function restartedAfter(p: ReturnType<typeof startTorchrun>, old: Map<number, number>, nproc: number, t0: number): Promise<number> {
  while (p.exitCode === null) {
    const now = torchrunRanks(p.pid);
    if (now.size === nproc && [...now.values()].every((pid) => ![...old.values()].includes(pid))) return (performance.now() - t0) / 1000;
    await Bun.sleep(50);
  }
  throw new Error("torchrun exited without restarting its ranks");
}

async function ranksOf(p: ReturnType<typeof startTorchrun>, runDir: string, afterSteps: number, nproc: number): Promise<Map<number, number>> {
  while (lines(runDir) < afterSteps || torchrunRanks(p.pid).size < nproc) {
    if (p.exitCode !== null) throw new Error(`torchrun exited early: ${await new Response(p.stderr).text()}`);
    await Bun.sleep(20);
  }
  return torchrunRanks(p.pid);
}

describe("real torchrun (PyTorch 2.6) starting olmo ranks", () => {
  let launched: string, launchedLong: string;
  beforeAll(async () => {
    if (skip) return;
    launched = join(dir, "launch"), launchedLong = join(dir, "launch-long");
    for (const [runDir, extra] of [[launched, ["--quiet"]], [launchedLong, LONG]] as const) {
      const r = await olmo(["launch", "--nproc-per-node", "2", "--", "train", cfgPath, "--run-dir", runDir, ...extra]);
      if (r.code !== 0) throw new Error(`olmo launch failed: ${r.err}`);
    }
  }, 120_000);

  const rdzvs: [string, () => Rdzv][] = [["standalone", () => ({ kind: "standalone" })], ["c10d", () => ({ kind: "c10d", port: freePort() })]];
  for (const [name, rdzv] of rdzvs) {
    test.skipIf(skip)(`${name} rendezvous: two ranks train through the agent's store, every checkpoint bitwise that of olmo launch${needs}`, async () => {
      const runDir = join(dir, `tr-${name}`);
      const r = await finished(startTorchrun({ rdzv: rdzv(), nproc: 2, args: ["train", cfgPath, "--run-dir", runDir, "--quiet"] }));
      expect({ code: r.code, errors: r.err.split("\n").filter((l) => /error/i.test(l)) }).toEqual({ code: 0, errors: [] });
      expect(r.out).toContain("data parallel × 2 (ZeRO-1)");
      expect(lastPerStep(runDir)).toEqual(lastPerStep(launched));
      expectSameCheckpoints(runDir, launched);
    }, 120_000);
  }

  /** Run the long job under torchrun --max-restarts 1, kill rank 1 with `kill`, and check the restart and the end. */
  async function restartCase(id: string, kill: (p: ReturnType<typeof startTorchrun>, runDir: string) => Promise<{ t0: number; old: Map<number, number> }>, env: Record<string, string> = {}) {
    const runDir = join(dir, id);
    const p = startTorchrun({ rdzv: { kind: "standalone" }, nproc: 2, maxRestarts: 1, args: ["train", cfgPath, "--run-dir", runDir, ...LONG], env });
    const { t0, old } = await kill(p, runDir);
    const restartS = await restartedAfter(p, old, 2, t0);
    const r = await finished(p);
    expect({ code: r.code, tail: r.code === 0 ? "" : r.err.slice(-2000) }).toEqual({ code: 0, tail: "" });
    expect(r.out).toMatch(/resumed from \S+ at step \d+ \(restart 1 of the job\)/);
    expect(lastPerStep(runDir)).toEqual(lastPerStep(launchedLong));
    const [a, b] = [listCheckpoints(runDir).at(-1)!, listCheckpoints(launchedLong).at(-1)!];
    expect(a.name).toBe(b.name);
    const [x, y] = [loadCheckpoint(a.path), loadCheckpoint(b.path)];
    for (const k of ["model", "adamM", "adamV"] as const) expect({ k, same: Buffer.from(x[k]!.buffer).equals(Buffer.from(y[k]!.buffer)) }).toEqual({ k, same: true });
    return { restartS, err: r.err };
  }

  /** SIGKILL rank 1 once `afterSteps` steps are logged (checkpoints every 20 steps). */
  const killAfterSteps = (afterSteps: number) => async (p: ReturnType<typeof startTorchrun>, runDir: string) => {
    const old = await ranksOf(p, runDir, afterSteps, 2);
    const t0 = performance.now();
    process.kill(old.get(1)!, "SIGKILL");
    return { t0, old };
  };

  // without the fix, rank 0 waited in its collective until torchrun's SIGKILL: 30 s of grace (measured 30.4 s)
  const RESTART_BOUND_S = 15;

  test.skipIf(skip)(`--max-restarts 1, rank 1 SIGKILLed after a checkpoint: rank 0 stops at once, torchrun restarts both within seconds, the run ends bitwise equal to olmo launch${needs}`, async () => {
    const { restartS, err } = await restartCase("tr-kill", killAfterSteps(50));
    console.log(`torchrun restart after rank 1 was SIGKILLed: new ranks ${restartS.toFixed(1)} s later (torchrun's grace before SIGKILL: 30 s)`);
    expect(err).toContain("rank 1 (pid"); // rank 0 named its dead peer
    expect(restartS).toBeLessThan(RESTART_BOUND_S);
  }, 180_000);

  test.skipIf(skip)(`--max-restarts 1, rank 1 SIGKILLed during a save: the restart resumes from the last complete checkpoint, bitwise equal to olmo launch${needs}`, async () => {
    let hit = "";
    const { restartS } = await restartCase("tr-midsave", async (p, runDir) => {
      const old = await ranksOf(p, runDir, 30, 2);
      let t0 = 0;
      await new Promise<void>((resolve, reject) => {
        // the moment rank 0 creates a save's temporary folder, kill rank 1; it counts only if the
        // folder is still there afterwards (the save was not published yet). A watch event can
        // arrive after a small save is already published: such a save is let go, and the next one
        // (every 20 steps) is waited for
        const w = watch(runDir, (_ev, name) => {
          if (t0 || !name || !/^stage1-step\d+-tokens1B\.tmp-\d+$/.test(String(name))) return;
          if (!existsSync(join(runDir, String(name)))) return;
          process.kill(old.get(1)!, "SIGKILL");
          t0 = performance.now();
          if (existsSync(join(runDir, String(name)))) hit = String(name);
          w.close();
          resolve();
        });
        p.exited.then(() => reject(new Error("torchrun exited before a save")));
      });
      return { t0, old };
    });
    console.log(`torchrun restart after rank 1 was SIGKILLed during the save into ${hit || "(missed)"}: new ranks ${restartS.toFixed(1)} s later`);
    expect(hit).not.toBe("");
    expect(restartS).toBeLessThan(RESTART_BOUND_S);
  }, 180_000);

  test.skipIf(skip)(`rank 1 SIGKILLed with the peer-exit watch off (OLMO_LAUNCHED=1): torchrun's SIGTERM alone stops rank 0 within seconds, not after the 30 s grace${needs}`, async () => {
    // OLMO_LAUNCHED=1 is what olmo launch sets: a gone peer then ends a wait only with a stop signal,
    // so this isolates the signal path (the JavaScript listener cannot run while rank 0 waits)
    const { restartS, err } = await restartCase("tr-sigterm", killAfterSteps(50), { OLMO_LAUNCHED: "1" });
    console.log(`torchrun restart, SIGTERM path: new ranks ${restartS.toFixed(1)} s after rank 1 was SIGKILLed`);
    expect(err).toContain("(stopping on SIGTERM)");
    expect(err).not.toContain("forcefully exiting via 9");
    expect(restartS).toBeLessThan(RESTART_BOUND_S);
  }, 180_000);
});
