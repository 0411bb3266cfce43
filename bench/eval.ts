// bun run bench:eval — throughput of the in-loop perplexity evaluation (src/eval/lm-eval.ts: eval
// instances → batches → forward → sums) next to the forward the trainer runs on the same model and
// shape, measured in the same run and interleaved (machine noise hits both alike):
//   train    one micro-batch forward + backward (model.step with gradScale 1/N)
//   forward  the bare forward of the training model (model.step with gradScale 0, one prepared batch)
//   eval     LmEvaluator.evaluate over one batch of an eval set on that model (its whole path per call)
// each timed batch by batch, interleaved, medians; then the whole set of `instances` (median of `repeats`).
// The brief's bar: eval ≥ 0.9 × forward. Default shape: configs/tiny.ts (d 64, 4 layers, vocab
// 100,352, micro-batch 2 × 128). Last line: one JSON object.
import { createBackend } from "../src/backend/native-backend.ts";
import type { CommandSpec } from "../src/cli/args.ts";
import { benchArgs } from "./args.ts";
import { openEvalInstances } from "../src/data/eval-instances.ts";
import { ModelConfigSchema } from "../src/model/config.ts";
import { truncatedNormal } from "../src/model/init.ts";
import { Olmo2, shiftLabels } from "../src/model/olmo2.ts";
import { ParamStore } from "../src/model/param-store.ts";
import { LmEvaluator } from "../src/eval/lm-eval.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tiny from "../configs/tiny.ts";

const spec: CommandSpec = {
  name: "bench:eval",
  summary: "In-loop eval throughput vs the training forward of the same shape",
  usage: "bun run bench:eval [options]",
  options: [
    { name: "batch", type: "number", help: "instances per forward (the micro-batch)", default: tiny.train.microBatchInstances },
    { name: "seq-len", type: "number", help: "tokens per instance", default: tiny.train.seqLen },
    { name: "instances", type: "number", help: "instances in the eval set (a multiple of --batch: no padding rows)", default: 32 },
    { name: "repeats", type: "number", help: "timed passes over the set, batch by batch (train, forward, eval in turn)", default: 3 },
    { name: "threads", type: "number", help: "CPU threads", default: navigator.hardwareConcurrency },
  ],
  run: async () => {},
};

const o = benchArgs(spec);
const n = (k: string) => o[k] as number;
const B = n("batch"), T = n("seq-len"), N = n("instances"), threads = n("threads");
if (N % B !== 0) {
  console.error(`bench:eval: --instances ${N} must be a multiple of --batch ${B}`);
  process.exit(2);
}
const cfg = ModelConfigSchema.parse({ ...tiny.model, maxSeqLen: Math.max(T, tiny.model.maxSeqLen) });
const be = createBackend(process.env.OLMO_BACKEND ?? "auto", { threads });
console.log(`backend: ${be.name} — ${be.deviceName}; model d ${cfg.dModel}, ${cfg.nLayers} layers, vocab ${cfg.vocabSize}; batch ${B} × ${T}`);
const store = new ParamStore(be, cfg);
const block = new Float32Array(1 << 20);
truncatedNormal(block, 0.02, 0, "bench");
store.fillEach((s, out) => {
  if (s.init === "ones") out.fill(1);
  else for (let i = 0; i < out.length; i += block.length) out.set(block.subarray(0, Math.min(block.length, out.length - i)), i);
});
const model = new Olmo2(store, cfg, B, T, { training: true });
const dir = mkdtempSync(join(tmpdir(), "olmo-bench-eval-"));
const file = join(dir, "eval.u32");
writeFileSync(file, Uint32Array.from({ length: N * T }, (_, i) => (i * 7919 + 13) % cfg.vocabSize));
const set = openEvalInstances({ paths: [file], dtype: "uint32", seqLen: T, vocabSize: cfg.vocabSize, layout: "windows", eosId: 100257, source: "bench" });
const evaluator = new LmEvaluator(model, { zLossMult: 1e-5 });
const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % cfg.vocabSize);
const targets = shiftLabels(tokens, B, T);
const forwards = N / B;

/** seconds of one call of fn */
function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  be.synchronize();
  return (performance.now() - t0) / 1000;
}
const trainBatch = () => {
  store.zeroGrads();
  model.step(tokens, targets, 1e-5, 1 / (B * (T - 1)));
};
const forwardBatch = () => model.step(tokens, targets, 1e-5, 0);
// one batch of the eval set per call, the evaluator's whole path each time (instances → rows,
// targets, forward, sums, result): interleaved call by call with the bare forward
const oneBatch = openEvalInstances({ paths: [file], dtype: "uint32", seqLen: T, vocabSize: cfg.vocabSize, layout: "windows", eosId: 100257, maxTokens: B * T, source: "bench" });
forwardBatch(); // warm-up
const per = { train: [] as number[], forward: [] as number[], eval: [] as number[] };
for (let r = 0; r < n("repeats") * forwards; r++) {
  per.train.push(time(trainBatch));
  per.forward.push(time(forwardBatch));
  per.eval.push(time(() => evaluator.evaluate(oneBatch)));
}
// and the whole set, `repeats` times: what an in-loop evaluation of N instances takes
const wholeSets: number[] = [];
for (let r = 0; r < n("repeats"); r++) wholeSets.push(time(() => evaluator.evaluate(set)));
rmSync(dir, { recursive: true, force: true });
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const wholeSetS = median(wholeSets);
const m = { train: (B * T) / median(per.train), forward: (B * T) / median(per.forward), eval: (B * T) / median(per.eval) };
const ratio = m.eval / m.forward;
for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(8)} ${v.toFixed(0).padStart(9)} tokens/s   (median of ${per.train.length} batches)`);
console.log(`whole set: ${N} instances in ${wholeSetS.toFixed(2)} s = ${((N * T) / wholeSetS).toFixed(0)} tokens/s (median of ${wholeSets.length})`);
console.log(`eval / forward = ${ratio.toFixed(3)} (bar: ≥ 0.9) ${ratio >= 0.9 ? "PASS" : "FAIL"}`);
console.log(JSON.stringify({ backend: be.name, device: be.deviceName, batch: B, seq_len: T, instances: N, threads, tokens_per_s: m,
  whole_set_tokens_per_s: (N * T) / wholeSetS, eval_over_forward: ratio }));
