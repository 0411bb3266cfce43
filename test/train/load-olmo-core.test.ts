// checkpoint.loadPath pointed at an OLMo-core step folder (the OLMo-2 release's "OLMo format"):
// stage 2's load (loadTrainerState false) takes its weights, both Adam moments and the per-tensor
// step counters, exactly as from the same checkpoint imported into our format; TP=2 and DP=2 runs
// read their parts of it and match one process; loadTrainerState true continues its step and
// refuses data that is not the data it was trained on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadCheckpoint } from "../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../src/checkpoint/naming.ts";
import { openOlmoCoreCheckpoint } from "../../src/checkpoint/olmo-core/read.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { maxRel, metrics, olmo } from "../parallel/run-compare.ts";

const fixture = resolve(import.meta.dir, "../checkpoint/olmo-core/fixtures/step5");
let dir: string, cfgPath: string;

beforeAll(() => {
  ensureNativeBuilt("cpu");
  dir = mkdtempSync(join(tmpdir(), "olmo-load-oc-"));
  writeFileSync(join(dir, "tokens.u32"), Uint32Array.from({ length: 16 * 512 }, (_, i) => (i * 13 + (i >> 4)) % 250));
  cfgPath = join(dir, "oc.config.ts");
  writeFileSync(cfgPath, `export default ${JSON.stringify({
    name: "from-olmo-core", stage: 2, ingredient: 1,
    model: { dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 64, vocabSize: 256, maxSeqLen: 64 },
    data: { paths: [join(dir, "tokens.u32")], seed: 1110 },
    train: { seqLen: 16, globalBatchInstances: 4, microBatchInstances: 2, steps: 3 },
    optim: { lr: 1e-3, stepIncrementBug: true, schedule: { kind: "linear", warmupSteps: 0, alpha: 0 } },
    checkpoint: { saveInterval: 0, keep: 1, loadPath: fixture, loadTrainerState: false },
    backend: "cpu",
  })};\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const final = (runDir: string) => loadCheckpoint(listCheckpoints(runDir).at(-1)!.path);
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe("checkpoint.loadPath = an OLMo-core step folder", () => {
  test("weights, moments and per-tensor counters: bitwise the run from the same checkpoint imported into our format", async () => {
    const imported = join(dir, "imported");
    const imp = await olmo(["import-olmo-core", fixture, "--out", imported]);
    expect(imp.err).toBe("");
    const info = await olmo(["ckpt", "info", imported, "--quick"]); // its data cursor is OLMo-core's (per epoch)
    expect(info.code).toBe(0);
    expect(info.out).toMatch(/adam step\s+4…5 \(per tensor\)/);
    const [a, b] = [join(dir, "via-native"), join(dir, "direct")];
    const ra = await olmo(["train", cfgPath, "--run-dir", a, `--checkpoint.loadPath=${imported}`]);
    const rb = await olmo(["train", cfgPath, "--run-dir", b]);
    expect([ra.err, rb.err]).toEqual(["", ""]);
    expect(rb.out).toContain("(an OLMo-core checkpoint) (weights and optimizer state; fresh step, data order and LR)");
    expect(metrics(b).map((m) => m.loss)).toEqual(metrics(a).map((m) => m.loss));
    const fa = final(a), fb = final(b);
    expect(same(fb.model, fa.model) && same(fb.adamM!, fa.adamM!) && same(fb.adamV!, fa.adamV!)).toBe(true);
    // the counters are OLMo-core's, per tensor (this fixture's w_v of block 0 is at 4, the rest at 5), frozen by the bug
    const r = openOlmoCoreCheckpoint(fixture);
    try {
      for (const [name, c] of Object.entries(fb.stepCounters!)) expect({ name, c: c as number | null }).toEqual({ name, c: r.stepCounter(name) });
    } finally {
      r.close();
    }
    expect(new Set(Object.values(fb.stepCounters!))).toEqual(new Set([4, 5]));
    expect(metrics(b).map((m) => m.step)).toEqual([1, 2, 3]); // fresh trainer state
  }, 60_000);

  for (const [name, env, n] of [["TP=2", { OLMO_TP: "2" }, 2], ["DP=2", {}, 2]] as const) {
    test(`${name} reads its parts of the step folder and trains as one process does`, async () => {
      const runDir = join(dir, `par-${name}`);
      const r = await olmo(["launch", "--nproc-per-node", String(n), "--", "train", cfgPath, "--run-dir", runDir, "--quiet"], env);
      expect(r.err).toBe("");
      const one = metrics(join(dir, "direct")), par = metrics(runDir);
      for (let i = 0; i < one.length; i++) expect(Math.abs(par[i].loss - one[i].loss) / one[i].loss).toBeLessThan(1e-6);
      expect(maxRel(final(runDir).model, final(join(dir, "direct")).model)).toBeLessThan(3e-4);
      expect(final(runDir).stepCounters).toEqual(final(join(dir, "direct")).stepCounters);
    }, 60_000);
  }

  test("the model_and_optim/ folder itself is accepted as the load path", async () => {
    const runDir = join(dir, "subfolder");
    const r = await olmo(["train", cfgPath, "--run-dir", runDir, "--quiet", `--checkpoint.loadPath=${join(fixture, "model_and_optim")}`]);
    expect(r.err).toBe("");
    expect(metrics(runDir).map((m) => m.loss)).toEqual(metrics(join(dir, "direct")).map((m) => m.loss));
  }, 30_000);

  test("loadTrainerState true: the step continues from train/rank0.pt; other data than it was trained on is refused in one line", async () => {
    // the fixture's loader: 8 instances of 64 tokens a batch, seed 34521, 5 batches consumed
    const cont = ["--checkpoint.loadTrainerState=true", "--train.steps=7", "--data.seed=34521", "--train.seqLen=64", "--train.globalBatchInstances=8",
      "--train.microBatchInstances=4", "--quiet", "--accept-change=train.steps,optim.lr"]; // its run had 100 steps at lr 6e-4
    const refused = await olmo(["train", cfgPath, "--run-dir", join(dir, "cont-refused"), ...cont]);
    expect(refused.code).toBe(2);
    expect(refused.err.trim().split("\n")).toHaveLength(1);
    expect(refused.err).toContain("resume from OLMo-core: the dataset differs from the one the checkpoint was trained on");
    // a new sequence length is a change to accept first (the resume check); then the data rule decides
    const shorter = await olmo(["train", cfgPath, "--run-dir", join(dir, "cont-seq"), ...cont.filter((a) => !a.startsWith("--accept-change")),
      "--train.seqLen=32", "--train.globalBatchInstances=16", "--accept-change=train.steps,optim.lr,train.seqLen"]);
    expect(shorter.err.trim()).toEndWith("resume from OLMo-core: the checkpoint's data order shuffles instances of 64 tokens, this run's instances of 32 tokens " +
      "(data.maxTargetSeqLen, else train.seqLen): the order would not continue; set data.maxTargetSeqLen 64 (a sequence length that divides it may differ)");
    const runDir = join(dir, "cont");
    const r = await olmo(["train", cfgPath, "--run-dir", runDir, ...cont, "--data.ignoreFingerprintMismatch=true"]);
    expect(r.err).toBe("");
    expect(metrics(runDir).map((m) => m.step)).toEqual([6, 7]); // the fixture stopped at global step 5
    expect(final(runDir).trainState).toMatchObject({ step: 7 });
  }, 30_000);

  test("a model that does not match the run's is refused before anything is read", async () => {
    const r = await olmo(["train", cfgPath, "--run-dir", join(dir, "wrong"), "--quiet", "--model.ffnHidden=128"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/checkpoint is of another model: .*ffnHidden/);
  });
});
