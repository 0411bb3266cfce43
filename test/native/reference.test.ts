// The float64 references themselves, checked by central differences in float64 (h = 1e-6, every
// coordinate): the op suite trusts their backward formulas, so they are verified independently.
import { describe, test } from "bun:test";
import { expectClose } from "../support/compare.ts";
import { Rng } from "../support/random.ts";
import * as R from "../support/reference.ts";

const H = 1e-6;

/** numeric gradient of loss at each x in xs (all coordinates) */
function numericGrad(loss: (xs: Float64Array[]) => number, xs: Float64Array[]): Float64Array[] {
  return xs.map((x, i) => {
    const g = new Float64Array(x.length);
    for (let j = 0; j < x.length; j++) {
      const orig = x[j];
      x[j] = orig + H; const lp = loss(xs);
      x[j] = orig - H; const lm = loss(xs);
      x[j] = orig;
      g[j] = (lp - lm) / (2 * H);
    }
    return g;
  });
}

const randn = (rng: Rng, n: number, std = 1, mean = 0) => Float64Array.from(rng.randn(n, std, mean));

describe("float64 references: backward == finite differences", () => {
  test("rmsnorm dx, dw", () => {
    const rng = new Rng(1), N = 3, C = 7, eps = 1e-6;
    const x = randn(rng, N * C), w = randn(rng, C, 0.3, 1), wo = randn(rng, N * C);
    const [nx, nw] = numericGrad(([x, w]) => R.dot(R.rmsnormForward(x, w, N, C, eps).out, wo), [x, w]);
    const g = R.rmsnormBackward(wo, x, w, N, C, eps, new Float64Array(C));
    expectClose("dx", g.dx, nx, 1e-7);
    expectClose("dw", g.dw, nw, 1e-7);
  });

  test("rope backward is the transpose", () => {
    const rng = new Rng(2), [B, T, Hx, D] = [1, 4, 2, 6];
    const { cos, sin } = R.ropeTables(T, D, 100);
    const x = randn(rng, B * T * Hx * D), wo = randn(rng, x.length);
    const [nx] = numericGrad(([x]) => R.dot(R.rope(x, cos, sin, B, T, Hx, D), wo), [x]);
    expectClose("dx", R.rope(wo, cos, sin, B, T, Hx, D, -1), nx, 1e-7);
  });

  test("attention dq, dk, dv (GQA)", () => {
    const rng = new Rng(3), [B, T, Hh, K, D] = [1, 4, 4, 2, 3];
    const q = randn(rng, B * T * Hh * D), k = randn(rng, B * T * K * D), v = randn(rng, k.length), wo = randn(rng, q.length);
    const [nq, nk, nv] = numericGrad(([q, k, v]) => R.dot(R.attentionForward(q, k, v, B, T, Hh, K, D).out, wo), [q, k, v]);
    const g = R.attentionBackward(wo, q, k, v, B, T, Hh, K, D);
    expectClose("dq", g.dq, nq, 1e-7);
    expectClose("dk", g.dk, nk, 1e-7);
    expectClose("dv", g.dv, nv, 1e-7);
  });

  test("swiglu dgate, dup", () => {
    const rng = new Rng(4), N = 3, F = 5;
    const gu = randn(rng, N * 2 * F, 2), wo = randn(rng, N * F);
    const [ng] = numericGrad(([gu]) => R.dot(R.swigluForward(gu, N, F), wo), [gu]);
    expectClose("dgu", R.swigluBackward(wo, gu, N, F), ng, 1e-7);
  });

  test("cross-entropy + z-loss gradient (with an ignored row)", () => {
    const rng = new Rng(5), N = 3, V = 11, z = 0.1, scale = 0.7;
    const logits = randn(rng, N * V, 2), targets = [4, -100, 10];
    const loss = ([l]: Float64Array[]) => {
      const r = R.crossEntropy(l, targets, N, V, z, 0);
      let s = 0;
      for (let i = 0; i < N; i++) s += r.ce[i] + z * r.lse[i] ** 2;
      return scale * s;
    };
    const [nl] = numericGrad(loss, [logits]);
    expectClose("dlogits", R.crossEntropy(logits, targets, N, V, z, scale).grad, nl, 1e-7);
  });

  test("matmul transposes agree with the untransposed product", () => {
    const rng = new Rng(6), [M, N, K] = [3, 4, 5];
    const A = randn(rng, M * K), B = randn(rng, K * N);
    const At = new Float64Array(K * M), Bt = new Float64Array(N * K);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) At[k * M + i] = A[i * K + k];
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) Bt[j * K + k] = B[k * N + j];
    const C = R.matmul(A, B, M, N, K, false, false);
    expectClose("tA", R.matmul(At, B, M, N, K, true, false), C, 1e-15);
    expectClose("tB", R.matmul(A, Bt, M, N, K, false, true), C, 1e-15);
    expectClose("tAtB", R.matmul(At, Bt, M, N, K, true, true), C, 1e-15);
  });
});
