// Builds the two native libraries into build/:
//   build/libolmo_cpu.so   — C11 + OpenMP, GEMM through oneDNN (dnnl_sgemm) where its header and
//                            library are installed, else OpenBLAS (cblas_sgemm); the fp32 oracle.
//                            OLMO_GEMM=onednn|openblas picks one (default: oneDNN when found); the
//                            choice is kept in build/libolmo_cpu.gemm and a different one rebuilds.
//   build/libolmo_cuda.so  — nvcc, static cudart; cuBLASLt/NCCL are dlopen'ed at run time, so this
//                            compiles on machines without a GPU (compile-only there).
//   build/nccl-standin/libnccl.so.2 — only when asked for ("nccl-standin"): the one-GPU NCCL stand-in,
//                            a TEST TOOL (cuda/nccl-standin/nccl_standin.c), found through
//                            OLMO_CUDA_LIB_PATH=build/nccl-standin; nvcc + static cudart only
// Usage: bun cuda/build.ts [cpu|cuda|all|nccl-standin] [--arch=sm_90a]   (default: all; cuda skipped
// with a notice when nvcc is missing unless "cuda" is asked for explicitly)
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
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

const firstExisting = (paths: string[]) => paths.find((p) => existsSync(p)) ?? null;
const LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

function findOpenBlasHeader(): boolean {
  const dirs = ["/usr/include", "/usr/include/x86_64-linux-gnu", "/usr/include/openblas",
    "/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/x86_64-linux-gnu/openblas64-pthread"];
  return dirs.some((d) => existsSync(join(d, "cblas.h")));
}

/** oneDNN as the C build needs it: <oneapi/dnnl/dnnl.h>, libdnnl.so to link, and OpenMP (or
 *  sequential) threading, since TBB's threads would oversubscribe OpenMP's. Why not, if not. */
function findOneDnn(): { ok: true; version: string } | { ok: false; why: string } {
  const inc = firstExisting(["/usr/include", "/usr/local/include"].map((d) => join(d, "oneapi/dnnl")));
  if (!inc) return { ok: false, why: "no oneapi/dnnl/dnnl.h" };
  if (!firstExisting(LIB_DIRS.map((d) => join(d, "libdnnl.so")))) return { ok: false, why: "no libdnnl.so to link" };
  const config = readFileSync(join(inc, "dnnl_config.h"), "utf8");
  const runtime = /#define DNNL_CPU_THREADING_RUNTIME (DNNL_RUNTIME_\w+)/.exec(config)?.[1] ?? "unknown";
  if (runtime !== "DNNL_RUNTIME_OMP" && runtime !== "DNNL_RUNTIME_SEQ") return { ok: false, why: `it threads with ${runtime}, not OpenMP` };
  const ver = readFileSync(join(inc, "dnnl_version.h"), "utf8");
  const part = (k: string) => new RegExp(`#define DNNL_VERSION_${k} (\\d+)`).exec(ver)?.[1] ?? "?";
  return { ok: true, version: `${part("MAJOR")}.${part("MINOR")}.${part("PATCH")}` };
}

interface Gemm { name: "oneDNN" | "OpenBLAS"; flags: string[]; libs: string[]; detail: string }

/** OLMO_GEMM=onednn|openblas, or (unset) oneDNN when it is installed and usable, else OpenBLAS;
 *  a string says why neither can be built */
function chooseGemm(): Gemm | string {
  const asked = (process.env.OLMO_GEMM ?? "").toLowerCase();
  if (asked && asked !== "onednn" && asked !== "openblas") fail(`OLMO_GEMM=${process.env.OLMO_GEMM}: must be onednn or openblas (unset: oneDNN when installed)`);
  const dnnl = asked === "openblas" ? null : findOneDnn();
  if (dnnl?.ok) return { name: "oneDNN", flags: ["-DOLMO_GEMM_ONEDNN"], libs: ["-ldnnl"], detail: `oneDNN ${dnnl.version} dnnl_sgemm` };
  if (asked === "onednn") return `OLMO_GEMM=onednn but oneDNN is not usable (${dnnl!.why}). Install: apt-get install -y libdnnl-dev`;
  if (!findOpenBlasHeader()) {
    return `no GEMM library: oneDNN ${dnnl ? `not usable (${dnnl.why})` : "not asked for (OLMO_GEMM=openblas)"} and no OpenBLAS headers (cblas.h). ` +
      "Install: apt-get install -y libdnnl-dev libopenblas-dev";
  }
  const why = dnnl ? `oneDNN not usable: ${dnnl.why}` : "OLMO_GEMM=openblas";
  return { name: "OpenBLAS", flags: [], libs: ["-lopenblas"], detail: `OpenBLAS cblas_sgemm (${why})` };
}

/** the GEMM and OpenMP libraries the built .so loads at run time (from ldd) */
function runtimeGemmLibs(so: string): string {
  const p = Bun.spawnSync(["ldd", so], { stdout: "pipe", stderr: "pipe" });
  const libs = p.stdout.toString().split("\n").map((l) => l.trim().split(" ")[0])
    .filter((l) => /^lib(dnnl|openblas|gomp|blas|OpenCL)/.test(l));
  return libs.length ? libs.join(", ") : "(ldd found none)";
}

function buildCpu(): void {
  const cc = which("cc") ?? which("gcc");
  if (!cc) fail("no C compiler found. Install one: apt-get install -y build-essential");
  const gemm = chooseGemm();
  const srcs = sources("cuda/cpu", ".c");
  const out = join(outDir, "libolmo_cpu.so"), stamp = join(outDir, "libolmo_cpu.gemm");
  const built = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : null;
  // up to date: built from today's sources with the GEMM asked for; with nothing installed to build
  // with (bench/gpu-check.sh's BLAS shim build) and no OLMO_GEMM, the library already there stays
  const wanted = typeof gemm === "string" ? (process.env.OLMO_GEMM ? null : built) : gemm.name;
  if (built && built === wanted && upToDate(out, [...srcs, ...sources("cuda/include", ".h"), ...sources("cuda/cpu", ".h")])) return;
  if (typeof gemm === "string") fail(gemm);
  run([cc, "-std=c11", "-O3", "-march=x86-64-v3", "-mtune=native", "-fopenmp", "-fPIC", "-shared",
    "-Wall", "-Wextra", "-Wno-unused-parameter", ...gemm.flags, "-Icuda/include", "-o", out, ...srcs, ...gemm.libs, "-lm"]);
  writeFileSync(stamp, `${gemm.name}\n`);
  console.error(`build: ${out} — GEMM: ${gemm.detail}; loads ${runtimeGemmLibs(out)}`);
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
