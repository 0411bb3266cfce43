// The CPU library's GEMM (oneDNN or OpenBLAS, whichever cuda/build.ts linked) against float64, one
// test per transposition (NN, NT, TN, TT) and one for the accumulating form C += op(A) op(B) that
// the weight gradients use. Each element's error is measured against the size of the sum it comes
// from: |C − C64| / Σ_k |a_ik·b_kj| (plus |C0| for +=), the scale an fp32 dot product's rounding
// error is proportional to, so one bound holds for every K. Shapes cover each way the library runs
// a GEMM: one thread (below its fork threshold), C split by rows, by columns, a wide small-M
// lm_head-like block and a long-K dgrad-like one, all with odd sizes. A last test shows that the
// bound rejects a GEMM at bf16 precision and a wrong transposition, so the others can fail.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { roundBf16Array } from "../support/bf16.ts";
import { openBackend, withBuffers } from "../support/native.ts";
import { Rng } from "../support/random.ts";

/** max over C of |C − C64| / (Σ_k |a·b| + |beta·C0|): ~17 fp32 ulps (u = 6e-8). Both libraries measured
 *  at most 3.1e-7 here (the wide K=67 block); a bf16-precision GEMM is ~1e-3 */
const TOL = 1e-6;

const SHAPES: [string, number, number, number][] = [
  ["one thread", 7, 33, 129],
  ["split by rows", 300, 70, 515],
  ["split by columns", 40, 290, 515],
  ["wide, small M", 44, 1000, 67],
  ["long K", 24, 48, 4099],
];

interface Ref { c: Float64Array; scale: Float64Array }

/** C64 = op(A) op(B) + beta C0 in float64, and the per-element scale Σ|a·b| + |beta C0| */
function reference(A: Float32Array, B: Float32Array, M: number, N: number, K: number, tA: boolean, tB: boolean, beta = 0, C0?: Float32Array): Ref {
  const c = new Float64Array(M * N), scale = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0, abs = 0;
      for (let k = 0; k < K; k++) {
        const p = (tA ? A[k * M + i] : A[i * K + k]) * (tB ? B[j * K + k] : B[k * N + j]);
        s += p;
        abs += Math.abs(p);
      }
      const c0 = beta !== 0 && C0 ? beta * C0[i * N + j] : 0;
      c[i * N + j] = s + c0;
      scale[i * N + j] = abs + Math.abs(c0);
    }
  }
  return { c, scale };
}

/** the largest |C − C64| / scale over C (Infinity when an element is NaN) */
function worstError(C: ArrayLike<number>, ref: Ref): number {
  let worst = 0;
  for (let i = 0; i < ref.c.length; i++) {
    const e = Math.abs(C[i] - ref.c[i]) / ref.scale[i];
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

function inputs(seed: number, M: number, N: number, K: number) {
  const rng = new Rng(seed);
  return { A: rng.randn(M * K), B: rng.randn(K * N), C0: rng.randn(M * N) };
}

const label = (tA: boolean, tB: boolean) => `${tA ? "T" : "N"}${tB ? "T" : "N"}`;

/** one GEMM on the CPU library; beta 0 writes a NaN-filled act C (the old contents must be ignored),
 *  beta 1 accumulates into an fp32 C0 through matmul_f32 */
function runGemm(A: Float32Array, B: Float32Array, C0: Float32Array, M: number, N: number, K: number, tA: boolean, tB: boolean, beta: 0 | 1): Float32Array {
  return withBuffers(openBackend("cpu"), (b) => {
    if (beta === 0) {
      const c = b.nanAct(M * N);
      b.be.matmul(c, b.act(A), b.act(B), M, N, K, tA, tB, 0);
      return b.readAct(c, M * N);
    }
    const c = b.f32(C0);
    b.be.matmulF32(c, b.act(A), b.act(B), M, N, K, tA, tB, 1);
    return b.readF32(c, M * N);
  });
}

test("the device name says which GEMM library the build linked (build/libolmo_cpu.gemm)", () => {
  const be = openBackend("cpu");
  const linked = readFileSync(resolve(import.meta.dir, "../../build/libolmo_cpu.gemm"), "utf8").trim();
  expect(["oneDNN", "OpenBLAS"]).toContain(linked);
  expect(be.deviceName).toStartWith(`cpu (${linked}, `);
});

describe(`CPU GEMM vs float64: |error| <= ${TOL} x (sum of |a*b|)`, () => {
  for (const tA of [false, true]) for (const tB of [false, true]) {
    test(`${label(tA, tB)}: C = op(A) op(B) into a NaN-filled C, every shape class`, () => {
      const errs: Record<string, number> = {};
      for (const [name, M, N, K] of SHAPES) {
        const { A, B, C0 } = inputs(M * 7 + N * 3 + K + (tA ? 1 : 0) + (tB ? 2 : 0), M, N, K);
        errs[name] = worstError(runGemm(A, B, C0, M, N, K, tA, tB, 0), reference(A, B, M, N, K, tA, tB));
      }
      for (const [name, e] of Object.entries(errs)) expect({ [name]: e <= TOL ? "ok" : e }).toEqual({ [name]: "ok" });
    });
  }

  test("C += op(A) op(B) (beta 1, fp32 C) for NN, NT, TN, TT, every shape class", () => {
    const errs: Record<string, number> = {};
    for (const tA of [false, true]) for (const tB of [false, true]) {
      for (const [name, M, N, K] of SHAPES) {
        const { A, B, C0 } = inputs(M * 5 + N * 11 + K + (tA ? 3 : 0) + (tB ? 4 : 0), M, N, K);
        errs[`${label(tA, tB)} ${name}`] = worstError(runGemm(A, B, C0, M, N, K, tA, tB, 1), reference(A, B, M, N, K, tA, tB, 1, C0));
      }
    }
    for (const [name, e] of Object.entries(errs)) expect({ [name]: e <= TOL ? "ok" : e }).toEqual({ [name]: "ok" });
  });

  test("the bound can fail: it rejects a GEMM on bf16-rounded inputs and one with B's transposition flipped", () => {
    const [M, N, K] = [64, 64, 515];
    const { A, B, C0 } = inputs(42, M, N, K);
    const ref = reference(A, B, M, N, K, false, true);
    expect(worstError(runGemm(roundBf16Array(A), roundBf16Array(B), C0, M, N, K, false, true, 0), ref)).toBeGreaterThan(10 * TOL);
    expect(worstError(runGemm(A, B, C0, M, N, K, false, false, 0), ref)).toBeGreaterThan(1000 * TOL);
    expect(worstError(runGemm(A, B, C0, M, N, K, false, true, 0), ref)).toBeLessThanOrEqual(TOL);
  });
});
