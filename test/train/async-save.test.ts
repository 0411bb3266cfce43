// Asynchronous checkpoints (checkpoint.async): the checkpoints are the same bytes of state as
// synchronous saves (1 process and TP=2 × DP=2), the last one is published before the run exits, a
// resume from them is bitwise, and a background write that fails (a full disk) stops the run in one
// line, leaving no checkpoint that looks complete and is not.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { metrics, olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("async"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const every = ["--checkpoint.saveInterval=1", "--checkpoint.keep=10", "--quiet"];
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe("checkpoint.async", () => {
  for (const [name, launch, env] of [["one process", [], {}], ["TP=2 × DP=2", ["launch", "--nproc-per-node", "4", "--"], { OLMO_TP: "2" }]] as const) {
    test(`${name}: every checkpoint equals the synchronous save's (weights, moments, train state, optimizer state, data cursor)`, async () => {
      const s = join(dir, `sync-${name}`), a = join(dir, `async-${name}`);
      const r1 = await olmo([...launch, "train", cfgPath, "--run-dir", s, ...every], env);
      const r2 = await olmo([...launch, "train", cfgPath, "--run-dir", a, ...every, "--checkpoint.async=true"], env);
      expect([r1.err, r2.err]).toEqual(["", ""]);
      const cs = listCheckpoints(s), ca = listCheckpoints(a);
      expect(ca.map((c) => c.name)).toEqual(cs.map((c) => c.name));
      expect(ca.map((c) => c.step)).toEqual([1, 2, 3, 4, 5, 6]); // the last one published before exit
      for (let i = 0; i < cs.length; i++) {
        const x = loadCheckpoint(cs[i].path), y = loadCheckpoint(ca[i].path);
        expect(same(y.model, x.model) && same(y.adamM!, x.adamM!) && same(y.adamV!, x.adamV!)).toBe(true);
        for (const k of ["trainState", "optim", "dataCursor", "layout"] as const) expect(y.meta[k]).toEqual(x.meta[k]);
      }
      expect(readdirSync(a).filter((f) => f.includes(".tmp-"))).toEqual([]);
    }, 60_000);
  }

  test("a resume from an asynchronous checkpoint is bitwise the uninterrupted run", async () => {
    const whole = join(dir, "async-one process"), parts = join(dir, "async-parts");
    const r1 = await olmo(["train", cfgPath, "--run-dir", parts, ...every, "--checkpoint.async=true", "--stop-after", "4"]);
    const r2 = await olmo(["train", cfgPath, "--run-dir", parts, ...every, "--checkpoint.async=true"]);
    expect([r1.err, r2.err]).toEqual(["", ""]);
    expect(metrics(parts).map((m) => m.loss)).toEqual(metrics(whole).map((m) => m.loss));
    expect(same(loadCheckpoint(listCheckpoints(parts).at(-1)!.path).model, loadCheckpoint(listCheckpoints(whole).at(-1)!.path).model)).toBe(true);
  }, 60_000);

  test("a background write that fails (a full disk) stops the run in one line; no incomplete checkpoint looks complete", async () => {
    // a 200 KiB tmpfs: the tiny job's checkpoint is ~120 KB, so the second save runs out of space
    const mnt = join(dir, "small-disk");
    mkdirSync(mnt, { recursive: true });
    const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", mnt]);
    if (m.exitCode !== 0) {
      console.log(`skipped: cannot mount a small tmpfs here (${m.stderr.toString().trim()})`);
      return;
    }
    try {
      const runDir = join(mnt, "run");
      const r = await olmo(["train", cfgPath, "--run-dir", runDir, ...every, "--checkpoint.async=true"]);
      expect(r.code).toBe(2);
      const lines = r.err.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^olmo: error: the checkpoint of step \d+ failed while it was written in the background: .*(ENOSPC|no space)/i);
      // every checkpoint that looks complete loads
      const ck = listCheckpoints(runDir);
      for (const c of ck) expect(loadCheckpoint(c.path).model.length).toBeGreaterThan(0);
      expect(ck.length).toBeGreaterThanOrEqual(1);
      expect(readdirSync(runDir).filter((f) => f.includes(".tmp-"))).toEqual([]); // the failed save cleaned up
      expect(existsSync(join(runDir, "metrics.jsonl"))).toBe(true);
    } finally {
      Bun.spawnSync(["umount", mnt]);
    }
  }, 60_000);
});
