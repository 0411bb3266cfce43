// OLMo-core step folders whose geometry claims more than their bytes hold, or that are slow on
// purpose: a view may not claim more elements than its storage (stride 0, overlapping strides), a
// chunk's item holds at least its elements' bytes, no two items share a byte, the chunks listed are
// bounded by the .metadata's size, and the tiling check is O(k log k). Each is refused in one line
// before anything is written; legitimate layouts (strided views, many chunks) still read.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type DcpChunk, checkTiling, parseDcpMetadata } from "../../../src/checkpoint/olmo-core/dcp-metadata.ts";
import { openOlmoCoreCheckpoint } from "../../../src/checkpoint/olmo-core/read.ts";
import { UserError } from "../../../src/errors.ts";
import { Rng } from "../../support/random.ts";
import { cleanupTemp, tempDir } from "../helpers.ts";
import { type CraftedTensor, fixtureTensors, tensorBlob, viewBlob, writeStepFolder } from "./crafted-geometry.ts";

const root = resolve(import.meta.dir, "../../..");
afterAll(cleanupTemp);

function importCli(step: string, out: string): { code: number; stderr: string; ms: number } {
  const t0 = performance.now();
  const p = Bun.spawnSync([process.execPath, "src/cli/main.ts", "import-olmo-core", step, "--out", out], { cwd: root, env: { ...process.env, OLMO_BACKEND: "cpu" } });
  return { code: p.exitCode ?? -1, stderr: p.stderr.toString(), ms: performance.now() - t0 };
}

/** The fixture's tensors with the embedding (256 × 32) replaced by `emb`'s chunks. */
function withEmbedding(chunks: CraftedTensor["chunks"]): CraftedTensor[] {
  return fixtureTensors().map((t) => (t.fqn === "model.embeddings.weight" ? { ...t, chunks } : t));
}

/** Import must fail in one line matching `message`, leave no output, and not take long. */
function refused(name: string, tensors: CraftedTensor[], message: RegExp): void {
  const dir = tempDir(name), step = join(dir, "step1"), out = join(dir, "imported");
  writeStepFolder(step, tensors);
  const r = importCli(step, out);
  expect({ code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({ code: 2, lines: 1 });
  expect(r.stderr).toMatch(message);
  expect(existsSync(out)).toBe(false);
  expect(r.ms).toBeLessThan(20_000);
}

describe("geometry that claims more than the bytes hold", () => {
  test("a crafted folder without tricks imports (the helper makes valid folders)", () => {
    const dir = tempDir("oc-valid"), step = join(dir, "step1");
    writeStepFolder(step, withEmbedding([{ offsets: [0, 0], sizes: [100, 32] }, { offsets: [100, 0], sizes: [156, 32] }]));
    expect(importCli(step, join(dir, "imported"))).toMatchObject({ code: 0, stderr: "" });
  });

  test("a stride-0 view of one stored element, padded to look long enough, is refused, not expanded", () => {
    refused("oc-stride0", withEmbedding([{ offsets: [0, 0], sizes: [256, 32], blob: viewBlob([256, 32], [0, 0], Float32Array.of(0.5), 256 * 32 * 4) }]),
      /model\.embeddings\.weight at \d+: not a valid torch\.save archive: a tensor \[256,32\] \(strides 0,0\) claims 8192 elements from a storage of 1: a broadcast or overlapping view/);
  });

  test("overlapping strides (more elements than the storage) are refused as well", () => {
    refused("oc-overlap-stride", withEmbedding([{ offsets: [0, 0], sizes: [256, 32], blob: viewBlob([256, 32], [1, 1], new Float32Array(287), 256 * 32 * 4) }]),
      /claims 8192 elements from a storage of 287/);
  });

  test("a stride-0 blob in an item shorter than its elements is refused before any read", () => {
    refused("oc-short-item", withEmbedding([{ offsets: [0, 0], sizes: [256, 32], blob: viewBlob([256, 32], [0, 0], Float32Array.of(0.5)) }]),
      /item model\.embeddings\.weight at \[0,0\] holds \d+ bytes, fewer than its 32768 bytes of \[256,32\] f32 elements/);
  });

  test("two chunks whose records point at the same bytes are refused", () => {
    const half = tensorBlob([128, 32], new Float32Array(128 * 32).fill(0.25));
    // the embedding is the first tensor written: its first chunk's blob lies at offset 0
    const shared = { relativePath: "__0_0.distcp", offset: 0, length: half.length };
    refused("oc-shared-item", withEmbedding([{ offsets: [0, 0], sizes: [128, 32], blob: half }, { offsets: [128, 0], sizes: [128, 32], storage: shared }]),
      /items model\.embeddings\.weight \(bytes 0\.\.\d+\) and model\.embeddings\.weight \(bytes 0\.\.\d+\) share bytes/);
  });

  test("items that overlap part way are refused", () => {
    const half = tensorBlob([128, 32], new Float32Array(128 * 32).fill(0.25));
    refused("oc-partial-overlap", withEmbedding([{ offsets: [0, 0], sizes: [128, 32], blob: half }, { offsets: [128, 0], sizes: [128, 32], storage: { relativePath: "__0_0.distcp", offset: 64, length: half.length } }]),
      /share bytes: every item of a DCP file has its own/);
  });

  test("a legitimate strided view (a transposed storage, as many elements as stored) still reads its values", () => {
    const dir = tempDir("oc-transposed"), step = join(dir, "step1");
    const colMajor = Float32Array.from({ length: 256 * 32 }, (_, k) => k); // element (r, c) at c·256 + r
    writeStepFolder(step, withEmbedding([{ offsets: [0, 0], sizes: [256, 32], blob: viewBlob([256, 32], [1, 256], colMajor) }]));
    const r = openOlmoCoreCheckpoint(step);
    try {
      const out = new Float32Array(256 * 32);
      r.read("model", "model.embed_tokens.weight", out);
      expect([out[0], out[1], out[32], out[33], out[256 * 32 - 1]]).toEqual([0, 256, 1, 257, 256 * 32 - 1]);
    } finally {
      r.close();
    }
  });
});

// ---- the .metadata's own work: chunks listed by reference, and the tiling check ----

/** Raw protocol-2 opcodes, for pickles that share records through the memo (pickle-write never does). */
class RawPickle {
  private out: number[] = [0x80, 2];
  private readonly enc = new TextEncoder();
  op(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  str(s: string): this {
    const b = this.enc.encode(s);
    return this.op(0x8c, b.length, ...b); // SHORT_BINUNICODE
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...this.enc.encode(`${module}\n${name}\n`));
  }
  newobj(module: string, name: string): this {
    return this.global(module, name).op(0x29, 0x81); // EMPTY_TUPLE NEWOBJ
  }
  put(i: number): this {
    return this.op(0x72, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, i >>> 24); // LONG_BINPUT
  }
  get(i: number): this {
    return this.op(0x6a, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, i >>> 24); // LONG_BINGET
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.out, 0x2e]);
  }
}

/** N tensors of shape [0], each listing the SAME memoized list of M empty chunks (one storage record per tensor). */
function sharedChunkListMetadata(n: number, m: number): Uint8Array {
  const MD = "torch.distributed.checkpoint.metadata";
  const p = new RawPickle();
  const zeroTuple = () => p.op(0x28, 0x4b, 0, 0x74); // MARK BININT1 0 TUPLE
  p.newobj(MD, "Metadata").op(0x7d, 0x28).str("state_dict_metadata").op(0x7d, 0x28);
  for (let i = 0; i < n; i++) {
    p.str(`t${i}`).newobj(MD, "TensorStorageMetadata").op(0x7d, 0x28);
    p.str("properties");
    if (i === 0) p.newobj(MD, "TensorProperties").op(0x28).global("torch", "float32").op(0x74, 0x62).put(0);
    else p.get(0);
    p.str("size");
    zeroTuple();
    p.str("chunks");
    if (i === 0) {
      p.op(0x5d, 0x28).newobj(MD, "ChunkStorageMetadata").op(0x7d, 0x28).str("offsets");
      zeroTuple();
      p.str("sizes");
      zeroTuple();
      p.op(0x75, 0x62).put(1);
      for (let k = 1; k < m; k++) p.get(1);
      p.op(0x65).put(2); // APPENDS
    } else p.get(2);
    p.op(0x75, 0x62); // SETITEMS BUILD
  }
  p.op(0x75).str("storage_data").op(0x7d, 0x28);
  for (let i = 0; i < n; i++) {
    p.newobj(MD, "MetadataIndex").op(0x7d, 0x28).str("fqn").str(`t${i}`).str("offset");
    zeroTuple();
    p.op(0x75, 0x62);
    if (i === 0) p.newobj("torch.distributed.checkpoint.filesystem", "_StorageInfo").op(0x7d, 0x28).str("relative_path").str("__0_0.distcp").str("offset").op(0x4b, 0).str("length").op(0x4b, 0).op(0x75, 0x62).put(3);
    else p.get(3);
  }
  p.op(0x75, 0x75, 0x62); // SETITEMS (storage_data) SETITEMS (state) BUILD
  return p.bytes();
}

describe("work bounded by the .metadata's size", () => {
  test("one memoized list of 20,000 chunks listed by 20,000 tensors is refused at once (not 4·10^8 chunk visits)", () => {
    const buf = sharedChunkListMetadata(20_000, 20_000);
    const t0 = performance.now();
    let err: unknown = null;
    try {
      parseDcpMetadata(buf, "crafted/.metadata");
    } catch (e) {
      err = e;
    }
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/crafted\/\.metadata: not a torch\.distributed\.checkpoint metadata file: it lists \d+ chunks or more in \d+ bytes: records repeated by reference/);
  });

  test("the same shape with a handful of references parses (the budget spares honest files)", () => {
    const md = parseDcpMetadata(sharedChunkListMetadata(3, 4), "crafted/.metadata");
    expect([...md.tensors.keys()]).toEqual(["t0", "t1", "t2"]);
    expect(md.tensors.get("t2")!.chunks.length).toBe(4);
  });
});

const rect = (offsets: number[], sizes: number[]): DcpChunk => ({ offsets, sizes, storage: { relativePath: "x", offset: 0, length: 0 } });

/** The pairwise definition, for small cases. */
function overlapsPairwise(chunks: DcpChunk[]): boolean {
  const live = chunks.filter((c) => c.sizes.every((s) => s > 0));
  return live.some((a, i) => live.some((b, j) => j > i && a.offsets.every((o, d) => o < b.offsets[d] + b.sizes[d] && b.offsets[d] < o + a.sizes[d])));
}

describe("checkTiling in O(k log k)", () => {
  test("30,000 empty chunks beside the real one: checked in milliseconds (was ~22 s pairwise)", () => {
    const chunks = [rect([0, 0], [256, 32]), ...Array.from({ length: 30_000 }, (_, i) => rect([0, i % 33], [256, 0]))];
    const t0 = performance.now();
    checkTiling("w", [256, 32], chunks, "crafted");
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  test("30,000 column chunks of a [2, 30000] tensor tile it; one shifted by a column overlaps its neighbour", () => {
    const chunks = Array.from({ length: 30_000 }, (_, i) => rect([0, i], [2, 1]));
    const t0 = performance.now();
    checkTiling("w", [2, 30_000], chunks, "crafted");
    expect(performance.now() - t0).toBeLessThan(2_000);
    chunks[29_999] = rect([0, 29_998], [2, 1]); // the volume still adds up: only the overlap check can tell
    expect(() => checkTiling("w", [2, 30_000], chunks, "crafted")).toThrow(/the chunks at \[.*\] and \[0,29998\] overlap|the chunks at \[0,29998\] and \[.*\] overlap/);
  });

  test("agrees with the pairwise definition on 3,000 seeded random layouts (1-D and 2-D)", () => {
    const rng = new Rng(6);
    let overlapping = 0;
    for (let t = 0; t < 3000; t++) {
      const twoD = rng.next() < 0.7;
      const size = twoD ? [1 + rng.int(6), 1 + rng.int(6)] : [1 + rng.int(12)];
      const chunks: DcpChunk[] = [];
      const numel = size.reduce((a, b) => a * b, 1);
      let vol = 0;
      while (vol < numel) {
        const off = size.map((d) => rng.int(d)), sz = off.map((o, d) => 1 + rng.int(size[d] - o));
        const v = sz.reduce((a, b) => a * b, 1);
        if (vol + v > numel) continue;
        chunks.push(rect(off, sz));
        vol += v;
        if (rng.next() < 0.1) chunks.push(rect(off, sz.map((s, d) => (d === 0 ? 0 : s)))); // an empty one
      }
      const pairwise = overlapsPairwise(chunks);
      overlapping += pairwise ? 1 : 0;
      let threw = false;
      try {
        checkTiling("w", size, chunks, "random");
      } catch {
        threw = true;
      }
      expect({ t, size, threw }).toEqual({ t, size, threw: pairwise });
    }
    expect(overlapping).toBeGreaterThan(100); // both outcomes are exercised
    expect(overlapping).toBeLessThan(2900);
  });

  test("a 3-D tensor's chunks may split its first two dimensions only", () => {
    checkTiling("w", [2, 2, 3], [rect([0, 0, 0], [1, 2, 3]), rect([1, 0, 0], [1, 1, 3]), rect([1, 1, 0], [1, 1, 3])], "crafted");
    expect(() => checkTiling("w", [2, 2, 3], [rect([0, 0, 0], [2, 2, 1]), rect([0, 0, 1], [2, 2, 2])], "crafted")).toThrow(/split beyond dimension 1 of a 3-D tensor/);
  });
});

test("the real torch.save fixtures pass every rule (items disjoint and long enough, views within their storage)", () => {
  for (const s of ["step5", "step7"]) {
    const r = openOlmoCoreCheckpoint(join(import.meta.dir, "fixtures", s));
    try {
      const out = new Float32Array(256 * 32);
      r.read("model", "model.embed_tokens.weight", out); // step5's rank-1 chunk is a view into a larger storage
      expect(out.some((x) => x !== 0)).toBe(true);
    } finally {
      r.close();
    }
  }
});
