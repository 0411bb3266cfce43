// One trainer per run folder (src/train/run-lock.ts): a second `olmo train` on a folder in use is
// refused in one line naming the holder; the lock of a killed trainer (dead pid, or a pid reused by
// another process) is taken over; a lock from another host is refused naming the host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../../src/errors.ts";
import { LOCK_FILE, acquireRunLock } from "../../src/train/run-lock.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { writeTinyJob } from "../parallel/run-compare.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string, cfgPath: string;

beforeAll(() => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("lock", { tokens: 64 * 5000, train: { steps: 4000, logEvery: 100000 }, checkpoint: { saveInterval: 1, keep: 1 } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const train = (runDir: string, ...extra: string[]) =>
  Bun.spawn([process.execPath, "src/cli/main.ts", "train", cfgPath, `--run-dir=${runDir}`, "--quiet", ...extra], {
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
