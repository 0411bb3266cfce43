// bun run bench:data — data-loader throughput on one core, next to memcpy measured in the same run.
//  1. memcpy: Uint8Array.set over a 256 MiB buffer (the ceiling for batch assembly)
//  2. assembly: DataLoader.nextBatch over page-cached uint32 files (T=4096, 64 instances a batch),
//     including the vocabulary check of every token; target ≥ 100M tokens/s
//  3. start-up: openDataset + DataLoader + first batch for a 2,000-file mix file; target < 1 s
//  4. order: globalOrder (numpy PCG64 shuffle) throughput, for sizing large mixes
// The last line is one JSON object.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataLoader, globalOrder, openDataset } from "../src/data/index.ts";

const dir = join(tmpdir(), `olmo-bench-data-${process.pid}`);
mkdirSync(dir, { recursive: true });
const T = 4096, V = 100278;

function memcpyGBs(): number {
  const n = 256 << 20;
  const src = new Uint8Array(n).fill(1), dst = new Uint8Array(n);
  dst.set(src);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t);
  }
  return n / (best / 1000) / 1e9;
}

function assembly(): { tokensPerS: number; bytesGBs: number } {
  const files: string[] = [];
  const perFile = 16 << 20; // 4 × 16M tokens = 256 MiB of uint32, beyond any cache
  for (let f = 0; f < 4; f++) {
    const a = new Uint32Array(perFile);
    for (let k = 0; k < perFile; k++) a[k] = (k * 2654435761 + f) % V;
    const p = join(dir, `part-${f}.npy`);
    writeFileSync(p, a);
    readFileSync(p); // page cache
    files.push(p);
  }
  const ds = openDataset({ paths: files, seqLen: T, vocabSize: V });
  const loader = new DataLoader(ds, { globalBatchTokens: 64 * T, seed: 0 });
  for (let b = 0; b < loader.batchesPerEpoch; b++) loader.batchAt(b); // fault the maps in once
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const l = new DataLoader(ds, { globalBatchTokens: 64 * T, seed: 0 });
    l.batchAt(0);
    const t = performance.now();
    for (let b = 0; b < l.batchesPerEpoch; b++) l.nextBatch();
    best = Math.min(best, performance.now() - t);
  }
  const tokens = loader.batchesPerEpoch * 64 * T;
  return { tokensPerS: tokens / (best / 1000), bytesGBs: (tokens * 4) / (best / 1000) / 1e9 };
}

function startup(nFiles: number): { ms: number; instances: number } {
  const base = join(dir, "mix");
  mkdirSync(join(base, "allenai/dolma2-tokenizer"), { recursive: true });
  const lines: string[] = [];
  const a = new Uint32Array(3 * T + 17);
  for (let f = 0; f < nFiles; f++) {
    writeFileSync(join(base, `allenai/dolma2-tokenizer/part-${f}.npy`), a);
    lines.push(`src${f % 7},{TOKENIZER}/part-${f}.npy`);
  }
  const mix = join(dir, "mix.txt");
  writeFileSync(mix, lines.join("\n"));
  const t = performance.now();
  const ds = openDataset({ mixFile: mix, baseDir: base, seqLen: T, vocabSize: V });
  const l = new DataLoader(ds, { globalBatchTokens: 8 * T, seed: 34521 });
  l.nextBatch();
  return { ms: performance.now() - t, instances: ds.numInstances };
}

function orderRate(n: number): number {
  const t = performance.now();
  globalOrder(n, 0, 1);
  return n / ((performance.now() - t) / 1000);
}

try {
  const memcpy = memcpyGBs();
  const asm = assembly();
  const st = startup(2000);
  const ord = orderRate(10_000_000);
  console.log(`memcpy (Uint8Array.set, 256 MiB)      ${memcpy.toFixed(2)} GB/s`);
  console.log(`batch assembly (uint32, T=${T}, 1 core) ${(asm.tokensPerS / 1e6).toFixed(0)}M tokens/s = ${asm.bytesGBs.toFixed(2)} GB/s (${((asm.bytesGBs / memcpy) * 100).toFixed(0)}% of memcpy)  [target ≥ 100M]`);
  console.log(`start-up, 2,000-file mix               ${st.ms.toFixed(0)} ms (${st.instances} instances, first batch included)  [target < 1000 ms]`);
  console.log(`global order (PCG64 shuffle, 10M)      ${(ord / 1e6).toFixed(1)}M instances/s`);
  console.log(JSON.stringify({
    bench: "data", memcpy_GBps: +memcpy.toFixed(2), assembly_tokens_per_s: Math.round(asm.tokensPerS), assembly_GBps: +asm.bytesGBs.toFixed(2),
    startup_2000_files_ms: +st.ms.toFixed(1), order_instances_per_s: Math.round(ord),
    targets_met: asm.tokensPerS >= 100e6 && st.ms < 1000,
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
