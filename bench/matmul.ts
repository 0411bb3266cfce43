// bun run bench:matmul — our olmo_matmul (cuBLASLt through bun:ffi, OLMO_BACKEND=cuda) vs torch.matmul
// on the same bf16 shapes: square 4096^3 and 8192^3, and the real GEMMs of the OLMo-2 1B/7B/32B
// configs at 4 x 2048 = 8192 tokens per micro-batch (forward, dgrad, wgrad of q/k/v/o, the fused
// gate+up [2F, C], down, and lm_head). Fresh random inputs (never zeros), warmup, then alternating
// rounds A B A B (ours, torch) of N timed reps each, device-synchronized around the reps; the median
// per side. Prints a table, then one JSON line.
// Without a usable GPU (or with OLMO_BACKEND=cpu) it measures the CPU library's fp32 GEMM (OpenBLAS
// through bun:ffi) on the same shapes, each scaled down in all three dimensions by one factor until it
// is at most CPU_MAX_FLOP (so the whole run takes about a minute on 2 cores), against torch.matmul /
// addmm_ of the same shapes on the CPU (fp32, the same thread count) and the machine's fp32 FMA peak
// (bench/cpu/fma_peak.c), both measured in the same run.
// Env: OLMO_MATMUL_REPS (default 10; CPU 5), OLMO_MATMUL_ROUNDS (default 3), OLMO_MATMUL_QUICK=1
// (fewer shapes), OLMO_THREADS (CPU threads, default all cores).
import type { Backend } from "../src/backend/backend.ts";
import { createBackend, cudaUsable } from "../src/backend/native-backend.ts";
import { measureFmaPeak } from "./cpu-peak.ts";
import { findPython } from "./python.ts";

/** f32: fp32 output (weight gradients); acc: accumulated into that output (beta = 1), as training does;
 *  scale: the shape's FLOPs over the full shape's (1 unless scaled down for the CPU) */
interface Shape { name: string; M: number; N: number; K: number; tA: boolean; tB: boolean; f32?: boolean; acc?: boolean; scale?: number }

/** the CPU's largest GEMM: 2 GFLOP (~10 ms at 200 GFLOP/s) */
const CPU_MAX_FLOP = 2e9;

/** all three dimensions times the same factor (multiples of 64, at least 64) so that 2·M·N·K ≤ maxFlop:
 *  the shape keeps its proportions */
function scaleDown(s: Shape, maxFlop: number): Shape {
  const full = 2 * s.M * s.N * s.K;
  if (full <= maxFlop) return { ...s, scale: 1 };
  let f = Math.cbrt(maxFlop / full);
  const dim = (x: number) => Math.max(64, Math.floor((x * f) / 64) * 64);
  while (2 * dim(s.M) * dim(s.N) * dim(s.K) > maxFlop) f *= 0.97;
  const d = { M: dim(s.M), N: dim(s.N), K: dim(s.K) };
  return { ...s, ...d, scale: (2 * d.M * d.N * d.K) / full };
}

const TOK = 8192;
const configs = [
  { tag: "1B", C: 2048, H: 16, KV: 16, D: 128, F: 8192 },
  { tag: "7B", C: 4096, H: 32, KV: 32, D: 128, F: 11008 },
  { tag: "32B", C: 5120, H: 40, KV: 8, D: 128, F: 27648 },
];
const V = 100352;

function shapes(): Shape[] {
  const s: Shape[] = [
    { name: "square 4096", M: 4096, N: 4096, K: 4096, tA: false, tB: false },
    { name: "square 8192", M: 8192, N: 8192, K: 8192, tA: false, tB: false },
  ];
  const quick = process.env.OLMO_MATMUL_QUICK === "1";
  for (const c of configs) {
    const layers: [string, number, number][] = [ // [name, out, in] of weight W[out, in]
      ["q", c.H * c.D, c.C], ["kv", c.KV * c.D, c.C], ["o", c.C, c.H * c.D],
      ["gate+up", 2 * c.F, c.C], ["down", c.C, c.F], ["lm_head", V, c.C],
    ];
    for (const [n, out, inp] of layers) {
      if (quick && c.tag !== "1B") continue;
      // forward  y[T,out] = x[T,in] @ W^T           (transB)
      s.push({ name: `${c.tag} ${n} fwd`, M: TOK, N: out, K: inp, tA: false, tB: true });
      // dgrad    dx[T,in] = dy[T,out] @ W[out,in]
      s.push({ name: `${c.tag} ${n} dgrad`, M: TOK, N: inp, K: out, tA: false, tB: false });
      // wgrad    dW[out,in] = dy^T[out,T] @ x[T,in]   (transA, fp32 output) vs torch.mm(out_dtype=f32);
      // wgrad+=  the same accumulated into the fp32 gradient (beta 1, what training runs: it reads the
      //          output too) vs torch's way to do that (addmm with out_dtype, else mm + add_)
      s.push({ name: `${c.tag} ${n} wgrad`, M: out, N: inp, K: TOK, tA: true, tB: false, f32: true });
      s.push({ name: `${c.tag} ${n} wgrad+=`, M: out, N: inp, K: TOK, tA: true, tB: false, f32: true, acc: true });
    }
  }
  return s;
}

const TORCH_SCRIPT = String.raw`
import json, sys, time, torch
shapes = json.loads(sys.stdin.read())
reps, rounds, dev, threads = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if dev == "cuda":
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    sync, dt = torch.cuda.synchronize, torch.bfloat16
else:
    torch.set_num_threads(threads)
    sync, dt = (lambda: None), torch.float32
out = []
for s in shapes:
    M, N, K = s["M"], s["N"], s["K"]
    a = torch.randn(K, M, device=dev, dtype=dt) if s["tA"] else torch.randn(M, K, device=dev, dtype=dt)
    b = torch.randn(N, K, device=dev, dtype=dt) if s["tB"] else torch.randn(K, N, device=dev, dtype=dt)
    A = a.t() if s["tA"] else a
    B = b.t() if s["tB"] else b
    anchor = "matmul"
    if s.get("f32") and dev == "cpu":
        # fp32 throughout on the CPU: the output is already fp32; accumulate in place like beta = 1
        c = torch.full((M, N), 0.5, device=dev, dtype=torch.float32)
        anchor, f = ("addmm_", lambda: c.addmm_(A, B)) if s.get("acc") else ("matmul(out=)", lambda: torch.matmul(A, B, out=c))
    elif s.get("f32"):
        c = torch.full((M, N), 0.5, device=dev, dtype=torch.float32)
        # the closest torch op: fp32 output from bf16 inputs (torch.mm out_dtype); accumulated in
        # place with addmm out_dtype when this torch has it, else mm + add_ (two kernels)
        cands = [("addmm(out_dtype, out=C)", lambda: torch.addmm(c, A, B, out_dtype=torch.float32, out=c)),
                 ("addmm(out_dtype)", lambda: torch.addmm(c, A, B, out_dtype=torch.float32)),
                 ("mm(out_dtype) + add_", lambda: c.add_(torch.mm(A, B, out_dtype=torch.float32))),
                 ("bf16 matmul + add_", lambda: c.add_(torch.matmul(A, B)))] if s.get("acc") else \
                [("mm(out_dtype)", lambda: torch.mm(A, B, out_dtype=torch.float32)),
                 ("bf16 matmul", lambda: torch.matmul(A, B))]
        for anchor, f in cands:
            try:
                f(); sync()
                break
            except Exception:
                continue
    else:
        c = torch.empty(M, N, device=dev, dtype=dt)
        f = lambda: torch.matmul(A, B, out=c)
    for _ in range(3): f()
    sync()
    times = []
    for _ in range(rounds):
        sync(); t0 = time.perf_counter()
        for _ in range(reps): f()
        sync(); times.append((time.perf_counter() - t0) / reps)
    out.append({"times": times, "anchor": anchor})
    del a, b, c
print(json.dumps(out))
`;

function median(x: number[]): number {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

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

function main(): void {
  const usable = process.env.OLMO_BACKEND === "cpu" ? "OLMO_BACKEND=cpu" : cudaUsable();
  const cpu = typeof usable !== "number";
  const threads = Number(process.env.OLMO_THREADS ?? navigator.hardwareConcurrency);
  const be: Backend = cpu ? createBackend("cpu", { threads }) : createBackend("cuda");
  if (cpu) console.log(`bench:matmul: no usable GPU (${String(usable).split("\n")[0]}); the CPU library (fp32, ${threads} threads) vs torch on the CPU`);
  const reps = Number(process.env.OLMO_MATMUL_REPS ?? (cpu ? 5 : 10));
  const rounds = Number(process.env.OLMO_MATMUL_ROUNDS ?? 3);
  const list = cpu ? shapes().map((s) => scaleDown(s, CPU_MAX_FLOP)) : shapes();
  const ours: number[][] = list.map(() => []);
  const torchT: number[][] = list.map(() => []);
  const anchors: string[] = list.map(() => "");
  const py = findPython("torch");
  const ab = be.actBytes;
  /** the CPU's fp32 FMA peak in GFLOP/s, measured before and after the GEMMs */
  const fmaPeaks: number[] = cpu ? [measureFmaPeak(threads).gflops] : [];

  const runOurs = () => {
    list.forEach((s, i) => {
      const aN = s.M * s.K, bN = s.K * s.N, cN = s.M * s.N;
      const A = be.alloc(aN * ab), B = be.alloc(bN * ab), C = be.alloc(cN * (s.f32 ? 4 : ab));
      fillRandom(be, A, aN, 17 + i);
      fillRandom(be, B, bN, 91 + i);
      if (s.f32) be.fillF32(C, 0.5, cN);
      const f = () => s.f32 ? be.matmulF32(C, A, B, s.M, s.N, s.K, s.tA, s.tB, s.acc ? 1 : 0) : be.matmul(C, A, B, s.M, s.N, s.K, s.tA, s.tB, 0);
      for (let w = 0; w < 3; w++) f();
      be.synchronize();
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) f();
      be.synchronize();
      ours[i].push((performance.now() - t0) / 1000 / reps);
      be.free(A); be.free(B); be.free(C);
    });
  };
  let torchError = "";
  const runTorch = () => {
    if (!py || torchError) return;
    const p = Bun.spawnSync([py, "-c", TORCH_SCRIPT, String(reps), "1", cpu ? "cpu" : "cuda", String(threads)], {
      stdin: Buffer.from(JSON.stringify(list)), stdout: "pipe", stderr: "pipe",
    });
    if (p.exitCode !== 0) {
      torchError = p.stderr.toString().trim().split("\n").slice(-1)[0] ?? "torch failed";
      return;
    }
    const res = JSON.parse(p.stdout.toString().trim().split("\n").pop()!) as { times: number[]; anchor: string }[];
    res.forEach((t, i) => {
      torchT[i].push(...t.times);
      anchors[i] = t.anchor;
    });
  };
  for (let r = 0; r < rounds; r++) { runOurs(); runTorch(); } // A B A B ...
  if (cpu) fmaPeaks.push(measureFmaPeak(threads).gflops);
  const peak = fmaPeaks.length ? Math.max(...fmaPeaks) * 1e9 : NaN;

  const rows = list.map((s, i) => {
    const flop = 2 * s.M * s.N * s.K;
    const o = median(ours[i]), t = torchT[i].length ? median(torchT[i]) : NaN;
    return { shape: s.name, M: s.M, N: s.N, K: s.K, tA: s.tA, tB: s.tB, c: s.f32 ? (s.acc ? "f32+=" : "f32") : cpu ? "f32" : "bf16",
      ours_tflops: flop / o / 1e12, torch_tflops: flop / t / 1e12, ratio: t / o, torch_op: anchors[i],
      ...(cpu ? { scale: s.scale ?? 1, ours_of_peak: flop / o / peak, torch_of_peak: flop / t / peak } : {}) };
  });
  const fmt = (x: number, d = 1) => Number.isFinite(x) ? x.toFixed(d) : "-";
  const pct = (x: number | undefined) => x !== undefined && Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "-";
  // TFLOP/s on a GPU, GFLOP/s on the CPU
  const unit = cpu ? 1e3 : 1, u = cpu ? "GF/s" : "TF/s";
  console.log(`device: ${be.deviceName}; reps ${reps} x rounds ${rounds}${py ? "" : " (no torch)"}${torchError ? ` (torch failed: ${torchError})` : ""}`);
  if (cpu) console.log(`fp32 FMA peak (bench/cpu/fma_peak.c, ${threads} threads, before / after): ${fmaPeaks.map((g) => g.toFixed(1)).join(" / ")} GFLOP/s; shapes scaled to <= ${CPU_MAX_FLOP / 1e9} GFLOP (M, N, K times one factor)`);
  console.log(["shape".padEnd(20), "M".padStart(6), "N".padStart(6), "K".padStart(6), "tA tB C   ", `ours ${u}`.padStart(10), `torch ${u}`.padStart(11), "ratio".padStart(6),
    ...(cpu ? ["ours/peak".padStart(9), "torch/peak".padStart(10)] : []), " torch op"].join(" "));
  for (const r of rows) {
    console.log([r.shape.padEnd(20), String(r.M).padStart(6), String(r.N).padStart(6), String(r.K).padStart(6),
      `${r.tA ? "T" : "N"}  ${r.tB ? "T" : "N"}  ${r.c.padEnd(5)}`, fmt(r.ours_tflops * unit).padStart(10), fmt(r.torch_tflops * unit).padStart(11), fmt(r.ratio, 2).padStart(6),
      ...(cpu ? [pct(r.ours_of_peak).padStart(9), pct(r.torch_of_peak).padStart(10)] : []), ` ${r.torch_op}`].join(" "));
  }
  const below = rows.filter((r) => Number.isFinite(r.ratio) && r.ratio < 0.97);
  console.log(below.length ? `below 0.97x: ${below.map((r) => `${r.shape} ${r.ratio.toFixed(2)}`).join(", ")}` : "every shape at >= 0.97x");
  const geo = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
  const ratios = rows.map((r) => r.ratio).filter(Number.isFinite);
  console.log(JSON.stringify({ bench: "matmul", device: be.deviceName, reps, rounds, threads: cpu ? threads : null,
    fma_peak_gflops: cpu ? fmaPeaks : null, geomean_ratio: ratios.length ? geo(ratios) : null, rows }));
}

main();
