// `olmo plan` accounts activation memory per recompute mode (train.recompute): the estimate is the
// exact byte count of the arenas Olmo2 allocates for that mode (with and without TP), the plan
// lists every mode, and the memory total follows the config's choice.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import type { Backend } from "../../src/backend/backend.ts";
import { createBackend } from "../../src/backend/native-backend.ts";
import { validateConfig } from "../../src/config/load.ts";
import type { RunConfig } from "../../src/config/schema.ts";
import { Olmo2, ceBudgetBytes } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { ShardingMap } from "../../src/model/sharding.ts";
import type { PtrComm } from "../../src/parallel/comm/comm.ts";
import { activationBytes, planRun } from "../../src/train/plan.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import type { RecomputeMode } from "../../src/model/config.ts";

const root = resolve(import.meta.dir, "../..");
const cfg: RunConfig = validateConfig({
  name: "a", model: { dModel: 64, nLayers: 3, nHeads: 8, nKvHeads: 2, ffnHidden: 96, vocabSize: 1000, maxSeqLen: 64 },
  data: { paths: ["x"] }, train: { seqLen: 64, globalBatchInstances: 4, microBatchInstances: 2, steps: 1 },
  optim: { lr: 1e-3, schedule: { kind: "constant" } },
}, "test");
const MODES: (RecomputeMode | RecomputeMode[])[] = ["none", "attention", "block", ["block", "none", "attention"]];

/** a TP group stand-in: Olmo2's constructor only reads rank and world (no collective runs here) */
function fakeGroup(world: number): PtrComm {
  const no = () => { throw new Error("no collectives in this test"); };
  return { rank: 0, world, allReduce: no, allGather: no, reduceScatter: no, broadcast: no, barrier: no, close: () => {} };
}

function modelBytes(be: Backend, tp: number, recompute: RecomputeMode | RecomputeMode[]): number {
  const store = new ParamStore(be, cfg.model, new ShardingMap(cfg.model, { tp, tpRank: 0, dp: 1, dpRank: 0 }));
  const model = new Olmo2(store, cfg.model, 2, 64, { training: true, recompute, tp: tp > 1 ? fakeGroup(tp) : undefined });
  try {
    return model.activationBytes;
  } finally {
    model.free();
    store.free();
  }
}

describe("olmo plan: activation memory per recompute mode", () => {
  test("equals the bytes of the arenas Olmo2 allocates, for every mode, at tp 1 and tp 2", () => {
    ensureNativeBuilt("cpu");
    const be = createBackend("cpu");
    const actBytes = be.actBytes as number, budget = ceBudgetBytes(be);
    for (const tp of [1, 2]) {
      for (const mode of MODES) {
        expect({ tp, mode, bytes: activationBytes(cfg, tp, actBytes, budget, mode) }).toEqual({ tp, mode, bytes: modelBytes(be, tp, mode) });
      }
    }
    const [none, attention, block] = (["none", "attention", "block"] as const).map((m) => activationBytes(cfg, 1, actBytes, budget, m));
    expect(block).toBeLessThan(attention);
    expect(attention).toBeLessThan(none);
  });

  test("the plan lists every mode and counts the config's choice in the memory total", () => {
    const p = planRun(cfg), pb = planRun({ ...cfg, train: { ...cfg.train, recompute: "block" } });
    const by = p.activations_by_recompute_bytes;
    expect(Object.keys(by)).toEqual(["none", "attention", "block"]);
    expect(p.memory_per_gpu_bytes.activations).toBe(by.none);
    expect(pb.memory_per_gpu_bytes.activations).toBe(by.block);
    expect(pb.memory_per_gpu_bytes.total).toBe(p.memory_per_gpu_bytes.total - by.none + by.block);
    expect(pb.recompute).toBe("block");
  });

  test("the text form of the 32B at TP 8 shows all three and follows --train.recompute", () => {
    const run = (extra: string[]) => Bun.spawnSync([process.execPath, "src/cli/main.ts", "plan", "configs/stage1.ts", "--gpus", "1024", "--tp", "8", ...extra],
      { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu" } }).stdout.toString();
    const plain = run([]), block = run(["--train.recompute=block"]);
    expect(plain).toMatch(/recompute +none; activations with every layer at none [\d.]+ GiB · attention [\d.]+ GiB · block [\d.]+ GiB/);
    const acts = (s: string) => Number(/activations ([\d.]+) GiB =/.exec(s)![1]);
    const blockGiB = Number(/block ([\d.]+) GiB/.exec(plain)![1]);
    expect(acts(block)).toBe(blockGiB);
    expect(acts(block)).toBeLessThan(acts(plain) / 4);
  });
});

