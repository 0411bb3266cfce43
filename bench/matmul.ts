// bun run bench:matmul — our olmo_matmul vs torch.matmul on the same shapes (bench/matmul-shapes.ts):
// cuBLASLt in bf16 on a GPU (OLMO_BACKEND=cuda), or without a usable GPU (or with OLMO_BACKEND=cpu)
// the CPU library's fp32 GEMM (oneDNN or OpenBLAS, whichever the build linked) on the shapes scaled
// down to <= 2 GFLOP, against torch on the CPU (fp32, the same thread count) and the machine's fp32
// FMA peak (bench/cpu/fma_peak.c), measured in the same run before and after.
// Per shape: warm-up, then OLMO_MATMUL_ROUNDS rounds of three contestants in rotated order, N timed
// reps each, device-synchronized: ours, torch (bench/matmul_torch.py, a server process so that its
// timings interleave with ours) and ours again ("self"), with a pause after each sample on the CPU
// (interleave.ts: PyTorch's BLAS threads spin on after each call). The medians give ratio = torch / ours
// (> 1: ours faster) and the self-vs-self ratio; the spread of the self ratios over all shapes is the
// run's noise floor (bench/interleave.ts), and a shape is called slower only below it. Each row
// carries the 1-minute load average when it was measured. A table, then one JSON line.
// Env: OLMO_MATMUL_REPS (default 10; CPU 5), OLMO_MATMUL_ROUNDS (default 3; CPU 5), OLMO_MATMUL_QUICK=1
// (fewer shapes), OLMO_THREADS (CPU threads, default all cores).
import type { Backend } from "../src/backend/backend.ts";
import { createBackend, cudaUsable } from "../src/backend/native-backend.ts";
import { measureFmaPeak } from "./cpu-peak.ts";
import { fmtLoad, geomean, interleave, loadNow, median, noiseFloor, OURS_SETTLE_MS, TORCH_SETTLE_MS } from "./interleave.ts";
import { LineServer } from "./line-server.ts";
import { CPU_MAX_FLOP, matmulShapes, scaleDown, type Shape } from "./matmul-shapes.ts";
import { findPython } from "./python.ts";

// Random fill in the act dtype without generating gigabytes on the host: one 4M-float random block is uploaded
// once (twice its length, so any window of CH floats is valid) and each CH-sized piece of the
// target is cast from a different window of it.
const CH = 1 << 22;
let stage = 0;
function fillRandom(be: Backend, ptr: number, n: number, seed: number): void {
  if (!stage) {
    stage = be.alloc(2 * CH * 4);
    const host = new Float32Array(2 * CH);
    let x = 0x9e3779b9;
    for (let i = 0; i < 2 * CH; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      host[i] = (x / 4294967296 - 0.5) * 2;
    }
    be.upload(stage, host);
  }
  for (let off = 0, k = 0; off < n; off += CH, k++) {
    const m = Math.min(CH, n - off);
    const win = ((seed * 7919 + k * 104729) % CH) * 4;
    be.castF32ToAct(ptr + off * be.actBytes, stage + win, m);
  }
}

/** one shape's buffers on our backend and a timed pass of `reps` calls (seconds per call) */
function ourGemm(be: Backend, s: Shape, seed: number, reps: number): { time: () => number; free: () => void } {
  const ab = be.actBytes, aN = s.M * s.K, bN = s.K * s.N, cN = s.M * s.N;
  const A = be.alloc(aN * ab), B = be.alloc(bN * ab), C = be.alloc(cN * (s.f32 ? 4 : ab));
  fillRandom(be, A, aN, 17 + seed);
  fillRandom(be, B, bN, 91 + seed);
  if (s.f32) be.fillF32(C, 0.5, cN);
  const f = () => s.f32 ? be.matmulF32(C, A, B, s.M, s.N, s.K, s.tA, s.tB, s.acc ? 1 : 0) : be.matmul(C, A, B, s.M, s.N, s.K, s.tA, s.tB, 0);
  for (let w = 0; w < 3; w++) f();
  be.synchronize();
  return {
    time: () => {
      be.synchronize();
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) f();
      be.synchronize();
      return (performance.now() - t0) / 1000 / reps;
    },
    free: () => { be.free(A); be.free(B); be.free(C); },
  };
}

interface Row {
  shape: string; M: number; N: number; K: number; tA: boolean; tB: boolean; c: string; ours_tflops: number; torch_tflops: number;
  ratio: number; self_ratio: number; load1: number; torch_op: string; scale?: number; ours_of_peak?: number; torch_of_peak?: number;
}

async function main(): Promise<void> {
  const usable = process.env.OLMO_BACKEND === "cpu" ? "OLMO_BACKEND=cpu" : cudaUsable();
  const cpu = typeof usable !== "number";
  const threads = Number(process.env.OLMO_THREADS ?? navigator.hardwareConcurrency);
  const be: Backend = cpu ? createBackend("cpu", { threads }) : createBackend("cuda");
  if (cpu) console.log(`bench:matmul: no usable GPU (${String(usable).split("\n")[0]}); the CPU library (fp32, ${threads} threads) vs torch on the CPU`);
  const reps = Number(process.env.OLMO_MATMUL_REPS ?? (cpu ? 5 : 10));
  const rounds = Number(process.env.OLMO_MATMUL_ROUNDS ?? (cpu ? 5 : 3));
  const list = cpu ? matmulShapes().map((s) => scaleDown(s, CPU_MAX_FLOP)) : matmulShapes();
  const py = findPython("torch");
  let torch = py ? new LineServer([py, `${import.meta.dir}/matmul_torch.py`, cpu ? "cpu" : "cuda", String(threads)], "torch anchor") : null;
  let torchError = "";
  const loadStart = loadNow();
  /** the CPU's fp32 FMA peak in GFLOP/s, measured before and after the GEMMs */
  const fmaPeaks: number[] = cpu ? [measureFmaPeak(threads).gflops] : [];
  const loadAfterPeak = loadNow();

  // TFLOP/s on a GPU, GFLOP/s on the CPU
  const unit = cpu ? 1e3 : 1, u = cpu ? "GF/s" : "TF/s";
  const fmt = (x: number, d = 1) => Number.isFinite(x) ? x.toFixed(d) : "-";
  const pct = (x: number | undefined) => x !== undefined && Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "-";
  console.log(`device: ${be.deviceName}; reps ${reps} x rounds ${rounds}, order rotated per round: ours, torch, ours again (self)${py ? "" : " (no torch)"}`);
  const rows: Row[] = [];
  for (const [i, s] of list.entries()) {
    const ours = ourGemm(be, s, i, reps);
    let anchor = "";
    if (torch) {
      try {
        anchor = (await torch.request<{ anchor: string }>({ op: "prep", shape: s })).anchor;
      } catch (e) {
        torchError = (e as Error).message;
        torch = null;
      }
    }
    const t = torch;
    const samples = await interleave([
      { name: "ours", run: ours.time, settleMs: cpu ? OURS_SETTLE_MS : 0 },
      ...(t ? [{ name: "torch", run: async () => (await t.request<{ s: number }>({ op: "time", reps })).s, settleMs: cpu ? TORCH_SETTLE_MS : 0 }] : []),
      { name: "self", run: ours.time, settleMs: cpu ? OURS_SETTLE_MS : 0 },
    ], rounds);
    ours.free();
    const flop = 2 * s.M * s.N * s.K;
    const o = median(samples.ours), tt = samples.torch ? median(samples.torch) : NaN, self = median(samples.self);
    const r: Row = { shape: s.name, M: s.M, N: s.N, K: s.K, tA: s.tA, tB: s.tB, c: s.f32 ? (s.acc ? "f32+=" : "f32") : cpu ? "f32" : "bf16",
      ours_tflops: flop / o / 1e12, torch_tflops: flop / tt / 1e12, ratio: tt / o, self_ratio: self / o, load1: loadNow()[0], torch_op: anchor,
      ...(cpu ? { scale: s.scale ?? 1 } : {}) };
    rows.push(r);
  }
  await torch?.close();
  if (cpu) fmaPeaks.push(measureFmaPeak(threads).gflops);
  const loadEnd = loadNow();
  // of peak: against the better of the two peak measurements (the machine's, not the load's)
  const peak = Math.max(...fmaPeaks) * 1e9;
  if (cpu) for (const r of rows) { r.ours_of_peak = (r.ours_tflops * 1e12) / peak; r.torch_of_peak = (r.torch_tflops * 1e12) / peak; }
  if (cpu) {
    console.log(`fp32 FMA peak (bench/cpu/fma_peak.c, ${threads} threads) before / after the GEMMs: ${fmaPeaks.map((g) => g.toFixed(1)).join(" / ")} GFLOP/s ` +
      `(load ${fmtLoad(loadAfterPeak)} / ${fmtLoad(loadEnd)}); of peak: against the better one; shapes scaled to <= ${CPU_MAX_FLOP / 1e9} GFLOP (M, N, K times one factor)`);
  }
  console.log(`load average (1 5 15 min) at the start ${fmtLoad(loadStart)}, at the end ${fmtLoad(loadEnd)}; load1: at each row's end`);
  console.log(["shape".padEnd(20), "M".padStart(6), "N".padStart(6), "K".padStart(6), "tA tB C   ", `ours ${u}`.padStart(10), `torch ${u}`.padStart(11), "ratio".padStart(6),
    "self".padStart(6), "load1".padStart(6), ...(cpu ? ["ours/peak".padStart(9), "torch/peak".padStart(10)] : []), " torch op"].join(" "));
  const floor = noiseFloor(rows.map((r) => r.self_ratio));
  for (const r of rows) {
    console.log([r.shape.padEnd(20), String(r.M).padStart(6), String(r.N).padStart(6), String(r.K).padStart(6),
      `${r.tA ? "T" : "N"}  ${r.tB ? "T" : "N"}  ${r.c.padEnd(5)}`, fmt(r.ours_tflops * unit).padStart(10), fmt(r.torch_tflops * unit).padStart(11),
      fmt(r.ratio, 2).padStart(6), fmt(r.self_ratio, 2).padStart(6), fmt(r.load1, 2).padStart(6),
      ...(cpu ? [pct(r.ours_of_peak).padStart(9), pct(r.torch_of_peak).padStart(10)] : []), ` ${r.torch_op}${r.ratio < floor.floor ? "  (below the noise floor)" : ""}`].join(" "));
  }
  console.log(`${"self-vs-self".padEnd(20)} ${"".padStart(20)} ${"(ours/ours)".padEnd(10)} ${"".padStart(22)} ${fmt(floor.geomean, 2).padStart(6)}` +
    `  range ${fmt(floor.low, 3)}–${fmt(floor.high, 3)}: noise floor ${fmt(floor.floor, 3)}`);

  const ratios = rows.map((r) => r.ratio).filter(Number.isFinite);
  const below = rows.filter((r) => Number.isFinite(r.ratio) && r.ratio < floor.floor);
  if (torchError) console.log(`torch failed: ${torchError}`);
  console.log(`self: ours timed against itself in the same rounds; noise floor = min(lowest self, 1 / highest self) = ${fmt(floor.floor, 3)}`);
  if (ratios.length) {
    console.log(`geomean ratio torch/ours over ${ratios.length} shapes: ${geomean(ratios).toFixed(3)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)})`);
    console.log(below.length ? `slower than torch beyond the noise floor (${fmt(floor.floor, 3)}): ${below.map((r) => `${r.shape} ${r.ratio.toFixed(2)}`).join(", ")}`
      : `no shape below the noise floor (${fmt(floor.floor, 3)})`);
  }
  console.log(JSON.stringify({ bench: "matmul", device: be.deviceName, reps, rounds, threads: cpu ? threads : null,
    fma_peak_gflops: cpu ? fmaPeaks : null, load_start: loadStart, load_end: loadEnd, geomean_ratio: ratios.length ? geomean(ratios) : null,
    noise_floor: floor.floor, self_ratio_range: [floor.low, floor.high], self_ratio_geomean: floor.geomean,
    below_floor: below.map((r) => r.shape), torch_error: torchError || null, rows }));
}

await main();
