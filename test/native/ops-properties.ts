// Properties beyond "matches the oracle": RoPE as the closed-form rotation, error paths that name
// the problem, and bitwise reproducibility (run to run; on the CPU also across thread counts).
import { describe, expect, test } from "bun:test";
import { NativeError, loadNative } from "../../src/native/lib.ts";
import { expectBitwiseEqual, expectClose } from "../support/compare.ts";
import { cpuLibrary, withBuffers } from "../support/native.ts";
import type { OpsCtx } from "./harness.ts";
import { randomAttention, runAttention } from "./ops-attention.ts";
import { ropeTablesF32 } from "./ops-layers.ts";

export function describeProperties(ctx: OpsCtx): void {
  describe("rope closed form", () => {
    test("each pair (x_j, x_{j+D/2}) is rotated by angle t * theta^(-2j/D)", () => {
      const [B, T, Hx, D, theta] = [1, 9, 2, 16, 500000];
      const n = B * T * Hx * D;
      const x = ctx.act(ctx.rng(400).randn(n));
      const { cos, sin } = ropeTablesF32(T, D, theta);
      const out = withBuffers(ctx.be, (b) => {
        const o = b.nanAct(n);
        ctx.be.ropeForward(o, b.act(x), b.f32(cos), b.f32(sin), B, T, Hx, D);
        return b.readAct(o, n);
      });
      const want = new Float64Array(n);
      for (let t = 0; t < T; t++) for (let h = 0; h < Hx; h++) for (let j = 0; j < D / 2; j++) {
        const o = (t * Hx + h) * D, angle = t * Math.pow(theta, (-2 * j) / D);
        const re = x[o + j], im = x[o + j + D / 2]; // (re + i im) * e^{i angle}
        want[o + j] = re * Math.cos(angle) - im * Math.sin(angle);
        want[o + j + D / 2] = im * Math.cos(angle) + re * Math.sin(angle);
      }
      expectClose("rope vs rotation", out, want, ctx.exact ? 1e-5 : 1e-2);
    });

    test("scores depend only on relative position: <R_t q, R_s k> == <R_{t+3} q, R_{s+3} k>", () => {
      const [T, D] = [12, 8];
      const rng = ctx.rng(401);
      const q = ctx.act(rng.randn(D)), k = ctx.act(rng.randn(D));
      const { cos, sin } = ropeTablesF32(T, D, 10000);
      // one head per position: put q at every position, and k at every position
      const tile = (v: Float32Array) => { const a = new Float32Array(T * D); for (let t = 0; t < T; t++) a.set(v, t * D); return a; };
      const [rq, rk] = withBuffers(ctx.be, (b) => [tile(q), tile(k)].map((x) => {
        const o = b.nanAct(T * D);
        ctx.be.ropeForward(o, b.act(x), b.f32(cos), b.f32(sin), 1, T, 1, D);
        return b.readAct(o, T * D);
      }));
      const score = (t: number, s: number) => { let d = 0; for (let j = 0; j < D; j++) d += rq[t * D + j] * rk[s * D + j]; return d; };
      const tol = ctx.exact ? 1e-4 : 5e-2;
      for (const [t, s] of [[5, 2], [7, 7], [3, 0]]) expect(Math.abs(score(t, s) - score(t + 3, s + 3))).toBeLessThan(tol);
    });
  });

  describe("errors", () => {
    const throwsNative = (fn: () => void, pattern: RegExp) => {
      let err: unknown;
      try { fn(); ctx.be.synchronize(); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(NativeError);
      expect((err as Error).message).toMatch(pattern);
    };

    test("embedding: a token id >= V (or < 0) is an error naming it; nothing is written (CPU)", () => {
      const [N, C, V] = [4, 8, 10];
      withBuffers(ctx.be, (b) => {
        const wte = b.act(ctx.rng(410).randn(V * C)), out = b.nanAct(N * C), dw = b.nanF32(V * C);
        throwsNative(() => ctx.be.embeddingForward(out, b.i32([1, 2, 10, 3]), wte, N, C, V), /token/i);
        throwsNative(() => ctx.be.embeddingBackward(dw, out, b.i32([1, -1, 2, 3]), N, C, V), /token/i);
        if (ctx.name === "cpu") {
          expect(String(loadNative("cpu").lastError())).toMatch(/token id -1 .*out of range/);
          expect(b.readAct(out, N * C).every(Number.isNaN)).toBe(true); // checked before any write
        }
      });
    });

    test("cross-entropy: a target >= V is an error naming it", () => {
      const [N, V] = [3, 16];
      withBuffers(ctx.be, (b) => {
        const logits = b.act(ctx.rng(411).randn(N * V));
        throwsNative(() => ctx.be.crossEntropy(logits, b.nanF32(N), b.nanF32(N), b.i32([0, 16, 2]), N, V, 1e-4, 1), /target/i);
        if (ctx.name === "cpu") expect(String(loadNative("cpu").lastError())).toMatch(/target 16 at row 1 .*V=16/);
      });
    });

    test("the library keeps working after an error", () => {
      withBuffers(ctx.be, (b) => {
        const x = b.f32([3, 4]), o = b.nanF32(1);
        ctx.be.normSquared(o, x, 2, false);
        expect(b.readF32(o, 1)[0]).toBe(25);
      });
    });

    if (ctx.name === "cpu") {
      test("cpu: bad sizes and NULL pointers are errors, never crashes", () => {
        const be = ctx.be;
        withBuffers(be, (b) => {
          const p = b.nanF32(16);
          expect(() => be.matmul(p, p, p, -1, 2, 2, false, false, 0)).toThrow(/negative size/);
          expect(() => be.matmul(0, p, p, 2, 2, 2, false, false, 0)).toThrow(/C is NULL/);
          expect(() => be.attentionForward(p, p, p, p, p, 1, 2, 3, 2, 2)).toThrow(/not a multiple/);
          expect(() => be.ropeForward(p, p, p, p, 1, 1, 1, 3)).toThrow(/even/);
          expect(() => be.rmsnormForward(0, p, p, p, 2, 2, 1e-6)).toThrow(/out_NC is NULL/);
          expect(() => be.adamw(p, 0, p, p, p, 4, { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, bc1: 0, bc2: 1, gradScale: 1 }))
            .toThrow(/bias corrections/);
        });
      });

      test("cpu: collectives report that they live in TypeScript", () => {
        const lib = loadNative("cpu");
        const id = new Uint8Array(1024);
        expect(lib.sym.olmo_comm_unique_id(id)).not.toBe(0);
        expect(lib.lastError()).toContain("collectives are not in the CPU library; CPU collectives are implemented in TypeScript");
        expect(lib.sym.olmo_comm_all_reduce(0 as never, 0 as never, 0 as never, 4, 0, 0)).not.toBe(0);
      });
    }
  });

  describe("reproducibility", () => {
    const s = { B: 2, T: 24, H: 4, K: 2, D: 8 };
    const runAll = () => {
      const a = randomAttention(ctx, s, 500);
      const rng = ctx.rng(501);
      const [N, C, V] = [300, 40, 7]; // many repeated ids: the order of additions matters
      const tokens = rng.ints(N, V), dout = ctx.act(rng.randn(N * C)), x = ctx.act(rng.randn(N * C)), w = ctx.act(rng.randn(C));
      const big = rng.randn(300_001);
      return withBuffers(ctx.be, (b) => {
        const att = runAttention(ctx.be, b, s, a.q, a.k, a.v, a.dout);
        const dw = b.f32(new Float32Array(V * C));
        ctx.be.embeddingBackward(dw, b.act(dout), b.i32(tokens), N, C, V);
        const rstd = b.nanF32(N), px = b.act(x), pw = b.act(w), dnw = b.f32(new Float32Array(C));
        ctx.be.rmsnormForward(b.nanAct(N * C), rstd, px, pw, N, C, 1e-6);
        ctx.be.rmsnormBackward(b.nanAct(N * C), dnw, b.act(dout), px, pw, rstd, N, C);
        const nsq = b.nanF32(1);
        ctx.be.normSquared(nsq, b.f32(big), big.length, false);
        return { ...att, dwte: b.readF32(dw, V * C), dwNorm: b.readF32(dnw, C), normSq: b.readF32(nsq, 1) };
      });
    };
    const compare = (r1: Record<string, Float32Array>, r2: Record<string, Float32Array>, label: string) => {
      for (const k of Object.keys(r1)) expectBitwiseEqual(`${label} ${k}`, r2[k], r1[k]);
    };

    test("attention, embedding/rmsnorm weight gradients, norm_squared: bitwise equal run to run", () => {
      compare(runAll(), runAll(), "rerun");
    });

    if (ctx.name === "cpu") {
      test("cpu: bitwise equal with 1 thread and with 2 threads", () => {
        const lib = cpuLibrary();
        const before = ctx.be.deviceName.match(/(\d+) threads/)?.[1] ?? "2";
        try {
          lib.check("olmo_set_num_threads", lib.sym.olmo_set_num_threads(1));
          const one = runAll();
          lib.check("olmo_set_num_threads", lib.sym.olmo_set_num_threads(2));
          compare(one, runAll(), "1 vs 2 threads");
        } finally {
          lib.check("olmo_set_num_threads", lib.sym.olmo_set_num_threads(Number(before)));
        }
      });
    }
  });
}
