// The whole OLMo-2 model on the CPU library against the float64 reference: loss, finite-difference
// gradients of every parameter tensor, causality, gradient accumulation, loss decrease, bitwise
// reproducibility.
import { beforeAll, describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { createBackend } from "../../src/backend/native-backend.ts";
import { type ModelConfig, ModelConfigSchema, paddedVocab } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { Olmo2, shiftLabels } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { refLoss } from "./ref-model.ts";

const cfg: ModelConfig = ModelConfigSchema.parse({
  dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 24, vocabSize: 200, vocabPadMultiple: 128, maxSeqLen: 16,
});
const B = 2, T = 6, Z = 1e-4;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
}

function randomTokens(seed: number, n: number, vocab: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * vocab));
}

/** weights with a larger std than 0.02 and non-unit norm weights, so every path matters */
function testArena(store: ParamStore, seed: number): Float32Array {
  const a = new Float32Array(store.numel);
  initParams(a, store.specs, 0.3, seed);
  const r = rng(seed + 1);
  for (const s of store.specs) if (s.init === "ones") for (let i = 0; i < s.numel; i++) a[s.offset + i] = 0.5 + r();
  return a;
}

let be: Backend;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  be = createBackend("cpu");
});

function lossAndGrads(arena: Float32Array, tokens: Int32Array): { loss: number; grads: Float32Array } {
  const store = new ParamStore(be, cfg);
  store.upload(arena);
  const model = new Olmo2(store, cfg, B, T, { training: true });
  store.zeroGrads();
  const targets = shiftLabels(tokens, B, T);
  const nTok = B * (T - 1);
  const s = model.step(tokens, targets, Z, 1 / nTok);
  const grads = store.downloadGrads();
  model.free();
  store.free();
  return { loss: (s.ceSum + Z * s.lseSqSum) / s.nTokens, grads };
}

describe("OLMo-2 model (cpu)", () => {
  test("loss matches the float64 reference", () => {
    const store = new ParamStore(be, cfg);
    const arena = testArena(store, 7);
    store.free();
    const tokens = randomTokens(11, B * T, cfg.vocabSize);
    const ours = lossAndGrads(arena, tokens).loss;
    const ref = refLoss(cfg, arena, tokens, B, T, Z).loss;
    expect(Math.abs(ours - ref) / Math.abs(ref)).toBeLessThan(2e-6);
  });

  test("finite-difference gradients of every parameter tensor match the backward", () => {
    const store = new ParamStore(be, cfg);
    const specs = store.specs;
    const arena = testArena(store, 3);
    store.free();
    const tokens = randomTokens(5, B * T, cfg.vocabSize);
    const { grads } = lossAndGrads(arena, tokens);
    const r = rng(99);
    let checked = 0;
    for (const s of specs) {
      // embedding rows of tokens that occur, any element elsewhere
      const picks: number[] = [];
      for (let k = 0; k < 3; k++) {
        if (s.name === "model.embed_tokens.weight") picks.push(tokens[Math.floor(r() * tokens.length)] * cfg.dModel + Math.floor(r() * cfg.dModel));
        else picks.push(Math.floor(r() * s.numel));
      }
      for (const i of picks) {
        const idx = s.offset + i, orig = arena[idx], h = 1e-2;
        arena[idx] = orig + h;
        const up = arena[idx];
        const lp = refLoss(cfg, arena, tokens, B, T, Z).loss;
        arena[idx] = orig - h;
        const dn = arena[idx];
        const lm = refLoss(cfg, arena, tokens, B, T, Z).loss;
        arena[idx] = orig;
        const fd = (lp - lm) / (up - dn);
        const g = grads[idx];
        expect({ name: s.name, i, diff: Math.abs(g - fd) <= 2e-4 + 2e-3 * Math.abs(fd) ? 0 : g - fd }).toEqual({ name: s.name, i, diff: 0 });
        checked++;
      }
    }
    expect(checked).toBe(specs.length * 3);
  });

  test("causality: a later token never changes an earlier position's loss", () => {
    const store = new ParamStore(be, cfg);
    store.upload(testArena(store, 9));
    const model = new Olmo2(store, cfg, B, T, { training: false });
    const tokens = randomTokens(1, B * T, cfg.vocabSize);
    const ce = () => {
      model.step(tokens, shiftLabels(tokens, B, T), 0, 0);
      // compare the logits of the first rows of instance 0
      return [0, 1, 2].map((row) => Array.from(model.logitsRow(row)));
    };
    const before = ce();
    tokens[4] = (tokens[4] + 1) % cfg.vocabSize; // position 4 of instance 0
    tokens[5] = (tokens[5] + 7) % cfg.vocabSize;
    const after = ce();
    expect(after).toEqual(before);
    model.free();
    store.free();
  });

  test("gradient accumulation: 2 micro-batches of 1 equal 1 batch of 2", () => {
    const store = new ParamStore(be, cfg);
    const arena = testArena(store, 4);
    store.upload(arena);
    const tokens = randomTokens(8, B * T, cfg.vocabSize);
    const full = new Olmo2(store, cfg, 2, T, { training: true });
    store.zeroGrads();
    full.step(tokens, shiftLabels(tokens, 2, T), Z, 1 / (2 * (T - 1)));
    const g1 = store.downloadGrads();
    full.free();
    const half = new Olmo2(store, cfg, 1, T, { training: true });
    store.zeroGrads();
    for (let b = 0; b < 2; b++) {
      const tb = tokens.slice(b * T, (b + 1) * T);
      half.step(tb, shiftLabels(tb, 1, T), Z, 1 / (2 * (T - 1)));
    }
    const g2 = store.downloadGrads();
    half.free();
    store.free();
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < g1.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(g1[i] - g2[i]));
      maxAbs = Math.max(maxAbs, Math.abs(g1[i]));
    }
    expect(maxDiff / maxAbs).toBeLessThan(1e-5);
  });

  function trainLosses(steps: number): number[] {
    const store = new ParamStore(be, cfg);
    const arena = new Float32Array(store.numel);
    initParams(arena, store.specs, 0.02, 0);
    store.upload(arena);
    const model = new Olmo2(store, cfg, B, T, { training: true });
    const opt = new AdamW(store, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, stepIncrementBug: false });
    const tokens = randomTokens(21, B * T, cfg.vocabSize);
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      store.zeroGrads();
      const r = model.step(tokens, shiftLabels(tokens, B, T), Z, 1 / (B * (T - 1)));
      opt.update(1e-2);
      losses.push((r.ceSum + Z * r.lseSqSum) / r.nTokens);
    }
    opt.free();
    model.free();
    store.free();
    return losses;
  }

  test("loss decreases on a fixed batch", () => {
    const losses = trainLosses(30);
    expect(losses[0]).toBeGreaterThan(Math.log(paddedVocab(cfg)) - 0.5);
    expect(losses[29]).toBeLessThan(losses[0] * 0.5);
  });

  test("a fixed seed gives a bitwise-identical loss curve", () => {
    expect(trainLosses(8)).toEqual(trainLosses(8));
  });
});
