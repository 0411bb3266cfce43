// The model of bench:step on a backend: OLMo-2 with tiled truncated-normal weights, AdamW, a fixed
// token batch, and one full training step (zero grads, forward, backward, AdamW, synchronize).
import type { Backend } from "../src/backend/backend.ts";
import type { ModelConfig, RecomputeMode } from "../src/model/config.ts";
import { truncatedNormal } from "../src/model/init.ts";
import { Olmo2, shiftLabels } from "../src/model/olmo2.ts";
import { ParamStore } from "../src/model/param-store.ts";
import { AdamW } from "../src/optim/adamw.ts";

export interface StepModel { store: ParamStore; activationBytes: number; step: () => void; free: () => void }

export function buildStepModel(be: Backend, cfg: ModelConfig, B: number, T: number, recompute: RecomputeMode): StepModel {
  const store = new ParamStore(be, cfg);
  // Weights only need realistic magnitudes here: tile one block of truncated-normal samples, since
  // generating billions of them in JS would take longer than the benchmark.
  const block = new Float32Array(1 << 22);
  truncatedNormal(block, 0.02, 0, "bench");
  store.fillEach((s, out) => {
    if (s.init === "ones") out.fill(1);
    else for (let i = 0; i < out.length; i += block.length) out.set(block.subarray(0, Math.min(block.length, out.length - i)), i);
  });
  const model = new Olmo2(store, cfg, B, T, { training: true, recompute });
  const opt = new AdamW(store, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, stepIncrementBug: false });
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % cfg.vocabSize);
  const targets = shiftLabels(tokens, B, T);
  return {
    store,
    activationBytes: model.activationBytes,
    step: () => {
      store.zeroGrads();
      model.step(tokens, targets, 1e-5, 1 / (B * (T - 1)));
      opt.update(1e-4);
      be.synchronize();
    },
    free: () => {
      opt.free();
      model.free();
      store.free();
      be.synchronize();
    },
  };
}
