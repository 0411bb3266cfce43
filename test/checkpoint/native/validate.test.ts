// Validation of a checkpoint's index before use (src/checkpoint/native/validate.ts) and the metadata's own
// checksum (src/checkpoint/native/metadata.ts): every defect is refused in one line, v1 checkpoints (no
// metadata checksum) are still read and fully validated, and random single-byte damage anywhere in
// a checkpoint's files is never silently accepted.
import { afterAll, expect, test } from "bun:test";
import { cpSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FORMAT, decodeMetadata, encodeMetadata, packr, readCheckpointMeta } from "../../../src/checkpoint/native/metadata.ts";
import { NativeReader, loadCheckpoint, verifyCheckpoint } from "../../../src/checkpoint/native/read.ts";
import { saveCheckpoint } from "../../../src/checkpoint/native/write.ts";
import { paramSpecs } from "../../../src/model/params.ts";
import { cleanupTemp, randomArena, REPO, tempDir, tinyConfig, userErrorOf } from "../helpers.ts";
import type { CheckpointMeta } from "../../../src/checkpoint/native/format.ts";

afterAll(cleanupTemp);

const model = tinyConfig();
const specs = paramSpecs(model);
const tensors = { model: randomArena(model, 1), adamM: randomArena(model, 2), adamV: randomArena(model, 3).map(Math.abs) };
const cursor = { tokensProcessed: 4096, batchesProcessed: 8, epoch: 1, seed: 7, fingerprint: "ab".repeat(32) };

function fresh(compress = false): string {
  return saveCheckpoint(tempDir("validate"), "stage1-step8-tokens1B", {
    model, trainState: { step: 8, tokensProcessed: 4096, adamStep: 8 }, dataCursor: cursor, tensors,
  }, { compress });
}

const metaPath = (ckpt: string) => join(ckpt, "metadata.msgpack");
const readMeta = (ckpt: string) => decodeMetadata(readFileSync(metaPath(ckpt)), metaPath(ckpt)) as CheckpointMeta;

/** Rewrite the index (re-checksummed, so the validation itself must catch the defect). */
function edit(ckpt: string, change: (m: any) => void, version: 1 | 2 = 2): string {
  const m = structuredClone(readMeta(ckpt)) as any;
  change(m);
  if (version === 1) writeFileSync(metaPath(ckpt), packr.pack({ ...m, version: 1 }));
  else writeFileSync(metaPath(ckpt), encodeMetadata(m));
  return ckpt;
}

const entry = (m: CheckpointMeta, group: string, name: string): any => m.tensors.find((t) => t.group === group && t.name === name)!;
const q0 = "model.layers.0.self_attn.q_proj.weight";

test("metadata v2 carries its crc32; v1 (no checksum) still loads bit-exact", () => {
  const ckpt = fresh();
  const outer = packr.unpack(readFileSync(metaPath(ckpt)));
  expect(Object.keys(outer).sort()).toEqual(["crc32", "format", "meta", "version"]);
  expect(outer).toMatchObject({ format: FORMAT, version: 2 });
  edit(ckpt, () => {}, 1);
  expect(packr.unpack(readFileSync(metaPath(ckpt))).version).toBe(1);
  const c = loadCheckpoint(ckpt);
  expect(Buffer.from(c.adamV!.buffer).equals(Buffer.from(tensors.adamV.buffer))).toBe(true);
  expect(c.trainState).toEqual({ step: 8, tokensProcessed: 4096, adamStep: 8 });
});

test("a dropped adam_m entry is refused on load, by verify (ckpt info) and for a resume — v1 and v2", () => {
  for (const version of [1, 2] as const) {
    const ckpt = edit(fresh(), (m) => (m.tensors = m.tensors.filter((t: any) => !(t.group === "adam_m" && t.name === q0))), version);
    const want = new RegExp(`invalid checkpoint index .*the adam_m moments of 1 of ${specs.length} tensors are missing \\(first: ${q0.replaceAll(".", "\\.")}\\)`);
    expect(userErrorOf(() => loadCheckpoint(ckpt))).toMatch(want);
    expect(userErrorOf(() => verifyCheckpoint(ckpt))).toMatch(want);
    expect(userErrorOf(() => new NativeReader(ckpt, { model, needs: { optimizer: true } }))).toMatch(want);
    // partial moments are damage even when only the weights are asked for
    expect(userErrorOf(() => loadCheckpoint(ckpt, { optimizer: false }))).toMatch(want);
  }
});

test("weights-only checkpoints load for export; a resume that needs the optimizer is refused", () => {
  const ckpt = saveCheckpoint(tempDir("validate"), "w", { model, trainState: { step: 0 }, tensors: { model: tensors.model } });
  expect(loadCheckpoint(ckpt).adamM).toBeUndefined();
  expect(userErrorOf(() => new NativeReader(ckpt, { needs: { optimizer: true } }))).toMatch(/holds no optimizer state \(no adam_m tensors\), which a resume needs/);
  expect(userErrorOf(() => loadCheckpoint(ckpt, { optimizer: true }))).toMatch(/holds no optimizer state/);
});

// Each crafted defect, written with a valid metadata checksum: the validation must name it.
const defects: [string, (m: any) => void, RegExp][] = [
  ["a 2^40-element shape", (m) => (entry(m, "model", q0).shape = [2 ** 20, 2 ** 20]), /q_proj\.weight \(model\) has shape \[1048576,1048576\], the model config implies \[16,16\]/],
  ["a negative offset", (m) => (entry(m, "model", q0).slices[0].offset = -64), /slice 0: offset -64 .* are not non-negative byte counts/],
  ["an offset beyond the file", (m) => (entry(m, "adam_v", q0).slices[0].offset = 1e9), /optim\.rank0\.bin: truncated: the index needs \d+ bytes/],
  ["a name that is a number", (m) => (m.tensors[3].name = 42), /tensors\[3\]\.name is 42, expected a string/],
  ["ranges of strings", (m) => (entry(m, "model", q0).slices[0].ranges = [["0", "16"], [0, 16]]), /ranges \[\["0","16"\],\[0,16\]\] are not \[start, end\) pairs/],
  ["a duplicate tensor", (m) => m.tensors.push(structuredClone(m.tensors[0])), /tensor model\.embed_tokens\.weight \(model\) is listed twice/],
  ["a missing model tensor", (m) => (m.tensors = m.tensors.filter((t: any) => t.name !== "lm_head.weight" || t.group !== "model")), /1 of \d+ model tensors are missing \(first: lm_head\.weight\)/],
  ["slices that overlap (same area)", (m) => {
    const t = entry(m, "model", q0);
    const [a] = t.slices;
    t.slices = [{ ...a, ranges: [[0, 8], [0, 16]], length: 512 }, { ...a, ranges: [[4, 12], [0, 16]], offset: a.offset + 512, length: 512 }];
  }, /slices (overlap|leave a gap) at row \d+/],
  ["a slice of another rank than the layout has", (m) => (entry(m, "model", q0).slices[0].rank = 3), /rank 3 is not a rank of the layout's 1/],
  ["a file outside the checkpoint", (m) => (entry(m, "model", q0).slices[0].file = "../../etc/passwd"), /file "\.\.\/\.\.\/etc\/passwd", expected model\.rank0\.bin/],
  ["two slices sharing bytes", (m) => (entry(m, "model", q0).slices[0].offset = entry(m, "model", "model.embed_tokens.weight").slices[0].offset), /the bytes of .* overlap/],
  ["a stored length that is not the slice's", (m) => (entry(m, "model", q0).slices[0].length -= 4), /stores 1020 bytes, its ranges hold 1024/],
  ["block checksums missing", (m) => (entry(m, "model", q0).slices[0].blockCrc32 = []), /block checksums \(4194304 bytes, 0 crcs\) do not cover/],
  ["a block checksum that disagrees with the slice's", (m) => (entry(m, "model", q0).slices[0].blockCrc32[0] ^= 1), /block checksums do not combine to its crc32/],
  ["a crc32 that is not a number", (m) => (entry(m, "model", q0).slices[0].crc32 = "x"), /crc32 "x" is not a 32-bit checksum/],
  ["a wrong dtype", (m) => (entry(m, "model", q0).dtype = "bf16"), /has dtype "bf16", expected "f32"/],
  ["trainState.step \"abc\"", (m) => (m.trainState.step = "abc"), /trainState\.step is "abc", expected a non-negative integer/],
  ["trainState.step 1e9 in a step-8 checkpoint", (m) => (m.trainState.step = 1e9), /trainState\.step is 1000000000 but the checkpoint is named stage1-step8-tokens1B/],
  ["trainState.step -1", (m) => (m.trainState.step = -1), /trainState\.step is -1/],
  ["trainState.tokensProcessed 1.5", (m) => (m.trainState.tokensProcessed = 1.5), /trainState\.tokensProcessed is 1\.5/],
  ["trainState not a map", (m) => (m.trainState = [1]), /trainState is \[1\], expected a map/],
  ["a layout that is not tp × dp", (m) => (m.layout = { world: 2, tp: 1, dp: 1 }), /layout is .* with world = tp × dp/],
  ["optim.step negative", (m) => (m.optim = { step: Object.fromEntries(specs.map((s) => [s.name, 8])) }, (m.optim.step[q0] = -1)), /optim\.step of .*q_proj\.weight is -1/],
  ["optim.step missing a tensor", (m) => (m.optim = { step: Object.fromEntries(specs.slice(1).map((s) => [s.name, 8])) }), /optim\.step has no counter for 1 of \d+ tensors \(first: model\.embed_tokens\.weight\)/],
  ["optim.step naming no parameter", (m) => (m.optim = { step: { nope: 1 } }), /optim\.step names "nope"/],
  ["a data cursor that is a number", (m) => (m.dataCursor = 5), /dataCursor is 5, expected a map/],
  ["a config with 10^9 layers", (m) => (m.model.nLayers = 1e9), /stored config has 1000000000 layers/],
];

for (const [what, change, want] of defects) {
  test(`refused in one line: ${what}`, () => {
    for (const version of [1, 2] as const) {
      const ckpt = edit(fresh(), change, version);
      expect(userErrorOf(() => readCheckpointMeta(ckpt))).toMatch(want);
    }
  });
}

test("lz4 chunking that does not describe the slice is refused", () => {
  const ckpt = edit(fresh(true), (m) => (entry(m, "model", q0).slices[0].lz4.chunks.push(3)));
  expect(userErrorOf(() => readCheckpointMeta(ckpt))).toMatch(/lz4 chunking .* does not describe 1024 bytes/);
});

/** Deterministic PRNG (mulberry32): the same 60 flips every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

for (const compress of [false, true]) {
  test(`60 random single-byte flips across the files (metadata included${compress ? ", lz4" : ""}): every one refused in one line`, () => {
    const base = fresh(compress);
    const files = readdirSync(base).sort();
    expect(files).toEqual(["metadata.msgpack", "model.rank0.bin", "optim.rank0.bin"]);
    const rand = rng(compress ? 2 : 1);
    const outcomes: string[] = [];
    for (let k = 0; k < 60; k++) {
      const ckpt = join(tempDir("flip"), "stage1-step8-tokens1B");
      cpSync(base, ckpt, { recursive: true });
      const file = join(ckpt, files[k % files.length]);
      const bytes = readFileSync(file);
      const at = Math.floor(rand() * bytes.length);
      bytes[at] ^= 1 + Math.floor(rand() * 255);
      writeFileSync(file, bytes);
      // what a resume reads (every tensor, moments included) and what ckpt info verifies
      for (const attempt of [() => loadCheckpoint(ckpt), () => verifyCheckpoint(ckpt)]) {
        outcomes.push(`${files[k % files.length]}@${at}: ${userErrorOf(attempt).replace(ckpt, "…")}`);
      }
    }
    expect(outcomes).toHaveLength(120);
    // the metadata's own checksum (or its framing) caught the metadata flips
    expect(outcomes.filter((o) => o.startsWith("metadata")).every((o) => /metadata\.msgpack: (checksum mismatch in the metadata|corrupt metadata|not an olmo-bun|checkpoint format version)|invalid checkpoint index/.test(o))).toBe(true);
  });
}

test("olmo ckpt info refuses a damaged index in one line, exit 2", () => {
  const ckpt = fresh();
  const bytes = readFileSync(metaPath(ckpt));
  bytes[bytes.length - 10] ^= 0x40;
  writeFileSync(metaPath(ckpt), bytes);
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "ckpt", "info", ckpt], { cwd: REPO, stderr: "pipe", stdout: "pipe" });
  const err = p.stderr.toString().trim().split("\n");
  expect({ code: p.exitCode, lines: err.length }).toEqual({ code: 2, lines: 1 });
  expect(err[0]).toMatch(/^olmo: error: .*metadata\.msgpack: checksum mismatch in the metadata/);
});

test("olmo ckpt info says what a resume restores", () => {
  const run = (ckpt: string) => Bun.spawnSync([process.execPath, "src/cli/main.ts", "ckpt", "info", ckpt], { cwd: REPO, stderr: "pipe", stdout: "pipe" }).stdout.toString();
  expect(run(fresh())).toMatch(/^resume +weights, Adam moments of every tensor, Adam step 8, step 8, data cursor$/m);
  const w = saveCheckpoint(tempDir("validate"), "w", { model, tensors: { model: tensors.model } });
  expect(run(w)).toMatch(/^resume +weights only: no optimizer state/m);
});
