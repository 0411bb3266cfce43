import { afterAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsReader, SafetensorsWriter } from "../../../src/checkpoint/hf/safetensors.ts";
import { bf16ToF32, f32ToBf16 } from "../../../src/tensor/dtype.ts";
import { cleanupTemp, tempDir, userErrorOf } from "../helpers.ts";

afterAll(cleanupTemp);

/** A hand-built safetensors file: header object as given, then the body bytes. */
function rawFile(path: string, header: unknown, body: Uint8Array, lenOverride?: number): void {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lenOverride ?? h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  writeFileSync(path, out);
}

const tensors = [
  { name: "a", shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => (i - 7) * 0.3125) },
  { name: "b", shape: [7], data: Float32Array.from({ length: 7 }, (_, i) => Math.sin(i) * 1e3) },
  { name: "c", shape: [2, 2, 2], data: Float32Array.from({ length: 8 }, (_, i) => 1 / (i + 1)) },
];

for (const dtype of ["f32", "bf16"] as const) {
  for (const maxShardBytes of [1e9, 40]) {
    test(`write/read round trip, ${dtype}, ${maxShardBytes === 40 ? "sharded" : "one file"}`, () => {
      const dir = tempDir("st");
      const w = new SafetensorsWriter(dir, tensors, { dtype, maxShardBytes });
      for (const t of tensors) w.write(t.name, t.data);
      const files = w.finish();
      expect(files.length).toBe(maxShardBytes === 40 ? (dtype === "f32" ? 3 : 2) : 1);
      const idx = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
      expect(Object.keys(idx.weight_map).sort()).toEqual(["a", "b", "c"]);
      const r = SafetensorsReader.open(dir);
      for (const t of tensors) {
        const out = new Float32Array(t.data.length);
        r.read(t.name, out);
        expect(r.entry(t.name).shape).toEqual(t.shape);
        expect([...out]).toEqual([...(dtype === "f32" ? t.data : bf16ToF32(f32ToBf16(t.data)))]);
        // ranged reads (a tensor-parallel rank's part) decode exactly the same elements
        for (const [lo, hi] of [[0, 1], [2, t.data.length], [1, t.data.length - 1]]) {
          const part = new Float32Array(hi - lo);
          r.readRange(t.name, lo, part);
          expect([...part]).toEqual([...out.subarray(lo, hi)]);
        }
      }
      r.close();
      // header metadata and 8-byte aligned data start, as torch/safetensors write them
      const buf = readFileSync(join(dir, files[0]));
      const n = Number(buf.readBigUInt64LE(0));
      expect(n % 8).toBe(0);
      expect(JSON.parse(buf.subarray(8, 8 + n).toString()).__metadata__).toEqual({ format: "pt" });
    });
  }
}

test("reads F16 and a single .safetensors path", () => {
  const dir = tempDir("st");
  const p = join(dir, "x.safetensors");
  rawFile(p, { h: { dtype: "F16", shape: [3], data_offsets: [0, 6] } }, new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800]).buffer));
  const r = SafetensorsReader.open(p);
  const out = new Float32Array(3);
  r.read("h", out);
  expect([...out]).toEqual([1, -2, 0.5]);
  r.close();
});

test("bad files: one-line errors naming the file and the problem", () => {
  const dir = tempDir("st");
  const p = join(dir, "bad.safetensors");
  const body = new Uint8Array(16);
  const cases: [string, () => void, RegExp][] = [
    ["tiny", () => writeFileSync(p, new Uint8Array(3)), /too small/],
    ["header length beyond file", () => rawFile(p, { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, body, 1 << 20), /header length 1048576 is beyond the file size/],
    ["bad JSON", () => {
      const h = new TextEncoder().encode("{not json");
      const out = new Uint8Array(8 + h.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
      out.set(h, 8);
      writeFileSync(p, out);
    }, /not valid JSON/],
    ["unknown dtype", () => rawFile(p, { a: { dtype: "F12", shape: [4], data_offsets: [0, 16] } }, body), /tensor a has unknown dtype "F12"/],
    ["size mismatch", () => rawFile(p, { a: { dtype: "F32", shape: [5], data_offsets: [0, 16] } }, body), /tensor a: data_offsets span 16 bytes but F32\[5\] needs 20/],
    ["overlap", () => rawFile(p, { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, body), /tensors a and b overlap/],
    ["misaligned", () => rawFile(p, { a: { dtype: "F32", shape: [2], data_offsets: [2, 10] } }, body), /misaligned/],
    ["truncated body", () => rawFile(p, { a: { dtype: "F32", shape: [8], data_offsets: [0, 32] } }, body), /truncated body: tensor a needs bytes up to/],
  ];
  for (const [what, make, re] of cases) {
    make();
    const msg = userErrorOf(() => SafetensorsReader.open(p));
    if (!re.test(msg)) throw new Error(`${what}: message "${msg}" does not match ${re}`);
    expect(msg).toContain(p);
  }
  rawFile(p, { a: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, body);
  const r = SafetensorsReader.open(p);
  expect(userErrorOf(() => r.read("a", new Float32Array(2)))).toMatch(/dtype I64; supported: F32, BF16, F16/);
  expect(userErrorOf(() => r.read("zz", new Float32Array(2)))).toMatch(/missing tensor zz/);
  r.close();
});

test("a file truncated after writing, and a missing shard, are reported", () => {
  const dir = tempDir("st");
  const w = new SafetensorsWriter(dir, tensors, { dtype: "f32", maxShardBytes: 40 });
  for (const t of tensors) w.write(t.name, t.data);
  const files = w.finish();
  truncateSync(join(dir, files[1]), readFileSync(join(dir, files[1])).length - 4);
  expect(userErrorOf(() => SafetensorsReader.open(dir))).toMatch(/truncated body: tensor b/);
  rmSync(join(dir, files[1]));
  expect(userErrorOf(() => SafetensorsReader.open(dir))).toMatch(/shard model-00002-of-00003.safetensors \(holding b\) is missing/);
  const empty = join(dir, "empty");
  mkdirSync(empty);
  expect(userErrorOf(() => SafetensorsReader.open(empty))).toMatch(/no model.safetensors or model.safetensors.index.json/);
});
