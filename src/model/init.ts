// World-size-invariant initialization: every parameter tensor is generated whole from its own
// counter-based stream keyed by (seed, parameter name), then (under TP) sliced. So a tensor's
// initial values never depend on how many ranks there are or on the order tensors are built.
import type { ParamSpec } from "./params.ts";

/** 64-bit FNV-1a of a string, as two 32-bit halves. */
function hashName(seed: number, name: string): [number, number] {
  let h = 0xcbf29ce484222325n ^ BigInt(seed >>> 0);
  for (let i = 0; i < name.length; i++) {
    h ^= BigInt(name.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return [Number(h >> 32n) >>> 0, Number(h & 0xffffffffn) >>> 0];
}

/**
 * A small counter-based generator (SplitMix32-style finalizer over key + counter). Each uniform
 * depends only on (key, index), so any slice of a tensor can be regenerated independently.
 */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

class CounterRng {
  private counter = 0;
  constructor(private readonly k0: number, private readonly k1: number) {}
  /** uniform in (0, 1) */
  uniform(): number {
    const c = this.counter++;
    const a = mix32((c ^ this.k0) >>> 0);
    const b = mix32((a + this.k1 + Math.imul(c, 0x9e3779b9)) >>> 0);
    return (b + 0.5) / 4294967296;
  }
}

/** Fill `out` with truncated-normal(0, std) samples, truncated at ±3 std (resampled). */
export function truncatedNormal(out: Float32Array, std: number, seed: number, name: string): void {
  const [k0, k1] = hashName(seed, name);
  const rng = new CounterRng(k0, k1);
  let i = 0;
  while (i < out.length) {
    // Box-Muller: two normals per pair of uniforms
    const u1 = rng.uniform(), u2 = rng.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const z0 = r * Math.cos(2 * Math.PI * u2), z1 = r * Math.sin(2 * Math.PI * u2);
    if (Math.abs(z0) <= 3) out[i++] = z0 * std;
    if (i < out.length && Math.abs(z1) <= 3) out[i++] = z1 * std;
  }
}

/** Initialize one parameter tensor: ones for norms, truncated normal for matrices. */
export function initTensor(spec: ParamSpec, out: Float32Array, std: number, seed: number): void {
  if (spec.init === "ones") out.fill(1);
  else truncatedNormal(out, std, seed, spec.name);
}

/** Initialize a whole parameter arena (fp32, paramSpecs order). */
export function initParams(arena: Float32Array, specs: ParamSpec[], std: number, seed: number): void {
  for (const s of specs) {
    const view = arena.subarray(s.offset, s.offset + s.numel);
    if (s.init === "ones") view.fill(1);
    else truncatedNormal(view, std, seed, s.name);
  }
}
