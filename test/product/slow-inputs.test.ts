// Inputs that are slow on purpose, through the CLI: one long pre-token (a 16 KB line of spaces, a
// 30,000-character run of dashes) in `olmo prepare` and in an `olmo eval --task` question. The
// tokenizer's merge is near-linear (src/data/bpe.ts): each command takes about a second, where the
// quadratic merge took ~30 s.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { exportHf } from "../../src/checkpoint/hf/folder.ts";
import { cl100k } from "../../src/data/prepare.ts";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { TINY_MODEL } from "../support/tiny-job.ts";

const root = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "olmo-slow-"));
// far below the ~30 s of the quadratic merge, far above the ~1 s these take on a loaded 2-core machine
const BOUND_MS = 10_000;

function olmo(args: string[]): { code: number; stdout: string; stderr: string; ms: number } {
  const t0 = performance.now();
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "1" } });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString(), ms: performance.now() - t0 };
}

beforeAll(() => ensureNativeBuilt("cpu"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("olmo prepare: a 16 KB line of spaces and a 30,000-dash run tokenize in seconds, and decode back", async () => {
  const docs = [`Hello${" ".repeat(16384)}world\n`, `a ${"-".repeat(30_000)} b`];
  writeFileSync(join(dir, "spaces.txt"), docs[0]);
  writeFileSync(join(dir, "dashes.jsonl"), `${JSON.stringify({ text: docs[1] })}\n`);
  const r = olmo(["prepare", join(dir, "spaces.txt"), join(dir, "dashes.jsonl"), "--out", join(dir, "prepared"), "--txt-documents", "file"]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  expect(r.ms).toBeLessThan(BOUND_MS);
  const b = readFileSync(join(dir, "prepared", "part-00000.npy"));
  const ids = Array.from(new Uint32Array(b.buffer, b.byteOffset, b.length / 4));
  const enc = await cl100k();
  const eos = ids.indexOf(100257);
  expect([enc.decode(ids.slice(0, eos)), enc.decode(ids.slice(eos + 1, -1))]).toEqual(docs);
});

test("olmo eval --task: a question holding a 30,000-dash run is scored in seconds", () => {
  // a vocabulary that holds the pieces of a dash run (cl100k_base ids below 16384)
  const cfg = ModelConfigSchema.parse({ ...TINY_MODEL, vocabSize: 16384 });
  const arena = new Float32Array(totalParams(paramSpecs(cfg)));
  initParams(arena, paramSpecs(cfg), 0.02, 5);
  exportHf(cfg, arena, join(dir, "hf"), { dtype: "f32" });
  writeFileSync(join(dir, "task.jsonl"), `${JSON.stringify({ context: `Q: ${"-".repeat(30_000)}`, choices: [" -", " --"], gold: 0 })}\n`);
  const r = olmo(["eval", "--from", join(dir, "hf"), "--task", join(dir, "task.jsonl"), "--json"]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  expect(r.ms).toBeLessThan(BOUND_MS);
  expect(Object.keys(JSON.parse(r.stdout.trim())).length).toBeGreaterThan(0);
});
