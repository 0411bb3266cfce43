// bun run bench:gemm-threads — which threading wins for oneDNN's sgemm, per shape class: oneDNN's
// own OpenMP threads ("library") or gemm.c's split of C into one block per thread ("split"), with
// OpenBLAS' split beside them and the split timed twice (its spread is the noise floor). Shapes:
// every GEMM call of bench:step's default training step (recorded from one step) and the CPU shapes
// of bench:matmul. bench/cpu/gemm_threads.c does the timing (interleaved rounds, medians); this
// compiles it (needs oneDNN and OpenBLAS headers: libdnnl-dev, libopenblas-dev) and summarizes by
// class: transposes, += or not, and which of M and N is larger. A table, then one JSON line.
// Env: OLMO_THREADS (default all cores), OLMO_GEMM_ROUNDS (default 5).
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { createBackend } from "../src/backend/native-backend.ts";
import { ModelConfigSchema } from "../src/model/config.ts";
import { recordGemmCalls } from "./gemm-calls.ts";
import { fmtLoad, geomean, loadNow, noiseFloor } from "./interleave.ts";
import { CPU_MAX_FLOP, matmulShapes, scaleDown } from "./matmul-shapes.ts";
import { buildStepModel } from "./step-model.ts";

const root = resolve(import.meta.dir, "..");
const threads = Number(process.env.OLMO_THREADS ?? navigator.hardwareConcurrency);
const rounds = Number(process.env.OLMO_GEMM_ROUNDS ?? 5);

function compile(): string {
  const src = join(root, "bench/cpu/gemm_threads.c"), exe = join(root, "build/bench/gemm_threads");
  if (existsSync(exe) && statSync(exe).mtimeMs > statSync(src).mtimeMs) return exe;
  mkdirSync(join(root, "build/bench"), { recursive: true });
  const cc = Bun.which("cc") ?? Bun.which("gcc");
  if (!cc) throw new Error("no C compiler (cc): apt-get install -y build-essential");
  const p = Bun.spawnSync([cc, "-std=c11", "-O2", "-fopenmp", "-o", exe, src, "-ldnnl", "-lopenblas"], { stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`compiling ${src} failed (it needs oneDNN and OpenBLAS: apt-get install -y libdnnl-dev libopenblas-dev):\n${p.stderr}`);
  return exe;
}

interface Shape { M: number; N: number; K: number; tA: boolean; tB: boolean; beta: number; from: string; count: number }

/** the GEMM calls of one bench:step training step (default model), each distinct shape once */
function stepShapes(): Shape[] {
  const cfg = ModelConfigSchema.parse({ dModel: 256, nLayers: 4, nHeads: 8, nKvHeads: 4, ffnHidden: 768, vocabSize: 100352, maxSeqLen: 256 });
  const rec = recordGemmCalls(createBackend("cpu", { threads }));
  const model = buildStepModel(rec.backend, cfg, 8, 256, "none");
  rec.recording = true;
  model.step();
  model.free();
  const seen = new Map<string, Shape>();
  for (const c of rec.calls) {
    const key = `${c.M} ${c.N} ${c.K} ${+c.tA} ${+c.tB} ${c.beta}`;
    const s = seen.get(key);
    if (s) s.count++;
    else seen.set(key, { M: c.M, N: c.N, K: c.K, tA: c.tA, tB: c.tB, beta: c.beta, from: "step", count: 1 });
  }
  return [...seen.values()];
}

function matmulBenchShapes(): Shape[] {
  const seen = new Map<string, Shape>();
  for (const s of matmulShapes().map((x) => scaleDown(x, CPU_MAX_FLOP))) {
    const beta = s.acc ? 1 : 0, key = `${s.M} ${s.N} ${s.K} ${+s.tA} ${+s.tB} ${beta}`;
    if (!seen.has(key)) seen.set(key, { M: s.M, N: s.N, K: s.K, tA: s.tA, tB: s.tB, beta, from: "matmul", count: 1 });
  }
  return [...seen.values()];
}

const classOf = (s: Shape) => `${s.tA ? "T" : "N"}${s.tB ? "T" : "N"}${s.beta ? " +=" : ""} ${s.M >= s.N ? "M>=N" : "M<N"}`;

const exe = compile();
const shapes = [...stepShapes(), ...matmulBenchShapes()];
const loadStart = loadNow();
const p = Bun.spawnSync([exe, String(rounds)], {
  stdin: Buffer.from(shapes.map((s) => `${s.M} ${s.N} ${s.K} ${+s.tA} ${+s.tB} ${s.beta}`).join("\n")),
  env: { ...process.env, OMP_NUM_THREADS: String(threads) }, stdout: "pipe", stderr: "pipe",
});
if (p.exitCode !== 0) throw new Error(`${exe} failed: ${p.stderr}`);
const loadEnd = loadNow();
const rows = p.stdout.toString().trim().split("\n").map((line, i) => {
  const [lib, split, openblas, again] = line.split(" ").slice(6).map(Number);
  return { ...shapes[i], cls: classOf(shapes[i]), library_gflops: lib, split_gflops: split, openblas_gflops: openblas, split_again_gflops: again };
});
const floor = noiseFloor(rows.map((r) => r.split_again_gflops / r.split_gflops));
console.log(`bench:gemm-threads: ${threads} threads, ${rounds} rounds; load (1 5 15 min) start ${fmtLoad(loadStart)}, end ${fmtLoad(loadEnd)}`);
console.log(["from".padEnd(7), "M".padStart(6), "N".padStart(6), "K".padStart(6), "class".padEnd(12), "library".padStart(8), "split".padStart(8),
  "openblas".padStart(9), "again".padStart(8), "split/lib".padStart(10)].join(" "));
for (const r of rows) {
  console.log([r.from.padEnd(7), String(r.M).padStart(6), String(r.N).padStart(6), String(r.K).padStart(6), r.cls.padEnd(12),
    r.library_gflops.toFixed(1).padStart(8), r.split_gflops.toFixed(1).padStart(8), r.openblas_gflops.toFixed(1).padStart(9),
    r.split_again_gflops.toFixed(1).padStart(8), (r.split_gflops / r.library_gflops).toFixed(2).padStart(10)].join(" "));
}
const classes = [...new Set(rows.map((r) => r.cls))].sort().map((cls) => {
  const rs = rows.filter((r) => r.cls === cls), ratios = rs.map((r) => r.split_gflops / r.library_gflops);
  return { cls, shapes: rs.length, split_over_library: geomean(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
});
console.log(`per class, GFLOP/s of split / library (geomean, min-max); noise floor (split vs split again) ${floor.floor.toFixed(3)}, range ${floor.low.toFixed(3)}-${floor.high.toFixed(3)}`);
for (const c of classes) console.log(`  ${c.cls.padEnd(12)} ${String(c.shapes).padStart(3)} shapes  ${c.split_over_library.toFixed(3)}  (${c.min.toFixed(2)}-${c.max.toFixed(2)})`);
console.log(JSON.stringify({ bench: "gemm-threads", threads, rounds, load_start: loadStart, load_end: loadEnd, noise_floor: floor.floor, classes, rows }));
