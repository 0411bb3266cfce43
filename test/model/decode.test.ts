// KV-cached decoding (src/model/decode.ts) on the CPU library: the decoder's logits at every
// position equal the full forward's (Olmo2.forward + logitsRow) to fp32 tolerance, greedy
// generation equals greedySample's ids, and the seeded sampler is reproducible and stays in the
// real vocabulary. Where a GPU is usable (bench/gpu-check.sh runs test/model with OLMO_BACKEND=cuda)
// the decoder's logits are also checked against the full forward on the CUDA library (bf16).
import { beforeAll, describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { createBackend } from "../../src/backend/native-backend.ts";
import { type ModelConfig, ModelConfigSchema } from "../../src/model/config.ts";
import { Olmo2Decoder, SplitMix32, generateIds, sampleToken } from "../../src/model/decode.ts";
import { initParams } from "../../src/model/init.ts";
import { Olmo2 } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { greedySample } from "../../src/train/sample.ts";
import { expectClose } from "../support/compare.ts";
import { cudaStatus } from "../support/native.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const configs: Record<string, ModelConfig> = {
  gqa: ModelConfigSchema.parse({ dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 24, vocabSize: 200, maxSeqLen: 16 }),
  mqa: ModelConfigSchema.parse({ dModel: 24, nLayers: 3, nHeads: 3, nKvHeads: 1, ffnHidden: 20, vocabSize: 131, maxSeqLen: 24, ropeTheta: 10_000 }),
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
}

let be: Backend;
beforeAll(() => {
  ensureNativeBuilt("cpu");
  be = createBackend("cpu");
});

/** a store with large-std weights and non-unit norm weights, so every path matters */
function randomStore(cfg: ModelConfig, seed: number, backend: Backend = be): ParamStore {
  const store = new ParamStore(backend, cfg);
  const a = new Float32Array(store.numel);
  initParams(a, store.specs, 0.3, seed);
  const r = rng(seed + 1);
  for (const s of store.specs) if (s.init === "ones") for (let i = 0; i < s.numel; i++) a[s.offset + i] = 0.5 + r();
  store.upload(a);
  return store;
}

describe("Olmo2Decoder (cpu)", () => {
  for (const [name, cfg] of Object.entries(configs)) {
    test(`${name}: logits at every position equal the full forward's`, () => {
      const store = randomStore(cfg, 7);
      const T = cfg.maxSeqLen - 2;
      const r = rng(3);
      const tokens = Int32Array.from({ length: T }, () => Math.floor(r() * cfg.vocabSize));
      const model = new Olmo2(store, cfg, 1, T, { training: false });
      const dec = new Olmo2Decoder(store, cfg, cfg.maxSeqLen);
      try {
        model.forward(tokens);
        for (let t = 0; t < T; t++) {
          const got = dec.step(tokens[t], t);
          expect(got.length).toBe(cfg.vocabSize);
          const want = model.logitsRow(t).subarray(0, cfg.vocabSize);
          expectClose(`${name} position ${t}`, got, want, 1e-5);
        }
      } finally {
        model.free();
        dec.free();
        store.free();
      }
    });

    test(`${name}: greedy generation equals greedySample (and stops at maxSeqLen)`, () => {
      const store = randomStore(cfg, 11);
      try {
        for (const [prompt, maxNew] of [[[3, 17, 42], 8], [[5], 1], [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 40]] as [number[], number][]) {
          const want = greedySample(store, cfg, prompt, maxNew);
          const streamed: number[] = [];
          const got = generateIds(store, cfg, prompt, { maxTokens: maxNew, temperature: 0, topP: 0.95, seed: 0 }, (id) => streamed.push(id));
          expect(got).toEqual(want);
          expect(streamed).toEqual(want);
          expect(got.length).toBe(Math.min(maxNew, cfg.maxSeqLen - prompt.length));
        }
        // eos: stop right after the first generated id when it is the eos
        const first = greedySample(store, cfg, [3, 17, 42], 1)[0];
        expect(generateIds(store, cfg, [3, 17, 42], { maxTokens: 8, temperature: 0, topP: 1, seed: 0, eos: first })).toEqual([first]);
        expect(greedySample(store, cfg, [3, 17, 42], 8, first)).toEqual([first]);
      } finally {
        store.free();
      }
    });
  }

  test("sampling: a seed reproduces its ids, ids stay in the real vocabulary, top-p -> 0 is greedy", () => {
    const cfg = configs.gqa;
    const store = randomStore(cfg, 13);
    try {
      const opts = { maxTokens: 12, temperature: 0.8, topP: 0.95, seed: 42 };
      const a = generateIds(store, cfg, [9, 8], opts);
      expect(generateIds(store, cfg, [9, 8], opts)).toEqual(a);
      expect(a.length).toBe(12);
      for (const id of a) expect(id >= 0 && id < cfg.vocabSize).toBe(true);
      const seeds = [1, 2, 3, 4, 5].map((seed) => generateIds(store, cfg, [9, 8], { ...opts, seed, temperature: 1.5, topP: 1 }).join(","));
      expect(new Set(seeds).size).toBeGreaterThan(1);
      expect(generateIds(store, cfg, [9, 8], { ...opts, topP: 1e-9 })).toEqual(greedySample(store, cfg, [9, 8], 12));
    } finally {
      store.free();
    }
  });

  test("sampleToken: nucleus and temperature on hand-made logits", () => {
    const logits = Float32Array.from([0, 5, 4.9, -3, 1]);
    const r = new SplitMix32(1);
    expect(sampleToken(logits, { temperature: 0, topP: 1 }, r)).toBe(1);
    // at T=1, p(1) = 0.52, p(2) = 0.47: top-p 0.9 keeps ids 1 and 2, top-p 0.5 keeps id 1 only
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.9 }, r));
    expect([...seen].sort()).toEqual([1, 2]);
    for (let i = 0; i < 50; i++) expect(sampleToken(logits, { temperature: 1, topP: 0.5 }, r)).toBe(1);
    // a tiny temperature is (almost surely) greedy; a large one reaches every id
    for (let i = 0; i < 50; i++) expect(sampleToken(logits, { temperature: 0.01, topP: 1 }, r)).toBe(1);
    const all = new Set<number>();
    for (let i = 0; i < 2000; i++) all.add(sampleToken(logits, { temperature: 50, topP: 1 }, r));
    expect([...all].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

const cuda = cudaStatus();
if (cuda === true) {
  test("cuda: decoder logits at every position match the full forward (bf16)", () => {
    const cudaBe = createBackend("cuda");
    for (const [name, cfg] of Object.entries(configs)) {
      const store = randomStore(cfg, 7, cudaBe);
      const T = cfg.maxSeqLen - 2;
      const r = rng(3);
      const tokens = Int32Array.from({ length: T }, () => Math.floor(r() * cfg.vocabSize));
      const model = new Olmo2(store, cfg, 1, T, { training: false });
      const dec = new Olmo2Decoder(store, cfg, cfg.maxSeqLen);
      try {
        model.forward(tokens);
        for (let t = 0; t < T; t++) {
          const got = dec.step(tokens[t], t);
          expectClose(`cuda ${name} position ${t}`, got, model.logitsRow(t).subarray(0, cfg.vocabSize), 5e-2);
        }
        expect(generateIds(store, cfg, [3, 17, 42], { maxTokens: 8, temperature: 0.8, topP: 0.95, seed: 1 }).length).toBe(8);
      } finally {
        model.free();
        dec.free();
        store.free();
      }
    }
  });
} else test.skip(`decoder [cuda]: ${cuda}`, () => {});
