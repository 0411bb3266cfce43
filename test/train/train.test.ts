// The training loop end to end on the CPU: a run interrupted and resumed from its checkpoint gives
// a bitwise-identical loss curve and weights; stage-2 style init from a checkpoint; the CLI's
// bad-input errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBackend, cudaUsable } from "../../src/backend/native-backend.ts";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { validateConfig } from "../../src/config/load.ts";
import type { RunConfigInput } from "../../src/config/schema.ts";
import { openRunData } from "../../src/train/run-data.ts";
import { runTraining } from "../../src/train/run.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { historyRows } from "../support/metrics-rows.ts";
import { tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string;

function config(over: Partial<RunConfigInput> = {}): RunConfigInput {
  return { ...tinyRunConfig("t", join(dir, "tokens.u32"), { train: { steps: 8 }, checkpoint: { saveInterval: 3 } }), ...over };
}

/** the loss of every step in the run's history (metrics.jsonl as its reader sees it) */
function losses(runDir: string): number[] {
  return historyRows(runDir).filter((r) => r.eval === undefined).map((r) => r.loss as number);
}

beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-train-"));
  writeTinyTokens(join(dir, "tokens.u32"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = { log: () => {} };

describe("training runs (cpu)", () => {
  test("interrupted at step 5 and resumed: bitwise-identical loss curve and final weights", async () => {
    const be = createBackend("cpu");
    const cfg = validateConfig(config(), "test");
    const a = join(dir, "a"), b = join(dir, "b");
    await runTraining(be, cfg, a, quiet);
    await runTraining(be, cfg, b, { ...quiet, stopAfterStep: 5 });
    expect(losses(b)).toHaveLength(5);
    await runTraining(be, cfg, b, quiet); // resumes from stage1-step5-...
    expect(losses(b)).toEqual(losses(a));
    const [ca, cb] = [listCheckpoints(a).pop()!, listCheckpoints(b).pop()!];
    expect(ca.name).toBe("stage1-step8-tokens1B");
    const wa = loadCheckpoint(ca.path), wb = loadCheckpoint(cb.path);
    expect(Buffer.from(wb.model.buffer).equals(Buffer.from(wa.model.buffer))).toBe(true);
    expect(Buffer.from(wb.adamV!.buffer).equals(Buffer.from(wa.adamV!.buffer))).toBe(true);
    expect(wa.trainState).toMatchObject({ step: 8, tokensProcessed: 8 * 64 });
    expect(new Set(Object.values(wa.stepCounters!))).toEqual(new Set([8]));
  });

  test("checkpoints every saveInterval steps and at the end, keeping the last K", () => {
    const names = listCheckpoints(join(dir, "a")).map((c) => c.name);
    expect(names).toEqual(["stage1-step3-tokens1B", "stage1-step6-tokens1B", "stage1-step8-tokens1B"]);
  });

  test("stage-2 init: weights and optimizer from a checkpoint, fresh step and data order", async () => {
    const be = createBackend("cpu");
    const from = listCheckpoints(join(dir, "a")).pop()!.path;
    const cfg = validateConfig(config({ name: "s2", stage: 2, ingredient: 1,
      checkpoint: { loadPath: from, loadTrainerState: false, saveInterval: 0, keep: 1 } }), "test");
    const out = join(dir, "s2");
    await runTraining(be, cfg, out, quiet);
    const ck = listCheckpoints(out);
    expect(ck.map((c) => c.name)).toEqual(["stage2-ingredient1-step8-tokens1B"]);
    const s2 = loadCheckpoint(ck[0].path);
    expect(s2.trainState).toMatchObject({ step: 8 });
    expect(new Set(Object.values(s2.stepCounters!))).toEqual(new Set([16])); // the counter is optimizer state: carried over
  });
});

describe("olmo data inspect CONFIG", () => {
  test("shows exactly the instances the trainer reads at step N", async () => {
    const cfgPath = join(dir, "inspect.ts");
    writeFileSync(cfgPath, `export default ${JSON.stringify(config())};\n`);
    const data = await openRunData(validateConfig(config(), "test"), { log: () => {} });
    let batch: Int32Array[] = [];
    for (let s = 1; s <= 3; s++) batch = data.source.nextBatch();
    const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "data", "inspect", cfgPath, "--step", "3", "--tokens", "16", "--json"], { cwd: root });
    expect(p.exitCode).toBe(0);
    const shown = JSON.parse(p.stdout.toString()).instances.map((r: { tokens: number[] }) => r.tokens);
    const read = batch.flatMap((mb) => [Array.from(mb.subarray(0, 16)), Array.from(mb.subarray(16, 32))]);
    expect(shown).toEqual(read);
  });
});

describe("olmo train: bad input", () => {
  function olmo(args: string[]) {
    // the config's backend (cfg-cuda.ts) applies only when OLMO_BACKEND is unset (env > config)
    const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "" } });
    return { code: p.exitCode, stderr: p.stderr.toString() };
  }

  test("each mistake gives a one-line error naming it, exit code 2", () => {
    const cfgPath = join(dir, "cfg.ts");
    writeFileSync(cfgPath, `export default ${JSON.stringify(config())};\n`);
    const cudaCfgPath = join(dir, "cfg-cuda.ts");
    writeFileSync(cudaCfgPath, `export default ${JSON.stringify(config({ backend: "cuda" }))};\n`);
    writeFileSync(join(dir, "big.u32"), Uint32Array.from({ length: 16 * 40 }, () => 300));
    const cases: [string[], RegExp][] = [
      [["train", join(dir, "nope.ts")], /config file not found/],
      [["train", cfgPath, "--optim.lerning_rate=1"], /optim.*lerning_rate/],
      [["train", cfgPath, "--optim.lr=-1"], /optim\.lr/],
      [["train", cfgPath, "--train.microBatchInstances=3"], /train\.microBatchInstances/],
      [["train", cfgPath, "--train.seqLen=128"], /train\.seqLen.*RoPE/],
      [["train", cfgPath, `--data.paths=["${join(dir, "missing.u32")}"]`], /token file not found/],
      [["train", cfgPath, `--data.paths=["${join(dir, "big.u32")}"]`, `--run-dir=${join(dir, "bad")}`], /token id 300 .*vocab size 256/],
      ...(typeof cudaUsable() === "number" ? [] : [[["train", cudaCfgPath], /CUDA backend requested but no GPU is usable/] as [string[], RegExp]]),
      [["train", cfgPath, "--frobnicate"], /unknown option --frobnicate/],
    ];
    for (const [args, pattern] of cases) {
      const r = olmo(args);
      expect({ args: args.slice(2).join(" "), code: r.code }).toEqual({ args: args.slice(2).join(" "), code: 2 });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });
});
