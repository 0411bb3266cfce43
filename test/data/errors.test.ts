// Bad inputs are one-line UserErrors (exit 2 from the CLI), naming the input and the fix.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DataLoader, openDataset, planSourceMixture } from "../../src/data/index.ts";
import { UserError } from "../../src/errors.ts";
import { patterned, tempDir, writeTokens } from "./helpers.ts";

const dir = tempDir();
const good = writeTokens(dir, "good.npy", patterned(0, 64));

function userError(fn: () => unknown, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg).toMatch(re);
  expect(msg.includes("\n")).toBe(false);
}

test("file size not a multiple of the dtype", () => {
  const p = join(dir, "odd.npy");
  writeFileSync(p, new Uint8Array(10));
  userError(() => openDataset({ paths: [p], seqLen: 4, vocabSize: 100278 }), /odd\.npy: 10 bytes is not a multiple of 4 \(dtype uint32\)/);
});

test("missing file in a mix names the mix line", () => {
  const mix = join(dir, "mix.txt");
  writeFileSync(mix, "# comment\nwiki,good.npy\nweb,data/{TOKENIZER}/part-00.npy\n");
  userError(() => openDataset({ mixFile: mix, baseDir: dir, seqLen: 4, vocabSize: 100278 }), /mix\.txt:3: token file not found: .*allenai\/dolma2-tokenizer\/part-00\.npy/);
});

test("a mix resolves labels, {TOKENIZER} and the base dir", () => {
  const mix = join(dir, "mix-ok.txt");
  writeFileSync(mix, "wiki,good.npy\n\nwiki,good.npy\n");
  const ds = openDataset({ mixFile: mix, baseDir: dir, seqLen: 4, vocabSize: 100278 });
  expect(ds.numInstances).toBe(32);
  expect(ds.locate(20)).toMatchObject({ label: "wiki", fileIndex: 1, tokenOffset: 16 });
});

test("empty mix and empty file list", () => {
  const mix = join(dir, "empty.txt");
  writeFileSync(mix, "# nothing here\n\n");
  userError(() => openDataset({ mixFile: mix, baseDir: dir, seqLen: 4, vocabSize: 100278 }), /empty\.txt: the mix lists no files/);
  userError(() => openDataset({ paths: [], seqLen: 4, vocabSize: 100278 }), /no token files/);
  userError(() => openDataset({ mixFile: join(dir, "nope.txt"), seqLen: 4, vocabSize: 100278 }), /mix file not found/);
});

test("token id >= vocab names the file and offset, when the dataset opens (its first tokens) or when first read", () => {
  const t = patterned(0, 64);
  t[37] = 100300;
  const p = writeTokens(dir, "badtok.npy", t);
  userError(() => openDataset({ paths: [p], seqLen: 16, vocabSize: 100278 }), /badtok\.npy: token id 100300 at token offset 37 \(byte 148\) is >= vocab size 100278; wrong dtype or tokenizer\?/);
  // beyond the checked start of a file (16384 tokens), the batch that reads it names it
  const long = patterned(0, 16384 + 64);
  long[16384 + 5] = 100300;
  const q = writeTokens(dir, "badtok-late.npy", long);
  const ds = openDataset({ paths: [q], seqLen: 16, vocabSize: 100278 });
  const l = new DataLoader(ds, { globalBatchTokens: 16 * 1028, seed: 0 });
  userError(() => l.nextBatch(), /badtok-late\.npy: token id 100300 at token offset 16389 \(byte 65556\) is >= vocab size 100278/);
});

test("wrong dtype: uint32 data read as uint16, and uint16 data read as uint32, are refused with the fix", () => {
  const ids = Uint32Array.from({ length: 4096 }, (_, i) => (i * 7919) % 250);
  const u32 = join(dir, "ids32.npy"), u16 = join(dir, "ids16.npy");
  writeFileSync(u32, ids);
  writeFileSync(u16, Uint16Array.from(ids));
  userError(() => openDataset({ paths: [u32], dtype: "uint16", seqLen: 16, vocabSize: 256 }),
    /ids32\.npy: read as uint16, every second token of the first 8192 is 0 .*: the file holds uint32 tokens; set data\.dtype to "uint32"/);
  userError(() => openDataset({ paths: [u16], dtype: "uint32", seqLen: 16, vocabSize: 256 }),
    /ids16\.npy: token id \d+ at token offset 0 .* is >= vocab size 256; its 16-bit halves are all valid ids: the file holds uint16 tokens, set data\.dtype to "uint16"/);
  // the right dtypes open
  expect(openDataset({ paths: [u32], dtype: "uint32", seqLen: 16, vocabSize: 256 }).numInstances).toBe(256);
  expect(openDataset({ paths: [u16], dtype: "uint16", seqLen: 16, vocabSize: 256 }).numInstances).toBe(256);
});

test("budget larger than the data without repetition", () => {
  const ds = openDataset({ paths: [good], seqLen: 16, vocabSize: 100278 });
  const l = new DataLoader(ds, { globalBatchTokens: 32, seed: 0 });
  expect(l.steps(64)).toBe(2);
  userError(() => l.steps(65), /needs 3 steps of 32 tokens, but the data gives only 2 .* per epoch/);
  l.nextBatch();
  l.nextBatch();
  userError(() => l.nextBatch(), /exhausted after 2 global batches/);
  expect(new DataLoader(ds, { globalBatchTokens: 32, seed: 0, allowRepetition: true }).steps(1000)).toBe(32);
});

test("inconsistent batch geometry", () => {
  const ds = openDataset({ paths: [good], seqLen: 16, vocabSize: 100278 });
  userError(() => new DataLoader(ds, { globalBatchTokens: 40, seed: 0 }), /not a positive multiple of the sequence length 16/);
  userError(() => new DataLoader(ds, { globalBatchTokens: 48, seed: 0, dpWorld: 2 }), /does not split over 2 DP ranks/);
  userError(() => new DataLoader(ds, { globalBatchTokens: 64, seed: 0, microBatchInstances: 3 }), /does not divide the rank batch of 4/);
  userError(() => new DataLoader(ds, { globalBatchTokens: 128, seed: 0 }), /fewer than one global batch/);
  userError(() => openDataset({ paths: [good], seqLen: 16, maxTargetSeqLen: 24, vocabSize: 100278 }), /multiple of the sequence length/);
});

test("source mixture: shares, repetition and a clear error when a source is short", () => {
  const a = writeTokens(dir, "src-a.npy", patterned(1, 1000));
  const b = writeTokens(dir, "src-b.npy", patterned(2, 300));
  const plan = planSourceMixture({
    sources: [{ name: "a", targetRatio: 0.7, paths: [a] }, { name: "b", targetRatio: 0.3, paths: [b], maxRepetitionRatio: 2 }],
    requestedTokens: 1000, globalBatchTokens: 100, seqLen: 10, dtype: "uint32",
  });
  // b needs 300 of its 300 tokens; a needs 700 of 1000. Total instances = ceil(1000/100)·10 = 100.
  expect(plan.tokenLimits.reduce((x, y) => x + y, 0)).toBe(1000);
  expect(plan.sources.map((s) => [s.name, s.needed])).toEqual([["a", 700], ["b", 300]]);
  const ds = openDataset({ paths: plan.paths, labels: plan.labels, tokenLimits: plan.tokenLimits, seqLen: 10, vocabSize: 100278 });
  expect(ds.numInstances).toBe(100);
  // upsampling: b at 60% needs 600 > 300 available → two repetitions of b
  const up = planSourceMixture({
    sources: [{ name: "a", targetRatio: 0.4, paths: [a] }, { name: "b", targetRatio: 0.6, paths: [b], maxRepetitionRatio: 2 }],
    requestedTokens: 1000, globalBatchTokens: 100, seqLen: 10, dtype: "uint32",
  });
  expect(up.paths.filter((p) => p === b).length).toBe(2);
  userError(() => planSourceMixture({
    sources: [{ name: "a", targetRatio: 0.4, paths: [a] }, { name: "b", targetRatio: 0.6, paths: [b] }],
    requestedTokens: 1000, globalBatchTokens: 100, seqLen: 10, dtype: "uint32",
  }), /mixture source b cannot supply its share: needs 600 tokens .* at most 300/);
  userError(() => planSourceMixture({ sources: [{ name: "a", targetRatio: 0.5, paths: [a] }], requestedTokens: 10, globalBatchTokens: 10, seqLen: 10, dtype: "uint32" }), /sum to 1/);
});

test("CLI: a bad input is one line on stderr and exit code 2", () => {
  const p = join(dir, "odd2.npy");
  writeFileSync(p, new Uint8Array(6));
  const main = resolve(import.meta.dir, "../../src/cli/main.ts");
  const r = Bun.spawnSync(["bun", main, "data", "inspect", "--data", p, "--seq-len", "4", "--global-batch-tokens", "8", "--seed", "0", "--step", "1"]);
  expect(r.exitCode).toBe(2);
  const err = r.stderr.toString().trim();
  expect(err.split("\n").length).toBe(1);
  expect(err).toMatch(/^olmo: error: .*odd2\.npy: 6 bytes is not a multiple of 4/);
  const o = Bun.spawnSync(["bun", main, "data", "order", "--instances", "10", "--seed", "0", "--head", "4"]);
  expect(o.exitCode).toBe(0);
  expect(JSON.parse(o.stdout.toString())).toEqual([8, 4, 7, 0]);
});
