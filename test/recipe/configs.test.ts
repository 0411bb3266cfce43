// The shipped configs: every run config validates, the model presets have the released shapes and
// parameter counts, the mix lists are OLMo-core's, stage 2 composes over stage 1, and the soup
// names the ingredients' final checkpoints.
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { totalSteps } from "../../src/config/schema.ts";
import { DOLMA2_EOS_ID } from "../../src/data/index.ts";
import { parseMix } from "../../src/data/mix.ts";
import { openEvalSets } from "../../src/train/in-loop-eval.ts";
import { type ModelConfigInput, ModelConfigSchema, presets } from "../../src/model/config.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { cosineWithWarmup } from "../../src/optim/schedule.ts";

const configs = resolve(import.meta.dir, "../../configs");

describe("configs/", () => {
  test("every module whose default export is a run config validates with loadConfig", async () => {
    const runnable: string[] = [];
    for (const f of readdirSync(configs).filter((f) => f.endsWith(".ts")).sort()) {
      const mod = await import(join(configs, f));
      if (!mod.default || !("model" in mod.default)) continue; // models.ts, paths.ts, stage2-base.ts, soup.ts
      await loadConfig(join(configs, f)); // throws a UserError naming the field if invalid
      runnable.push(f);
    }
    expect(runnable).toEqual(["stage1.ts", "stage2-ingredient1.ts", "stage2-ingredient2.ts", "stage2-ingredient3.ts", "tiny.ts"]);
  });

  test("model presets: the released shapes, the spec's parameter counts, same as src/model presets", async () => {
    const { models } = await import(join(configs, "models.ts"));
    const counts: Record<string, number> = {
      "olmo2-1b": 1_484_916_736, "olmo2-7b": 7_298_617_344, "olmo2-13b": 13_716_198_400, "olmo2-32b": 32_234_279_936,
    };
    for (const [name, m] of Object.entries(models as Record<string, ModelConfigInput>)) {
      const cfg = ModelConfigSchema.parse(m);
      expect({ name, params: totalParams(paramSpecs(cfg)) }).toEqual({ name, params: counts[name] });
      expect(cfg).toMatchObject(presets[name as keyof typeof presets]);
      expect(cfg.maxSeqLen).toBe(4096);
      expect(Math.ceil(cfg.vocabSize / cfg.vocabPadMultiple) * cfg.vocabPadMultiple).toBe(100352);
    }
  });

  test("stage 1 and the three ingredients encode the recipe", async () => {
    const s1 = await loadConfig(join(configs, "stage1.ts"));
    expect(s1.optim).toMatchObject({ lr: 6e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, zLossMult: 1e-5, stepIncrementBug: false, skipSteps: true, skipStepWindow: 128, skipStepSigmas: 6, skipStepLoss: "ce+z" });
    expect(s1.optim.schedule).toEqual({ kind: "cosine", warmupSteps: 2000, alpha: 0.1, tMaxSteps: 774861 });
    expect(s1.data).toMatchObject({ seed: 34521, maxTargetSeqLen: 8192 });
    expect(s1.train).toMatchObject({ seqLen: 4096, globalBatchInstances: 2048, steps: 721901 });
    const lr2 = cosineWithWarmup(721901, 6e-4, 2000, 774861, 0.1);
    const want = [[1110, "dolmino100", 100e9, 11921], [2662, "dolmino100", 100e9, 11921], [2662, "dolmino300", 300e9, 35763]] as const;
    for (const [i, [seed, mix, budget, steps]] of want.entries()) {
      const c = await loadConfig(join(configs, `stage2-ingredient${i + 1}.ts`));
      expect(c).toMatchObject({ stage: 2, ingredient: i + 1, data: { seed }, train: { budgetTokens: budget, seqLen: 4096, globalBatchInstances: 2048 } });
      expect(c.data.mixFile).toEndWith(`mixes/${mix}.txt`);
      expect(c.data.maxTargetSeqLen).toBeUndefined();
      expect(totalSteps(c)).toBe(steps);
      expect(c.optim.lr).toBe(lr2);
      expect(c.optim.schedule).toMatchObject({ kind: "linear", warmupSteps: 0, alpha: 0 });
      expect(c.checkpoint).toMatchObject({ loadTrainerState: false, saveInterval: 1000, ephemeralInterval: 500 });
      // SkipStepAdamW before the counter fix: the counter loaded with stage 1's state stays frozen
      expect(c.optim).toMatchObject({ stepIncrementBug: true, skipSteps: true, skipStepWindow: 128, skipStepSigmas: 6, skipStepLoss: "ce+z" });
      expect(c.checkpoint.loadPath).toEndWith("/stage1/stage1-step721901-tokens6056B");
      expect(c.runDir).not.toBe(s1.runDir); // its own folder: resume/pruning never touch stage 1
    }
  });

  test("data and checkpoint roots come from OLMO_DATA_ROOT / OLMO_CKPT_ROOT", () => {
    const script = `import c from "./configs/stage2-ingredient1.ts"; console.log(JSON.stringify([c.data.baseDir, c.runDir, c.checkpoint.loadPath]))`;
    const p = Bun.spawnSync([process.execPath, "-e", script], { cwd: resolve(configs, ".."), env: { ...process.env, OLMO_DATA_ROOT: "/mnt/d", OLMO_CKPT_ROOT: "/mnt/c" } });
    expect(JSON.parse(p.stdout.toString())).toEqual(["/mnt/d", "/mnt/c/stage2-ingredient1", "/mnt/c/stage1/stage1-step721901-tokens6056B"]);
  });

  test("mix files: OLMo-core's lists, parsed by the data loader's parser", () => {
    for (const [name, files] of [["OLMoE-mix-0824", 1122], ["dolmino100", 1253], ["dolmino300", 2476]] as const) {
      const text = readFileSync(join(configs, "mixes", `${name}.txt`), "utf8");
      expect(text.split("\n")[0]).toContain("allenai/OLMo-core");
      const entries = parseMix(text, { baseDir: "/data", source: name });
      expect({ name, files: entries.length }).toEqual({ name, files });
      for (const e of entries) expect(e.path).toMatch(/^\/data\/preprocessed\/[^{}]*\.npy$/); // {TOKENIZER} substituted
    }
  });

  test("stage 1 and the ingredients evaluate OLMo-core's 11 v3-small validation sets every 1000 steps, laid out as OLMo-core's data root", async () => {
    const labels = ["c4_en", "dolma_books", "dolma_common-crawl", "dolma_pes2o", "dolma_reddit", "dolma_stack", "dolma_wiki", "ice", "m2d2_s2orc", "pile", "wikitext_103"];
    for (const f of ["stage1.ts", "stage2-ingredient1.ts", "stage2-ingredient2.ts", "stage2-ingredient3.ts"]) {
      const c = await loadConfig(join(configs, f));
      expect(c.eval).toMatchObject({ everySteps: 1000, atEnd: true, tasks: [] });
      expect(c.eval.sets).toHaveLength(1);
      expect(c.eval.sets[0]).toMatchObject({ tokenizer: "dolma2-tokenizer", instances: "documents", baseDir: c.data.baseDir });
      // a data root holding the 11 files: one set per label, one-document instances at the training length
      const rootDir = mkdtempSync(join(tmpdir(), "olmo-v3small-"));
      for (const l of labels) {
        const d = join(rootDir, "eval-data/perplexity/v3_small_dolma2-tokenizer", l, "val");
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, "part-0-00000.npy"), Uint32Array.from([10, 11, 12, DOLMA2_EOS_ID, 13, DOLMA2_EOS_ID]));
      }
      const sets = await openEvalSets({ ...c, eval: { ...c.eval, sets: [{ ...c.eval.sets[0], baseDir: rootDir }] } }, () => {});
      expect(sets.map((s) => s.name)).toEqual(labels.map((l) => `${l}-validation`));
      expect(sets.map((s) => [s.instances.count, s.instances.seqLen, s.instances.labelTokens])).toEqual(labels.map(() => [2, 4096, 4]));
      rmSync(rootDir, { recursive: true, force: true });
    }
  });

  test("soup.ts averages the three ingredients' final checkpoints uniformly", async () => {
    const soup = (await import(join(configs, "soup.ts"))).default;
    expect(soup.inputs.map((p: string) => p.split("/").slice(-2).join("/"))).toEqual([
      "stage2-ingredient1/stage2-ingredient1-step11921-tokens101B",
      "stage2-ingredient2/stage2-ingredient2-step11921-tokens101B",
      "stage2-ingredient3/stage2-ingredient3-step35763-tokens301B",
    ]);
    expect(soup.weights).toBeUndefined();
    expect(soup.format).toBe("hf");
  });
});

test("OLMO_STAGE1_CKPT points stage 2 at another stage-1 checkpoint (the released OLMo-core step folder)", () => {
  const script = `import c from "./configs/stage2-ingredient3.ts"; console.log(c.checkpoint.loadPath)`;
  const p = Bun.spawnSync([process.execPath, "-e", script], { cwd: resolve(configs, ".."), env: { ...process.env, OLMO_STAGE1_CKPT: "/mnt/peteish32/step721901" } });
  expect(p.stdout.toString().trim()).toBe("/mnt/peteish32/step721901");
});
