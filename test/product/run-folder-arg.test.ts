// Every command that takes a checkpoint takes a run folder too, and uses (and names) its newest
// complete checkpoint — never reading the run folder's config.json as an HF model. The same for an
// OLMo-core save folder (its newest complete stepN/) and for checkpoint.loadPath.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveCheckpointArg } from "../../src/checkpoint/locate.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { olmo, writeTinyJob } from "../parallel/run-compare.ts";

let dir: string, cfgPath: string, run: string, newest: string;
const env = { OLMO_BACKEND: "cpu" };

beforeAll(async () => {
  ensureNativeBuilt("cpu");
  ({ dir, cfgPath } = writeTinyJob("run-arg"));
  run = join(dir, "runs", "a");
  const r = await olmo(["train", cfgPath, `--run-dir=${run}`, "--quiet"], env); // saves step 4 and step 6
  if (r.code !== 0) throw new Error(r.err);
  newest = join(run, "stage1-step6-tokens1B");
  // debris of a later save that never finished must not be taken for the newest
  mkdirSync(join(run, "stage1-step8-tokens1B.tmp-999999"));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const usingLine = (path: string, folder: string) => `using ${path}, the newest complete checkpoint of ${folder}`;

describe("a run folder where a checkpoint is expected", () => {
  test("the resolver: a checkpoint is itself, a run folder its newest complete checkpoint", () => {
    expect(resolveCheckpointArg(newest)).toEqual({ path: newest, note: null });
    expect(resolveCheckpointArg(run)).toEqual({ path: newest, note: usingLine(newest, run) });
    expect(resolveCheckpointArg(join(dir, "nowhere"))).toEqual({ path: join(dir, "nowhere"), note: null });
  });

  test("ckpt info, generate and eval use the newest checkpoint and say so on stderr", async () => {
    const [info, gen, evalRun, evalCkpt] = await Promise.all([
      olmo(["ckpt", "info", run, "--quick"], env),
      olmo(["generate", run, "--prompt", "a", "--max-tokens", "3", "--temperature", "0"], env),
      olmo(["eval", "--from", run, "--data", join(dir, "tokens.u32"), "--seq-len", "16", "--json"], env),
      olmo(["eval", "--from", newest, "--data", join(dir, "tokens.u32"), "--seq-len", "16", "--json"], env),
    ]);
    expect(info.code).toBe(0);
    expect(info.out).toMatch(/^name\s+stage1-step6-tokens1B$/m);
    expect(info.err).toContain(usingLine(newest, run));
    expect(gen.code).toBe(0);
    expect(gen.err).toContain(usingLine(newest, run));
    expect(evalRun.code).toBe(0);
    expect(evalRun.err).toContain(usingLine(newest, run));
    const numbers = (out: string) => {
      const { ms: _ms, tokens_per_s: _tps, ...rest } = JSON.parse(out.trim().split("\n").at(-1)!);
      return rest;
    };
    expect(numbers(evalRun.out)).toEqual(numbers(evalCkpt.out)); // the same numbers as the checkpoint itself
  }, 120_000);

  test("export-hf, export-olmo-core and soup take it too", async () => {
    const [hf, oc, soup] = await Promise.all([
      olmo(["export-hf", run, "--out", join(dir, "hf"), "--dtype", "fp32"], env),
      olmo(["export-olmo-core", run, "--out", join(dir, "oc", "step6")], env),
      olmo(["soup", run, newest, "--out", join(dir, "soup"), "--format", "native"], env),
    ]);
    for (const r of [hf, oc, soup]) {
      expect(r.code).toBe(0);
      expect(r.err).toContain(usingLine(newest, run));
    }
    expect(hf.out).toContain(`exported ${newest} -> `);
    const meta = await olmo(["ckpt", "info", join(dir, "soup"), "--quick"], env);
    expect(meta.code).toBe(0);
  }, 120_000);

  test("an OLMo-core save folder means its newest complete stepN/", async () => {
    const save = join(dir, "oc-save");
    mkdirSync(save);
    const exported = await olmo(["export-olmo-core", join(run, "stage1-step4-tokens1B"), "--out", join(save, "step4")], env);
    expect(exported.code).toBe(0);
    cpSync(join(dir, "oc", "step6"), join(save, "step6"), { recursive: true });
    mkdirSync(join(save, "step8", "model_and_optim"), { recursive: true }); // a save cut off before its .metadata
    const info = await olmo(["ckpt", "info", save, "--quick"], env);
    expect(info.code).toBe(0);
    expect(info.err).toContain(`using ${join(save, "step6")}, the newest complete OLMo-core checkpoint of ${save}`);
  }, 120_000);

  test("checkpoint.loadPath may be a run folder (a stage 2 started from stage 1's folder)", async () => {
    const r = await olmo(["train", cfgPath, `--run-dir=${join(dir, "runs", "b")}`, `--checkpoint.loadPath=${run}`,
      "--checkpoint.loadTrainerState=false", "--train.steps=1"], env);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`checkpoint.loadPath: ${usingLine(newest, run)}`);
    expect(r.out).toContain(`initialized from ${newest} (weights and optimizer state; fresh step, data order and LR)`);
  }, 120_000);

  test("a run folder without a complete checkpoint is refused in one line", async () => {
    const empty = join(dir, "runs", "empty");
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, "config.json"), readFileSync(join(run, "config.json")));
    const r = await olmo(["generate", empty, "--prompt", "a"], env);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe(`olmo: error: "${empty}" is a run folder without a complete checkpoint (no stage…-step…-tokens…B folder with metadata.msgpack); train until its first save, or give a checkpoint`);
  });
});
