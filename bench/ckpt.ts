// bun run bench:ckpt [--gb 2] [--dir /tmp] [--no-lz4]
// Checkpoint throughput on a synthetic model of >= --gb GB of fp32 weights (plus Adam m and v, so
// a full checkpoint is 3x that), next to plain file operations on the same bytes in the same run:
//   save  = saveCheckpoint (write + crc32 + fsync + rename)   vs  cp of the same files + fsync
//   load  = loadCheckpoint into fresh arenas (crc32 verified) vs  the same cp (and a raw read)
//   soup  = `olmo soup` of two checkpoints in a child process: throughput and peak RSS
//   lz4   = the compress option on the weights: ratio and save/load speed
// The page cache is warm for every read (the files were just written); nothing here drops caches.
// Values are "trained-like": N(0, σ) fp32 from a 64 MiB pool copied at rotating offsets (LZ4's
// 64 KiB window never sees the repetition). Last line: one JSON object.
import { closeSync, copyFileSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadCheckpoint } from "../src/checkpoint/native/read.ts";
import { saveCheckpoint } from "../src/checkpoint/native/write.ts";
import { preadExact, pwriteAll } from "../src/checkpoint/io.ts";
import { ModelConfigSchema } from "../src/model/config.ts";
import { paramSpecs, totalParams } from "../src/model/params.ts";
import { bytesOf } from "../src/tensor/dtype.ts";
import { fsyncPath } from "../src/output-dir.ts";

const GB = 1e9;

function modelFor(gb: number) {
  const C = 1024, F = 4096, V = 100_278;
  const perLayer = 4 * C * C + 3 * C * F + 4 * C;
  const nLayers = Math.max(1, Math.ceil((gb * GB / 4 - 2 * 100_352 * C) / perLayer));
  return ModelConfigSchema.parse({ dModel: C, nLayers, nHeads: 16, nKvHeads: 16, ffnHidden: F, vocabSize: V });
}

let POOL_: Float32Array | null = null;
function pool(): Float32Array {
  if (POOL_) return POOL_;
  const p = (POOL_ = new Float32Array(16 << 20));
  for (let i = 0; i < p.length; i += 2) {
    const u1 = Math.random() || 1e-12, u2 = Math.random(), r = Math.sqrt(-2 * Math.log(u1));
    p[i] = r * Math.cos(2 * Math.PI * u2);
    p[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return p;
}

function fill(a: Float32Array, std: number, square: boolean, seed: number): void {
  const POOL = pool();
  for (let off = 0, k = seed; off < a.length; k++) {
    const start = (k * 7_919_113) % (POOL.length - 4096);
    const n = Math.min(a.length - off, POOL.length - start);
    const src = POOL.subarray(start, start + n);
    for (let i = 0; i < n; i++) { const x = src[i] * std; a[off + i] = square ? x * x : x; }
    off += n;
  }
}

function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const r = f();
  return [r, (performance.now() - t) / 1000];
}

function dirBytes(d: string): number {
  return readdirSync(d).reduce((a, f) => a + statSync(join(d, f)).size, 0);
}

/** The baseline: copy every file of `src` to `dst` (cp semantics) and fsync, as a save must. */
function copyDir(src: string, dst: string): void {
  mkdirSync(dst);
  for (const f of readdirSync(src)) {
    copyFileSync(join(src, f), join(dst, f));
    fsyncPath(join(dst, f));
  }
  fsyncPath(dst);
}

function log(s: string): void {
  console.log(s);
}

async function main() {
  const { values: flags } = parseArgs({ options: { gb: { type: "string", default: "2" }, dir: { type: "string" }, "no-lz4": { type: "boolean" } } });
  const gb = Number(flags.gb);
  const model = modelFor(gb);
  const specs = paramSpecs(model), n = totalParams(specs), bytes = n * 4;
  const base = mkdtempSync(join(flags.dir ?? tmpdir(), "olmo-bench-ckpt-"));
  log(`model: d_model ${model.dModel}, ${model.nLayers} layers, vocab ${model.vocabSize} -> ${(n / 1e6).toFixed(0)}M params, ${(bytes / GB).toFixed(2)} GB fp32; ` +
    `full checkpoint (params + Adam m, v) ${(3 * bytes / GB).toFixed(2)} GB; dir ${base}`);
  const res: Record<string, number> = { model_gb: +(bytes / GB).toFixed(3), checkpoint_gb: +(3 * bytes / GB).toFixed(3) };
  try {
    let P: Float32Array | null = new Float32Array(n), M: Float32Array | null = new Float32Array(n), V: Float32Array | null = new Float32Array(n);
    const [, tFill] = timed(() => { fill(P!, 0.02, false, 1); fill(M!, 1e-4, false, 2); fill(V!, 1e-3, true, 3); });
    log(`synthetic data in ${tFill.toFixed(1)} s`);

    // raw write of the same bytes: the ceiling for save
    const [, tRawW] = timed(() => {
      const fd = openSync(join(base, "raw.bin"), "w");
      let pos = 0;
      for (const a of [P!, M!, V!]) { pwriteAll(fd, bytesOf(a), pos); pos += a.byteLength; }
      fsyncSync(fd);
      closeSync(fd);
    });
    const [ckA, tSave] = timed(() => saveCheckpoint(base, "stage1-step100-tokens1B", {
      model, trainState: { step: 100 }, tensors: { model: P!, adamM: M!, adamV: V! },
    }));
    const [, tCopy] = timed(() => copyDir(ckA, join(base, "copy")));
    rmSync(join(base, "copy"), { recursive: true });
    const ckBytes = dirBytes(ckA);
    res.save_GBps = +(ckBytes / GB / tSave).toFixed(3);
    res.copy_GBps = +(ckBytes / GB / tCopy).toFixed(3);
    res.raw_write_GBps = +(3 * bytes / GB / tRawW).toFixed(3);
    res.save_vs_copy = +(tCopy / tSave).toFixed(3);
    log(`save ${res.save_GBps} GB/s (${tSave.toFixed(1)} s) | cp+fsync ${res.copy_GBps} GB/s (${tCopy.toFixed(1)} s) | raw write+fsync ${res.raw_write_GBps} GB/s | save/copy ${res.save_vs_copy}`);

    // Loads go into fresh arenas (as a resume does); free the originals first.
    M = V = null;
    Bun.gc(true);
    const [, tRawR] = timed(() => {
      const fd = openSync(join(base, "raw.bin"), "r");
      for (let k = 0; k < 3; k++) preadExact(fd, bytesOf(new Float32Array(n)), k * bytes, "raw.bin", "raw");
      closeSync(fd);
    });
    rmSync(join(base, "raw.bin"));
    Bun.gc(true);
    const [loaded, tLoad] = timed(() => loadCheckpoint(ckA));
    if (loaded.model[12345] !== P![12345]) throw new Error("load mismatch");
    res.load_GBps = +(ckBytes / GB / tLoad).toFixed(3);
    res.raw_read_GBps = +(3 * bytes / GB / tRawR).toFixed(3);
    res.load_vs_copy = +(tCopy / tLoad).toFixed(3);
    log(`load ${res.load_GBps} GB/s (${tLoad.toFixed(1)} s, crc32 verified) | raw read ${res.raw_read_GBps} GB/s | load/copy ${res.load_vs_copy}`);
    const drop = loaded as { model: unknown; adamM: unknown; adamV: unknown };
    drop.model = drop.adamM = drop.adamV = null;
    Bun.gc(true);

    // A second (weights-only) checkpoint to soup with the first.
    for (let i = 0; i < n; i += 997) P![i] *= 1.5;
    const ckB = saveCheckpoint(base, "stage1-step200-tokens1B", { model, trainState: { step: 200 }, tensors: { model: P! } });
    const largest = Math.max(...specs.map((s) => s.numel * 4));
    const soupOut = join(base, "soup");
    const [child, tSoup] = timed(() => Bun.spawnSync([process.execPath, import.meta.path, "--soup-child", ckA, ckB, soupOut], { stdout: "pipe", stderr: "inherit" }));
    if (child.exitCode !== 0) throw new Error(`soup child failed (${child.exitCode})`);
    const soupRss = JSON.parse(child.stdout.toString().trim().split("\n").pop()!).max_rss_bytes as number;
    res.soup_in_GBps = +(2 * bytes / GB / tSoup).toFixed(3);
    res.soup_peak_rss_mb = Math.round(soupRss / 1e6);
    res.soup_rss_limit_mb = Math.round((3 * largest + 300e6) / 1e6);
    res.largest_tensor_mb = Math.round(largest / 1e6);
    log(`soup of 2: ${tSoup.toFixed(1)} s, ${res.soup_in_GBps} GB/s of input (reads 2 × ${(bytes / GB).toFixed(2)} GB, writes ${(bytes / GB).toFixed(2)} GB, incl. process start) | ` +
      `peak RSS ${res.soup_peak_rss_mb} MB (target <= 3 × largest tensor ${res.largest_tensor_mb} MB + 300 = ${res.soup_rss_limit_mb} MB)`);
    rmSync(soupOut, { recursive: true, force: true });
    rmSync(ckB, { recursive: true, force: true });

    if (!flags["no-lz4"]) {
      const [, tRawOnly] = timed(() => saveCheckpoint(base, "plain", { model, tensors: { model: P! } }));
      const [ckZ, tZ] = timed(() => saveCheckpoint(base, "lz4", { model, tensors: { model: P! } }, { compress: true }));
      const [, tZl] = timed(() => loadCheckpoint(ckZ));
      res.lz4_ratio = +(bytes / dirBytes(ckZ)).toFixed(4);
      res.lz4_save_GBps = +(bytes / GB / tZ).toFixed(3);
      res.lz4_load_GBps = +(bytes / GB / tZl).toFixed(3);
      res.plain_weights_save_GBps = +(bytes / GB / tRawOnly).toFixed(3);
      log(`lz4 on the weights: ratio ${res.lz4_ratio} (raw/stored), save ${res.lz4_save_GBps} GB/s vs ${res.plain_weights_save_GBps} uncompressed, load ${res.lz4_load_GBps} GB/s`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  console.log(JSON.stringify(res));
}

async function soupChild([a, b, out]: string[]) {
  const { openSource, soup } = await import("../src/checkpoint/soup.ts");
  const { NativeWriter } = await import("../src/checkpoint/native/write.ts");
  const srcs = [openSource(a), openSource(b)];
  soup(srcs, new NativeWriter(resolve(out), srcs[0].config));
  for (const s of srcs) s.close();
  // VmHWM, not getrusage's maxRSS: Linux carries the parent's peak into a spawned child's ru_maxrss.
  const hwmKiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
  console.log(JSON.stringify({ max_rss_bytes: hwmKiB * 1024 }));
}

const i = process.argv.indexOf("--soup-child");
if (i >= 0) await soupChild(process.argv.slice(i + 1));
else await main();
