// `olmo eval --from-hf` end to end through the CLI: an HF folder written by our exporter, a raw
// uint32 token file, and the float64 reference model as the oracle. Also its bad-input errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { exportHf } from "../../src/checkpoint/hf/folder.ts";
import { ModelConfigSchema } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramSpecs, totalParams } from "../../src/model/params.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { refLoss } from "../model/ref-model.ts";

const root = resolve(import.meta.dir, "../..");
// vocab already a multiple of 128, as HF configs store the padded size
const cfg = ModelConfigSchema.parse({ dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 24, vocabSize: 256, maxSeqLen: 64 });
let dir: string;

function olmo(args: string[]): { code: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", ...args], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu" } });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-eval-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("olmo eval --from-hf", () => {
  test("loss agrees with the float64 reference; --grad adds the gradient norm", () => {
    const arena = new Float32Array(totalParams(paramSpecs(cfg)));
    initParams(arena, paramSpecs(cfg), 0.3, 5);
    exportHf(cfg, arena, join(dir, "hf"), { dtype: "f32" });
    const T = 8, B = 3;
    const tokens = Uint32Array.from({ length: B * T + 5 }, (_, i) => (i * 37 + 11) % 250); // tail of 5 is dropped
    writeFileSync(join(dir, "tokens.bin"), tokens);
    const r = olmo(["eval", "--from-hf", join(dir, "hf"), "--data", join(dir, "tokens.bin"), "--seq-len", `${T}`, "--grad", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    const ref = refLoss(cfg, arena, Int32Array.from(tokens.subarray(0, B * T)), B, T, 1e-5);
    expect(out.n_tokens).toBe(B * (T - 1));
    expect(Math.abs(out.loss - ref.loss) / ref.loss).toBeLessThan(2e-6);
    expect(Math.abs(out.ce_loss - ref.ce) / ref.ce).toBeLessThan(2e-6);
    expect(Math.abs(out.z_loss - ref.z) / ref.z).toBeLessThan(1e-4);
    expect(out.grad_norm).toBeGreaterThan(0);
  });

  test("bad inputs: one-line errors, exit code 2", () => {
    writeFileSync(join(dir, "odd.bin"), new Uint8Array(7));
    writeFileSync(join(dir, "big.bin"), Uint32Array.from([1, 2, 300, 4, 5, 6, 7, 8]));
    const cases: [string[], RegExp][] = [
      [["eval", "--from-hf", join(dir, "hf"), "--data", join(dir, "odd.bin"), "--seq-len", "4"], /not a multiple of 4/],
      [["eval", "--from-hf", join(dir, "hf"), "--data", join(dir, "big.bin"), "--seq-len", "4"], /token id 300 .*(outside the vocabulary|>= vocab size 256)/],
      [["eval", "--from-hf", join(dir, "hf"), "--data", join(dir, "missing.bin"), "--seq-len", "4"], /not found/],
      [["eval", "--from-hf", join(dir, "nothing"), "--data", join(dir, "big.bin"), "--seq-len", "4"], /config\.json|not found|no such/i],
      [["eval", "--from-hf", join(dir, "hf"), "--data", join(dir, "big.bin")], /missing required option --seq-len/],
      [["eval", "--bogus"], /unknown option --bogus/],
    ];
    for (const [args, pattern] of cases) {
      const r = olmo(args);
      expect({ args: args.join(" "), code: r.code }).toEqual({ args: args.join(" "), code: 2 });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });
});
