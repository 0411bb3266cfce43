// numpy-compatible global data order: `np.random.Generator(np.random.PCG64(seed)).shuffle(a)` for a
// 1-D uint32 array, bit for bit, so OLMo-core's instance order can be reproduced without Python.
//
// Three pieces, each copied from numpy's source (numpy/random/bit_generator.pyx, pcg64.h/.c,
// _generator.pyx, distributions.c):
//  1. SeedSequence: the int seed becomes uint32 words (little-endian 32-bit limbs), is hashed into a
//     4-word pool (hashmix/mix with the INIT_A/MULT_A/MIX_MULT constants), and generate_state(4,
//     uint64) expands the pool (INIT_B/MULT_B) into 4 uint64s: [state_hi, state_lo, inc_hi, inc_lo].
//  2. PCG64 (pcg_setseq_128_xsl_rr_64): state ← state·M + inc (mod 2^128); output = rotr64(hi ^ lo,
//     state >> 122) of the *new* state. Seeding: state=0, inc=(initseq<<1)|1, step, state+=initstate,
//     step. next_uint32 hands out the low half of a 64-bit draw and buffers the high half.
//  3. Generator.shuffle: Fisher–Yates from the end, j = random_interval(i): the smallest all-ones
//     mask ≥ i, then rejection sampling of next_uint32() & mask (uint32 path while i ≤ 2^32−1).
//     Not Lemire: shuffle goes through _shuffle_raw → random_interval, unlike integers().
//
// 128-bit arithmetic uses eight 16-bit limbs held in doubles: a 16×16 product is < 2^32 and a column
// sum of eight of them plus a carry stays far below 2^53, so everything is exact without BigInt
// (BigInt would cost ~20× in the shuffle loop, which runs once per instance chunk).
import { UserError } from "../errors.ts";

const INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd, MIX_MULT_R = 0x4973f715, POOL_SIZE = 4;

/** numpy's SeedSequence(entropy).generate_state(nWords, uint32) for a non-negative integer entropy. */
export function seedSequenceState(entropy: number, nWords32: number): Uint32Array {
  if (!Number.isSafeInteger(entropy) || entropy < 0) throw new UserError(`seed must be a non-negative integer, got ${entropy}`);
  // _int_to_uint32_array: 32-bit limbs, least significant first; 0 → [0].
  const words: number[] = [];
  for (let n = entropy; n > 0; n = Math.floor(n / 2 ** 32)) words.push(n % 2 ** 32);
  if (words.length === 0) words.push(0);
  let hashConst = INIT_A;
  const hashmix = (value: number): number => {
    value = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> 16)) >>> 0;
  };
  const mix = (x: number, y: number): number => {
    const r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = new Uint32Array(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < words.length ? words[i] : 0);
  for (let s = 0; s < POOL_SIZE; s++) {
    for (let d = 0; d < POOL_SIZE; d++) if (s !== d) pool[d] = mix(pool[d], hashmix(pool[s]));
  }
  for (let s = POOL_SIZE; s < words.length; s++) {
    for (let d = 0; d < POOL_SIZE; d++) pool[d] = mix(pool[d], hashmix(words[s]));
  }
  const out = new Uint32Array(nWords32);
  let hc = INIT_B;
  for (let i = 0; i < nWords32; i++) {
    let v = (pool[i % POOL_SIZE] ^ hc) >>> 0;
    hc = Math.imul(hc, MULT_B) >>> 0;
    v = Math.imul(v, hc) >>> 0;
    out[i] = (v ^ (v >>> 16)) >>> 0;
  }
  return out;
}

/** Limbs (16-bit, low first) of the 128-bit value hi64:lo64 given as four uint32 words, low first. */
function limbsOf(w0: number, w1: number, w2: number, w3: number): number[] {
  return [w0 & 0xffff, w0 >>> 16, w1 & 0xffff, w1 >>> 16, w2 & 0xffff, w2 >>> 16, w3 & 0xffff, w3 >>> 16];
}

export class PCG64 {
  private readonly s = new Int32Array(8);
  private readonly inc = new Int32Array(8);
  private hasU32 = false;
  private u32 = 0;
  /** the last 64-bit output, as two uint32 halves (read after next64) */
  outHi = 0;
  outLo = 0;

  /** np.random.PCG64(seed): SeedSequence-hashed 128-bit state and increment. */
  constructor(seed: number) {
    const w = seedSequenceState(seed, 8); // 4 uint64 = [initstate_hi, initstate_lo, initseq_hi, initseq_lo]
    const initstate = limbsOf(w[2], w[3], w[0], w[1]);
    const initseq = limbsOf(w[6], w[7], w[4], w[5]);
    // inc = (initseq << 1) | 1
    let carry = 1;
    for (let i = 0; i < 8; i++) {
      const v = initseq[i] * 2 + carry;
      this.inc[i] = v & 0xffff;
      carry = v >>> 16;
    }
    this.step();
    carry = 0;
    for (let i = 0; i < 8; i++) {
      const v = this.s[i] + initstate[i] + carry;
      this.s[i] = v & 0xffff;
      carry = v >>> 16;
    }
    this.step();
  }

  /**
   * state ← state·M + inc (mod 2^128), schoolbook over the lower triangle of 16-bit limb products.
   * Integer-only: each product a·b < 2^32 is exact as Math.imul(a, b) >>> 0; its low and high
   * 16-bit halves are summed into this column and the next, so no sum leaves int32 and the JIT
   * keeps everything in integer registers (~1.5× faster than the same in doubles). The top column
   * only needs its low 16 bits, so there plain wrapping imul sums suffice.
   */
  private step(): void {
    const s = this.s, inc = this.inc;
    const s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3], s4 = s[4], s5 = s[5], s6 = s[6], s7 = s[7];
    // PCG_DEFAULT_MULTIPLIER_128 = 0x2360ED051FC65DA4_4385DF649FCCF645 as 16-bit limbs, low first.
    const m0 = 0xf645, m1 = 0x9fcc, m2 = 0xdf64, m3 = 0x4385, m4 = 0x5da4, m5 = 0x1fc6, m6 = 0xed05, m7 = 0x2360;
    let p: number, lo: number, hi: number, acc: number;
    // column 0
    p = Math.imul(s0, m0); lo = p & 0xffff; hi = p >>> 16;
    acc = lo + inc[0]; s[0] = acc & 0xffff; acc = (acc >>> 16) + hi;
    // column 1
    p = Math.imul(s0, m1); lo = p & 0xffff; hi = p >>> 16;
    p = Math.imul(s1, m0); lo += p & 0xffff; hi += p >>> 16;
    acc += lo + inc[1]; s[1] = acc & 0xffff; acc = (acc >>> 16) + hi;
    p = Math.imul(s0, m2); lo = p & 0xffff; hi = p >>> 16;
    p = Math.imul(s1, m1); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s2, m0); lo += p & 0xffff; hi += p >>> 16;
    acc += lo + inc[2]; s[2] = acc & 0xffff; acc = (acc >>> 16) + hi;
    p = Math.imul(s0, m3); lo = p & 0xffff; hi = p >>> 16;
    p = Math.imul(s1, m2); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s2, m1); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s3, m0); lo += p & 0xffff; hi += p >>> 16;
    acc += lo + inc[3]; s[3] = acc & 0xffff; acc = (acc >>> 16) + hi;
    p = Math.imul(s0, m4); lo = p & 0xffff; hi = p >>> 16;
    p = Math.imul(s1, m3); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s2, m2); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s3, m1); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s4, m0); lo += p & 0xffff; hi += p >>> 16;
    acc += lo + inc[4]; s[4] = acc & 0xffff; acc = (acc >>> 16) + hi;
    p = Math.imul(s0, m5); lo = p & 0xffff; hi = p >>> 16;
    p = Math.imul(s1, m4); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s2, m3); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s3, m2); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s4, m1); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s5, m0); lo += p & 0xffff; hi += p >>> 16;
    acc += lo + inc[5]; s[5] = acc & 0xffff; acc = (acc >>> 16) + hi;
    p = Math.imul(s0, m6); lo = p & 0xffff; hi = p >>> 16;
    p = Math.imul(s1, m5); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s2, m4); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s3, m3); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s4, m2); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s5, m1); lo += p & 0xffff; hi += p >>> 16;
    p = Math.imul(s6, m0); lo += p & 0xffff; hi += p >>> 16;
    acc += lo + inc[6]; s[6] = acc & 0xffff; acc = (acc >>> 16) + hi;
    lo = Math.imul(s0, m7) + Math.imul(s1, m6) + Math.imul(s2, m5) + Math.imul(s3, m4) + Math.imul(s4, m3) + Math.imul(s5, m2) + Math.imul(s6, m1) + Math.imul(s7, m0);
    s[7] = (acc + lo + inc[7]) & 0xffff;
  }
  /** Next 64-bit output into outHi/outLo (pcg64_random_r: step, then XSL-RR of the new state). */
  next64(): void {
    this.step();
    const s = this.s;
    let hi = ((s[7] << 16) | s[6]) ^ ((s[3] << 16) | s[2]);
    let lo = ((s[5] << 16) | s[4]) ^ ((s[1] << 16) | s[0]);
    let rot = s[7] >>> 10;
    if (rot >= 32) {
      const t = hi; hi = lo; lo = t;
      rot -= 32;
    }
    if (rot !== 0) {
      const nlo = ((lo >>> rot) | (hi << (32 - rot))) >>> 0;
      hi = ((hi >>> rot) | (lo << (32 - rot))) >>> 0;
      lo = nlo;
    }
    this.outHi = hi >>> 0;
    this.outLo = lo >>> 0;
  }

  /** numpy's pcg64_next32: low half now, high half on the next call. */
  nextUint32(): number {
    if (this.hasU32) {
      this.hasU32 = false;
      return this.u32;
    }
    this.next64();
    this.hasU32 = true;
    this.u32 = this.outHi;
    return this.outLo;
  }

  /** State as BigInts, for tests against numpy's PCG64(seed).state. */
  stateBig(): { state: bigint; inc: bigint } {
    const big = (l: Int32Array) => l.reduceRight((acc, v) => (acc << 16n) | BigInt(v), 0n);
    return { state: big(this.s), inc: big(this.inc) };
  }
}

/** numpy random_interval(max) for max < 2^32: masked rejection sampling on next_uint32. */
export function randomInterval(rng: PCG64, max: number): number {
  if (max === 0) return 0;
  let mask = max;
  mask |= mask >>> 1; mask |= mask >>> 2; mask |= mask >>> 4; mask |= mask >>> 8; mask |= mask >>> 16;
  mask >>>= 0;
  let v: number;
  do v = (rng.nextUint32() & mask) >>> 0; while (v > max);
  return v;
}

/** np.random.Generator(bitgen).shuffle(a) for a 1-D array (in place). */
export function shuffleInPlace(rng: PCG64, a: Uint32Array): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomInterval(rng, i);
    const t = a[i]; a[i] = a[j]; a[j] = t;
  }
}

/**
 * OLMo-core's global instance order for one epoch (NumpyFSLDataLoader._build_global_indices):
 * PCG64(seed + epoch) (epoch 1-based) shuffles arange(N) — or, with chunk > 1 (stage-1
 * max_target_sequence_length/seq_len), shuffles arange(N/chunk) and expands each chunk c into
 * c·chunk … c·chunk+chunk−1 so the two halves of an 8192-token window stay adjacent.
 */
export function globalOrder(numInstances: number, seed: number, epoch: number, chunk = 1): Uint32Array {
  if (!Number.isInteger(numInstances) || numInstances < 0 || numInstances > 0xffffffff) {
    throw new UserError(`number of instances must be an integer in [0, 2^32), got ${numInstances} (numpy's uint32 arange)`);
  }
  if (!Number.isInteger(chunk) || chunk < 1) throw new UserError(`chunk must be a positive integer, got ${chunk}`);
  if (!Number.isInteger(epoch) || epoch < 1) throw new UserError(`epoch is 1-based, got ${epoch}`);
  const rng = new PCG64(seed + epoch);
  const nChunks = Math.floor(numInstances / chunk);
  const c = new Uint32Array(nChunks);
  for (let i = 0; i < nChunks; i++) c[i] = i;
  shuffleInPlace(rng, c);
  if (chunk === 1) return c;
  const out = new Uint32Array(nChunks * chunk);
  for (let i = 0, o = 0; i < nChunks; i++) for (let k = 0; k < chunk; k++) out[o++] = c[i] * chunk + k;
  return out;
}
