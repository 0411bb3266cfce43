// One trainer per run folder (src/train/run-lock.ts): a second `olmo train` on a folder in use is
// refused in one line naming the holder; the lock of a killed trainer (dead pid, or a pid reused by
// another process) is taken over; a lock from another host is refused naming the host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../../src/errors.ts";
import { LOCK_FILE, acquireRunLock } from "../../src/train/run-lock.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string;

beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-lock-"));
  writeFileSync(join(dir, "tokens.u32"), Uint32Array.from({ length: 64 * 5000 }, (_, i) => (i * 7 + (i >> 3)) % 250));
  writeFileSync(join(dir, "cfg.ts"), `export default ${JSON.stringify({
    name: "lock",
    model: { dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 32, vocabSize: 256, maxSeqLen: 64 },
    data: { paths: [join(dir, "tokens.u32")], seed: 7 },
    train: { seqLen: 16, globalBatchInstances: 4, microBatchInstances: 2, steps: 4000, logEvery: 100000 },
    optim: { lr: 1e-2, schedule: { kind: "cosine", warmupSteps: 2, alpha: 0.1 } },
    checkpoint: { saveInterval: 1, keep: 1 },
    backend: "cpu",
  })};\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const train = (runDir: string, ...extra: string[]) =>
  Bun.spawn([process.execPath, "src/cli/main.ts", "train", join(dir, "cfg.ts"), `--run-dir=${runDir}`, "--quiet", ...extra], {
    cwd: root, env: { ...process.env, OLMO_THREADS: "1", OLMO_BACKEND: "cpu" }, stdout: "pipe", stderr: "pipe",
  });

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
  throw new Error("no error");
}

test("a second olmo train on a folder in use is refused in one line; a killed trainer's lock is taken over", async () => {
  const runDir = join(dir, "run");
  const first = train(runDir);
  const lock = join(runDir, LOCK_FILE);
  while (!existsSync(join(runDir, "metrics.jsonl"))) await Bun.sleep(20);
  expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: first.pid, host: hostname() });
  const second = train(runDir);
  const [code, err] = [await second.exited, (await new Response(second.stderr).text()).trim().split("\n")];
  expect({ code, lines: err.length }).toEqual({ code: 2, lines: 1 });
  expect(err[0]).toMatch(new RegExp(`^olmo: error: run folder .*run is in use by another olmo train \\(pid ${first.pid}, since .*\\): two trainers would log every step twice`));
  first.kill("SIGKILL");
  await first.exited;
  expect(existsSync(lock)).toBe(true); // kill -9 leaves it
  // the next trainer takes the dead one's lock over and trains on
  const lines = () => readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").length;
  const before = lines();
  const next = train(runDir);
  while (!readFileSync(lock, "utf8").includes(`"pid":${next.pid},`) || lines() <= before) {
    expect(next.exitCode).toBeNull();
    await Bun.sleep(20);
  }
  next.kill("SIGKILL");
  await next.exited;
}, 60_000);

test("in-process: held locks refuse, stale ones (dead or reused pid) are taken over, other hosts are refused, release removes it", () => {
  const runDir = join(dir, "unit");
  const l = acquireRunLock(runDir);
  expect(userError(() => acquireRunLock(runDir))).toMatch(/is in use by another olmo train \(pid \d+/);
  l.release();
  expect(existsSync(runDir)).toBe(false); // created by the lock, left empty: removed
  mkdirSync(runDir);
  const path = join(runDir, LOCK_FILE);
  // dead pid
  writeFileSync(path, JSON.stringify({ pid: 999999999, host: hostname(), pidStart: null, since: "then" }));
  acquireRunLock(runDir).release();
  expect(existsSync(path)).toBe(false);
  // a live pid (ours) that started at another time: the holder's pid was reused
  writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), pidStart: "1", since: "then" }));
  const l2 = acquireRunLock(runDir);
  expect(JSON.parse(readFileSync(path, "utf8")).pidStart).not.toBe("1");
  l2.release();
  // another host: cannot be checked from here
  writeFileSync(path, JSON.stringify({ pid: 999999999, host: "node-17", pidStart: null, since: "yesterday" }));
  expect(userError(() => acquireRunLock(runDir))).toBe(`run folder ${runDir} is locked by olmo train pid 999999999 on host node-17 (since yesterday): one trainer per run folder; if that run is gone, remove ${path}`);
  // an unreadable lock (no holder named) counts as stale
  writeFileSync(path, "{garbage");
  acquireRunLock(runDir).release();
  expect(existsSync(runDir)).toBe(true); // existed before: kept
});
