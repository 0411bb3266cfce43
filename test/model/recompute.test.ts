// Activation recompute (train.recompute): every mode, alone and mixed per layer, gives the loss
// sums and every gradient of the no-recompute model bit for bit (one micro-batch, gradient
// accumulation over two, several AdamW steps, and the split TP kernels at tp = 1), while the arenas
// shrink by exactly the buffers the mode drops. On the CPU library always; on the CUDA library too
// where a GPU is usable (head dim 4 takes the reference attention, whose backward has no atomics).
import { beforeAll, describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import type { Backend } from "../../src/backend/backend.ts";
import type { RecomputeMode } from "../../src/model/config.ts";
import { ATTENTION_BUFFERS, LAYER_BUFFERS, layerBufferBytes } from "../../src/model/activations.ts";
import { type ModelConfig, ModelConfigSchema } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { Olmo2, shiftLabels } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { singlePtrComm } from "../../src/parallel/comm/comm.ts";
import { cudaStatus, openBackend } from "../support/native.ts";
import { ensureNativeBuilt } from "../support/build.ts";

// the tiny model of test/model/model.test.ts, with a third layer so that per-layer lists mix modes
const cfg: ModelConfig = ModelConfigSchema.parse({
  dModel: 16, nLayers: 3, nHeads: 4, nKvHeads: 2, ffnHidden: 24, vocabSize: 200, vocabPadMultiple: 128, maxSeqLen: 16,
});
const B = 2, T = 6, Z = 1e-4;
const MODES: (RecomputeMode | RecomputeMode[])[] = ["attention", "block", ["block", "none", "attention"], ["none", "attention", "block"]];

let be: Backend;
beforeAll(() => ensureNativeBuilt("cpu"));

function tokens(seed: number, n: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % cfg.vocabSize);
}

function weights(store: ParamStore, seed: number): Float32Array {
  const a = new Float32Array(store.numel);
  initParams(a, store.specs, 0.3, seed); // large weights: every path contributes to the gradients
  return a;
}

/** bits of a float array, for exact comparison (NaN-safe, -0 ≠ 0) */
const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

interface Run { sums: number[]; grads: Float32Array; losses: number[]; bytes: number }

/** `micro` micro-batches of B×T accumulated into one gradient, then `steps` - 1 more AdamW steps */
function run(recompute: RecomputeMode | RecomputeMode[] | undefined, opts: { micro?: number; steps?: number; tp?: boolean } = {}): Run {
  const micro = opts.micro ?? 1, steps = opts.steps ?? 1;
  const store = new ParamStore(be, cfg);
  store.upload(weights(store, 5));
  const model = new Olmo2(store, cfg, B, T, { training: true, recompute, tp: opts.tp ? singlePtrComm(be) : undefined, ceChunkRows: 5 });
  const opt = new AdamW(store, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, stepIncrementBug: false });
  const sums: number[] = [], losses: number[] = [];
  let grads: Float32Array = new Float32Array(0);
  for (let s = 0; s < steps; s++) {
    store.zeroGrads();
    let ce = 0, lse = 0, n = 0;
    for (let m = 0; m < micro; m++) {
      const tok = tokens(100 * s + m + 1, B * T);
      const r = model.step(tok, shiftLabels(tok, B, T), Z, 1 / (micro * B * (T - 1)));
      sums.push(r.ceSum, r.lseSqSum, r.nTokens);
      ce += r.ceSum; lse += r.lseSqSum; n += r.nTokens;
    }
    losses.push((ce + Z * lse) / n);
    if (s === 0) grads = store.downloadGrads();
    opt.update(1e-2);
  }
  const bytes = model.activationBytes;
  opt.free();
  model.free();
  store.free();
  return { sums, grads, losses, bytes };
}

function expectSameBits(got: Run, want: Run): void {
  expect(got.sums).toEqual(want.sums);
  expect(got.losses).toEqual(want.losses);
  expect(got.grads.length).toBe(want.grads.length);
  const a = bits(got.grads), b = bits(want.grads);
  let diff = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
  expect(diff).toBe(0);
}

test("TP=2 over two processes (shared-memory collectives inside the recompute): every mode bitwise equal on each rank", async () => {
  const root = resolve(import.meta.dir, "../..");
  const p = Bun.spawn([process.execPath, join(root, "src/cli/main.ts"), "launch", "--nproc-per-node", "2", "--exec", "--",
    process.execPath, join(import.meta.dir, "fixtures/tp-recompute-rank.ts")], { cwd: root, env: { ...process.env, OLMO_THREADS: "1" }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  expect(out.trim().split("\n").sort()).toEqual([0, 1].map((r) => expect.stringMatching(new RegExp(`^\\[rank ${r}\\] ok 3 modes, \\d+ gradient elements$`))));
}, 60_000);

const cuda = cudaStatus();
for (const name of ["cpu", "cuda"] as const) {
  if (name === "cuda" && cuda !== true) {
    test.skip(`activation recompute (cuda): ${cuda}`, () => {});
    continue;
  }
  describe(`activation recompute (${name})`, () => {
    beforeAll(() => {
      be = openBackend(name);
    });
    for (const mode of MODES) {
      test(`${JSON.stringify(mode)}: loss sums and every gradient bitwise equal to no recompute`, () => {
        expectSameBits(run(mode), run("none"));
      });
    }

    test("bitwise over gradient accumulation (2 micro-batches) and 4 AdamW steps, every mode", () => {
      const ref = run(undefined, { micro: 2, steps: 4 });
      expect(ref.losses[3]).not.toBe(ref.losses[0]); // the weights moved
      for (const mode of MODES) expectSameBits(run(mode, { micro: 2, steps: 4 }), ref);
    });

    test("with a TP communicator (split QK-norm and vocab-parallel CE inside the recompute) bitwise equal too", () => {
      const ref = run("none", { tp: true });
      for (const mode of MODES) expectSameBits(run(mode, { tp: true }), ref);
    });

    test("memory: each recomputing layer drops exactly its mode's buffers; one shared scratch set holds them", () => {
      const none = run("none").bytes;
      const sizes = layerBufferBytes({ B, T, C: 16, D: 4, h: 4, k: 2, F: 24, vloc: 256, ceChunkRows: 5, actBytes: be.actBytes, tp: false });
      const aligned = (n: number) => Math.ceil(n / 256) * 256; // the arena aligns every buffer
      const sum = (names: readonly string[]) => names.reduce((a, n) => a + aligned(sizes[n as keyof typeof sizes]), 0);
      const attn = sum(ATTENTION_BUFFERS), block = sum(LAYER_BUFFERS.filter((b) => b !== "x"));
      // 3 layers drop their buffers, one scratch copy comes back
      expect(run("attention").bytes).toBe(none - 3 * attn + attn);
      expect(run("block").bytes).toBe(none - 3 * block + block);
      expect(run(["block", "none", "attention"]).bytes).toBe(none - block - attn + block);
      expect(run("block").bytes).toBeLessThan(run("attention").bytes);
    });

    test("a per-layer list must name every layer", () => {
      const store = new ParamStore(be, cfg);
      expect(() => new Olmo2(store, cfg, B, T, { training: true, recompute: ["block"] })).toThrow("recompute lists 1 modes for 3 layers");
      store.free();
    });
  });
}
