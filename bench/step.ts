// bun run bench:step — tokens/s of one full OLMo-2 training step (forward, backward, AdamW) on the
// selected backend, next to the same step in PyTorch measured in the same run (bench/step_torch.py).
// Last line: one JSON object {tokens_per_s, ms_per_step, torch_tokens_per_s, ratio, mfu, ...}.
// --profile N: after the timed steps, N more steps with every kernel call timed by class (CUDA
// events on a GPU, wall clock on the CPU: src/backend/profile.ts), printed as a table with the share
// of the step and the achieved TFLOP/s or GB/s against the peaks (bench/profile-report.ts).
// --recompute none|attention|block: the activation recompute of every layer (train.recompute).
import type { Backend } from "../src/backend/backend.ts";
import { createBackend } from "../src/backend/native-backend.ts";
import { profiledBackend } from "../src/backend/profile.ts";
import { RecomputeModeSchema } from "../src/model/config.ts";
import type { CommandSpec } from "../src/cli/args.ts";
import { benchArgs } from "./args.ts";
import { ModelConfigSchema, paddedVocab } from "../src/model/config.ts";
import { truncatedNormal } from "../src/model/init.ts";
import { Olmo2, shiftLabels } from "../src/model/olmo2.ts";
import { ParamStore } from "../src/model/param-store.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { measureFmaPeak } from "./cpu-peak.ts";
import { measureStreamBandwidth, profileTable } from "./profile-report.ts";
import { findPython } from "./python.ts";

const spec: CommandSpec = {
  name: "bench:step",
  summary: "Time a full training step vs PyTorch",
  usage: "bun run bench:step [options]",
  options: [
    { name: "d-model", type: "number", help: "model width", default: 256 },
    { name: "layers", type: "number", help: "layers", default: 4 },
    { name: "heads", type: "number", help: "query heads", default: 8 },
    { name: "kv-heads", type: "number", help: "key/value heads", default: 4 },
    { name: "ffn", type: "number", help: "SwiGLU hidden size", default: 768 },
    { name: "vocab", type: "number", help: "vocabulary (padded to 128)", default: 100352 },
    { name: "seq-len", type: "number", help: "tokens per instance", default: 256 },
    { name: "batch", type: "number", help: "instances per step", default: 8 },
    { name: "steps", type: "number", help: "timed steps", default: 5 },
    { name: "warmup", type: "number", help: "untimed steps first", default: 2 },
    { name: "threads", type: "number", help: "CPU threads (ours and torch)", default: navigator.hardwareConcurrency },
    { name: "no-torch", type: "boolean", help: "skip the PyTorch anchor" },
    { name: "peak-tflops", type: "number", help: "peak dense bf16 TFLOP/s for MFU (H100 SXM)", default: 989.4 },
    { name: "profile", type: "number", help: "profiled steps after the timed ones (0: none)", default: 0 },
    { name: "recompute", type: "string", help: "activation recompute of every layer: none, attention, block", default: "none" },
  ],
  run: async () => {},
};

const o = benchArgs(spec);
const n = (k: string) => o[k] as number;
const cfg = ModelConfigSchema.parse({
  dModel: n("d-model"), nLayers: n("layers"), nHeads: n("heads"), nKvHeads: n("kv-heads"), ffnHidden: n("ffn"),
  vocabSize: n("vocab"), maxSeqLen: n("seq-len"),
});
const B = n("batch"), T = n("seq-len"), threads = n("threads"), profileSteps = n("profile");
const recompute = RecomputeModeSchema.safeParse(o.recompute);
if (!recompute.success) {
  console.error(`bench:step: --recompute must be one of ${RecomputeModeSchema.options.join(", ")}, got ${JSON.stringify(o.recompute)}`);
  process.exit(2);
}
const raw = createBackend(process.env.OLMO_BACKEND ?? "auto", { threads });
console.log(`backend: ${raw.name} — ${raw.deviceName}`);
// with --profile the model runs on the timing wrapper (recording only during the profiled steps)
const prof = profileSteps > 0 ? profiledBackend(raw) : null;
const be: Backend = prof?.backend ?? raw;
const store = new ParamStore(be, cfg);
// Weights only need realistic magnitudes here: tile one block of truncated-normal samples, since
// generating billions of them in JS would take longer than the benchmark.
const block = new Float32Array(1 << 22);
truncatedNormal(block, 0.02, 0, "bench");
store.fillEach((s, out) => {
  if (s.init === "ones") out.fill(1);
  else for (let i = 0; i < out.length; i += block.length) out.set(block.subarray(0, Math.min(block.length, out.length - i)), i);
});
const model = new Olmo2(store, cfg, B, T, { training: true, recompute: recompute.data });
const opt = new AdamW(store, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, stepIncrementBug: false });
const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % cfg.vocabSize);
const targets = shiftLabels(tokens, B, T);

function step(): void {
  store.zeroGrads();
  model.step(tokens, targets, 1e-5, 1 / (B * (T - 1)));
  opt.update(1e-4);
  be.synchronize();
}
// the CPU's FMA peak before the steps and after the profile (a shared machine's load changes)
const fmaBefore = prof && raw.name === "cpu" ? measureFmaPeak(threads) : null;
for (let i = 0; i < n("warmup"); i++) step();
const times: number[] = [];
for (let i = 0; i < n("steps"); i++) {
  const t0 = performance.now();
  step();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const ms = times[Math.floor(times.length / 2)];
const tokensPerS = (B * T) / (ms / 1000);
// PaLM convention: 6·N_matmul + 12·L·H·hd·T (N_matmul excludes the input embedding)
const V = paddedVocab(cfg);
const nMatmul = store.numel - V * cfg.dModel;
const flopsPerToken = 6 * nMatmul + 12 * cfg.nLayers * cfg.dModel * T;
const mfu = be.name === "cuda" ? (flopsPerToken * tokensPerS) / (n("peak-tflops") * 1e12) : null;
console.log(`olmo-bun: ${ms.toFixed(1)} ms/step, ${tokensPerS.toFixed(0)} tokens/s${mfu !== null ? `, MFU ${(mfu * 100).toFixed(1)}%` : ""}` +
  `${recompute.data !== "none" ? ` (recompute ${recompute.data})` : ""}; activations ${(model.activationBytes / 2 ** 30).toFixed(2)} GiB`);

let profile: ReturnType<typeof profileTable> | null = null;
if (prof) {
  const names = store.specs.map((s) => s.name);
  prof.profiler.nameWeights(names, (x) => store.w(x), (x) => store.g(x));
  prof.profiler.recording = true;
  const t0 = performance.now();
  for (let i = 0; i < profileSteps; i++) step();
  const stepMs = (performance.now() - t0) / profileSteps;
  prof.profiler.recording = false;
  const totals = prof.profiler.results();
  const cuda = raw.name === "cuda";
  const peaks = cuda
    ? { flops: n("peak-tflops") * 1e12, flopsSource: "dense bf16 datasheet peak, --peak-tflops" }
    : (() => {
      const f = measureFmaPeak(threads);
      const best = Math.max(f.gflops, fmaBefore!.gflops);
      return { flops: best * 1e9, flopsSource: `fp32 FMA loop, ${f.threads} threads × ${f.lanes} lanes, best of before / after: ${fmaBefore!.gflops.toFixed(1)} / ${f.gflops.toFixed(1)} GFLOP/s` };
    })();
  const bw = measureStreamBandwidth(raw);
  profile = profileTable(totals, profileSteps, stepMs, { ...peaks, bytesPerS: bw, bytesSource: "olmo_add over 3 × 256 MiB, read + write, measured now" },
    cuda ? "device time per kernel class from CUDA events" : "wall time per kernel class (the CPU library is synchronous)");
  console.log(profile.text);
  prof.profiler.free();
}

const activationBytes = model.activationBytes;
// Give the device memory back before the anchor runs in its own process.
opt.free();
model.free();
store.free();
be.synchronize();

let torch: { tokens_per_s: number; ms_per_step: number; impl: string; torch: string } | null = null;
const python = o["no-torch"] ? null : findPython("torch");
if (!o["no-torch"] && !python) console.error("torch anchor skipped: no python3 with torch found (Debian: apt-get install python3-torch; or set OLMO_PYTHON)");
if (python) {
  const py = Bun.spawnSync([python, `${import.meta.dir}/step_torch.py`, "--d-model", `${cfg.dModel}`, "--layers", `${cfg.nLayers}`,
    "--heads", `${cfg.nHeads}`, "--kv-heads", `${cfg.nKvHeads}`, "--ffn", `${cfg.ffnHidden}`, "--vocab", `${V}`, "--seq-len", `${T}`,
    "--batch", `${B}`, "--steps", `${n("steps")}`, "--warmup", `${n("warmup")}`, "--threads", `${threads}`,
    "--device", be.name === "cuda" ? "cuda" : "cpu"], { stdout: "pipe", stderr: "pipe" });
  if (py.exitCode !== 0) {
    console.error(`torch anchor failed (install Debian's python3-torch, or pass --no-torch):\n${py.stderr.toString().slice(-2000)}`);
  } else {
    torch = JSON.parse(py.stdout.toString().trim().split("\n").pop()!);
    console.log(`pytorch ${torch!.torch} (${torch!.impl}): ${torch!.ms_per_step.toFixed(1)} ms/step, ${torch!.tokens_per_s.toFixed(0)} tokens/s`);
  }
}
const ratio = torch ? tokensPerS / torch.tokens_per_s : null;
if (ratio !== null) console.log(`ratio olmo-bun / pytorch: ${ratio.toFixed(2)}×`);
console.log(JSON.stringify({
  backend: be.name, device: be.deviceName, tokens_per_s: tokensPerS, ms_per_step: ms, torch_tokens_per_s: torch?.tokens_per_s ?? null,
  torch_impl: torch?.impl ?? null, ratio, mfu, flops_per_token: flopsPerToken, recompute: recompute.data, activation_bytes: activationBytes,
  profile: profile?.rows ?? null, shape: { ...cfg, batch: B, seqLen: T, threads },
}));
