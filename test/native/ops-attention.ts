// Causal GQA attention: forward/backward against the oracle, causality, and GQA == MHA with the
// kv heads repeated.
import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { expectClose } from "../support/compare.ts";
import { type Buffers, withBuffers } from "../support/native.ts";
import * as R from "../support/reference.ts";
import { checkOp, type OpsCtx } from "./harness.ts";

export interface AttnShape { B: number; T: number; H: number; K: number; D: number }

/** Forward then backward on `be`; returns out, lse, dq, dk, dv as float arrays. */
export function runAttention(be: Backend, b: Buffers, s: AttnShape, q: Float32Array, k: Float32Array, v: Float32Array,
  dout: Float32Array) {
  const { B, T, H, K, D } = s;
  const nq = B * T * H * D, nk = B * T * K * D;
  const pq = b.act(q), pk = b.act(k), pv = b.act(v), pd = b.act(dout);
  const out = b.nanAct(nq), lse = b.nanF32(B * H * T);
  be.attentionForward(out, lse, pq, pk, pv, B, T, H, K, D);
  const dq = b.nanAct(nq), dk = b.nanAct(nk), dv = b.nanAct(nk);
  be.attentionBackward(dq, dk, dv, pd, pq, pk, pv, out, lse, B, T, H, K, D);
  return {
    out: b.readAct(out, nq), lse: b.readF32(lse, B * H * T),
    dq: b.readAct(dq, nq), dk: b.readAct(dk, nk), dv: b.readAct(dv, nk),
  };
}

export function randomAttention(ctx: OpsCtx, s: AttnShape, seed: number) {
  const rng = ctx.rng(seed);
  const nq = s.B * s.T * s.H * s.D, nk = s.B * s.T * s.K * s.D;
  return {
    q: ctx.act(rng.randn(nq)), k: ctx.act(rng.randn(nk)), v: ctx.act(rng.randn(nk)), dout: ctx.act(rng.randn(nq)),
  };
}

export function describeAttention(ctx: OpsCtx): void {
  describe("attention", () => {
    const shapes: AttnShape[] = [
      { B: 1, T: 5, H: 4, K: 2, D: 6 },
      { B: 2, T: 7, H: 3, K: 3, D: 5 },
      { B: 2, T: 33, H: 4, K: 1, D: 16 },
      { B: 1, T: 1, H: 2, K: 2, D: 8 },
      { B: 2, T: 64, H: 8, K: 4, D: 32 },
      // the head dims of the CUDA tensor-core kernels, with T not a multiple of their tiles
      { B: 1, T: 130, H: 4, K: 2, D: 64 },
      { B: 2, T: 70, H: 2, K: 1, D: 128 },
    ];
    for (const s of shapes) {
      test(`forward + backward B=${s.B} T=${s.T} H=${s.H} K=${s.K} D=${s.D}`, () => {
        const { q, k, v, dout } = randomAttention(ctx, s, s.B * 31 + s.T * 7 + s.H + s.D);
        const { B, T, H, K, D } = s;
        checkOp(ctx, "attention", {
          run: (b) => runAttention(b.be, b, s, q, k, v, dout),
          ref: () => ({ ...R.attentionForward(q, k, v, B, T, H, K, D), ...R.attentionBackward(dout, q, k, v, B, T, H, K, D) }),
          tol: { out: 1e-5, lse: 1e-6, dq: 2e-5, dk: 2e-5, dv: 1e-5 },
          bf16Tol: { out: 1e-2, lse: 1e-3, dq: 2e-2, dk: 2e-2, dv: 1e-2 },
        });
      });
    }

    test("causality: changing k/v/q at positions >= p never changes out at positions < p", () => {
      const s = { B: 2, T: 12, H: 4, K: 2, D: 8 }, p = 5;
      const a = randomAttention(ctx, s, 71);
      const changed = randomAttention(ctx, s, 72);
      const mix = (x: Float32Array, y: Float32Array, heads: number) => {
        const r = Float32Array.from(x);
        for (let b = 0; b < s.B; b++) for (let t = p; t < s.T; t++) {
          const o = (b * s.T + t) * heads * s.D;
          r.set(y.subarray(o, o + heads * s.D), o);
        }
        return r;
      };
      const r1 = withBuffers(ctx.be, (b) => runAttention(ctx.be, b, s, a.q, a.k, a.v, a.dout));
      const r2 = withBuffers(ctx.be, (b) =>
        runAttention(ctx.be, b, s, mix(a.q, changed.q, s.H), mix(a.k, changed.k, s.K), mix(a.v, changed.v, s.K), a.dout));
      const early = (x: Float32Array, heads: number) => {
        const parts: number[] = [];
        for (let b = 0; b < s.B; b++) parts.push(...x.subarray(b * s.T * heads * s.D, (b * s.T + p) * heads * s.D));
        return parts;
      };
      expect(early(r2.out, s.H)).toEqual(early(r1.out, s.H));
      // backward: dq at early positions only sees early k/v, and dout is unchanged there
      expect(early(r2.dq, s.H)).toEqual(early(r1.dq, s.H));
    });

    test("GQA H=4 K=2 equals MHA with each kv head repeated (dk/dv summed over the group)", () => {
      const g = { B: 2, T: 9, H: 4, K: 2, D: 6 }, m = { ...g, K: 4 };
      const { q, k, v, dout } = randomAttention(ctx, g, 90);
      const rep = (x: Float32Array) => { // [B,T,2,D] -> [B,T,4,D]: heads 0,0,1,1
        const r = new Float32Array(x.length * 2);
        for (let bt = 0; bt < g.B * g.T; bt++) for (let h = 0; h < 4; h++)
          r.set(x.subarray((bt * 2 + (h >> 1)) * g.D, (bt * 2 + (h >> 1) + 1) * g.D), (bt * 4 + h) * g.D);
        return r;
      };
      const fold = (x: Float32Array) => { // [B,T,4,D] -> sum over each pair -> [B,T,2,D]
        const r = new Float64Array(x.length / 2);
        for (let bt = 0; bt < g.B * g.T; bt++) for (let h = 0; h < 4; h++) for (let d = 0; d < g.D; d++)
          r[(bt * 2 + (h >> 1)) * g.D + d] += x[(bt * 4 + h) * g.D + d];
        return r;
      };
      const rg = withBuffers(ctx.be, (b) => runAttention(ctx.be, b, g, q, k, v, dout));
      const rm = withBuffers(ctx.be, (b) => runAttention(ctx.be, b, m, q, rep(k), rep(v), dout));
      const tol = ctx.exact ? 1e-6 : 1e-2;
      expectClose("gqa out", rg.out, rm.out, tol);
      expectClose("gqa lse", rg.lse, rm.lse, tol);
      expectClose("gqa dq", rg.dq, rm.dq, tol);
      expectClose("gqa dk", rg.dk, fold(rm.dk), tol);
      expectClose("gqa dv", rg.dv, fold(rm.dv), tol);
    });
  });
}
