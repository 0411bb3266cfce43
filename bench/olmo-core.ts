// bun run bench:olmo-core [--gb 0.5] [--reps 3] [--dir /tmp]
// OLMo-core checkpoint conversion throughput on a synthetic native checkpoint of >= --gb GB of fp32
// weights plus Adam m and v (3x that in all), each run in a child process (its peak RSS from
// /proc/self/status VmHWM), next to a plain copy + fsync of the same bytes in the same run:
//   export = exportOlmoCore native -> OLMo-core step folder  vs  copy of the native tensor files
//   import = importOlmoCore OLMo-core step folder -> native  vs  copy of the .distcp file
// and a raw write + fsync of as many bytes from memory (the floor of any writer; cp reads too).
// Targets: throughput >= 0.7x the copy; peak RSS <= 2 x the largest tensor + 300 MB.
// The page cache is warm for every read (the inputs were just written). Last line: one JSON object.
import { closeSync, copyFileSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pwriteAll } from "../src/checkpoint/io.ts";
import { NativeWriter } from "../src/checkpoint/native/write.ts";
import { ModelConfigSchema } from "../src/model/config.ts";
import { paramSpecs } from "../src/model/params.ts";
import { fsyncPath } from "../src/output-dir.ts";

const GB = 1e9;

function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const r = f();
  return [r, (performance.now() - t) / 1000];
}

/** cp of the given files into dst + fsync: what any conversion writing the same bytes must at least do. */
function copyFiles(files: string[], dst: string): number {
  mkdirSync(dst);
  let bytes = 0;
  for (const f of files) {
    const to = join(dst, f.split("/").pop()!);
    copyFileSync(f, to);
    fsyncPath(to);
    bytes += statSync(to).size;
  }
  fsyncPath(dst);
  return bytes;
}

/** pwrite `bytes` bytes from a 64 MiB buffer into one file, then fsync. */
function rawWrite(path: string, bytes: number): void {
  const buf = new Uint8Array(64 << 20).fill(7);
  const fd = openSync(path, "w");
  for (let o = 0; o < bytes; o += buf.length) pwriteAll(fd, buf.subarray(0, Math.min(buf.length, bytes - o)), o);
  fsyncSync(fd);
  closeSync(fd);
}

function child(args: string[]): { seconds: number; rss: number } {
  const [p, t] = timed(() => Bun.spawnSync([process.execPath, import.meta.path, "--child", ...args], { stdout: "pipe", stderr: "inherit" }));
  if (p.exitCode !== 0) throw new Error(`child ${args[0]} failed (${p.exitCode})`);
  return { seconds: t, rss: JSON.parse(p.stdout.toString().trim().split("\n").pop()!).max_rss_bytes };
}

async function main() {
  const { values: flags } = parseArgs({ options: { gb: { type: "string", default: "0.5" }, reps: { type: "string", default: "3" }, dir: { type: "string" }, child: { type: "boolean" } } });
  const gb = Number(flags.gb);
  const C = 1024, F = 4096, V = 100_278;
  const perLayer = 4 * C * C + 3 * C * F + 4 * C;
  const nLayers = Math.max(1, Math.ceil((gb * GB / 4 - 2 * 100_352 * C) / perLayer));
  const model = ModelConfigSchema.parse({ dModel: C, nLayers, nHeads: 16, nKvHeads: 16, ffnHidden: F, vocabSize: V });
  const specs = paramSpecs(model);
  const base = mkdtempSync(join(flags.dir ?? tmpdir(), "olmo-bench-oc-"));
  const res: Record<string, number | string> = {};
  try {
    // the input: written tensor by tensor (values from a small LCG; conversion never looks at them)
    const native = join(base, "native");
    const w = new NativeWriter(native, model, { meta: { trainState: { step: 100, tokensProcessed: 100 * 4096 }, optim: { step: Object.fromEntries(paramSpecs(model).map((s) => [s.name, 100])) } } });
    let largest = 0;
    for (const g of ["model", "adam_m", "adam_v"] as const) {
      for (const s of specs) {
        const a = new Float32Array(s.numel);
        for (let i = 0, x = s.offset | 1; i < a.length; i++) a[i] = ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.04;
        w.add(g, s.name, a);
        largest = Math.max(largest, a.byteLength);
      }
    }
    w.finish();
    const nativeFiles = readdirSync(native).filter((f) => f.endsWith(".bin")).map((f) => join(native, f));
    const bytes = nativeFiles.reduce((a, f) => a + statSync(f).size, 0);
    res.model_params = specs.reduce((a, s) => a + s.numel, 0);
    res.checkpoint_GB = +(bytes / GB).toFixed(3);
    res.largest_tensor_mb = Math.round(largest / 1e6);
    res.rss_limit_mb = Math.round((2 * largest + 300e6) / 1e6);
    console.log(`native checkpoint: ${(bytes / GB).toFixed(2)} GB (${nLayers} layers, weights + Adam m, v; largest tensor ${res.largest_tensor_mb} MB)`);

    // --reps rounds of: copy anchor, export, copy anchor, import, raw write (this VM's disk is
    // shared and varies run to run: each ratio is taken within a round, the median reported)
    const rounds: { ex: number; exCopy: number; exRss: number; im: number; imCopy: number; imRss: number; raw: number }[] = [];
    for (let k = 0; k < Number(flags.reps); k++) {
      const [, exCopy] = timed(() => copyFiles(nativeFiles, join(base, "copy-native")));
      rmSync(join(base, "copy-native"), { recursive: true });
      rmSync(join(base, "oc"), { recursive: true, force: true });
      const ex = child(["export", native, join(base, "oc")]);
      const [, imCopy] = timed(() => copyFiles([join(base, "oc", "model_and_optim", "__0_0.distcp")], join(base, "copy-distcp")));
      rmSync(join(base, "copy-distcp"), { recursive: true });
      const im = child(["import", join(base, "oc"), join(base, "back")]);
      rmSync(join(base, "back"), { recursive: true });
      const [, raw] = timed(() => rawWrite(join(base, "raw.bin"), bytes));
      rmSync(join(base, "raw.bin"));
      rounds.push({ ex: ex.seconds, exCopy, exRss: ex.rss, im: im.seconds, imCopy, imRss: im.rss, raw });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const gbps = (t: number) => bytes / GB / t;
    for (const name of ["export", "import"] as const) {
      const t = rounds.map((r) => (name === "export" ? r.ex : r.im)), tc = rounds.map((r) => (name === "export" ? r.exCopy : r.imCopy));
      const rss = Math.max(...rounds.map((r) => (name === "export" ? r.exRss : r.imRss)));
      const vsCopy = median(rounds.map((_, k) => tc[k] / t[k])), vsRaw = median(rounds.map((r, k) => r.raw / t[k]));
      res[`${name}_GBps`] = +gbps(median(t)).toFixed(3);
      res[`${name}_copy_GBps`] = +gbps(median(tc)).toFixed(3);
      res[`${name}_vs_copy`] = +vsCopy.toFixed(2);
      res[`${name}_vs_raw_write`] = +vsRaw.toFixed(2);
      res[`${name}_peak_rss_mb`] = Math.round(rss / 1e6);
      console.log(`${name.padEnd(6)} ${t.map((x) => gbps(x).toFixed(2)).join(" / ")} GB/s (incl. process start) | copy + fsync ${tc.map((x) => gbps(x).toFixed(2)).join(" / ")} GB/s | ` +
        `raw write + fsync ${rounds.map((r) => gbps(r.raw).toFixed(2)).join(" / ")} GB/s | median ${vsCopy.toFixed(2)}x copy, ${vsRaw.toFixed(2)}x raw write | peak RSS ${res[`${name}_peak_rss_mb`]} MB (target <= ${res.rss_limit_mb} MB)`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  console.log(JSON.stringify(res));
}

async function runChild([what, from, to]: string[]) {
  if (what === "export") (await import("../src/checkpoint/olmo-core/export.ts")).exportOlmoCore(from, to, { run: {
    paramGroups: { lr: 1e-4, initialLr: 3e-4, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }, schedule: { kind: "cosine", warmupSteps: 0, alpha: 0.1 },
    maxGradNorm: 1, zLossMult: 1e-5, skipStep: null, maxSteps: 1000, sequenceLength: 4096, maxTargetSequenceLength: null, globalBatchTokens: 4096 * 8,
    dataSeed: 0, dtype: "uint32", tokenizer: { identifier: "allenai/dolma2-tokenizer", vocabSize: 100278, eosTokenId: 100257, padTokenId: 100277 },
  } });
  else (await import("../src/checkpoint/olmo-core/import.ts")).importOlmoCore(from, to);
  // VmHWM, not getrusage's maxRSS: Linux carries the parent's peak into a spawned child's ru_maxrss.
  const hwmKiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
  console.log(JSON.stringify({ max_rss_bytes: hwmKiB * 1024 }));
}

const i = process.argv.indexOf("--child");
if (i >= 0) await runChild(process.argv.slice(i + 1));
else await main();
