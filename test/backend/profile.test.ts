// The per-phase profile (src/backend/profile.ts) and the timing events under it (olmo_event_*):
// events measure the time between two points (checked against the host clock around a known wait),
// the timing wrapper leaves every result bitwise unchanged, names each GEMM by layer role and pass,
// counts the calls a step makes, and its GEMM FLOPs add up to 6 · tokens · matmul parameters (the
// MFU numerator); collectives are timed through profiledComm.
import { beforeAll, describe, expect, test } from "bun:test";
import type { Backend, BackendName } from "../../src/backend/backend.ts";
import { profiledBackend } from "../../src/backend/profile.ts";
import { ModelConfigSchema, paddedVocab } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { Olmo2, shiftLabels } from "../../src/model/olmo2.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { singlePtrComm } from "../../src/parallel/comm/comm.ts";
import { profiledComm } from "../../src/parallel/comm/profiled-comm.ts";
import { cudaStatus, openBackend } from "../support/native.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const cfg = ModelConfigSchema.parse({ dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 24, vocabSize: 200, maxSeqLen: 16 });
const B = 2, T = 8, N = B * T;

beforeAll(() => ensureNativeBuilt("cpu"));

function busyWaitMs(ms: number): number {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) { /* spin */ }
  return performance.now() - t0;
}

const cuda = cudaStatus();
for (const name of ["cpu", "cuda"] as BackendName[]) {
  const why = name === "cuda" && cuda !== true ? cuda : null;
  const title = `timing events [${name}]: elapsed between two records is the time between them (host clock around a 40 ms wait)`;
  if (why) {
    test.skip(`${title}: ${why}`, () => {});
    continue;
  }
  test(title, () => {
    const be = openBackend(name);
    be.synchronize();
    const a = be.createEvent(), b = be.createEvent();
    be.recordEvent(a);
    const hostMs = busyWaitMs(40);
    be.recordEvent(b);
    const ms = be.eventElapsedMs(a, b);
    expect(ms).toBeGreaterThan(hostMs - 2);
    expect(ms).toBeLessThan(hostMs + 25); // a preempted test process adds time, never removes it
    if (name === "cpu") expect(be.eventElapsedMs(b, a)).toBeCloseTo(-ms, 1);
    be.destroyEvent(a);
    be.destroyEvent(b);
  });
}

interface StepOut { loss: number[]; grads: Float32Array; weights: Float32Array }

function trainStep(be: Backend, beforeStep?: (store: ParamStore) => void): StepOut {
  const store = new ParamStore(be, cfg);
  const arena = new Float32Array(store.numel);
  initParams(arena, store.specs, 0.3, 3);
  store.upload(arena);
  const model = new Olmo2(store, cfg, B, T, { training: true });
  beforeStep?.(store); // gradients exist once the model is built
  const opt = new AdamW(store, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, stepIncrementBug: false });
  const tokens = Int32Array.from({ length: N }, (_, i) => (i * 37 + 5) % cfg.vocabSize);
  store.zeroGrads();
  const r = model.step(tokens, shiftLabels(tokens, B, T), 1e-4, 1 / (B * (T - 1)));
  const grads = store.downloadGrads();
  opt.update(1e-2);
  const weights = new Float32Array(store.numel);
  be.download(weights, store.master);
  opt.free();
  model.free();
  store.free();
  return { loss: [r.ceSum, r.lseSqSum, r.nTokens], grads, weights };
}

describe("per-phase profile (cpu)", () => {
  test("the wrapper changes no result, names every GEMM by role and pass, and its GEMM FLOPs are 6·N·matmul params", () => {
    const raw = openBackend("cpu");
    const plain = trainStep(raw);
    const { backend, profiler } = profiledBackend(raw);
    let names: string[] = [];
    const profiled = trainStep(backend, (store) => {
      names = store.specs.map((s) => s.name);
      profiler.nameWeights(names, (x) => store.w(x), (x) => store.g(x));
      profiler.recording = true;
    });
    profiler.recording = false;
    expect(profiled.loss).toEqual(plain.loss);
    expect(Buffer.from(profiled.grads.buffer).equals(Buffer.from(plain.grads.buffer))).toBe(true);
    expect(Buffer.from(profiled.weights.buffer).equals(Buffer.from(plain.weights.buffer))).toBe(true);

    const rows = profiler.results();
    const by = new Map(rows.map((r) => [r.cls, r]));
    const L = cfg.nLayers;
    // calls per step: q, k, v per layer for the forward and the weight gradient; one fused
    // dgrad call per projection; one gate|up GEMM per layer and pass; lm_head once per pass (one CE chunk)
    const want: Record<string, number> = {
      "gemm qkv fwd": 3 * L, "gemm qkv dgrad": 3 * L, "gemm qkv wgrad": 3 * L,
      "gemm o_proj fwd": L, "gemm o_proj dgrad": L, "gemm o_proj wgrad": L,
      "gemm gate|up fwd": L, "gemm gate|up dgrad": L, "gemm gate|up wgrad": L,
      "gemm down fwd": L, "gemm down dgrad": L, "gemm down wgrad": L,
      "gemm lm_head fwd": 1, "gemm lm_head dgrad": 1, "gemm lm_head wgrad": 1,
      "attention fwd": L, "attention bwd": L, "rope": 4 * L, "swiglu": 2 * L, "cross-entropy": 1, "embedding": 2,
      // rmsnorm: q, k, attention and MLP outputs per layer and the final one, forward and backward
      "norms": 2 * (4 * L + 1),
    };
    for (const [cls, calls] of Object.entries(want)) expect({ cls, calls: by.get(cls)?.calls }).toEqual({ cls, calls });
    expect(by.has("gemm other")).toBe(false);
    expect(by.get("optimizer")!.calls).toBeGreaterThan(0);
    // every matmul weight (not the input embedding, a lookup) does forward, dgrad and wgrad: 3 × 2·N·numel
    const store = new ParamStore(raw, cfg);
    const matmulParams = store.specs.filter((s) => s.shape.length === 2 && s.name !== "model.embed_tokens.weight").reduce((a, s) => a + s.numel, 0);
    store.free();
    const gemmFlops = rows.filter((r) => r.cls.startsWith("gemm ")).reduce((a, r) => a + r.flops, 0);
    expect(gemmFlops).toBe(6 * N * matmulParams);
    expect(by.get("attention fwd")!.flops).toBe(L * 4 * B * cfg.nHeads * (cfg.dModel / cfg.nHeads) * ((T * (T + 1)) / 2));
    expect(by.get("cross-entropy")!.bytes).toBe(2 * raw.actBytes * N * paddedVocab(cfg) + 12 * N);
    for (const r of rows) expect(r.ms).toBeGreaterThanOrEqual(0);
    profiler.free();
  });

  test("profiledComm times collectives; nothing is recorded while recording is off", () => {
    const raw = openBackend("cpu");
    const { backend, profiler } = profiledBackend(raw);
    const comm = profiledComm(singlePtrComm(backend), profiler);
    const p = backend.alloc(4096), q = backend.alloc(4096);
    comm.allReduce(q, p, 1024, "f32", "sum");
    expect(profiler.results()).toEqual([]);
    profiler.recording = true;
    comm.allReduce(q, p, 1024, "f32", "sum");
    comm.allGather(q, p, 1024, "f32");
    profiler.recording = false;
    const rows = profiler.results();
    expect(rows.find((r) => r.cls === "collectives")).toMatchObject({ calls: 2, bytes: 8192 });
    // the single-rank comm copies through the wrapped backend: that copy is timed too
    expect(rows.find((r) => r.cls === "copies/casts")?.calls).toBe(2);
    backend.free(p);
    backend.free(q);
    profiler.free();
  });
});
