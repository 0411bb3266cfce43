// RMSNorm, RoPE, SwiGLU and cross-entropy + z-loss: forward and backward against the oracle on
// several shapes, odd sizes included, and the in-place (aliasing) forms the ABI allows.
import { describe, test } from "bun:test";
import * as R from "../support/reference.ts";
import { checkOp, type OpsCtx } from "./harness.ts";

const EPS = 1e-6;

/** RoPE tables rounded to f32, as the kernels receive them */
export function ropeTablesF32(T: number, D: number, theta = 500000) {
  const { cos, sin } = R.ropeTables(T, D, theta);
  return { cos: Float32Array.from(cos), sin: Float32Array.from(sin) };
}

export function describeLayers(ctx: OpsCtx): void {
  describe("rmsnorm", () => {
    for (const [N, C] of [[7, 33], [1, 3], [16, 256], [5, 6]] as const) {
      test(`forward + backward N=${N} C=${C} (dw accumulates; in-place forms)`, () => {
        const rng = ctx.rng(N * 100 + C);
        const x = ctx.act(rng.randn(N * C, 2, 0.3)), w = ctx.act(rng.randn(C, 0.2, 1));
        const dout = ctx.act(rng.randn(N * C)), dw0 = rng.randn(C);
        checkOp(ctx, "rmsnorm", {
          run: (b) => {
            const px = b.act(x), pw = b.act(w), out = b.nanAct(N * C), rstd = b.nanF32(N);
            b.be.rmsnormForward(out, rstd, px, pw, N, C, EPS);
            const dx = b.nanAct(N * C), dw = b.f32(dw0), pd = b.act(dout);
            b.be.rmsnormBackward(dx, dw, pd, px, pw, rstd, N, C);
            // in place: out aliases x, dx aliases dout (dw accumulates a second time)
            const px2 = b.act(x), rstd2 = b.nanF32(N);
            b.be.rmsnormForward(px2, rstd2, px2, pw, N, C, EPS);
            b.be.rmsnormBackward(pd, dw, pd, px, pw, rstd, N, C);
            return {
              out: b.readAct(out, N * C), rstd: b.readF32(rstd, N), dx: b.readAct(dx, N * C),
              outInPlace: b.readAct(px2, N * C), dxInPlace: b.readAct(pd, N * C), dw2: b.readF32(dw, C),
            };
          },
          ref: () => {
            const f = R.rmsnormForward(x, w, N, C, EPS);
            const g = R.rmsnormBackward(dout, x, w, N, C, EPS, dw0);
            const g2 = R.rmsnormBackward(dout, x, w, N, C, EPS, g.dw);
            return { out: f.out, rstd: f.rstd, dx: g.dx, outInPlace: f.out, dxInPlace: g.dx, dw2: g2.dw };
          },
          tol: 1e-5,
          bf16Tol: { rstd: 2e-3, dw2: 2e-2 },
        });
      });
    }
  });

  describe("rope", () => {
    for (const [B, T, Hx, D] of [[1, 5, 4, 6], [2, 7, 3, 2], [2, 16, 2, 32], [1, 3, 1, 128]] as const) {
      test(`forward + backward B=${B} T=${T} Hx=${Hx} D=${D} (and in place)`, () => {
        const rng = ctx.rng(B + T * 10 + Hx * 100 + D);
        const n = B * T * Hx * D;
        const x = ctx.act(rng.randn(n)), dout = ctx.act(rng.randn(n));
        const { cos, sin } = ropeTablesF32(T, D, 10000);
        checkOp(ctx, "rope", {
          run: (b) => {
            const pc = b.f32(cos), ps = b.f32(sin), out = b.nanAct(n), dx = b.nanAct(n);
            const px = b.act(x), pd = b.act(dout);
            b.be.ropeForward(out, px, pc, ps, B, T, Hx, D);
            b.be.ropeBackward(dx, pd, pc, ps, B, T, Hx, D);
            b.be.ropeForward(px, px, pc, ps, B, T, Hx, D);
            b.be.ropeBackward(pd, pd, pc, ps, B, T, Hx, D);
            return { out: b.readAct(out, n), dx: b.readAct(dx, n), outInPlace: b.readAct(px, n), dxInPlace: b.readAct(pd, n) };
          },
          ref: () => {
            const out = R.rope(x, cos, sin, B, T, Hx, D), dx = R.rope(dout, cos, sin, B, T, Hx, D, -1);
            return { out, dx, outInPlace: out, dxInPlace: dx };
          },
          tol: 1e-6,
        });
      });
    }
  });

  describe("swiglu", () => {
    for (const [N, F] of [[7, 33], [3, 1], [16, 128]] as const) {
      test(`forward + backward N=${N} F=${F}`, () => {
        const rng = ctx.rng(N * 7 + F);
        const gu = ctx.act(rng.randn(N * 2 * F, 3)), dout = ctx.act(rng.randn(N * F));
        gu[0] = -30; // saturated sigmoid on both sides
        gu[1 % (N * F)] = 30;
        checkOp(ctx, "swiglu", {
          run: (b) => {
            const pg = b.act(gu), out = b.nanAct(N * F), dgu = b.nanAct(N * 2 * F);
            b.be.swigluForward(out, pg, N, F);
            b.be.swigluBackward(dgu, b.act(dout), pg, N, F);
            return { out: b.readAct(out, N * F), dgu: b.readAct(dgu, N * 2 * F) };
          },
          ref: () => ({ out: R.swigluForward(gu, N, F), dgu: R.swigluBackward(dout, gu, N, F) }),
          tol: 1e-5,
        });
      });
    }
  });

  describe("cross-entropy + z-loss", () => {
    const cases = [
      { N: 7, V: 130, z: 1e-4, scale: 1 / 7, offset: 0 },
      { N: 4, V: 1000, z: 1e-2, scale: 0.25, offset: 40 }, // large logits: needs the max shift
      { N: 3, V: 1, z: 0, scale: 1, offset: 0 },
      { N: 5, V: 4099, z: 1e-5, scale: 2, offset: -20 },
    ];
    for (const { N, V, z, scale, offset } of cases) {
      test(`N=${N} V=${V} z=${z} grad_scale=${scale} offset=${offset} (ignored rows)`, () => {
        const rng = ctx.rng(N * V);
        const logits = ctx.act(rng.randn(N * V, 3, offset));
        const targets = rng.ints(N, V);
        if (N > 2) { targets[1] = -100; targets[2] = V - 1; }
        checkOp(ctx, "cross_entropy", {
          run: (b) => {
            const pl = b.act(logits), pt = b.i32(targets);
            const ce = b.nanF32(N), lse = b.nanF32(N), ce0 = b.nanF32(N), lse0 = b.nanF32(N);
            const pe = b.act(logits); // evaluation only: logits must stay untouched
            b.be.crossEntropy(pe, ce0, lse0, pt, N, V, z, 0);
            b.be.crossEntropy(pl, ce, lse, pt, N, V, z, scale);
            return {
              ce: b.readF32(ce, N), lse: b.readF32(lse, N), grad: b.readAct(pl, N * V),
              ceEval: b.readF32(ce0, N), lseEval: b.readF32(lse0, N), untouched: b.readAct(pe, N * V),
            };
          },
          ref: () => {
            const r = R.crossEntropy(logits, targets, N, V, z, scale);
            return { ce: r.ce, lse: r.lse, grad: r.grad, ceEval: r.ce, lseEval: r.lse, untouched: logits };
          },
          tol: { ce: 3e-5, ceEval: 3e-5, untouched: 0 },
          bf16Tol: { untouched: 0, ce: 1e-3, ceEval: 1e-3, lse: 1e-3, lseEval: 1e-3 },
        });
      });
    }
    test("all rows ignored: zero loss, zero gradient", () => {
      const N = 3, V = 17;
      const logits = ctx.act(ctx.rng(5).randn(N * V));
      checkOp(ctx, "cross_entropy ignored", {
        run: (b) => {
          const pl = b.act(logits), ce = b.nanF32(N), lse = b.nanF32(N);
          b.be.crossEntropy(pl, ce, lse, b.i32([-100, -1, -100]), N, V, 1e-4, 1);
          return { ce: b.readF32(ce, N), lse: b.readF32(lse, N), grad: b.readAct(pl, N * V) };
        },
        ref: () => ({ ce: new Float64Array(N), lse: new Float64Array(N), grad: new Float64Array(N * V) }),
        tol: 0,
        bf16Tol: 0,
      });
    });
  });
}
