// bun run bench:step — one full OLMo-2 training step (forward, backward, AdamW) on the selected
// backend, against three measurements of the same run:
//   - the GEMM-only bound: exactly the GEMM calls of one step (recorded during the warm-up,
//     bench/gemm-calls.ts) replayed alone — the step's time if it did nothing but its GEMMs, at the
//     rate the GEMM library reaches on those shapes now — and the ratio step / bound;
//   - the same step in PyTorch (bench/step_torch.py --serve, a server process);
//   - our step again ("self"), whose spread against the first is the run's noise floor.
// On the CPU the four run interleaved, --steps rounds in rotated order with a pause after each sample
// (bench/interleave.ts), and the
// load average is printed beside every figure, with the fp32 FMA peak measured before and after.
// On a GPU the PyTorch anchor runs after our model is freed (both would not fit beside each other).
// A table of the rounds, the medians, then one JSON line.
// --profile N: after the rounds, N more steps with every kernel call timed by class (CUDA events on
// a GPU, wall clock on the CPU: src/backend/profile.ts), printed as a table with the share of the
// step and the achieved TFLOP/s or GB/s against the peaks (bench/profile-report.ts).
// --recompute none|attention|block: the activation recompute of every layer (train.recompute).
import type { Backend } from "../src/backend/backend.ts";
import { createBackend } from "../src/backend/native-backend.ts";
import { profiledBackend } from "../src/backend/profile.ts";
import { RecomputeModeSchema } from "../src/model/config.ts";
import type { CommandSpec } from "../src/cli/args.ts";
import { benchArgs } from "./args.ts";
import { ModelConfigSchema, paddedVocab } from "../src/model/config.ts";
import { measureFmaPeak } from "./cpu-peak.ts";
import { GemmReplay, gemmFlops, recordGemmCalls } from "./gemm-calls.ts";
import { type Contestant, fmtLoad, interleave, loadNow, median, noiseFloor, OURS_SETTLE_MS, TORCH_SETTLE_MS } from "./interleave.ts";
import { LineServer } from "./line-server.ts";
import { measureStreamBandwidth, profileTable } from "./profile-report.ts";
import { findPython } from "./python.ts";
import { buildStepModel } from "./step-model.ts";

const spec: CommandSpec = {
  name: "bench:step",
  summary: "Time a full training step vs its GEMM-only bound and PyTorch",
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
    { name: "steps", type: "number", help: "timed rounds (each: our step, the GEMM replay, PyTorch's step, our step again)", default: 5 },
    { name: "warmup", type: "number", help: "untimed steps first (at least 1: it records the GEMM calls)", default: 2 },
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
const B = n("batch"), T = n("seq-len"), threads = n("threads"), profileSteps = n("profile"), rounds = Math.max(1, n("steps"));
const recompute = RecomputeModeSchema.safeParse(o.recompute);
if (!recompute.success) {
  console.error(`bench:step: --recompute must be one of ${RecomputeModeSchema.options.join(", ")}, got ${JSON.stringify(o.recompute)}`);
  process.exit(2);
}
const raw = createBackend(process.env.OLMO_BACKEND ?? "auto", { threads });
const cpu = raw.name === "cpu";
console.log(`backend: ${raw.name} — ${raw.deviceName}`);
const loadStart = loadNow();
// the CPU's FMA peak before the steps and after them (a shared machine's load changes)
const fmaBefore = cpu ? measureFmaPeak(threads) : null;
// with --profile the model runs on the timing wrapper (recording only during the profiled steps);
// the GEMM recorder sits on top and notes the calls of the last warm-up step
const prof = profileSteps > 0 ? profiledBackend(raw) : null;
const rec = recordGemmCalls(prof?.backend ?? raw);
const model = buildStepModel(rec.backend, cfg, B, T, recompute.data);
const python = o["no-torch"] ? null : findPython("torch");
if (!o["no-torch"] && !python) console.error("torch anchor skipped: no python3 with torch found (Debian: apt-get install python3-torch; or set OLMO_PYTHON)");
const V = paddedVocab(cfg);

/** PyTorch's step as a server (its own warm-up done); its header line says what it runs */
async function startTorch(): Promise<{ server: LineServer; head: { impl: string; torch: string } } | null> {
  if (!python) return null;
  const server = new LineServer([python, `${import.meta.dir}/step_torch.py`, "--serve", "--d-model", `${cfg.dModel}`, "--layers", `${cfg.nLayers}`,
    "--heads", `${cfg.nHeads}`, "--kv-heads", `${cfg.nKvHeads}`, "--ffn", `${cfg.ffnHidden}`, "--vocab", `${V}`, "--seq-len", `${T}`,
    "--batch", `${B}`, "--steps", `${rounds}`, "--warmup", `${n("warmup")}`, "--threads", `${threads}`, "--device", cpu ? "cpu" : "cuda"], "torch anchor");
  try {
    return { server, head: JSON.parse(await server.readLine()) };
  } catch (e) {
    console.error(`torch anchor failed (install Debian's python3-torch, or pass --no-torch): ${(e as Error).message}`);
    return null;
  }
}
const timeMs = (f: () => void) => () => { const t0 = performance.now(); f(); return performance.now() - t0; };

// the anchor warms up before our steps, not beside them (both would share the cores)
let torch = cpu ? await startTorch() : null;
for (let i = 0; i < Math.max(1, n("warmup")); i++) {
  rec.recording = i === Math.max(1, n("warmup")) - 1;
  model.step();
}
rec.recording = false;
const replay = new GemmReplay(raw, rec.calls);
replay.passMs();
const contestants: Contestant[] = [
  { name: "ours", run: timeMs(model.step), settleMs: OURS_SETTLE_MS },
  { name: "gemm", run: () => replay.passMs(), settleMs: OURS_SETTLE_MS },
  ...(torch ? [{ name: "torch", run: async () => (await torch!.server.request<{ ms: number }>({ op: "step" })).ms, settleMs: TORCH_SETTLE_MS }] : []),
  { name: "self", run: timeMs(model.step), settleMs: OURS_SETTLE_MS },
];
const loads: number[] = [];
const samples = await interleave(contestants.map((c) => ({ ...c, run: async () => { const ms = await c.run(); if (c.name === "self") loads.push(loadNow()[0]); return ms; } })), rounds);
replay.free();

let profile: ReturnType<typeof profileTable> | null = null;
if (prof) {
  const names = model.store.specs.map((s) => s.name);
  prof.profiler.nameWeights(names, (x) => model.store.w(x), (x) => model.store.g(x));
  prof.profiler.recording = true;
  const t0 = performance.now();
  for (let i = 0; i < profileSteps; i++) model.step();
  const stepMs = (performance.now() - t0) / profileSteps;
  prof.profiler.recording = false;
  const totals = prof.profiler.results();
  const peaks = !cpu
    ? { flops: n("peak-tflops") * 1e12, flopsSource: "dense bf16 datasheet peak, --peak-tflops" }
    : (() => {
      const f = measureFmaPeak(threads);
      const best = Math.max(f.gflops, fmaBefore!.gflops);
      return { flops: best * 1e9, flopsSource: `fp32 FMA loop, ${f.threads} threads × ${f.lanes} lanes, best of before / after: ${fmaBefore!.gflops.toFixed(1)} / ${f.gflops.toFixed(1)} GFLOP/s` };
    })();
  const bw = measureStreamBandwidth(raw);
  profile = profileTable(totals, profileSteps, stepMs, { ...peaks, bytesPerS: bw, bytesSource: "olmo_add over 3 × 256 MiB, read + write, measured now" },
    cpu ? "wall time per kernel class (the CPU library is synchronous)" : "device time per kernel class from CUDA events");
  prof.profiler.free();
}
const activationBytes = model.activationBytes;
model.free(); // give the device memory back before a GPU anchor runs in its own process
if (!cpu && python) {
  torch = await startTorch();
  if (torch) samples.torch = await interleave([{ name: "torch", run: async () => (await torch!.server.request<{ ms: number }>({ op: "step" })).ms }], rounds).then((s) => s.torch);
}
await torch?.server.close();
const fmaAfter = cpu ? measureFmaPeak(threads) : null;
const loadEnd = loadNow();

// ---------------------------------------------------------------- report
const ms = median(samples.ours), selfMs = median(samples.self), boundMs = median(samples.gemm);
const torchMs = samples.torch?.length ? median(samples.torch) : NaN;
const tokensPerS = (B * T) / (ms / 1000);
// PaLM convention: 6·N_matmul + 12·L·H·hd·T (N_matmul excludes the input embedding)
const nMatmul = model.store.numel - V * cfg.dModel;
const flopsPerToken = 6 * nMatmul + 12 * cfg.nLayers * cfg.dModel * T;
const mfu = !cpu ? (flopsPerToken * tokensPerS) / (n("peak-tflops") * 1e12) : null;
const gemmGflop = gemmFlops(rec.calls) / 1e9, gemmGflops = gemmGflop / (boundMs / 1000);
const peakGflops = cpu ? Math.max(fmaBefore!.gflops, fmaAfter!.gflops) : null;
const floor = noiseFloor(samples.self.map((x, i) => x / samples.ours[i]));
const ratio = Number.isFinite(torchMs) ? torchMs / ms : null;
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

console.log(`rounds (ms; order rotated each round: ${contestants.map((c) => c.name).join(", ")}); load1 after each round`);
console.log(["round".padEnd(6), "ours".padStart(9), "gemm".padStart(9), "torch".padStart(9), "self".padStart(9), "load1".padStart(6)].join(" "));
for (let r = 0; r < rounds; r++) {
  console.log([String(r + 1).padEnd(6), f1(samples.ours[r]).padStart(9), f1(samples.gemm[r]).padStart(9), f1(samples.torch?.[r] ?? NaN).padStart(9),
    f1(samples.self[r]).padStart(9), (loads[r]?.toFixed(2) ?? "-").padStart(6)].join(" "));
}
console.log(`load average (1 5 15 min): start ${fmtLoad(loadStart)}, end ${fmtLoad(loadEnd)}` +
  (cpu ? `; fp32 FMA peak (bench/cpu/fma_peak.c, ${threads} threads) before / after: ${fmaBefore!.gflops.toFixed(1)} / ${fmaAfter!.gflops.toFixed(1)} GFLOP/s` : ""));
console.log(`olmo-bun: ${ms.toFixed(1)} ms/step (median of ${rounds}), ${tokensPerS.toFixed(0)} tokens/s${mfu !== null ? `, MFU ${(mfu * 100).toFixed(1)}%` : ""}` +
  `${recompute.data !== "none" ? ` (recompute ${recompute.data})` : ""}; activations ${(activationBytes / 2 ** 30).toFixed(2)} GiB`);
console.log(`GEMM-only bound: ${boundMs.toFixed(1)} ms = the step's ${rec.calls.length} GEMM calls (${gemmGflop.toFixed(1)} GFLOP) replayed alone, median of ${rounds}: ` +
  `${gemmGflops.toFixed(1)} GFLOP/s${peakGflops ? ` = ${((100 * gemmGflops) / peakGflops).toFixed(0)}% of the FMA peak` : ""}; step / bound = ${(ms / boundMs).toFixed(3)}×`);
console.log(`self-vs-self (our step timed twice per round): median ${selfMs.toFixed(1)} ms, ratio range ${floor.low.toFixed(3)}–${floor.high.toFixed(3)}: noise floor ${floor.floor.toFixed(3)}`);
if (torch && ratio !== null) {
  console.log(`pytorch ${torch.head.torch} (${torch.head.impl}): ${torchMs.toFixed(1)} ms/step (median of ${rounds}), ${((B * T) / (torchMs / 1000)).toFixed(0)} tokens/s; ` +
    `ratio olmo-bun / pytorch: ${ratio.toFixed(2)}×${cpu && ratio < floor.floor ? " (slower, beyond the noise floor)" : ""}`);
}
if (profile) console.log(profile.text);
console.log(JSON.stringify({
  backend: raw.name, device: raw.deviceName, tokens_per_s: tokensPerS, ms_per_step: ms, torch_tokens_per_s: Number.isFinite(torchMs) ? (B * T) / (torchMs / 1000) : null,
  torch_ms_per_step: Number.isFinite(torchMs) ? torchMs : null, torch_impl: torch?.head.impl ?? null, ratio, mfu, flops_per_token: flopsPerToken,
  gemm_bound_ms: boundMs, step_over_gemm_bound: ms / boundMs, gemm_calls: rec.calls.length, gemm_gflop_per_step: gemmGflop, gemm_gflops: gemmGflops,
  fma_peak_gflops: cpu ? [fmaBefore!.gflops, fmaAfter!.gflops] : null, load_start: loadStart, load_end: loadEnd,
  self_ms_per_step: selfMs, noise_floor: floor.floor, self_ratio_range: [floor.low, floor.high], rounds: samples, round_load1: loads,
  recompute: recompute.data, activation_bytes: activationBytes, profile: profile?.rows ?? null, shape: { ...cfg, batch: B, seqLen: T, threads },
}));
