import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkpointName, findLatestCheckpoint, listCheckpoints, parseCheckpointName, pruneCheckpoints, retireCheckpoint } from "../../../src/checkpoint/naming.ts";
import { CRC_BLOCK_BYTES, NativeWriter, saveCheckpoint } from "../../../src/checkpoint/native/write.ts";
import { crc32Combine, crc32Combiner } from "../../../src/checkpoint/io.ts";
import { NativeReader, loadCheckpoint, verifyCheckpoint } from "../../../src/checkpoint/native/read.ts";
import { paramSpecs } from "../../../src/model/params.ts";
import { cleanupTemp, randomArena, REPO, tempDir, tinyConfig, userErrorOf } from "../helpers.ts";
import { FORMAT_VERSION, packr, readCheckpointMeta } from "../../../src/checkpoint/native/metadata.ts";

afterAll(cleanupTemp);

test("names follow OLMo-core's uploader (ceil of billions of tokens)", () => {
  expect(checkpointName({ stage: 1, step: 721901, globalBatchTokens: 2048 * 4096 })).toBe("stage1-step721901-tokens6056B");
  expect(checkpointName({ stage: 2, ingredient: 3, step: 35763, globalBatchTokens: 2048 * 4096 })).toBe("stage2-ingredient3-step35763-tokens301B");
  expect(checkpointName({ stage: 2, ingredient: 1, step: 11921, globalBatchTokens: 2048 * 4096 })).toBe("stage2-ingredient1-step11921-tokens101B");
  expect(checkpointName({ stage: 1, step: 0, globalBatchTokens: 1024 })).toBe("stage1-step0-tokens0B");
  expect(parseCheckpointName("stage2-ingredient3-step35763-tokens301B")).toEqual({ stage: 2, ingredient: 3, step: 35763, tokensB: 301 });
  expect(parseCheckpointName("stage1-step5-tokens1B.tmp-123")).toBeNull();
});

const model = tinyConfig();
const params = randomArena(model, 1), adamM = randomArena(model, 2), adamV = randomArena(model, 3).map(Math.abs);

for (const compress of [false, true]) {
  test(`save/load round trip is bit-exact${compress ? " (lz4)" : ""}, with train state, cursor and RNG`, () => {
    const dir = tempDir("native");
    const state = { step: 7, tokensProcessed: 7 * 512, nested: { lr: 1e-4 } };
    const path = saveCheckpoint(dir, "stage1-step7-tokens1B", {
      model, runConfig: { name: "t", model }, trainState: state, dataCursor: { batches: 7 }, rng: { s: [1, 2, 3] }, tensors: { model: params, adamM, adamV },
    }, { compress });
    expect(readdirSync(path).sort()).toEqual(["metadata.msgpack", "model.rank0.bin", "optim.rank0.bin"]);
    const c = loadCheckpoint(path);
    expect(Buffer.from(c.model.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    expect(Buffer.from(c.adamM!.buffer).equals(Buffer.from(adamM.buffer))).toBe(true);
    expect(Buffer.from(c.adamV!.buffer).equals(Buffer.from(adamV.buffer))).toBe(true);
    expect(c.trainState).toEqual(state);
    expect(c.dataCursor).toEqual({ batches: 7 });
    expect(c.rng).toEqual({ s: [1, 2, 3] });
    expect(c.config).toEqual(model);
    const meta = readCheckpointMeta(path);
    expect(meta.version).toBe(FORMAT_VERSION);
    expect(meta.tensors[0]).toMatchObject({ name: "model.embed_tokens.weight", group: "model", shape: [256, 16], dtype: "f32" });
    expect(meta.tensors[0].slices[0]).toMatchObject({ rank: 0, ranges: [[0, 256], [0, 16]], file: "model.rank0.bin", offset: 0 });
    expect(meta.tensors.length).toBe(3 * paramSpecs(model).length);
    expect(verifyCheckpoint(path)).toMatchObject({ tensors: meta.tensors.length, bytes: 3 * params.byteLength });
    // weights only, into preallocated buffers
    const into = new Float32Array(params.length);
    const w = loadCheckpoint(path, { optimizer: false, into: { model: into } });
    expect(w.model).toBe(into);
    expect(w.adamM).toBeUndefined();
  });
}

test("a flipped byte is detected and the tensor named", () => {
  const dir = tempDir("native");
  const path = saveCheckpoint(dir, "c", { model, tensors: { model: params, adamM, adamV } });
  const meta = readCheckpointMeta(path);
  const t = meta.tensors.find((x) => x.name === "model.layers.1.mlp.up_proj.weight" && x.group === "adam_v")!;
  const file = join(path, "optim.rank0.bin");
  const bytes = readFileSync(file);
  bytes[t.slices[0].offset + 17] ^= 0x10;
  writeFileSync(file, bytes);
  expect(userErrorOf(() => loadCheckpoint(path))).toMatch(/checksum mismatch in tensor model\.layers\.1\.mlp\.up_proj\.weight \(adam_v\)/);
  expect(loadCheckpoint(path, { optimizer: false }).model.length).toBe(params.length); // the model file is intact
});

test("bad checkpoints: missing files, truncated file, wrong metadata version, incomplete save", () => {
  const dir = tempDir("native");
  const path = saveCheckpoint(dir, "c", { model, tensors: { model: params, adamM, adamV } });
  expect(userErrorOf(() => loadCheckpoint(join(dir, "nope")))).toMatch(/checkpoint not found/);
  truncateSync(join(path, "optim.rank0.bin"), 1000);
  expect(userErrorOf(() => loadCheckpoint(path))).toMatch(/optim\.rank0\.bin: truncated: the index needs \d+ bytes, the file has 1000/);
  rmSync(join(path, "optim.rank0.bin"));
  expect(userErrorOf(() => loadCheckpoint(path))).toMatch(/tensor file optim\.rank0\.bin is missing/);
  const m = packr.unpack(readFileSync(join(path, "metadata.msgpack")));
  writeFileSync(join(path, "metadata.msgpack"), packr.pack({ ...m, version: 99 }));
  expect(userErrorOf(() => loadCheckpoint(path))).toMatch(/format version 99 is not supported \(this olmo reads versions 1 and 2\)/);
  writeFileSync(join(path, "metadata.msgpack"), new Uint8Array([0xc1, 0xc1]));
  expect(userErrorOf(() => loadCheckpoint(path))).toMatch(/corrupt metadata/);
  rmSync(join(path, "metadata.msgpack"));
  expect(userErrorOf(() => loadCheckpoint(path))).toMatch(/no metadata\.msgpack \(an incomplete save/);
});

test("findLatestCheckpoint / listCheckpoints / keep-last-K pruning ignore incomplete and temp dirs", () => {
  const dir = tempDir("native");
  const save = (step: number) => saveCheckpoint(dir, checkpointName({ stage: 1, step, globalBatchTokens: 1e8 }), { model, trainState: { step }, tensors: { model: params } });
  expect(findLatestCheckpoint(dir)).toBeNull();
  for (const s of [10, 20, 5]) save(s);
  mkdirSync(join(dir, "stage1-step30-tokens3B")); // no metadata: an incomplete directory
  mkdirSync(join(dir, "stage1-step40-tokens4B.tmp-999999999")); // a temp dir of a dead process
  expect(findLatestCheckpoint(dir)).toBe(join(dir, "stage1-step20-tokens2B"));
  expect(listCheckpoints(dir).map((c) => c.step)).toEqual([5, 10, 20]);
  const removed = pruneCheckpoints(dir, 2);
  expect(removed.map((p) => p.slice(dir.length + 1)).sort()).toEqual(["stage1-step40-tokens4B.tmp-999999999", "stage1-step5-tokens1B"]);
  expect(listCheckpoints(dir).map((c) => c.step)).toEqual([10, 20]);
  // re-saving an existing name replaces it atomically
  save(20);
  expect(loadCheckpoint(join(dir, "stage1-step20-tokens2B")).trainState).toEqual({ step: 20 });
  expect(readdirSync(dir).filter((n) => n.includes(".tmp-") || n.includes(".old"))).toEqual([]);
});

test("kill -9 in the middle of a save leaves the previous checkpoint as the latest", async () => {
  const dir = tempDir("kill");
  const prev = saveCheckpoint(dir, "stage1-step1-tokens1B", { model, trainState: { step: 1 }, tensors: { model: params } });
  const child = Bun.spawn(["bun", join(REPO, "test/checkpoint/slow-save.ts"), dir, "stage1-step2-tokens1B"], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  expect(new TextDecoder().decode(value)).toContain("saving");
  child.kill(9);
  await child.exited;
  expect(child.signalCode).toBe("SIGKILL");
  const names = readdirSync(dir);
  expect(names.some((n) => n.startsWith("stage1-step2-tokens1B.tmp-"))).toBe(true); // the debris is there...
  expect(findLatestCheckpoint(dir)).toBe(prev); // ...and ignored
  expect(loadCheckpoint(prev).trainState).toEqual({ step: 1 });
  expect(existsSync(join(dir, "stage1-step2-tokens1B"))).toBe(false);
  pruneCheckpoints(dir, 5);
  expect(readdirSync(dir)).toEqual(["stage1-step1-tokens1B"]);
}, 30_000);

test("pruning retires a checkpoint with one rename before deleting it: a delete killed half way leaves no complete-looking folder", () => {
  const dir = tempDir("prune");
  for (const step of [1, 2]) saveCheckpoint(dir, `stage1-step${step}-tokens1B`, { model, trainState: { step }, tensors: { model: params } });
  // what a kill after the rename and part of the recursive delete leaves (a dead pid's name)
  const aside = retireCheckpoint(join(dir, "stage1-step1-tokens1B"), 999999999);
  expect(aside).toBe(join(dir, "stage1-step1-tokens1B.pruned.tmp-999999999"));
  rmSync(join(aside, "model.rank0.bin"));
  expect(listCheckpoints(dir).map((c) => c.name)).toEqual(["stage1-step2-tokens1B"]);
  expect(pruneCheckpoints(dir, 5)).toEqual([aside]); // the next prune removes the debris
  expect(readdirSync(dir)).toEqual(["stage1-step2-tokens1B"]);
  // a regular prune leaves nothing behind either
  saveCheckpoint(dir, "stage1-step3-tokens1B", { model, trainState: { step: 3 }, tensors: { model: params } });
  expect(pruneCheckpoints(dir, 1)).toEqual([join(dir, "stage1-step2-tokens1B")]);
  expect(readdirSync(dir)).toEqual(["stage1-step3-tokens1B"]);
});

test("ranged reads: element ranges across 4 MiB checksum blocks equal the whole tensor's; a flipped byte in a block read is named", () => {
  // a 1.5M-float embedding (6 MiB: two checksum blocks) next to small tensors
  const big = tinyConfig({ dModel: 64, vocabSize: 24576 - 128 });
  const arena = randomArena(big, 4);
  const dir = tempDir("native");
  for (const compress of [false, true]) {
    const path = saveCheckpoint(dir, `r${compress}`, { model: big, tensors: { model: arena } }, { compress });
    const r = new NativeReader(path);
    const emb = paramSpecs(big)[0], n = emb.numel;
    expect(n * 4).toBeGreaterThan(CRC_BLOCK_BYTES);
    const slice = r.entry("model", emb.name).slices[0];
    expect(slice.blockCrc32?.length).toBe(compress ? undefined : Math.ceil((n * 4) / CRC_BLOCK_BYTES));
    const whole = arena.subarray(0, n);
    for (const [lo, hi] of [[0, n], [0, 1], [n - 1, n], [(1 << 20) - 3, (1 << 20) + 5], [12345, 1_400_000], [7, 7]]) {
      const out = new Float32Array(hi - lo);
      r.readRange("model", emb.name, lo, out);
      expect(Buffer.from(out.buffer).equals(Buffer.from(whole.slice(lo, hi).buffer))).toBe(true);
    }
    r.close();
    if (compress) continue;
    // corrupt one byte in the second block: ranges inside the first block still read, ranges touching the second are refused
    const file = join(path, "model.rank0.bin");
    const bytes = readFileSync(file);
    bytes[slice.offset + CRC_BLOCK_BYTES + 100] ^= 0x01;
    writeFileSync(file, bytes);
    const r2 = new NativeReader(path);
    r2.readRange("model", emb.name, 0, new Float32Array(1000));
    expect(userErrorOf(() => r2.readRange("model", emb.name, (1 << 20) - 2, new Float32Array(4)))).toMatch(
      /checksum mismatch in tensor model\.embed_tokens\.weight \(model\), block 1/);
    r2.close();
  }
});

test("crc32Combine / crc32Combiner: the crc32 of A‖B from the parts' crcs, for any lengths", () => {
  const comb = crc32Combiner(4096);
  for (const [la, lb] of [[0, 5], [5, 0], [1, 1], [13, 4096], [70000, 12345], [777, 4096], [3, 100003]]) {
    const a = new Uint8Array(la).map((_, i) => (i * 31 + 7) & 255), b = new Uint8Array(lb).map((_, i) => (i * 17 + 3) & 255);
    const ab = new Uint8Array(la + lb);
    ab.set(a);
    ab.set(b, la);
    expect(crc32Combine(Bun.hash.crc32(a), Bun.hash.crc32(b), lb)).toBe(Bun.hash.crc32(ab));
    if (lb === 4096) expect(comb(Bun.hash.crc32(a), Bun.hash.crc32(b))).toBe(Bun.hash.crc32(ab));
  }
});

test("a parallel save: ranks write rectangles into rank 0's temporary directory, rank 0 merges; readers assemble any range", () => {
  const dir = tempDir("native");
  const final = join(dir, "stage1-step2-tokens1B");
  const specs = paramSpecs(model);
  const tmp = `${final}.tmp-4242`;
  const w0 = new NativeWriter(final, model, { tmp, rank: 0 });
  const w1 = new NativeWriter(final, model, { tmp, rank: 1, joinTmp: true });
  // rank 0 holds rows [0, 1) of every 2-D tensor and whole vectors; rank 1 the other rows, split in two rectangles
  for (const s of specs) {
    const whole = params.subarray(s.offset, s.offset + s.numel);
    if (s.shape.length === 1) {
      w0.addRegion("model", s.name, [[0, s.shape[0]]], whole);
      continue;
    }
    const [R, C] = s.shape, mid = Math.max(1, R >> 1);
    w0.addRegion("model", s.name, [[0, 1], [0, C]], whole.subarray(0, C));
    if (mid > 1) w1.addRegion("model", s.name, [[1, mid], [0, C]], whole.subarray(C, mid * C));
    w1.addRegion("model", s.name, [[mid, R], [0, C]], whole.subarray(mid * C));
  }
  w1.finishPart();
  const path = w0.finish({}, { world: 2, tp: 2, dp: 1 });
  expect(readdirSync(path).sort()).toEqual(["metadata.msgpack", "model.rank0.bin", "model.rank1.bin"]);
  const c = loadCheckpoint(path);
  expect(Buffer.from(c.model.buffer).equals(Buffer.from(params.buffer))).toBe(true);
  const r = new NativeReader(path);
  const emb = specs[0];
  const out = new Float32Array(50);
  r.readRange("model", emb.name, 7, out); // spans the rank-0 and rank-1 rectangles
  expect(Array.from(out)).toEqual(Array.from(params.subarray(7, 57)));
  r.close();
  expect(verifyCheckpoint(path).tensors).toBe(specs.length);
});

test("a parallel save whose rank left no part, or whose slices do not cover a tensor, fails instead of publishing", () => {
  const dir = tempDir("native");
  const final = join(dir, "c");
  const w0 = new NativeWriter(final, model, { tmp: `${final}.tmp-1`, rank: 0 });
  for (const s of paramSpecs(model)) w0.add("model", s.name, params.subarray(s.offset, s.offset + s.numel));
  expect(() => w0.finish({}, { world: 2, tp: 1, dp: 2 })).toThrow("rank 1 left no part index");
  w0.abort();
  const w = new NativeWriter(final, model, { tmp: `${final}.tmp-2`, rank: 0 });
  const [first, ...rest] = paramSpecs(model);
  w.addRegion("model", first.name, [[0, 1], [0, first.shape[1]]], params.subarray(0, first.shape[1]));
  for (const s of rest) w.add("model", s.name, params.subarray(s.offset, s.offset + s.numel));
  expect(() => w.finish()).toThrow(`the slices of ${first.name} (model) cover`);
  w.abort();
  expect(existsSync(final)).toBe(false);
});

test("a rank that cannot see rank 0's temporary directory (run folder not shared) gets a one-line error", () => {
  const dir = tempDir("native");
  expect(userErrorOf(() => new NativeWriter(join(dir, "c"), model, { tmp: join(dir, "c.tmp-77"), rank: 3, joinTmp: true }))).toMatch(
    /rank 3 cannot see rank 0's .*c\.tmp-77: the run folder must be on a filesystem every rank shares/);
});

test("non-finite numbers survive the metadata: a skip history holding NaN/Infinity, a config with maxGradNorm Infinity", () => {
  const dir = tempDir("nonfinite");
  const step = Object.fromEntries(paramSpecs(model).map((s) => [s.name, 3]));
  const skipHistory = { losses: [2.5, NaN, Infinity, 2.4], gradNorms: [1, -Infinity, NaN, 0.9] };
  const path = saveCheckpoint(dir, "stage1-step3-tokens1B", {
    model, runConfig: { name: "t", optim: { maxGradNorm: Infinity } }, trainState: { step: 3, tokensProcessed: 96 },
    tensors: { model: params, adamM, adamV }, optim: { step, skipHistory },
  });
  const meta = readCheckpointMeta(path); // validated: a non-finite history entry is a number, not a null
  expect(meta.optim!.skipHistory).toEqual(skipHistory);
  expect((meta.runConfig as { optim: { maxGradNorm: number } }).optim.maxGradNorm).toBe(Infinity);
  expect(loadCheckpoint(path).stepCounters).toEqual(step);
});
