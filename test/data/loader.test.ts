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

test("resume rule (ours): the same files continue; another seed continues the checkpoint's order, noted; other files are refused unless overridden", () => {
  const a = new DataLoader(ds, { globalBatchTokens: 128, seed: 1 });
  a.nextBatch();
  const st = a.state();
  const again = new DataLoader(openDataset({ paths, seqLen: 16, vocabSize: 100278 }), { globalBatchTokens: 128, seed: 1 });
  again.restore(st);
  expect(again.state().batchesProcessed).toBe(1);
  // OLMo-core's rule (data_loader.py load_state_dict at d7301e62): warn, and keep the checkpoint's seed
  const otherSeed = new DataLoader(ds, { globalBatchTokens: 128, seed: 2 });
  const notes: string[] = [];
  otherSeed.restore(st, { note: (l) => notes.push(l) });
  expect(notes).toEqual(["data: continuing the checkpoint's data order (seed 1), not data.seed 2; a resume keeps its run's order, as OLMo-core does"]);
  expect(otherSeed.seed).toBe(1);
  expect(Array.from(otherSeed.nextBatch().instanceIds)).toEqual(Array.from(a.nextBatch().instanceIds));
  const otherData = new DataLoader(openDataset({ paths: paths.slice(0, 4), seqLen: 16, vocabSize: 100278 }), { globalBatchTokens: 128, seed: 1 });
  expect(() => otherData.restore(st)).toThrow("resume: the dataset differs from the checkpoint's (files, sizes, dtype or vocabulary)");
  otherData.restore(st, { ignoreFingerprintMismatch: true });
  expect(otherData.state().batchesProcessed).toBe(1);
  // a checkpoint from before the parts were recorded: its one fingerprint still decides
  const { filesFingerprint: _f, seqLen: _l, chunkTokens: _c, ...old } = st;
  new DataLoader(ds, { globalBatchTokens: 128, seed: 2 }).restore(old);
  expect(() => otherData.restore(old)).toThrow("the dataset differs (files, sizes, dtype or sequence lengths)");
});

test("resume rule: a new sequence length continues at the same token when the max-target length (the order's chunk) is the same; another chunk length is refused", () => {
  const opts = { globalBatchTokens: 128, seed: 7 };
  const by16 = new DataLoader(openDataset({ paths, seqLen: 16, maxTargetSeqLen: 32, vocabSize: 100278 }), opts);
  by16.nextBatch();
  by16.nextBatch();
  const st = by16.state();
  const by8 = new DataLoader(openDataset({ paths, seqLen: 8, maxTargetSeqLen: 32, vocabSize: 100278 }), opts);
  const notes: string[] = [];
  by8.restore(st, { note: (l) => notes.push(l) });
  expect(notes).toEqual(["data: instances are now 8 tokens (the checkpoint's were 16); the order of 32-token chunks continues at the same token"]);
  // the very tokens the uninterrupted run would have trained on next
  const flat = (b: { microBatches: Int32Array[] }) => b.microBatches.flatMap((m) => Array.from(m));
  expect(flat(by8.nextBatch())).toEqual(flat(by16.nextBatch()));
  // chunks of 16 tokens (no max target): another order
  const plain8 = new DataLoader(openDataset({ paths, seqLen: 8, maxTargetSeqLen: 16, vocabSize: 100278 }), opts);
  expect(() => plain8.restore(st)).toThrow("resume: the checkpoint's data order shuffles chunks of 32 tokens (instances of 16), this run's chunks of 16 tokens (data.maxTargetSeqLen, else train.seqLen): the order would not continue; set data.maxTargetSeqLen 32");
  const plain16 = new DataLoader(ds, opts);
  expect(() => plain16.restore(st)).toThrow("this run's instances of 16 tokens");
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
  const dolma2 = { eos: 100257, pad: 100277 };
  const opts = { globalBatchTokens: 16 * 8, seed: 34521, allowRepetition: true, tokenIds: dolma2 };
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
  // other files, an unknown fingerprint version, another chunk length: refused in one line
  const cursor = (over: object) => ({ olmoCore: { epoch: 1, batchesProcessed: 0, tokensProcessed: 0, seed: 34521, fingerprint: fp, fingerprintVersion: "v1.1", ...over } });
  const restore = (over: object, o: object = opts) => () => new DataLoader(ds, o as typeof opts).restore(cursor(over));
  expect(restore({ fingerprint: "f".repeat(64) })).toThrow("the dataset differs from the one the checkpoint was trained on (OLMo-core's fingerprint covers the files' names and sizes, their dtype and the tokenizer's EOS and PAD ids");
  expect(restore({ fingerprintVersion: "v2" })).toThrow('its dataset fingerprint is version "v2"');
  expect(restore({ epoch: 0 })).toThrow("epoch is 0");
  expect(restore({ sequenceLength: 32 })).toThrow("the checkpoint's data order shuffles instances of 32 tokens, this run's instances of 16 tokens");
  expect(restore({ sequenceLength: 16, chunk: 2 })).toThrow("shuffles chunks of 32 tokens (instances of 16), this run's instances of 16 tokens");
  expect(restore({ sequenceLength: 16, chunk: 1 })).not.toThrow();
  // OLMo-core's own leniencies that are sound: another sequence length over the same chunks; another seed (the checkpoint's wins)
  expect(restore({ sequenceLength: 8, chunk: 2 })).not.toThrow();
  const s2 = new DataLoader(ds, { ...opts, seed: 1 });
  s2.restore(cursor({ seed: 34521 }));
  expect(s2.seed).toBe(34521);
});

test("OLMo-core's fingerprint takes the tokenizer's EOS and PAD ids from the run, and names them when they differ or are unknown", () => {
  const fpOther = ds.olmoCoreFingerprint(254, 255);
  const cursor = { olmoCore: { epoch: 1, batchesProcessed: 1, tokensProcessed: 128, seed: 3, fingerprint: fpOther, fingerprintVersion: "v1.1" } };
  const own = new DataLoader(ds, { globalBatchTokens: 128, seed: 3, tokenIds: { eos: 255, pad: 254 } });
  own.restore(cursor);
  expect(own.state()).toMatchObject({ batchesProcessed: 1, olmoCoreFingerprint: fpOther });
  const dolma2 = new DataLoader(ds, { globalBatchTokens: 128, seed: 3, tokenIds: { eos: 100257, pad: 100277 } });
  expect(() => dolma2.restore(cursor)).toThrow("the tokenizer's EOS and PAD ids: data.tokenizer, data.eosTokenId, data.padTokenId");
  const unknown = new DataLoader(ds, { globalBatchTokens: 128, seed: 3, tokenIds: null, tokenizer: "my/tokenizer" });
  expect(() => unknown.restore(cursor)).toThrow('resume from OLMo-core: its dataset fingerprint hashes the tokenizer\'s EOS and PAD ids, and data.tokenizer "my/tokenizer" is not one olmo knows; set data.eosTokenId and data.padTokenId');
  expect(unknown.state().olmoCoreFingerprint).toBeUndefined();
});
