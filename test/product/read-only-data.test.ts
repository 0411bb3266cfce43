// `olmo train`, `olmo eval` and `olmo data inspect` on token files the OS refuses to write: a
// read-only bind mount and an immutable (chattr +i) file, how clusters keep their datasets. The
// data is only read, so each must run to the end as on a writable copy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { exportHf } from "../../src/checkpoint/hf/folder.ts";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { makeImmutable, readOnlyBindMount } from "../support/read-only.ts";
import { TINY_MODEL, tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";

const root = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "olmo-ro-cli-"));
const src = join(dir, "data");
mkdirSync(src);
writeTinyTokens(join(src, "tokens.u32"));
writeTinyTokens(join(dir, "immutable.u32"));
const mount = readOnlyBindMount(src, join(dir, "ro"), "tokens.u32");
const locked = makeImmutable(join(dir, "immutable.u32"));
const ro = typeof mount === "string" ? "" : join(mount.path, "tokens.u32");

function olmo(args: string[]): { code: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "1" } });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

beforeAll(() => {
  ensureNativeBuilt("cpu");
  const cfg = ModelConfigSchema.parse(TINY_MODEL);
  const arena = new Float32Array(totalParams(paramSpecs(cfg)));
  initParams(arena, paramSpecs(cfg), 0.02, 3);
  exportHf(cfg, arena, join(dir, "hf"), { dtype: "f32" });
});
afterAll(() => {
  if (typeof mount !== "string") mount.release();
  if (typeof locked !== "string") locked.release();
  rmSync(dir, { recursive: true, force: true });
});

const cases = [
  { what: "a read-only mount", file: () => ro, skip: typeof mount === "string" ? mount : null },
  { what: "an immutable file", file: () => join(dir, "immutable.u32"), skip: typeof locked === "string" ? locked : null },
];

describe("read-only token files are read, never opened for writing", () => {
  for (const c of cases) {
    test.skipIf(c.skip !== null)(`olmo train on ${c.what} trains to the end${c.skip ? ` — skipped: ${c.skip}` : ""}`, () => {
      const id = c.what.replaceAll(" ", "-");
      const cfgPath = join(dir, `${id}.ts`), runDir = join(dir, "runs", id);
      writeFileSync(cfgPath, `export default ${JSON.stringify(tinyRunConfig(id, c.file(), { train: { steps: 2 }, checkpoint: { saveInterval: 0 } }))};\n`);
      const r = olmo(["train", cfgPath, `--run-dir=${runDir}`, "--quiet"]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const steps = readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
      expect(steps).toEqual([1, 2]);
    });

    test.skipIf(c.skip !== null)(`olmo eval --data on ${c.what} gives its loss${c.skip ? ` — skipped: ${c.skip}` : ""}`, () => {
      const r = olmo(["eval", "--from", join(dir, "hf"), "--data", c.file(), "--seq-len", "16", "--json"]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(JSON.parse(r.stdout.trim()).loss).toBeGreaterThan(0);
    });
  }

  test.skipIf(typeof mount === "string")("olmo data inspect on a read-only mount shows its tokens", () => {
    const r = olmo(["data", "inspect", "--data", ro, "--seq-len", "16", "--vocab-size", "256", "--dtype", "uint32", "--global-batch-tokens", "64", "--seed", "7", "--step", "1"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout.length).toBeGreaterThan(0);
  });
});
