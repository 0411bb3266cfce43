// bfloat16 <-> float32 on the host, bit-exact with the CUDA library's casts: bf16 is the top 16
// bits of an f32; f32 -> bf16 rounds to nearest, ties to even; NaN stays a (quiet) NaN.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits of x (round-to-nearest-even). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x0040) & 0xffff; // NaN: keep sign, quiet
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** x rounded to the nearest bf16 value, as a number. */
export function roundBf16(x: number): number {
  return bf16BitsToF32(f32ToBf16Bits(x));
}

export function toBf16Array(src: ArrayLike<number>, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}

export function fromBf16Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = bf16BitsToF32(src[i]);
  return out;
}

/** A copy of src with every element rounded to bf16 (kept as float32 values). */
export function roundBf16Array(src: ArrayLike<number>): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = roundBf16(src[i]);
  return out;
}
