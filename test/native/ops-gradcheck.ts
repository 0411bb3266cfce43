// Directional-derivative checks of the backward kernels using the backend's own fp32 forward
// kernels: for L(x) = <w, f(x)> and a random direction u,
//   (L(x + eps u) - L(x - eps u)) / (2 eps)  ~=  <dL/dx, u>   (dL/dx from the backward kernel).
// Central differences in fp32 need eps ~1e-2: truncation O(eps^2) and rounding O(1e-7 / eps) both
// stay far below the 1e-3 tolerance. Only meaningful where act is f32; bf16 backends are checked
// against the CPU library in the other files, so here they get a visible skip.
import { describe, test } from "bun:test";
import { withBuffers } from "../support/native.ts";
import * as R from "../support/reference.ts";
import type { OpsCtx } from "./harness.ts";
import { runAttention } from "./ops-attention.ts";
import { ropeTablesF32 } from "./ops-layers.ts";

const EPS = 1e-2;
const TOL = 1e-3;

/** Check <grads, dirs> against central differences of loss along dirs. */
function directional(what: string, loss: (xs: Float32Array[]) => number, xs: Float32Array[], grads: ArrayLike<number>[],
  dirs: Float32Array[]): void {
  const shifted = (sign: number) => xs.map((x, i) => x.map((v, j) => v + sign * EPS * dirs[i][j]));
  const numeric = (loss(shifted(1)) - loss(shifted(-1))) / (2 * EPS);
  const analytic = grads.reduce((s, g, i) => s + R.dot(g, dirs[i]), 0);
  const err = Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), 1e-3);
  if (!(err <= TOL)) throw new Error(`${what}: directional derivative ${analytic} vs finite difference ${numeric} (rel ${err.toExponential(2)})`);
}

export function describeGradChecks(ctx: OpsCtx): void {
  describe("finite-difference gradient checks (fp32 kernels)", () => {
    if (!ctx.exact) {
      test.skip(`${ctx.name}: directional checks need an fp32 act dtype (bf16 is checked against the CPU library)`, () => {});
      return;
    }
    const be = () => ctx.be;

    test("rmsnorm (x and w)", () => {
      const rng = ctx.rng(301), N = 5, C = 33;
      const x = rng.randn(N * C, 1.5), w = rng.randn(C, 0.3, 1), wo = rng.randn(N * C);
      const dirs = [rng.randn(N * C), rng.randn(C)];
      const loss = ([x, w]: Float32Array[]) => withBuffers(be(), (b) => {
        const out = b.nanAct(N * C);
        be().rmsnormForward(out, b.nanF32(N), b.act(x), b.act(w), N, C, 1e-6);
        return R.dot(b.readAct(out, N * C), wo);
      });
      const grads = withBuffers(be(), (b) => {
        const rstd = b.nanF32(N), px = b.act(x), pw = b.act(w), dx = b.nanAct(N * C), dw = b.f32(new Float32Array(C));
        be().rmsnormForward(b.nanAct(N * C), rstd, px, pw, N, C, 1e-6);
        be().rmsnormBackward(dx, dw, b.act(wo), px, pw, rstd, N, C);
        return [b.readAct(dx, N * C), b.readF32(dw, C)];
      });
      directional("rmsnorm", loss, [x, w], grads, dirs);
    });

    test("rope", () => {
      const rng = ctx.rng(302), [B, T, Hx, D] = [2, 5, 3, 8], n = B * T * Hx * D;
      const { cos, sin } = ropeTablesF32(T, D, 10000);
      const x = rng.randn(n), wo = rng.randn(n), dir = rng.randn(n);
      const loss = ([x]: Float32Array[]) => withBuffers(be(), (b) => {
        const out = b.nanAct(n);
        be().ropeForward(out, b.act(x), b.f32(cos), b.f32(sin), B, T, Hx, D);
        return R.dot(b.readAct(out, n), wo);
      });
      const g = withBuffers(be(), (b) => {
        const dx = b.nanAct(n);
        be().ropeBackward(dx, b.act(wo), b.f32(cos), b.f32(sin), B, T, Hx, D);
        return b.readAct(dx, n);
      });
      directional("rope", loss, [x], [g], [dir]);
    });

    test("attention (q, k, v), GQA", () => {
      const s = { B: 2, T: 6, H: 4, K: 2, D: 5 }, rng = ctx.rng(303);
      const nq = s.B * s.T * s.H * s.D, nk = s.B * s.T * s.K * s.D;
      const q = rng.randn(nq), k = rng.randn(nk), v = rng.randn(nk), wo = rng.randn(nq);
      const dirs = [rng.randn(nq), rng.randn(nk), rng.randn(nk)];
      const loss = ([q, k, v]: Float32Array[]) => withBuffers(be(), (b) => R.dot(runAttention(be(), b, s, q, k, v, wo).out, wo));
      const r = withBuffers(be(), (b) => runAttention(be(), b, s, q, k, v, wo));
      directional("attention", loss, [q, k, v], [r.dq, r.dk, r.dv], dirs);
    });

    test("swiglu", () => {
      const rng = ctx.rng(304), N = 4, F = 9;
      const gu = rng.randn(N * 2 * F, 2), wo = rng.randn(N * F), dir = rng.randn(N * 2 * F);
      const loss = ([gu]: Float32Array[]) => withBuffers(be(), (b) => {
        const out = b.nanAct(N * F);
        be().swigluForward(out, b.act(gu), N, F);
        return R.dot(b.readAct(out, N * F), wo);
      });
      const g = withBuffers(be(), (b) => {
        const dgu = b.nanAct(N * 2 * F);
        be().swigluBackward(dgu, b.act(wo), b.act(gu), N, F);
        return b.readAct(dgu, N * 2 * F);
      });
      directional("swiglu", loss, [gu], [g], [dir]);
    });

    test("cross-entropy + z-loss (eval path as the loss, grad path as the gradient)", () => {
      const rng = ctx.rng(305), N = 4, V = 37, z = 0.05, scale = 0.5;
      const logits = rng.randn(N * V, 2), targets = Int32Array.from([3, -100, 36, 0]), dir = rng.randn(N * V);
      const loss = ([l]: Float32Array[]) => withBuffers(be(), (b) => {
        const ce = b.nanF32(N), lse = b.nanF32(N);
        be().crossEntropy(b.act(l), ce, lse, b.i32(targets), N, V, z, 0);
        const c = b.readF32(ce, N), s = b.readF32(lse, N);
        return scale * c.reduce((acc, v, i) => acc + v + z * s[i] * s[i], 0);
      });
      const g = withBuffers(be(), (b) => {
        const pl = b.act(logits);
        be().crossEntropy(pl, b.nanF32(N), b.nanF32(N), b.i32(targets), N, V, z, scale);
        return b.readAct(pl, N * V);
      });
      directional("cross_entropy", loss, [logits], [g], [dir]);
    });
  });
}
