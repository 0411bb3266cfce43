// Instances, batches, DP sharding, resume and budgets.
import { expect, test } from "bun:test";
import { DataLoader, globalOrder, openDataset, stepsForBudget } from "../../src/data/index.ts";
import { patterned, tempDir, writeTokens } from "./helpers.ts";

const dir = tempDir();
// 5 files of uneven sizes; with L=16: 10+6+0+12+20 = 48 instances.
const sizes = [160, 100, 15, 199, 320];
const paths = sizes.map((n, f) => writeTokens(dir, `part-${f}.npy`, patterned(f, n)));
const ds = openDataset({ paths, seqLen: 16, vocabSize: 100278 });

test("FSL instances: floor(n/L) per file, global index = file offset + local index", () => {
  expect(ds.numInstances).toBe(10 + 6 + 0 + 12 + 20);
  expect(ds.locate(0)).toMatchObject({ fileIndex: 0, tokenOffset: 0 });
  expect(ds.locate(10)).toMatchObject({ fileIndex: 1, tokenOffset: 0 });
  expect(ds.locate(16)).toMatchObject({ fileIndex: 3, tokenOffset: 0 });
  expect(ds.locate(47)).toMatchObject({ fileIndex: 4, tokenOffset: 19 * 16 });
  const out = new Int32Array(16);
  ds.readInstance(17, out, 0);
  expect(Array.from(out)).toEqual(Array.from(patterned(3, 32).subarray(16, 32)));
});

test("max_target_sequence_length counts whole Lmax windows, split into Lmax/L instances", () => {
  const c = openDataset({ paths, seqLen: 16, maxTargetSeqLen: 32, vocabSize: 100278 });
  // floor(n/32)·2: 10, 6, 0, 12, 20 → 5·2, 3·2, 0, 6·2, 10·2
  expect(c.numInstances).toBe(10 + 6 + 0 + 12 + 20);
  const c2 = openDataset({ paths: [paths[1]], seqLen: 16, maxTargetSeqLen: 64, vocabSize: 100278 });
  expect(c2.numInstances).toBe(4); // 100 tokens: one 64-window → 4 instances; the 36-token tail dropped
  expect(c.chunk).toBe(2);
});

test("uint16 files read as int32 tokens", () => {
  const p = writeTokens(dir, "u16.npy", patterned(7, 64), "uint16");
  const d = openDataset({ paths: [p], seqLen: 32, vocabSize: 50304, dtype: "uint16" });
  const out = new Int32Array(32);
  d.readInstance(1, out, 0);
  expect(Array.from(out)).toEqual(Array.from(patterned(7, 64).subarray(32)));
});

test("batches follow the global order: batch b = order[b·ipb …], rank r takes r::W, micro-batches in order", () => {
  const loader = new DataLoader(ds, { globalBatchTokens: 16 * 8, seed: 1110, microBatchInstances: 2 });
  const order = globalOrder(ds.numInstances, 1110, 1);
  expect(loader.batchesPerEpoch).toBe(6);
  const b = loader.nextBatch();
  expect(b.step).toBe(1);
  expect(Array.from(b.instanceIds)).toEqual(Array.from(order.subarray(0, 8)));
  expect(b.microBatches.length).toBe(4);
  const out = new Int32Array(16);
  ds.readInstance(order[3], out, 0);
  expect(Array.from(b.microBatches[1].subarray(16, 32))).toEqual(Array.from(out));
  const r1 = new DataLoader(ds, { globalBatchTokens: 16 * 8, seed: 1110, dpRank: 1, dpWorld: 2 }).batchAt(2);
  expect(Array.from(r1.instanceIds)).toEqual([17, 19, 21, 23].map((i) => order[i]));
});

function concatRows(mbs: Int32Array[]): number[] {
  return mbs.flatMap((m) => Array.from(m));
}

test("DP=1 and DP=2 (interleaved r::2) see the same global batches", () => {
  const one = new DataLoader(ds, { globalBatchTokens: 16 * 8, seed: 2662, microBatchInstances: 4 });
  const ranks = [0, 1].map((r) => new DataLoader(ds, { globalBatchTokens: 16 * 8, seed: 2662, dpRank: r, dpWorld: 2, microBatchInstances: 2 }));
  for (let s = 0; s < one.batchesPerEpoch; s++) {
    const g = one.nextBatch();
    const [a, b] = ranks.map((l) => l.nextBatch());
    const merged: number[] = [];
    for (let k = 0; k < 4; k++) merged.push(a.instanceIds[k], b.instanceIds[k]);
    expect(merged).toEqual(Array.from(g.instanceIds));
    const rowsA = concatRows(a.microBatches), rowsB = concatRows(b.microBatches), rowsG = concatRows(g.microBatches);
    const mergedRows: number[] = [];
    for (let k = 0; k < 4; k++) mergedRows.push(...rowsA.slice(k * 16, k * 16 + 16), ...rowsB.slice(k * 16, k * 16 + 16));
    expect(mergedRows).toEqual(rowsG);
  }
});

test("resume after k batches equals the uninterrupted run (also across epochs and world sizes)", () => {
  const opts = { globalBatchTokens: 16 * 8, seed: 34521, allowRepetition: true };
  const full = new DataLoader(ds, opts);
  const seq = Array.from({ length: 15 }, () => full.nextBatch());
  expect(seq[6].epoch).toBe(2);
  for (const k of [0, 1, 5, 6, 11]) {
    const a = new DataLoader(ds, opts);
    for (let i = 0; i < k; i++) a.nextBatch();
    const saved = JSON.parse(JSON.stringify(a.state()));
    expect(saved.tokensProcessed).toBe(k * 128);
    const b = new DataLoader(ds, opts);
    b.restore(saved);
    for (let i = k; i < 15; i++) {
      const x = b.nextBatch();
      expect(x.index).toBe(i);
      expect(Array.from(x.instanceIds)).toEqual(Array.from(seq[i].instanceIds));
      expect(concatRows(x.microBatches)).toEqual(concatRows(seq[i].microBatches));
    }
  }
  // a checkpoint written at DP=1 resumes at DP=2 on the same global batch
  const a = new DataLoader(ds, opts);
  for (let i = 0; i < 3; i++) a.nextBatch();
  const r0 = new DataLoader(ds, { ...opts, dpWorld: 2, dpRank: 0 });
  r0.restore(a.state());
  expect(Array.from(r0.nextBatch().instanceIds)).toEqual([0, 2, 4, 6].map((i) => seq[3].instanceIds[i]));
});

test("epochs reshuffle with seed + epoch", () => {
  const l = new DataLoader(ds, { globalBatchTokens: 16 * 8, seed: 5, allowRepetition: true });
  expect(Array.from(l.batchAt(6).instanceIds)).toEqual(Array.from(globalOrder(48, 5, 2).subarray(0, 8)));
  expect(l.state().epoch).toBe(1);
});

test("token budgets: steps = ceil(budget / global batch tokens)", () => {
  expect(stepsForBudget(100e9, 2048 * 4096)).toBe(11921);
  expect(stepsForBudget(300e9, 2048 * 4096)).toBe(35763);
  expect(stepsForBudget(128, 128)).toBe(1);
  expect(stepsForBudget(129, 128)).toBe(2);
  const l = new DataLoader(ds, { globalBatchTokens: 16 * 8, seed: 0 });
  expect(l.steps(6 * 128)).toBe(6);
});

test("fingerprint: same data and seed restore; another seed or file set is refused unless overridden", () => {
  const a = new DataLoader(ds, { globalBatchTokens: 128, seed: 1 });
  a.nextBatch();
  const st = a.state();
  const again = new DataLoader(openDataset({ paths, seqLen: 16, vocabSize: 100278 }), { globalBatchTokens: 128, seed: 1 });
  again.restore(st);
  expect(again.state().batchesProcessed).toBe(1);
  const otherSeed = new DataLoader(ds, { globalBatchTokens: 128, seed: 2 });
  expect(() => otherSeed.restore(st)).toThrow(/seed differs/);
  const otherData = new DataLoader(openDataset({ paths: paths.slice(0, 4), seqLen: 16, vocabSize: 100278 }), { globalBatchTokens: 128, seed: 1 });
  expect(() => otherData.restore(st)).toThrow(/dataset differs/);
  otherData.restore(st, { ignoreFingerprintMismatch: true });
  expect(otherData.state().batchesProcessed).toBe(1);
});

test("order cache: written once under our own name (not OLMo-core's) and reused", () => {
  const cache = tempDir("olmo-order-");
  const l1 = new DataLoader(ds, { globalBatchTokens: 128, seed: 3, orderCacheDir: cache });
  const b1 = l1.batchAt(2);
  const l2 = new DataLoader(ds, { globalBatchTokens: 128, seed: 3, orderCacheDir: cache });
  expect(Array.from(l2.batchAt(2).instanceIds)).toEqual(Array.from(b1.instanceIds));
  expect(require("node:fs").readdirSync(cache)).toEqual(["olmo-bun-order_chunk1_epoch1_seed3_instances48.u32"]);
});

test("resume from OLMo-core's data-loader state: counted within the epoch (it resets each epoch), checked by OLMo-core's fingerprint", () => {
  const opts = { globalBatchTokens: 16 * 8, seed: 34521, allowRepetition: true };
  const full = new DataLoader(ds, opts);
  const seq = Array.from({ length: 15 }, () => full.nextBatch());
  const bpe = full.batchesPerEpoch; // 6 batches of 8 instances out of 48
  expect(seq[bpe].epoch).toBe(2);
  const fp = ds.olmoCoreFingerprint(100277, 100257);
  // OLMo-core at epoch 2 after 3 batches of that epoch: global batch bpe + 3
  const b = new DataLoader(ds, opts);
  b.restore({ olmoCore: { epoch: 2, batchesProcessed: 3, tokensProcessed: 3 * 128, seed: 34521, fingerprint: fp, fingerprintVersion: "v1.1" } });
  const x = b.nextBatch();
  expect(x.index).toBe(bpe + 3);
  expect(Array.from(x.instanceIds)).toEqual(Array.from(seq[bpe + 3].instanceIds));
  // our saved state records what converts back: the epoch length and OLMo-core's fingerprint of the files
  expect(b.state()).toMatchObject({ batchesProcessed: bpe + 4, epoch: 2, batchesPerEpoch: bpe, olmoCoreFingerprint: fp });
  // other files, another seed, an unknown fingerprint version: refused in one line
  const restore = (over: object) => () => new DataLoader(ds, opts).restore({ olmoCore: { epoch: 1, batchesProcessed: 0, tokensProcessed: 0, seed: 34521, fingerprint: fp, fingerprintVersion: "v1.1", ...over } });
  expect(restore({ fingerprint: "f".repeat(64) })).toThrow("the dataset differs from the one the checkpoint was trained on");
  expect(restore({ seed: 1 })).toThrow("the data seed differs (checkpoint 1, now 34521)");
  expect(restore({ fingerprintVersion: "v2" })).toThrow('its dataset fingerprint is version "v2"');
  expect(restore({ epoch: 0 })).toThrow("epoch is 0");
  expect(restore({ sequenceLength: 32 })).toThrow("its instances are 32 tokens, this run's 16");
  expect(restore({ sequenceLength: 16, chunk: 2 })).toThrow("its order shuffles chunks of 2 instances, this run's of 1");
  expect(restore({ sequenceLength: 16, chunk: 1 })).not.toThrow();
});
