// Backend and thread count: command line > environment > config > default (src/cli/runtime.ts),
// each value validated, and the run's first line says which it uses and where that came from.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError } from "../../src/errors.ts";
import { resolveRuntime } from "../../src/cli/runtime.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { writeTinyJob } from "../parallel/run-compare.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string, cfgPath: string;

beforeAll(() => {
  ensureNativeBuilt("cpu");
  // backend cuda: the environment's OLMO_BACKEND=cpu must win over it
  ({ dir, cfgPath } = writeTinyJob("rt", { train: { steps: 2 }, checkpoint: { saveInterval: 0, keep: 3 }, optim: { schedule: { kind: "cosine", warmupSteps: 1, alpha: 0.1 } }, top: { backend: "cuda", threads: 3 } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("precedence: command line > environment > config > default", () => {
  const config = { backend: "cuda" as const, threads: 3 };
  expect(resolveRuntime({ env: {} })).toEqual({ backend: "auto", threads: undefined, backendFrom: "default", threadsFrom: "default" });
  expect(resolveRuntime({ config, env: {} })).toMatchObject({ backend: "cuda", threads: 3, backendFrom: "config", threadsFrom: "config" });
  expect(resolveRuntime({ config, env: { OLMO_BACKEND: "cpu", OLMO_THREADS: "2" } })).toMatchObject({ backend: "cpu", threads: 2, backendFrom: "OLMO_BACKEND", threadsFrom: "OLMO_THREADS" });
  expect(resolveRuntime({ cli: { backend: "auto", threads: 5 }, config, env: { OLMO_BACKEND: "cpu", OLMO_THREADS: "2" } })).toMatchObject({ backend: "auto", threads: 5, backendFrom: "--backend", threadsFrom: "--threads" });
  expect(resolveRuntime({ config, env: { OLMO_BACKEND: "", OLMO_THREADS: "" } })).toMatchObject({ backend: "cuda", threads: 3 }); // empty = unset
  for (const [env, msg] of [
    [{ OLMO_BACKEND: "bogus" }, "OLMO_BACKEND=bogus is not one of cpu, cuda, auto"],
    ...["abc", "0", "-3", "1.7", "1e3", " "].map((v) => [{ OLMO_THREADS: v }, `OLMO_THREADS=${v} must be a whole number of CPU threads from 1 to 4096`]),
  ] as [Record<string, string>, string][]) {
    expect(() => resolveRuntime({ env })).toThrow(new UserError(msg));
  }
});

test("olmo train uses OLMO_BACKEND over the config's backend, --threads over OLMO_THREADS, and says so", () => {
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "train", cfgPath, `--run-dir=${join(dir, "run")}`, "--quiet", "--threads=1"], {
    cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "2" }, stdout: "pipe", stderr: "pipe",
  });
  expect(p.stderr.toString()).not.toContain("error");
  expect(p.exitCode).toBe(0);
  expect(p.stdout.toString()).toMatch(/backend cpu \(cpu \((oneDNN|OpenBLAS), 1 threads\); backend cpu from OLMO_BACKEND, threads 1 from --threads\)/);
});
