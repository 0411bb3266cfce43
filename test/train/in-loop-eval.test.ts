// In-loop evaluation on the CPU: it does not change training (the loss curve and the weights are
// bitwise those of a run without eval), it writes one record per set and evaluation, it appears on
// the step line and beside the final training loss, and its numbers are `olmo eval`'s on the same
// checkpoint and data, bit for bit at the same batch.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBackend } from "../../src/backend/native-backend.ts";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { validateConfig } from "../../src/config/load.ts";
import type { RunConfigInput } from "../../src/config/schema.ts";
import { runTraining } from "../../src/train/run.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { tinyRunConfig, writeTinyTokens } from "../support/tiny-job.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string;
const EOS = 250;

function config(over: Partial<RunConfigInput> = {}): RunConfigInput {
  const sections = { train: { steps: 8 }, optim: { maxGradNorm: 0.5 }, checkpoint: { saveInterval: 0, keep: 1 } };
  return { ...tinyRunConfig("ev", join(dir, "tokens.u32"), sections), ...over };
}

const withEval = (extra: object = {}) => config({
  eval: {
    everySteps: 3, atStart: true, atEnd: true,
    sets: [
      { name: "win", paths: [join(dir, "eval.u32")], instances: "windows" },
      { name: "doc", paths: [join(dir, "eval.u32")], instances: "documents", eosId: EOS, maxTokens: 200 },
    ],
    ...extra,
  },
});

const lines = (runDir: string) => readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));

beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-inloop-"));
  writeTinyTokens(join(dir, "tokens.u32"));
  // other text: 9 windows of 16; documents ending in EOS 250, of 19 tokens (cut to 16) and, after 100, of 3 to 7
  writeFileSync(join(dir, "eval.u32"), Uint32Array.from({ length: 16 * 9 + 5 }, (_, i) => (i % 19 === 18 || (i > 100 && i % 7 === 3) ? EOS : (i * 11 + (i >> 2)) % 240)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("in-loop eval", () => {
  const logged: string[] = [];
  beforeAll(async () => {
    const be = createBackend("cpu");
    await runTraining(be, validateConfig(config(), "test"), join(dir, "plain"), { log: () => {} });
    await runTraining(be, validateConfig(withEval(), "test"), join(dir, "eval"), { log: (l) => logged.push(l) });
  }, 120_000);

  test("training is bitwise the same with and without eval: loss, grad norm, final weights and moments", () => {
    const steps = (d: string) => lines(d).filter((r) => r.eval === undefined);
    const a = steps(join(dir, "plain")), b = steps(join(dir, "eval"));
    expect(b.map((r) => [r.step, r.loss, r.grad_norm])).toEqual(a.map((r) => [r.step, r.loss, r.grad_norm]));
    const [ca, cb] = [listCheckpoints(join(dir, "plain")).pop()!, listCheckpoints(join(dir, "eval")).pop()!];
    const wa = loadCheckpoint(ca.path), wb = loadCheckpoint(cb.path);
    expect(Buffer.from(wb.model.buffer).equals(Buffer.from(wa.model.buffer))).toBe(true);
    expect(Buffer.from(wb.adamV!.buffer).equals(Buffer.from(wa.adamV!.buffer))).toBe(true);
  });

  test("metrics.jsonl: a record per set at the start, every 3 steps and at the end", () => {
    const ev = lines(join(dir, "eval")).filter((r) => r.eval !== undefined);
    expect(ev.map((r) => [r.step, r.eval, r.kind])).toEqual([0, 3, 6, 8].flatMap((s) => [[s, "win", "lm"], [s, "doc", "lm"]]));
    for (const r of ev) {
      expect(r.loss).toBeCloseTo(r.ce_loss + r.z_loss, 12);
      expect(r.ppl).toBeCloseTo(Math.exp(r.ce_loss), 9);
    }
    const win = ev.filter((r) => r.eval === "win");
    expect(win[0]).toMatchObject({ n_instances: 9, n_tokens: 9 * 15 });
    // the model learns: held-out loss moves from its initial value
    expect(win[3].loss).not.toBe(win[0].loss);
  });

  test("the step line carries the eval; the final summary puts the held-out loss beside the training loss", () => {
    expect(logged.find((l) => l.startsWith("eval: "))).toMatch(/win \(9 × 16 tokens, 135 scored\), doc .*at the start, every 3 steps, at the end/);
    expect(logged.filter((l) => / \| eval win \d/.test(l)).length).toBe(4);
    const last = lines(join(dir, "eval")).filter((r) => r.eval === "win").pop();
    expect(logged.find((l) => l.startsWith("loss: "))).toContain(`| win ${last.loss.toFixed(4)} (step 8) | doc `);
  });

  test("olmo eval on the final checkpoint gives the in-loop numbers, bit for bit (windows and documents)", () => {
    const ckpt = listCheckpoints(join(dir, "eval")).pop()!.path;
    const ev = lines(join(dir, "eval")).filter((r) => r.step === 8 && r.eval !== undefined);
    for (const [name, extra] of [["win", []], ["doc", ["--documents", "--eos", `${EOS}`, "--max-tokens", "200"]]] as const) {
      const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "eval", "--from", ckpt, "--data", join(dir, "eval.u32"), "--seq-len", "16", "--batch", "2", "--json", ...extra],
        { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu", OLMO_THREADS: "1" } });
      expect(p.stderr.toString()).toBe("");
      const out = JSON.parse(p.stdout.toString());
      const rec = ev.find((r) => r.eval === name);
      expect({ name, ce: out.ce_loss, z: out.z_loss, loss: out.loss, n: out.n_tokens }).toEqual({ name, ce: rec.ce_loss, z: rec.z_loss, loss: rec.loss, n: rec.n_tokens });
    }
  });

  test("an eval set that cannot be opened fails the run at its start, leaving nothing", async () => {
    const bad = join(dir, "bad");
    const cfg = validateConfig(config({ eval: { sets: [{ paths: [join(dir, "missing.u32")] }] } }), "test");
    await expect(runTraining(createBackend("cpu"), cfg, bad, { log: () => {} })).rejects.toThrow(/token file not found: .*missing\.u32/);
    expect(existsSync(join(bad, "metrics.jsonl"))).toBe(false);
    expect(existsSync(join(bad, "config.json"))).toBe(false);
  });
});
