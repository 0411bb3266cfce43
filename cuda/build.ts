// Builds the two native libraries into build/:
//   build/libolmo_cpu.so   — C11 + OpenMP + OpenBLAS (cblas_sgemm); the fp32 oracle
//   build/libolmo_cuda.so  — nvcc, static cudart; cuBLASLt/NCCL are dlopen'ed at run time, so this
//                            compiles on machines without a GPU (compile-only there).
//   build/nccl-standin/libnccl.so.2 — only when asked for ("nccl-standin"): the one-GPU NCCL stand-in,
//                            a TEST TOOL (cuda/nccl-standin/nccl_standin.c), found through
//                            OLMO_CUDA_LIB_PATH=build/nccl-standin; nvcc + static cudart only
// Usage: bun cuda/build.ts [cpu|cuda|all|nccl-standin] [--arch=sm_90a]   (default: all; cuda skipped
// with a notice when nvcc is missing unless "cuda" is asked for explicitly)
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const outDir = join(root, "build");
const what = process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "all";
const archArg = process.argv.find((a) => a.startsWith("--arch="))?.slice(7);

function fail(msg: string): never {
  console.error(`build: ${msg}`);
  process.exit(2);
}

function run(cmd: string[]): void {
  const p = Bun.spawnSync(cmd, { stdout: "inherit", stderr: "inherit", cwd: root });
  if (p.exitCode !== 0) fail(`command failed (exit ${p.exitCode}): ${cmd.join(" ")}`);
}

function which(tool: string): string | null {
  return Bun.which(tool) ?? (existsSync(tool) ? tool : null);
}

function sources(dir: string, ext: string): string[] {
  return readdirSync(join(root, dir)).filter((f) => f.endsWith(ext)).sort().map((f) => join(dir, f));
}

function newest(paths: string[]): number {
  return Math.max(...paths.map((p) => statSync(join(root, p)).mtimeMs));
}

function upToDate(out: string, inputs: string[]): boolean {
  return existsSync(out) && statSync(out).mtimeMs > newest(inputs);
}

function findOpenBlasHeader(): boolean {
  const dirs = ["/usr/include", "/usr/include/x86_64-linux-gnu", "/usr/include/openblas",
    "/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/x86_64-linux-gnu/openblas64-pthread"];
  return dirs.some((d) => existsSync(join(d, "cblas.h")));
}

function buildCpu(): void {
  const cc = which("cc") ?? which("gcc");
  if (!cc) fail("no C compiler found. Install one: apt-get install -y build-essential");
  if (!findOpenBlasHeader()) fail("OpenBLAS headers (cblas.h) not found. Install: apt-get install -y libopenblas-dev");
  const srcs = sources("cuda/cpu", ".c");
  const out = join(outDir, "libolmo_cpu.so");
  if (upToDate(out, [...srcs, ...sources("cuda/include", ".h"), ...sources("cuda/cpu", ".h")])) return;
  run([cc, "-std=c11", "-O3", "-march=x86-64-v3", "-mtune=native", "-fopenmp", "-fPIC", "-shared",
    "-Wall", "-Wextra", "-Wno-unused-parameter", "-Icuda/include", "-o", out, ...srcs, "-lopenblas", "-lm"]);
  console.error(`build: ${out}`);
}

function nvccGencodes(nvcc: string): string[] {
  if (archArg) return [`-gencode=arch=${archArg.replace("sm_", "compute_")},code=${archArg}`];
  const listed = Bun.spawnSync([nvcc, "--list-gpu-arch"]).stdout.toString();
  const g = ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"];
  if (listed.includes("compute_90")) g.push("-gencode=arch=compute_90a,code=sm_90a");
  g.push("-gencode=arch=compute_90,code=compute_90"); // PTX for newer GPUs
  return g;
}

function buildCuda(required: boolean): void {
  const nvcc = which("nvcc") ?? which("/usr/local/cuda/bin/nvcc");
  if (!nvcc) {
    if (required) fail("nvcc not found. Install the CUDA toolkit (nvcc 12.4+) or build only the CPU library: bun cuda/build.ts cpu");
    console.error("build: nvcc not found; skipping libolmo_cuda.so (CPU library only)");
    return;
  }
  if (!existsSync(join(root, "cuda/gpu"))) return;
  const srcs = sources("cuda/gpu", ".cu");
  if (srcs.length === 0) return;
  const out = join(outDir, "libolmo_cuda.so");
  if (upToDate(out, [...srcs, ...sources("cuda/include", ".h"), ...sources("cuda/gpu", ".h"), ...sources("cuda/gpu", ".cuh")])) return;
  run([nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-cudart", "static", "--expt-relaxed-constexpr",
    "-Icuda/include", ...nvccGencodes(nvcc), "-o", out, ...srcs, "-ldl", "-lpthread"]);
  console.error(`build: ${out}`);
}

function buildNcclStandin(): void {
  const nvcc = which("nvcc") ?? which("/usr/local/cuda/bin/nvcc");
  if (!nvcc) fail("nvcc not found: the NCCL stand-in links the CUDA runtime (install the CUDA toolkit)");
  const src = "cuda/nccl-standin/nccl_standin.c";
  const dir = join(outDir, "nccl-standin"), out = join(dir, "libnccl.so.2");
  mkdirSync(dir, { recursive: true });
  if (upToDate(out, [src, "cuda/nccl-standin/elements.h"])) return;
  run([nvcc, "-O2", "-shared", "-Xcompiler", "-fPIC,-fvisibility=hidden,-Wall", "-cudart", "static", "-o", out, src, "-lpthread"]);
  console.error(`build: ${out} (test tool: one-GPU NCCL stand-in)`);
}

mkdirSync(outDir, { recursive: true });
if (!["cpu", "cuda", "all", "nccl-standin"].includes(what)) fail(`unknown target ${what}: cpu, cuda, all or nccl-standin`);
if (what === "nccl-standin") buildNcclStandin();
if (what === "cpu" || what === "all") buildCpu();
if (what === "cuda" || what === "all") buildCuda(what === "cuda");
