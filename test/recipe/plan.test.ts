// `olmo plan` of the shipped recipe: the checkpoint names and step counts of the OLMo-2 32B release,
// the stage-2 LR continuing the stage-1 schedule, memory/time arithmetic, and bad inputs.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { validateConfig } from "../../src/config/load.ts";
import { Olmo2 } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { cosineWithWarmup } from "../../src/optim/schedule.ts";
import { activationBytes, planRun } from "../../src/train/plan.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const root = resolve(import.meta.dir, "../..");

function olmo(args: string[]) {
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu" } });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

function planJson(config: string, extra: string[] = []) {
  const r = olmo(["plan", config, "--json", ...extra]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

const stage1Lr721901 = cosineWithWarmup(721901, 6e-4, 2000, 774861, 0.1);

describe("olmo plan of the shipped recipe", () => {
  test("final checkpoint names and step counts match the OLMo-2 32B release", () => {
    // stage 2 also saves ephemerally every 500 steps, as the anneal script did: the release's step11500 / step35500
    const expected: [string, string, number, number, number][] = [
      ["configs/stage1.ts", "stage1-step721901-tokens6056B", 721901, 722, 1000],
      ["configs/stage2-ingredient1.ts", "stage2-ingredient1-step11921-tokens101B", 11921, 24, 500],
      ["configs/stage2-ingredient2.ts", "stage2-ingredient2-step11921-tokens101B", 11921, 24, 500],
      ["configs/stage2-ingredient3.ts", "stage2-ingredient3-step35763-tokens301B", 35763, 72, 500],
    ];
    for (const [config, name, steps, nCkpt, first] of expected) {
      const p = planJson(config);
      expect({ config, final: p.final_checkpoint, steps: p.steps }).toEqual({ config, final: name, steps });
      expect(p.global_batch_tokens).toBe(2048 * 4096);
      expect(p.params).toBe(32_234_279_936); // OLMo-2-0325-32B
      expect(p.params_no_embedding).toBe(31_720_477_696);
      // every saveInterval (1000), every ephemeralInterval and the last step; --json lists them all
      expect(p.checkpoints).toHaveLength(nCkpt);
      expect(p.checkpoints.at(-1)).toMatchObject({ step: steps, name });
      expect(p.checkpoints[0].step).toBe(first);
      expect(p.checkpoints.at(-2).step).toBe(Math.floor((steps - 1) / first) * first);
      for (const k of ["flops_per_token", "lr_start", "lr_end", "est_hours"]) expect(Number.isFinite(p[k])).toBe(true);
      for (const k of ["weights", "grads", "optimizer", "activations", "total"]) expect(p.memory_per_gpu_bytes[k]).toBeGreaterThan(0);
    }
  });

  test("stage 2 starts at the stage-1 schedule's LR at step 721,901 and decays linearly to 0", () => {
    expect(stage1Lr721901.toPrecision(5)).toBe("0.000066232");
    const s1 = planJson("configs/stage1.ts");
    expect(s1.lr_end).toBe(stage1Lr721901);
    expect(s1.lr_first_step).toBeCloseTo(3e-7, 15); // 6e-4 · 1/2000: OLMo's first update is step 1
    for (const k of [1, 2, 3]) {
      const p = planJson(`configs/stage2-ingredient${k}.ts`);
      expect(p.lr_start).toBe(stage1Lr721901);
      expect(p.lr_first_step).toBeCloseTo(stage1Lr721901 * (1 - 1 / p.steps), 18);
      expect(p.lr_end).toBe(0);
      expect(p.init_from).toMatch(/stage1\/stage1-step721901-tokens6056B$/);
    }
  });

  test("FLOPs, time and memory follow from the layout", () => {
    const p = planJson("configs/stage1.ts", ["--gpus", "1024", "--tp", "8", "--mfu", "0.5"]);
    // PaLM: 6·N_matmul + 12·L·d·T, N_matmul = params without the input embedding or the norm weights
    const norms = 64 * (5120 + 1024 + 5120 + 5120) + 5120;
    expect(p.flops_per_token).toBe(6 * (31_720_477_696 - norms) + 12 * 64 * 5120 * 4096);
    expect(p.est_hours).toBeCloseTo((p.flops_per_token * 721901 * 8388608) / (1024 * 989.4e12 * 0.5) / 3600, 6);
    expect(p.layout).toMatchObject({ gpus: 1024, tp: 8, dp: 128, grad_accum: 8 });
    const m = p.memory_per_gpu_bytes;
    // Adam m, v: fp32, split over tp·dp (ZeRO-1); grads fp32 split over tp only
    expect(m.optimizer).toBeCloseTo(m.grads * 2 / 128, 0);
    expect(m.total).toBe(m.weights + m.grads + m.optimizer + m.activations);
    expect(p.fits_h100_80gb).toBe(true);
    expect(planJson("configs/stage1.ts", ["--gpus", "8"]).fits_h100_80gb).toBe(false);
  });

  test("the activation estimate matches the arenas the model really allocates", () => {
    ensureNativeBuilt("cpu");
    const be = createBackend("cpu");
    const cfg = validateConfig({
      name: "a", model: { dModel: 64, nLayers: 3, nHeads: 8, nKvHeads: 2, ffnHidden: 96, vocabSize: 1000, maxSeqLen: 64 },
      data: { paths: ["x"] }, train: { seqLen: 64, globalBatchInstances: 4, microBatchInstances: 2, steps: 1 },
      optim: { lr: 1e-3, schedule: { kind: "constant" } },
    }, "test");
    const store = new ParamStore(be, cfg.model);
    const model = new Olmo2(store, cfg.model, 2, 64, { training: true });
    try {
      const est = activationBytes(cfg, 1, be.actBytes, 256 << 20);
      // the arenas round each buffer up to their alignment; the estimate does not
      expect(Math.abs(est - model.activationBytes) / model.activationBytes).toBeLessThan(0.02);
    } finally {
      model.free();
      store.free();
    }
  });

  test("the text form names the final checkpoint and elides long checkpoint lists", () => {
    const r = olmo(["plan", "configs/stage1.ts", "--gpus", "1024", "--tp", "8"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("final checkpoint    stage1-step721901-tokens6056B");
    expect(r.stdout).toContain("… 714 more …");
    expect(r.stdout.split("\n").length).toBeLessThan(30);
  });

  test("plan of configs/soup.ts lists the three final checkpoints it averages", () => {
    const p = planJson("configs/soup.ts");
    expect(p.kind).toBe("soup");
    expect(p.inputs.map((x: { path: string }) => x.path.split("/").pop())).toEqual([
      "stage2-ingredient1-step11921-tokens101B", "stage2-ingredient2-step11921-tokens101B", "stage2-ingredient3-step35763-tokens301B",
    ]);
    expect(p.inputs.map((x: { weight: number }) => x.weight)).toEqual([1 / 3, 1 / 3, 1 / 3]);
  });

  test("planRun works on any validated config (the tiny default run)", async () => {
    const { loadConfig } = await import("../../src/config/load.ts");
    const p = planRun(await loadConfig(resolve(root, "configs/tiny.ts")));
    expect(p.final_checkpoint).toBe("stage1-step400-tokens1B");
    expect(p.checkpoints.map((c) => c.step)).toEqual([200, 400]);
  });
});

describe("olmo plan: bad input", () => {
  test("each mistake is one line on stderr and exit code 2", () => {
    const cases: [string[], RegExp][] = [
      [["plan", "configs/nope.ts"], /config file not found/],
      [["plan"], /plan takes one CONFIG/],
      [["plan", "configs/stage1.ts", "--tp", "3"], /--tp 3 does not divide model\.nHeads \(40\)/],
      [["plan", "configs/stage1.ts", "--tp", "10"], /--tp 10 does not divide model\.nKvHeads \(8\)/],
      [["plan", "configs/stage1.ts", "--gpus", "12", "--tp", "8"], /--tp 8 does not divide --gpus 12/],
      [["plan", "configs/stage1.ts", "--gpus", "16", "--dp", "4"], /--gpus 16 is not --tp 1 × --dp 4/],
      [["plan", "configs/stage1.ts", "--dp", "3"], /not divisible by microBatchInstances × dp = 2 × 3/],
      [["plan", "configs/stage1.ts", "--mfu", "1.5"], /--mfu must be in \(0, 1\]/],
      [["plan", "configs/stage1.ts", "--gpus", "0"], /--gpus must be a positive integer/],
      [["plan", "configs/stage1.ts", "--optim.lr=-1"], /optim\.lr/],
    ];
    for (const [args, pattern] of cases) {
      const r = olmo(args);
      expect({ args: args.join(" "), code: r.code }).toEqual({ args: args.join(" "), code: 2 });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });
});
