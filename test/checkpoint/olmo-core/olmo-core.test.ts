// OLMo-core checkpoints in and out, against fixtures made with real torch.save
// (fixtures/make_fixtures.py; expected.f32 holds the tensors the fixtures were made from).
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { HfSource } from "../../../src/checkpoint/hf/folder.ts";
import { saveCheckpoint } from "../../../src/checkpoint/native/write.ts";
import { NativeReader } from "../../../src/checkpoint/native/read.ts";
import { exportOlmoCore } from "../../../src/checkpoint/olmo-core/export.ts";
import { importOlmoCore } from "../../../src/checkpoint/olmo-core/import.ts";
import { hfName, olmoCoreName } from "../../../src/checkpoint/olmo-core/names.ts";
import { isOlmoCoreCheckpoint, openOlmoCoreCheckpoint } from "../../../src/checkpoint/olmo-core/read.ts";
import { copyModel, openSource } from "../../../src/checkpoint/soup.ts";
import { HfSink } from "../../../src/checkpoint/hf/folder.ts";
import { paramSpecs } from "../../../src/model/params.ts";
import { bf16ToF32, f32ToBf16 } from "../../../src/tensor/dtype.ts";
import { findPython } from "../../../bench/python.ts";
import { readZipDirectory, zipDataOffset } from "../../../src/checkpoint/torch/zip.ts";
import { cleanupTemp, randomArena, tempDir, tinyConfig } from "../helpers.ts";
import { readCheckpointMeta } from "../../../src/checkpoint/native/metadata.ts";
import { PyFloat } from "../../../src/checkpoint/torch/pickle-read.ts";
import type { OlmoCoreRunSettings } from "../../../src/checkpoint/olmo-core/config.ts";

/** A run's settings as export-olmo-core's CLI derives them from a run config (a 16-token, 4-instance batch). */
function runSettings(over: Partial<OlmoCoreRunSettings> = {}): OlmoCoreRunSettings {
  return {
    paramGroups: { lr: 1e-3, initialLr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }, schedule: { kind: "constant", warmupSteps: 0 },
    maxGradNorm: 1, zLossMult: 1e-5, skipStep: null, maxSteps: 10, sequenceLength: 16, maxTargetSequenceLength: null, globalBatchTokens: 64,
    dataSeed: 0, dtype: "uint32", tokenizer: { identifier: "allenai/dolma2-tokenizer", vocabSize: 100278, eosTokenId: 100257, padTokenId: 100277 }, ...over,
  };
}

const F = join(import.meta.dir, "fixtures");
const expected = JSON.parse(readFileSync(join(F, "expected.json"), "utf8")) as { tensors: { name: string; shape: number[]; step: number; w: number; m: number; v: number }[] };
const raw = readFileSync(join(F, "expected.f32"));
const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
const want = (oc: string, k: "w" | "m" | "v") => {
  const e = expected.tensors.find((t) => t.name === oc)!;
  return all.subarray(e[k], e[k] + e.shape.reduce((a, b) => a * b, 1));
};
const bf16 = (x: Float32Array) => bf16ToF32(f32ToBf16(x));
const bitsEqual = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

afterAll(cleanupTemp);

describe("names", () => {
  test("every parameter maps to OLMo-core and back; w1 is gate_proj, w3 up_proj, w2 down_proj", () => {
    for (const s of paramSpecs(tinyConfig())) expect(hfName(olmoCoreName(s.name))).toBe(s.name);
    expect(olmoCoreName("model.layers.3.mlp.gate_proj.weight")).toBe("blocks.3.feed_forward.w1.weight");
    expect(olmoCoreName("model.layers.3.mlp.up_proj.weight")).toBe("blocks.3.feed_forward.w3.weight");
    expect(olmoCoreName("model.layers.3.mlp.down_proj.weight")).toBe("blocks.3.feed_forward.w2.weight");
    expect(hfName("blocks.0.feed_forward_moe.router.weight")).toBeNull();
  });
});

describe("reading the fixtures", () => {
  for (const [step, dtype] of [["step5", "f32"], ["step7", "bf16"]] as const) {
    test(`${step}: model (${dtype}), moments and per-tensor step counters equal what was saved`, () => {
      const r = openOlmoCoreCheckpoint(join(F, step));
      try {
        expect(r.model).toMatchObject({ dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 64, vocabSize: 256 });
        for (const s of r.specs) {
          const oc = olmoCoreName(s.name), out = new Float32Array(s.numel);
          r.read("model", s.name, out);
          expect(bitsEqual(out, dtype === "f32" ? want(oc, "w") : bf16(want(oc, "w")))).toBe(true);
          r.read("adam_m", s.name, out);
          expect(bitsEqual(out, want(oc, "m"))).toBe(true);
          r.read("adam_v", s.name, out);
          expect(bitsEqual(out, want(oc, "v"))).toBe(true);
          expect(r.stepCounter(s.name)).toBe(expected.tensors.find((t) => t.name === oc)!.step);
        }
      } finally {
        r.close();
      }
    });
  }

  test("element ranges across chunk boundaries, a view chunk (storage offset) and a column-major chunk", () => {
    const r = openOlmoCoreCheckpoint(join(F, "step5"));
    try {
      for (const hf of ["model.embed_tokens.weight", "model.layers.0.mlp.gate_proj.weight", "model.layers.1.self_attn.k_norm.weight"]) {
        const n = r.specs.find((s) => s.name === hf)!.numel, full = want(olmoCoreName(hf), "w");
        for (const [a, len] of [[0, 1], [n / 2 - 5, 10], [7, n - 14], [n - 3, 3]]) {
          const out = new Float32Array(len);
          r.readRange("model", hf, a, out);
          expect(Array.from(out)).toEqual(Array.from(full.subarray(a, a + len)));
        }
      }
    } finally {
      r.close();
    }
  });

  test("trainer state, data seed and the two param-group formats", () => {
    const a = openOlmoCoreCheckpoint(join(F, "step5")), b = openOlmoCoreCheckpoint(join(F, "step7"));
    try {
      expect(a.trainState).toMatchObject({ step: 5, tokensSeen: 2560, worldSize: 2, dataLoader: { seed: 34521, batchesProcessed: 5, tokensProcessed: 2560, fingerprintVersion: "v1.1", epoch: 1 } });
      expect(a.dataSeed).toBe(34521);
      expect(a.paramGroupFormat()).toBe("unflattened");
      expect(b.paramGroupFormat()).toBe("flattened");
      expect(a.byteItem("optim.param_groups.0.params")).toEqual(["embeddings.weight"]);
      expect(a.byteItem("optim.param_groups.1.weight_decay")).toEqual(new PyFloat(0.1));
      expect(b.byteItem("optim.param_groups.embeddings.weight.lr")).toEqual(new PyFloat(6e-4));
      expect(a.meta.storageInfoClass).toBe("olmo_core.distributed.checkpoint.filesystem._StorageInfo");
      expect(b.meta.storageInfoClass).toBe("torch.distributed.checkpoint.filesystem._StorageInfo");
    } finally {
      a.close();
      b.close();
    }
    expect(isOlmoCoreCheckpoint(join(F, "step5"))).toBe(true);
    expect(isOlmoCoreCheckpoint(join(F, "step5", "model_and_optim"))).toBe(true);
    expect(isOlmoCoreCheckpoint(F)).toBe(false);
  });
});

describe("round trips", () => {
  test("OLMo-core -> native -> OLMo-core keeps weights, moments, counters, trainer state and param groups bit for bit", () => {
    const d = tempDir("oc-rt");
    importOlmoCore(join(F, "step5"), join(d, "native"));
    const meta = readCheckpointMeta(join(d, "native"));
    expect(meta.trainState).toMatchObject({ step: 5, tokensProcessed: 2560 });
    expect(meta.optim!.step["model.layers.0.self_attn.v_proj.weight"]).toBe(4);
    expect(meta.optim!.step["model.embed_tokens.weight"]).toBe(5);
    exportOlmoCore(join(d, "native"), join(d, "oc"));
    const a = openOlmoCoreCheckpoint(join(F, "step5")), b = openOlmoCoreCheckpoint(join(d, "oc"));
    try {
      for (const s of a.specs) {
        const x = new Float32Array(s.numel), y = new Float32Array(s.numel);
        for (const g of ["model", "adam_m", "adam_v"] as const) {
          a.read(g, s.name, x);
          b.read(g, s.name, y);
          expect(bitsEqual(x, y)).toBe(true);
        }
        expect(b.stepCounter(s.name)).toBe(a.stepCounter(s.name)!);
      }
      expect(b.trainState).toEqual(a.trainState);
      expect(b.config).toEqual(a.config);
      // the same values (floats still floats, tuples still tuples) under the same keys and paths
      for (const fqn of a.meta.bytes.keys()) expect(b.byteItem(fqn)).toEqual(a.byteItem(fqn));
      expect([...b.meta.bytes.keys()].sort()).toEqual([...a.meta.bytes.keys()].sort());
      expect(b.keptItems()).toEqual(a.keptItems());
    } finally {
      a.close();
      b.close();
    }
  });

  test("OLMo-core (bf16) -> native -> HF equals the fixture's weights", () => {
    const d = tempDir("oc-hf");
    importOlmoCore(join(F, "step7"), join(d, "native"));
    const src = openSource(join(d, "native"));
    copyModel(src, new HfSink(join(d, "hf"), src.config, { dtype: "f32" }));
    src.close();
    const hf = new HfSource(join(d, "hf"));
    try {
      for (const s of hf.specs) {
        const out = new Float32Array(s.numel);
        hf.read(s.name, out);
        expect(bitsEqual(out, bf16(want(olmoCoreName(s.name), "w")))).toBe(true);
      }
    } finally {
      hf.close();
    }
  });

  test("a native checkpoint of our own -> OLMo-core -> native: same tensors, counters from optim.step, lr from the run config", () => {
    const d = tempDir("oc-own");
    const m = tinyConfig({ dModel: 32, nHeads: 4, nKvHeads: 2, ffnHidden: 48, vocabSize: 256 });
    const runConfig = { name: "own", model: m, data: { paths: ["x.u32"], seed: 9 }, train: { seqLen: 16, globalBatchInstances: 4, steps: 10 }, optim: { lr: 1e-3, schedule: { kind: "constant", warmupSteps: 0 } } };
    const path = saveCheckpoint(d, "stage1-step3-tokens1B", {
      model: m, runConfig, trainState: { step: 3, tokensProcessed: 192, adamStep: 3 },
      dataCursor: { tokensProcessed: 192, batchesProcessed: 3, epoch: 1, seed: 9, fingerprint: "abc" },
      tensors: { model: randomArena(m, 1), adamM: randomArena(m, 2), adamV: randomArena(m, 3).map(Math.abs) },
    });
    exportOlmoCore(path, join(d, "oc"), { run: runSettings({ paramGroups: { lr: 1e-3, initialLr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }, dataSeed: 9, globalBatchTokens: 64 }) });
    const r = openOlmoCoreCheckpoint(join(d, "oc"));
    expect(r.trainState).toMatchObject({ step: 3, tokensSeen: 192, dataLoader: { seed: 9, batchesProcessed: 3, fingerprintVersion: "olmo-bun" } });
    expect(r.byteItem("optim.param_groups.0.weight_decay")).toEqual(new PyFloat(0));
    expect(r.byteItem("optim.param_groups.1.lr")).toEqual(new PyFloat(1e-3));
    expect(r.stepCounter("lm_head.weight")).toBe(3);
    r.close();
    importOlmoCore(join(d, "oc"), join(d, "back"));
    const a = new NativeReader(path), b = new NativeReader(join(d, "back"));
    for (const s of paramSpecs(m)) {
      for (const g of ["model", "adam_m", "adam_v"] as const) {
        const x = new Float32Array(s.numel), y = new Float32Array(s.numel);
        a.read(g, s.name, x);
        b.read(g, s.name, y);
        expect(bitsEqual(x, y)).toBe(true);
      }
    }
    expect(b.meta.optim!.step["lm_head.weight"]).toBe(3);
    a.close();
    b.close();
  });

  const py = findPython("torch");
  test.skipIf(!py)("the exported folder loads with pickle.load and torch.load (torch 1.13, emulated DCP classes)", () => {
    const d = tempDir("oc-py");
    importOlmoCore(join(F, "step5"), join(d, "native"));
    exportOlmoCore(join(d, "native"), join(d, "oc"));
    const p = Bun.spawnSync([py!, join(F, "make_fixtures.py"), "check", join(d, "oc")], { stdout: "pipe", stderr: "pipe" });
    expect({ code: p.exitCode, err: p.stderr.toString().slice(-2000) }).toEqual({ code: 0, err: "" });
    expect(p.stdout.toString()).toContain("check ok: 116 items, global_step 5");
  });
});

describe("layout of the exported folder", () => {
  test("model_and_optim/.metadata + __0_0.distcp, train/rank0.pt, config.json, .metadata.json; records 64-byte aligned", () => {
    const d = tempDir("oc-layout");
    importOlmoCore(join(F, "step5"), join(d, "native"));
    exportOlmoCore(join(d, "native"), join(d, "oc"));
    expect(readdirSync(join(d, "oc")).sort()).toEqual([".metadata.json", "config.json", "model_and_optim", "train"]);
    expect(readdirSync(join(d, "oc", "model_and_optim")).sort()).toEqual([".metadata", "__0_0.distcp"]);
    expect(readdirSync(join(d, "oc", "train"))).toEqual(["rank0.pt"]);
    const r = openOlmoCoreCheckpoint(join(d, "oc"));
    const t = r.meta.tensors.get("model.embeddings.weight")!;
    const fd = openSync(join(d, "oc", "model_and_optim", "__0_0.distcp"), "r");
    const s = t.chunks[0].storage;
    const dir = readZipDirectory(fd, s.offset, s.length, "x");
    expect([...dir.keys()]).toEqual(["archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"]);
    expect(zipDataOffset(fd, s.offset, s.length, dir.get("archive/data/0")!, "x") % 64).toBe(0);
    closeSync(fd);
    r.close();
  });
});
