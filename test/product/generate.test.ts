// `olmo generate` end to end through the CLI on the CPU library: a tiny random model on the
// cl100k/dolma2 vocabulary, exported as an HF folder and saved as a native checkpoint. Greedy output
// is reproducible and is the text of greedySample's ids; a seeded temperature run is reproducible;
// bad inputs are one stderr line and exit code 2.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { exportHf } from "../../src/checkpoint/hf/folder.ts";
import { saveCheckpoint } from "../../src/checkpoint/native/write.ts";
import { DOLMA2_EOS_ID, cl100k } from "../../src/data/prepare.ts";
import { type ModelConfig, ModelConfigSchema } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { ParamStore } from "../../src/model/param-store.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { greedySample } from "../../src/train/sample.ts";
import { ensureNativeBuilt } from "../support/build.ts";

const root = resolve(import.meta.dir, "../..");
const base = { dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 24, maxSeqLen: 32 };
// HF stores the padded vocabulary (100352); the native checkpoint keeps dolma2's real 100278 — same arena
const hfCfg: ModelConfig = ModelConfigSchema.parse({ ...base, vocabSize: 100352 });
const nativeCfg: ModelConfig = ModelConfigSchema.parse({ ...base, vocabSize: 100278 });
let dir: string, hfDir: string, ckptDir: string, arena: Float32Array;

async function olmo(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", ...args], { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, OLMO_BACKEND: "cpu" } });
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, stdout, stderr };
}

/** greedySample's ids for the prompt, and their text as generate prints it (EOS not printed). */
async function greedyText(cfg: ModelConfig, prompt: string, maxNew: number): Promise<{ ids: number[]; text: string }> {
  const enc = await cl100k();
  const store = new ParamStore(createBackend("cpu"), cfg);
  try {
    store.upload(arena);
    const ids = greedySample(store, cfg, enc.encode(prompt, "all"), maxNew, DOLMA2_EOS_ID);
    return { ids, text: enc.decode(ids.filter((i) => i !== DOLMA2_EOS_ID)) };
  } finally {
    store.free();
  }
}

beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-generate-"));
  const specs = paramSpecs(hfCfg);
  arena = new Float32Array(totalParams(specs));
  initParams(arena, specs, 0.3, 21);
  hfDir = join(dir, "hf");
  exportHf(hfCfg, arena, hfDir, { dtype: "f32" });
  ckptDir = saveCheckpoint(join(dir, "ckpts"), "stage1-step1-tokens1B", { model: nativeCfg, trainState: { step: 1 }, tensors: { model: arena } });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("olmo generate", () => {
  test("greedy: two runs print the same text, the text of greedySample's ids (HF folder and native checkpoint)", async () => {
    for (const [path, cfg] of [[hfDir, hfCfg], [ckptDir, nativeCfg]] as const) {
      const args = ["generate", path, "--prompt", "The jury", "--max-tokens", "5", "--temperature", "0"];
      const [a, b] = await Promise.all([olmo(...args), olmo(...args)]);
      expect(a.code).toBe(0);
      expect(b.stdout).toBe(a.stdout);
      const want = await greedyText(cfg, "The jury", 5);
      expect(want.ids.length).toBe(5);
      expect(a.stdout).toBe(`${want.text}\n`);
      const lines = a.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^generate: 5 tokens in [\d.]+ s \([\d.]+ tokens\/s;.*stop: max-tokens; backend cpu\)$/);
    }
  });

  test("sampling: a seed reproduces its text; the output stops at maxSeqLen", async () => {
    const args = ["generate", hfDir, "--prompt", "The jury said", "--max-tokens", "12", "--temperature", "0.8", "--top-p", "0.9", "--seed", "7"];
    const [a, b, c] = await Promise.all([olmo(...args), olmo(...args), olmo(...args.slice(0, -1), "8")]);
    expect(a.code).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(1);
    expect(b.stdout).toBe(a.stdout);
    expect(c.code).toBe(0);
    expect(a.stderr).toMatch(/^generate: 12 tokens/);
    // maxSeqLen 32: a 3-token prompt leaves room for 29 new tokens whatever --max-tokens says
    const long = await olmo("generate", ckptDir, "--prompt", "The jury said", "--max-tokens", "100", "--seed", "3");
    expect(long.code).toBe(0);
    expect(long.stderr).toMatch(/^generate: 29 tokens .*stop: maxSeqLen/);
  });

  test("bad inputs: one-line errors, exit code 2", async () => {
    mkdirSync(join(dir, "notckpt"), { recursive: true });
    writeFileSync(join(dir, "notckpt", "readme.txt"), "not a checkpoint\n");
    const long = Array.from({ length: 40 }, () => "jury").join(" ");
    const cases: [string[], RegExp][] = [
      [["generate", join(dir, "missing"), "--prompt", "x"], /not found/],
      [["generate", join(dir, "notckpt"), "--prompt", "x"], /notckpt/],
      [["generate", "--prompt", "x"], /one checkpoint or HF folder path, got none/],
      [["generate", hfDir], /missing required option --prompt/],
      [["generate", hfDir, "--prompt", ""], /--prompt is empty/],
      [["generate", hfDir, "--prompt", "x", "--max-tokens", "0"], /--max-tokens must be an integer >= 1/],
      [["generate", hfDir, "--prompt", "x", "--max-tokens", "2.5"], /--max-tokens must be an integer >= 1/],
      [["generate", hfDir, "--prompt", "x", "--temperature", "-1"], /--temperature must be >= 0/],
      [["generate", hfDir, "--prompt", "x", "--top-p", "0"], /--top-p must be in \(0, 1\]/],
      [["generate", hfDir, "--prompt", "x", "--top-p", "1.5"], /--top-p must be in \(0, 1\]/],
      [["generate", hfDir, "--prompt", "x", "--seed", "-1"], /--seed must be an integer/],
      [["generate", hfDir, "--prompt", long], /prompt is 40 tokens; the model's maxSeqLen 32/],
      [["generate", hfDir, "--prompt", "x", "--bogus"], /unknown option --bogus/],
    ];
    const rs = await Promise.all(cases.map(([args]) => olmo(...args)));
    for (const [i, [args, pattern]] of cases.entries()) {
      const r = rs[i];
      expect({ args: args.join(" "), code: r.code }).toEqual({ args: args.join(" "), code: 2 });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(r.stdout).toBe("");
    }
  });
});
