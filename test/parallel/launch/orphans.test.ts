// Ranks die with their launcher: `kill -9` of `olmo launch` (which runs no cleanup) stops its ranks
// within a few seconds, even while their main threads are busy (src/parallel/launch/launcher-watch.ts).
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";

import { writeTinyJob } from "../run-compare.ts";

const root = join(import.meta.dir, "../../..");
const cli = join(root, "src/cli/main.ts");
const rankScript = join(import.meta.dir, "../fixtures/rank.ts");

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Start the launcher, wait for `readyLines` lines matching `ready`, kill -9 it; returns how long its `ranks` took to die. */
async function launchAndKill(args: string[], ready: RegExp, readyLines: number, ranks: number, env: Record<string, string> = {}): Promise<number> {
  const p = Bun.spawn([process.execPath, cli, "launch", ...args], { cwd: root, env: { ...process.env, OLMO_THREADS: "1", ...env }, stdout: "pipe", stderr: "pipe" });
  const reader = p.stdout.getReader();
  let seen = "";
  while ((seen.match(new RegExp(ready, "g")) ?? []).length < readyLines) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`launcher ended before its ranks were ready: ${seen} ${await new Response(p.stderr).text()}`);
    seen += new TextDecoder().decode(value);
  }
  const children = Bun.spawnSync(["pgrep", "-P", String(p.pid)]).stdout.toString().trim().split("\n").map(Number);
  expect(children).toHaveLength(ranks);
  p.kill("SIGKILL");
  await p.exited;
  const t0 = performance.now();
  while (children.some(alive) && performance.now() - t0 < 15_000) await Bun.sleep(50);
  const survivors = children.filter(alive);
  for (const c of survivors) process.kill(c, "SIGKILL");
  expect(survivors).toEqual([]);
  const ms = performance.now() - t0;
  console.log(`orphans: ${ranks} ranks gone ${ms.toFixed(0)} ms after kill -9 of their launcher`);
  return ms;
}

test("kill -9 of olmo launch stops ranks whose main thread never yields", async () => {
  const ms = await launchAndKill(["--nproc-per-node", "2", "--exec", "--", process.execPath, rankScript, "spin"], /spinning \d+/, 2, 2);
  expect(ms).toBeLessThan(3000);
}, 30_000);

test("kill -9 of olmo launch stops its training ranks", async () => {
  const { dir, cfgPath } = writeTinyJob("orphans", { tokens: 64 * 20000, train: { steps: 19000, logEvery: 1 }, checkpoint: { saveInterval: 0, keep: 3 } });
  try {
    // rank 0 logs the steps; rank 1 is ready when rank 0 is (they step together)
    const ms = await launchAndKill(["--nproc-per-node", "2", "--", "train", cfgPath, `--run-dir=${join(dir, "run")}`], /\[rank 0\] step +\d+\/19000/, 3, 2);
    expect(ms).toBeLessThan(8000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
