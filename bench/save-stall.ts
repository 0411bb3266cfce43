// bun run bench:save-stall [--steps 12] [--every 3] [--layers 4] [--dir /tmp]
// The step-time cost of a checkpoint save, synchronous vs asynchronous (checkpoint.async), measured
// in the same invocation on the same run: `olmo train` of a model with the real 100,352-row vocabulary
// (so a checkpoint is hundreds of MB) three times — no saves, a save every --every steps written on
// the training thread, and the same saves written by the background worker — each with one OpenMP
// thread, so that on a 2-core machine the worker has a core of its own (on a GPU machine the host
// cores are idle during a step). Per run: the median interval between consecutive step records
// (metrics.jsonl time_s) on steps that follow a save and on the others; the stall is their difference.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { paramSpecs, totalParams } from "../src/model/params.ts";
import { ModelConfigSchema } from "../src/model/config.ts";
import { readMetricsHistory } from "../src/metrics/metrics-history.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "12" }, every: { type: "string", default: "3" },
  layers: { type: "string", default: "4" }, dir: { type: "string", default: tmpdir() } } });
const steps = Number(values.steps), every = Number(values.every);
const root = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(values.dir!, "olmo-save-stall-"));
const model = { dModel: 512, nLayers: Number(values.layers), nHeads: 8, nKvHeads: 8, ffnHidden: 2048, vocabSize: 100_278, maxSeqLen: 128 };
const params = totalParams(paramSpecs(ModelConfigSchema.parse(model)));
writeFileSync(join(dir, "tokens.u32"), Uint32Array.from({ length: 128 * 8 * (steps + 2) }, (_, i) => (i * 7919) % 100_000));
const cfgPath = join(dir, "stall.config.ts");
writeFileSync(cfgPath, `export default ${JSON.stringify({
  name: "stall", model, data: { paths: [join(dir, "tokens.u32")], seed: 1 },
  train: { seqLen: 128, globalBatchInstances: 4, microBatchInstances: 4, steps, logEvery: 1000 },
  optim: { lr: 1e-3, schedule: { kind: "constant", warmupSteps: 0 } }, checkpoint: { saveInterval: 0, keep: 2 }, backend: "cpu",
})};\n`);

function run(name: string, over: string[]): { plain: number; afterSave: number; wallS: number } {
  const runDir = join(dir, name);
  const t0 = performance.now();
  const p = Bun.spawnSync([process.execPath, join(root, "src/cli/main.ts"), "train", cfgPath, "--run-dir", runDir, "--quiet", ...over],
    { cwd: root, env: { ...process.env, OLMO_THREADS: "1" }, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${name}: ${p.stderr.toString()}`);
  const wallS = (performance.now() - t0) / 1000;
  const t = Array.from(readMetricsHistory(join(runDir, "metrics.jsonl")).steps.column("time_s")!); // the run's history: one time per step
  const plain: number[] = [], afterSave: number[] = [];
  for (let s = 2; s <= t.length; s++) ((s - 1) % every === 0 && over.length ? afterSave : plain).push(t[s - 1] - t[s - 2]);
  const median = (xs: number[]) => (xs.length ? xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
  rmSync(runDir, { recursive: true, force: true });
  return { plain: median(plain), afterSave: median(afterSave), wallS };
}

const ckptBytes = params * 12;
console.log(`model: ${(params / 1e6).toFixed(1)}M params, checkpoint ${(ckptBytes / 1e9).toFixed(2)} GB (weights + Adam m, v), ` +
  `${steps} steps, a save every ${every} steps, in ${dir}`);
const none = run("none", []);
const sync = run("sync", [`--checkpoint.saveInterval=${every}`]);
const asyn = run("async", [`--checkpoint.saveInterval=${every}`, "--checkpoint.async=true"]);
const rows: [string, { plain: number; afterSave: number; wallS: number }][] = [["no saves", none], ["sync saves", sync], ["async saves", asyn]];
console.log("\n| run | step (s, median) | step after a save (s) | stall per save (s) | wall (s) |\n|---|---|---|---|---|");
for (const [n, r] of rows) {
  const stall = Number.isFinite(r.afterSave) ? (r.afterSave - none.plain).toFixed(3) : "—";
  console.log(`| ${n} | ${r.plain.toFixed(3)} | ${Number.isFinite(r.afterSave) ? r.afterSave.toFixed(3) : "—"} | ${stall} | ${r.wallS.toFixed(1)} |`);
}
const stallSync = sync.afterSave - none.plain, stallAsync = asyn.afterSave - none.plain;
console.log(`\nasync stall / sync stall: ${(stallAsync / stallSync).toFixed(3)} (sync writes ${(ckptBytes / 1e9 / stallSync).toFixed(2)} GB/s of stall)`);
console.log(JSON.stringify({ params, ckptBytes, steps, every, none, sync, async: asyn }));
rmSync(dir, { recursive: true, force: true });
