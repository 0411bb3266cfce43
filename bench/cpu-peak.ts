// The CPU's measured fp32 FMA peak (bench/cpu/fma_peak.c, compiled here with the system C compiler
// for this machine), the anchor of bench:matmul and bench:step's profile on the CPU library.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const src = join(root, "bench/cpu/fma_peak.c");

export interface FmaPeak { threads: number; lanes: number; gflops: number }

/** Compile (once, cached in build/bench) and run the FMA loop on `threads` OpenMP threads. */
export function measureFmaPeak(threads: number, seconds = 0.5): FmaPeak {
  const dir = join(root, "build/bench");
  const exe = join(dir, "fma_peak");
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    const cc = Bun.which("cc") ?? Bun.which("gcc");
    if (!cc) throw new Error("no C compiler (cc) for bench/cpu/fma_peak.c: apt-get install -y build-essential");
    const p = Bun.spawnSync([cc, "-std=gnu11", "-O2", "-march=native", "-ffp-contract=fast", "-fopenmp", "-o", exe, src], { stderr: "pipe" });
    if (p.exitCode !== 0) throw new Error(`compiling ${src} failed: ${p.stderr.toString()}`);
  }
  const p = Bun.spawnSync([exe, String(seconds)], { env: { ...process.env, OMP_NUM_THREADS: String(threads) }, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${exe} failed: ${p.stderr.toString()}`);
  const r = JSON.parse(p.stdout.toString()) as FmaPeak;
  return { threads: r.threads, lanes: r.lanes, gflops: r.gflops };
}
