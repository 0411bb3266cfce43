import { expect, test } from "bun:test";
import { bf16ToF32, f16ToF32, f32ToBf16 } from "../../src/tensor/dtype.ts";
import { bf16BitsToF32, f32ToBf16Bits } from "../support/bf16.ts";

const specials = [0, -0, 1, -1, 1.00390625, 1.01171875, 1.0078125, 3.4e38, -3.4e38, 3.3961e38, 1e-40, -1e-45, Infinity, -Infinity, NaN, 65504, 1 / 3];

test("f32 -> bf16 matches the scalar round-to-nearest-even reference on specials and random bits", () => {
  const src = new Float32Array(specials.length + 100_000);
  src.set(specials);
  const bits = new Uint32Array(src.buffer);
  let s = 12345;
  for (let i = specials.length; i < src.length; i++) bits[i] = s = (Math.imul(s, 1103515245) + 12345) >>> 0; // every bit pattern class, NaNs included
  const got = f32ToBf16(src);
  for (let i = 0; i < src.length; i++) {
    const want = f32ToBf16Bits(src[i]);
    if (Number.isNaN(src[i])) {
      expect(Number.isNaN(bf16BitsToF32(got[i]))).toBe(true);
      expect(got[i] >>> 15).toBe(bits[i] >>> 31); // sign kept
    } else if (got[i] !== want) throw new Error(`element ${i}: ${src[i]} -> ${got[i].toString(16)}, want ${want.toString(16)}`);
  }
});

test("ties round to even; overflow rounds to inf; bf16 -> f32 is exact", () => {
  const x = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.3961e38 * 1.001]);
  const b = f32ToBf16(x);
  expect(bf16ToF32(b)[0]).toBe(1); // tie -> even mantissa (down)
  expect(bf16ToF32(b)[1]).toBe(1 + 2 ** -6); // tie -> even mantissa (up)
  expect(bf16ToF32(b)[2]).toBe(Infinity);
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = bf16ToF32(all);
  const back = f32ToBf16(f);
  for (let i = 0; i < 65536; i++) if (!Number.isNaN(f[i]) && back[i] !== i) throw new Error(`bf16 ${i} did not round-trip`);
});

test("f16 decode: normals, subnormals, inf, NaN", () => {
  const h = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555]);
  const f = f16ToF32(h);
  expect([...f.slice(0, 7)]).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity]);
  expect(Number.isNaN(f[7])).toBe(true);
  expect(Object.is(f[8], -0)).toBe(true);
  expect(f[9]).toBeCloseTo(1 / 3, 3);
});
