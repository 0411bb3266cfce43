import { afterAll, expect, test } from "bun:test";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HfSink, HfSource, exportHf, loadHfModel } from "../../src/checkpoint/hf/folder.ts";
import { NativeWriter, saveCheckpoint } from "../../src/checkpoint/native/write.ts";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { copyModel, openSource, soup } from "../../src/checkpoint/soup.ts";
import { DOLMA2_VOCAB, paddedVocab } from "../../src/model/config.ts";
import { paramSpecs } from "../../src/model/params.ts";
import { bf16ToF32, f32ToBf16 } from "../../src/tensor/dtype.ts";
import { cleanupTemp, randomArena, REPO, tempDir, tinyConfig, userErrorOf } from "./helpers.ts";

afterAll(cleanupTemp);

const model = tinyConfig();
const A = randomArena(model, 11), B = randomArena(model, 12);

function native(arena: Float32Array, m = model, tag = "n"): string {
  return saveCheckpoint(tempDir(tag), "stage1-step3-tokens1B", { model: m, trainState: { step: 3 }, tensors: { model: arena } });
}

test("exportHf writes a transformers-ready folder; loadHfModel reads it back (fp32 exact, bf16 rounded)", () => {
  for (const dtype of ["f32", "bf16"] as const) {
    const out = join(tempDir("hf"), "m");
    exportHf(model, A, out, { dtype, maxShardBytes: 20_000 });
    const files = readdirSync(out).sort();
    expect(files).toContain("config.json");
    expect(files).toContain("generation_config.json");
    expect(files).toContain("model.safetensors.index.json");
    expect(files.filter((f) => f.endsWith(".safetensors")).length).toBeGreaterThan(1);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg).toMatchObject({
      model_type: "olmo2", architectures: ["Olmo2ForCausalLM"], hidden_size: 16, intermediate_size: 24, num_attention_heads: 2, num_key_value_heads: 1,
      num_hidden_layers: 2, vocab_size: 256, tie_word_embeddings: false, attention_bias: false, hidden_act: "silu", rope_scaling: null,
      torch_dtype: dtype === "bf16" ? "bfloat16" : "float32", rope_theta: 500000, rms_norm_eps: 1e-6,
    });
    const { config, params } = loadHfModel(out);
    expect(paddedVocab(config)).toBe(paddedVocab(model));
    expect(Buffer.from(params.buffer).equals(Buffer.from((dtype === "f32" ? A : bf16ToF32(f32ToBf16(A))).buffer))).toBe(true);
  }
});

test("dolma2 vocab: HF vocab_size is the padded 100352 and the released token ids are written", () => {
  const m = tinyConfig({ vocabSize: DOLMA2_VOCAB, nLayers: 1 });
  const out = join(tempDir("hf"), "m");
  exportHf(m, new Float32Array(paramSpecs(m).reduce((a, s) => a + s.numel, 0)), out, { dtype: "bf16" });
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  expect(cfg).toMatchObject({ vocab_size: 100352, bos_token_id: 100257, eos_token_id: 100257, pad_token_id: 100277 });
  expect(JSON.parse(readFileSync(join(out, "generation_config.json"), "utf8"))).toMatchObject({ eos_token_id: 100257, pad_token_id: 100277 });
  const src = new HfSource(out);
  expect(src.config.vocabSize).toBe(100352);
  expect(paddedVocab(src.config)).toBe(100352);
  src.close();
});

test("native -> HF -> native round trip through the streaming tools is exact in fp32", () => {
  const ck = native(A);
  const hf = join(tempDir("hf"), "m");
  copyModel(openSource(ck), new HfSink(hf, model, { dtype: "f32" }));
  const back = join(tempDir("imp"), "imported");
  const src = openSource(hf);
  expect(src.kind).toBe("hf");
  copyModel(src, new NativeWriter(back, src.config));
  src.close();
  const c = loadCheckpoint(back);
  expect(Buffer.from(c.model.buffer).equals(Buffer.from(A.buffer))).toBe(true);
  expect(c.adamM).toBeUndefined();
});

test("HF folders with missing or mis-shaped tensors or a foreign config give one-line errors", () => {
  const out = join(tempDir("hf"), "m");
  exportHf(model, A, out, { dtype: "f32" });
  const idxPath = join(out, "model.safetensors.index.json");
  const idx = JSON.parse(readFileSync(idxPath, "utf8"));
  delete idx.weight_map["model.layers.1.mlp.down_proj.weight"];
  writeFileSync(idxPath, JSON.stringify(idx));
  expect(userErrorOf(() => loadHfModel(out))).toMatch(/missing tensor model\.layers\.1\.mlp\.down_proj\.weight \(expected shape \[16,24\]\)/);
  const cfgPath = join(out, "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, intermediate_size: 32 }));
  expect(userErrorOf(() => loadHfModel(out))).toMatch(/tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[24,16\], but config\.json implies \[32,16\]/);
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, model_type: "llama" }));
  expect(userErrorOf(() => loadHfModel(out))).toMatch(/model_type is "llama", expected "olmo2"/);
  expect(userErrorOf(() => loadHfModel(tempDir("empty")))).toMatch(/no config\.json/);
});

test("soup: identical checkpoints give the identity; two give the exact fp32 mean; weights apply", () => {
  const a = native(A), b = native(B);
  const run = (paths: string[], w?: number[]) => {
    const out = join(tempDir("soup"), "s");
    const srcs = paths.map(openSource);
    soup(srcs, new NativeWriter(out, model), w);
    for (const s of srcs) s.close();
    return loadCheckpoint(out).model;
  };
  for (const n of [2, 4]) expect(Buffer.from(run(Array(n).fill(a)).buffer).equals(Buffer.from(A.buffer))).toBe(true);
  const three = run([a, a, a]);
  for (let i = 0; i < A.length; i++) if (Math.abs(three[i] - A[i]) > 2 * Math.abs(A[i]) * 2 ** -23) throw new Error(`3-way identity off at ${i}`);
  const mean = run([a, b]);
  for (let i = 0; i < A.length; i++) if (mean[i] !== Math.fround((A[i] + B[i]) / 2)) throw new Error(`mean off at ${i}: ${mean[i]}`);
  const w = run([a, b], [3, 1]); // normalized to 0.75 / 0.25
  for (let i = 0; i < A.length; i++) if (w[i] !== Math.fround(Math.fround(0.75 * A[i]) + 0.25 * B[i])) throw new Error(`weighted off at ${i}`);
  // mixed formats: a native checkpoint souped with its own fp32 HF export
  const hf = join(tempDir("hf"), "m");
  exportHf(model, A, hf, { dtype: "f32" });
  expect(Buffer.from(run([a, hf]).buffer).equals(Buffer.from(A.buffer))).toBe(true);
});

test("soup refuses one checkpoint and mismatched models, naming the field", () => {
  const a = native(A);
  const other = tinyConfig({ ffnHidden: 32 });
  const c = native(randomArena(other), other);
  const out = join(tempDir("soup"), "s");
  expect(userErrorOf(() => soup([openSource(a)], new NativeWriter(out, model)))).toMatch(/needs at least 2 checkpoints/);
  expect(userErrorOf(() => soup([openSource(a), openSource(c)], new NativeWriter(out, model)))).toMatch(/does not match .*: ffnHidden 24 vs 32/);
});

/** Run the CLI; returns exit code and output. */
function olmo(...args: string[]) {
  const p = Bun.spawnSync(["bun", join(REPO, "src/cli/main.ts"), ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

test("CLI: export-hf, import-hf, soup, ckpt info; bad inputs exit 2 with one line", () => {
  const a = native(A), b = native(B);
  const base = tempDir("cli");
  let r = olmo("export-hf", a, "--out", join(base, "hf"), "--dtype", "fp32");
  expect(r.code).toBe(0);
  r = olmo("import-hf", join(base, "hf"), "--out", join(base, "imp"));
  expect(r.code).toBe(0);
  expect(Buffer.from(loadCheckpoint(join(base, "imp")).model.buffer).equals(Buffer.from(A.buffer))).toBe(true);
  r = olmo("soup", a, b, join(base, "hf"), "--out", join(base, "soup"), "--format", "hf", "--dtype", "bf16");
  expect(r.code).toBe(0);
  expect(r.out).toContain("souped 3 checkpoints");
  r = olmo("ckpt", "info", a);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/name\s+stage1-step3-tokens1B/);
  expect(r.out).toMatch(/checksums\s+ok: \d+ tensors verified/);
  r = olmo("ckpt", "info", join(base, "soup"));
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/Hugging Face/);
  const bad = (args: string[], re: RegExp) => {
    const x = olmo(...args);
    expect(x.code).toBe(2);
    expect(x.err.trim().split("\n").length).toBe(1);
    expect(x.err).toMatch(re);
  };
  bad(["soup", a, "--out", join(base, "s1")], /needs at least 2 checkpoints/);
  bad(["soup", a, b, "--out", join(base, "s2"), "--weights", "1,x"], /--weights must be numbers/);
  bad(["export-hf", a, "--out", join(base, "hf")], /already exists and is not empty/);
  bad(["export-hf", join(base, "missing"), "--out", join(base, "h2")], /checkpoint not found/);
  bad(["ckpt", "info", base], /not a checkpoint: no metadata\.msgpack/);
}, 60_000);

test("loadModelWeights reads native and HF checkpoints into the same arena", async () => {
  const { loadModelWeights } = await import("../../src/checkpoint/soup.ts");
  const a = native(A);
  const hf = join(tempDir("hf"), "m");
  exportHf(model, A, hf, { dtype: "f32" });
  const n = loadModelWeights(a), h = loadModelWeights(hf);
  expect(n.kind).toBe("native");
  expect(n.trainState).toEqual({ step: 3 });
  expect(h.kind).toBe("hf");
  expect(Buffer.from(n.params.buffer).equals(Buffer.from(A.buffer))).toBe(true);
  expect(Buffer.from(h.params.buffer).equals(Buffer.from(A.buffer))).toBe(true);
});
