// Numerical comparisons for the op suite: relative error norms and "every element was written".
import { expect } from "bun:test";

/** ||a - b|| / ||b||  (falls back to ||a - b|| when b is all zeros) */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Index of the first non-finite element, or -1. NaN-poisoned outputs that stay NaN show up here. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/** Every element written (finite) and the relative error norm within tol; `what` names the output. */
export function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  const bad = firstNonFinite(actual);
  expect(bad === -1 ? `${what}: all written` : `${what}: element ${bad} = ${actual[bad]} (not written?)`).toBe(`${what}: all written`);
  const err = relErr(actual, expected);
  if (!(err <= tol)) {
    throw new Error(`${what}: relative error ${err.toExponential(3)} > tolerance ${tol.toExponential(1)}`);
  }
}

/** Bitwise equality of two float arrays (reproducibility checks). */
export function expectBitwiseEqual(what: string, a: Float32Array, b: Float32Array): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let first = -1;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) { first = i; break; }
  expect(first === -1 ? `${what}: identical` : `${what}: differs at ${first} (${a[first]} vs ${b[first]})`).toBe(`${what}: identical`);
}
