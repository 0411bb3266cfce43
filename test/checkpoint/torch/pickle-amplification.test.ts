// Pickles that are slow on purpose: a 250 KB integer (LONG4), and one large dict that every record
// of a file looks into through the memo. Reading (and writing back) costs time linear in the bytes.
import { describe, expect, test } from "bun:test";
import { PyDict, unpickle } from "../../../src/checkpoint/torch/pickle-read.ts";
import { pickle } from "../../../src/checkpoint/torch/pickle-write.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** PROTO 2, LONG4 with these little-endian bytes, STOP. */
function long4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + 5 + bytes.length + 1);
  out.set([0x80, 2, 0x8b]);
  new DataView(out.buffer).setInt32(3, bytes.length, true);
  out.set(bytes, 7);
  out[out.length - 1] = 0x2e;
  return out;
}

/** The integer little-endian two's-complement `bytes` mean, the slow obvious way (for small inputs). */
function slowLong(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return bytes.length && bytes[bytes.length - 1] & 0x80 ? v - (1n << BigInt(8 * bytes.length)) : v;
}

describe("pickle integers in linear time", () => {
  test("a 250 KB LONG4 reads in well under a second (was ~15 s), to the exact value", () => {
    const bytes = Uint8Array.from({ length: 250_000 }, (_, i) => (i * 131 + 7) & 0xff);
    bytes[bytes.length - 1] = 0x35; // positive
    const t0 = performance.now();
    const v = unpickle(long4(bytes), "big.pkl") as bigint;
    expect(performance.now() - t0).toBeLessThan(1_000);
    // the same value through a hex string built independently (big-endian)
    expect(v).toBe(BigInt(`0x${hex(Uint8Array.from(bytes).reverse())}`));
  });

  test("negative and small LONG1/LONG4 values are two's complement, as Python reads them", () => {
    for (const b of [[], [0x00], [0xff], [0x80], [0x7f], [0x00, 0x80], [0xff, 0x7f], [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88], Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)]) {
      const bytes = Uint8Array.from(b);
      const got = unpickle(long4(bytes), "x");
      const want = slowLong(bytes);
      expect({ b: hex(bytes), v: BigInt(got as number | bigint) }).toEqual({ b: hex(bytes), v: want });
      expect(typeof got).toBe(want >= BigInt(Number.MIN_SAFE_INTEGER) && want <= BigInt(Number.MAX_SAFE_INTEGER) ? "number" : "bigint");
    }
  });

  test("a 250 KB integer is written in linear time as LONG4, and reads back equal", () => {
    const big = (1n << 2_000_000n) - 12_345n;
    const t0 = performance.now();
    const b = pickle(big);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(b[2]).toBe(0x8b); // LONG4: LONG1 holds at most 255 bytes
    expect(unpickle(b, "x")).toBe(big);
    expect(unpickle(pickle(-big), "x")).toBe(-big);
  });

  test("the LONG1 / LONG4 boundary is Python's (pickle.dumps(v, 2) with CPython 3)", () => {
    // python3 -c 'import pickle; print(pickle.dumps(v, 2).hex())' for each v: the opcode, the length, the ends
    const cases: [bigint, number, number, string, string][] = [
      [2n ** 2039n - 1n, 0x8a, 260, "80028affffffffff", "ffff7f2e"],
      [2n ** 2039n, 0x8b, 264, "80028b0001000000", "0080002e"],
      [-(2n ** 2039n), 0x8a, 260, "80028aff00000000", "0000802e"],
      [-(2n ** 2039n) - 1n, 0x8b, 264, "80028b00010000ff", "ff7fff2e"],
    ];
    for (const [v, op, len, head, tail] of cases) {
      const b = pickle(v);
      expect({ op: b[2], len: b.length, head: hex(b.subarray(0, 8)), tail: hex(b.subarray(b.length - 4)) }).toEqual({ op, len, head, tail });
    }
  });
});

describe("dict lookups in constant time", () => {
  test("40,000 memo references to one 40,000-entry dict, each looked into: milliseconds, not 10^9 comparisons", () => {
    const n = 40_000, enc = new TextEncoder();
    const out: number[] = [0x80, 2, 0x7d, 0x72, 0, 0, 0, 0, 0x28]; // EMPTY_DICT LONG_BINPUT 0 MARK
    for (let i = 0; i < n; i++) {
      const k = enc.encode(`key${i}`);
      out.push(0x8c, k.length, ...k, 0x4a, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, 0); // SHORT_BINUNICODE BININT
    }
    out.push(0x75, 0x30, 0x5d, 0x28); // SETITEMS POP EMPTY_LIST MARK
    for (let i = 0; i < n; i++) out.push(0x6a, 0, 0, 0, 0); // LONG_BINGET 0
    out.push(0x65, 0x2e); // APPENDS STOP
    const list = unpickle(Uint8Array.from(out), "shared.pkl") as PyDict[];
    expect(list.length).toBe(n);
    const t0 = performance.now();
    let sum = 0;
    for (const d of list) sum += d.get(`key${n - 1}`) as number;
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(sum).toBe(n * (n - 1));
  });

  test("a dict looked up while it grows (SETITEMS after BUILD) sees every entry; a repeated key answers with its first value", () => {
    const d = new PyDict([["a", 1]]);
    expect(d.get("a")).toBe(1);
    expect(d.has("b")).toBe(false);
    d.entries.push(["b", 2], ["a", 3]);
    expect([d.get("b"), d.get("a"), d.has("b")]).toEqual([2, 1, true]);
  });
});
