// OLMo-core step folders against real PyTorch 2.6: torch.distributed.checkpoint's own save and
// load (one process, and two gloo ranks with FSDP2's fully_shard) of state dicts built the way
// OLMo-core builds them (torch26/olmo_core_state.py says how, citing OLMo-core @ d7301e62), read
// and written by olmo. Skipped, with the reason, where the torch 2.6 chroot is not provisioned.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeReader } from "../../../src/checkpoint/native/read.ts";
import { listCheckpoints } from "../../../src/checkpoint/naming.ts";
import { exportOlmoCore } from "../../../src/checkpoint/olmo-core/export.ts";
import { importOlmoCore } from "../../../src/checkpoint/olmo-core/import.ts";
import { olmoCoreName } from "../../../src/checkpoint/olmo-core/names.ts";
import { paramSpecs } from "../../../src/model/params.ts";
import { olmo } from "../../parallel/run-compare.ts";
import { ensureNativeBuilt } from "../../support/build.ts";
import { inChroot, runTorch26, torch26Status } from "../../support/torch26.ts";
import { cleanupTemp, tempDir } from "../helpers.ts";

const SCRIPT = join(import.meta.dir, "torch26", "olmo_core_state.py");
const skip = torch26Status() !== true;
if (skip) console.log(`torch 2.6 tests skipped: ${torch26Status()}`);

afterAll(cleanupTemp);

type Optim = "skipstep" | "adamw";
interface Setup {
  optim: Optim;
  compile?: boolean;
  world?: number;
}

let port = 29600 + Math.floor(Math.random() * 300);

/** Run the script in the chroot; a non-zero exit fails the test with the script's last lines. */
function py(cmd: string, dir: string, s: Setup, extra: string[] = []): void {
  const args = [inChroot(SCRIPT), cmd, inChroot(dir), "--optim", s.optim, "--world", String(s.world ?? 1), "--port", String(port++), ...extra];
  if (s.compile) args.push("--compile");
  const r = runTorch26(args);
  expect({ code: r.code, err: r.code === 0 ? "" : r.err.trim().split("\n").slice(-4).join("\n") }).toEqual({ code: 0, err: "" });
}

/** What real torch 2.6 loads from a step folder into an OLMo-core-shaped model and optimizer (strict). */
function loaded(dir: string, s: Setup): Record<string, any> {
  const out = join(tempDir("t26-report"), "report.json");
  py("load", dir, s, ["--report", inChroot(out)]);
  return JSON.parse(readFileSync(out, "utf8"));
}

function saved(s: Setup): string {
  const dir = join(tempDir("t26-save"), "step2");
  py("save", dir, s);
  return dir;
}

describe.skipIf(skip)("real torch 2.6: OLMo-core folders in and out", () => {
  test("SkipStepAdamW with compile=True (lr as a tensor): import -> export loads back with dcp.load, every weight, moment, counter and param-group field as saved", () => {
    const s: Setup = { optim: "skipstep", compile: true };
    const src = saved(s), d = tempDir("t26-rt");
    importOlmoCore(src, join(d, "native"));
    exportOlmoCore(join(d, "native"), join(d, "oc"));
    const want = loaded(src, s), got = loaded(join(d, "oc"), s);
    expect(want.param_groups[1].lr).toMatchObject({ tensor: "float32", shape: [] });
    expect(got).toEqual(want);
  }, 120_000);

  test("every non-tensor item of an export unpickles in Python with no class, call or persistent id allowed (what torch.save of a real param group also needs none of)", () => {
    const s: Setup = { optim: "skipstep", compile: true };
    const src = saved(s), d = tempDir("t26-plain");
    importOlmoCore(src, join(d, "native"));
    exportOlmoCore(join(d, "native"), join(d, "oc"));
    const check = (dir: string) => {
      const out = join(tempDir("t26-plain-report"), "r.json");
      const r = runTorch26([inChroot(SCRIPT), "plain-check", inChroot(dir), "--report", inChroot(out)]);
      expect({ code: r.code, err: r.code ? r.err.split("\n").slice(-3).join("\n") : "" }).toEqual({ code: 0, err: "" });
      return JSON.parse(readFileSync(out, "utf8"));
    };
    expect(check(src)).toEqual({ items: 14, bad: [] }); // what real torch wrote: plain data
    expect(check(join(d, "oc"))).toEqual({ items: 14, bad: [] });
  }, 120_000);

  test("an FSDP2 save over 2 gloo ranks (uneven row blocks) -> import -> export loads back on 1 rank and on 2 FSDP2 ranks", () => {
    const s: Setup = { optim: "adamw", world: 2 };
    const src = saved(s), d = tempDir("t26-fsdp");
    importOlmoCore(src, join(d, "native"));
    exportOlmoCore(join(d, "native"), join(d, "oc"));
    const want = loaded(src, { ...s, world: 1 });
    expect(loaded(join(d, "oc"), { ...s, world: 1 })).toEqual(want);
    expect(loaded(join(d, "oc"), s)).toEqual(want);
  }, 180_000);
});

/** Train the script's model (d 32, 2 layers, 4/2 heads, ffn 64, vocab 256) for 3 steps of 4 × 16 tokens over 2-instance chunks; its last checkpoint. */
async function train(checkpoint: Record<string, unknown> = {}): Promise<{ ckpt: string; tokens: string }> {
  ensureNativeBuilt("cpu");
  const dir = tempDir("t26-train"), tokens = join(dir, "tokens.u32"), cfg = join(dir, "run.config.ts"), runDir = join(dir, "run");
  writeFileSync(tokens, Uint32Array.from({ length: 16 * 64 }, (_, i) => (i * 13 + (i >> 4)) % 250));
  writeFileSync(cfg, `export default ${JSON.stringify({
    name: "t26", model: { dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnHidden: 64, vocabSize: 256, maxSeqLen: 64 },
    data: { paths: [tokens], seed: 1110, maxTargetSeqLen: 32 },
    train: { seqLen: 16, globalBatchInstances: 4, microBatchInstances: 2, steps: 3 },
    optim: { lr: 1e-3, skipSteps: true, schedule: { kind: "cosine", warmupSteps: 1, alpha: 0.1, tMaxSteps: 10 } },
    checkpoint: { saveInterval: 0, keep: 1, loadTrainerState: false, ...checkpoint }, backend: "cpu",
  })};\n`);
  const res = await olmo(["train", cfg, "--run-dir", runDir, "--quiet"]);
  expect(res.err).toBe("");
  return { ckpt: listCheckpoints(runDir).at(-1)!.path, tokens };
}

/** sha256 (16 hex digits) of each tensor's fp32 bytes in OLMo-core names, as the script reports them. */
function digests(ckpt: string): Record<string, Record<string, string>> {
  const r = new NativeReader(ckpt);
  const out: Record<string, Record<string, string>> = { model: {}, exp_avg: {}, exp_avg_sq: {} };
  try {
    for (const s of paramSpecs(r.meta.model)) {
      for (const [g, k] of [["model", "model"], ["adam_m", "exp_avg"], ["adam_v", "exp_avg_sq"]] as const) {
        const buf = new Float32Array(s.numel);
        r.read(g, s.name, buf);
        out[k][olmoCoreName(s.name)] = createHash("sha256").update(new Uint8Array(buf.buffer)).digest("hex").slice(0, 16);
      }
    }
  } finally {
    r.close();
  }
  return out;
}

const exported = (ckpt: string) => {
  const out = join(tempDir("t26-exp"), "step3");
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, "../../../src/cli/main.ts"), "export-olmo-core", ckpt, "--out", out], { stderr: "pipe", stdout: "pipe" });
  expect(p.stderr.toString()).toBe("");
  return out;
};

describe.skipIf(skip)("real torch 2.6: OLMo-core continues a checkpoint olmo trained", () => {
  test("a run of our own: the export loads into torch's AdamW and into SkipStepAdamW (compiled or not), every weight and moment as trained", async () => {
    const { ckpt } = await train();
    const oc = exported(ckpt), want = digests(ckpt);
    for (const s of [{ optim: "adamw" }, { optim: "skipstep" }, { optim: "skipstep", compile: true }] as Setup[]) {
      const got = loaded(oc, s);
      expect({ s, model: got.model, m: got.exp_avg, v: got.exp_avg_sq }).toEqual({ s, model: want.model, m: want.exp_avg, v: want.exp_avg_sq });
      expect(Object.values(got.step as Record<string, number>)).toEqual(Array(25).fill(3));
    }
  }, 180_000);

  test("started from OLMo-core (AdamW; SkipStepAdamW with compile=True), trained, exported: the origin's optimizer loads it, a compiled lr still a tensor at the run's lr", async () => {
    for (const s of [{ optim: "adamw" }, { optim: "skipstep", compile: true }] as Setup[]) {
      const src = saved(s);
      const { ckpt } = await train({ loadPath: src });
      const got = loaded(exported(ckpt), s);
      expect(got.model).toEqual(digests(ckpt).model);
      // the run's lr at step 3 of its cosine (warmup 1, t_max 10, alpha 0.1, peak 1e-3), as the group's lr
      const lr = 1e-4 + (1e-3 - 1e-4) * (1 + Math.cos((Math.PI * 2) / 9)) / 2;
      const g = got.param_groups[1];
      if (s.compile) expect(g.lr).toEqual({ tensor: "float32", shape: [], value: Math.fround(lr) });
      else expect(g.lr.float).toBeCloseTo(lr, 15);
      expect(g.initial_lr).toEqual({ float: 1e-3 });
    }
  }, 240_000);

  test("the trainer state and config.json are what a resuming OLMo-core and its anneal script read: max_steps, sequence lengths, the fingerprint of the data", async () => {
    const { ckpt, tokens } = await train();
    const out = join(tempDir("t26-resume"), "check.json");
    const args = [inChroot(SCRIPT), "resume-check", inChroot(exported(ckpt)), "--seq", "16", "--max-target", "32", "--data", inChroot(tokens),
      "--eos", "100257", "--pad", "100277", "--report", inChroot(out)];
    const r = runTorch26(args);
    expect({ code: r.code, err: r.code ? r.err.split("\n").slice(-3).join("\n") : "" }).toEqual({ code: 0, err: "" });
    const rep = JSON.parse(readFileSync(out, "utf8"));
    expect(rep.problems).toEqual([]);
    expect(rep).toMatchObject({ global_step: 3, max_steps: 3, base_lr: 1e-3, scheduler: { warmup_steps: 1, alpha_f: 0.1, t_max: 10 },
      data_loader: { batches_processed: 3, tokens_processed: 192, seed: 1110, epoch: 1, sequence_length: 16, max_target_sequence_length: 32 } });
  }, 120_000);
});
