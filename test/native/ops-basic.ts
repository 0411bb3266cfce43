// Lifecycle, memory, casts, elementwise ops, GEMM, embedding, and the optimizer kernels.
import { describe, expect, test } from "bun:test";
import { loadNative } from "../../src/native/lib.ts";
import { fromBf16Array, toBf16Array } from "../support/bf16.ts";
import { expectClose } from "../support/compare.ts";
import { staging, withBuffers } from "../support/native.ts";
import * as R from "../support/reference.ts";
import { type Buffers, checkOp, type OpsCtx } from "./harness.ts";

export function describeBasics(ctx: OpsCtx): void {
  describe("lifecycle and memory", () => {
    test("device count, name, act dtype", () => {
      const lib = loadNative(ctx.name);
      const count = new Int32Array(256);
      lib.check("olmo_device_count", lib.sym.olmo_device_count(count));
      expect(count[0]).toBeGreaterThanOrEqual(1);
      if (ctx.name === "cpu") {
        expect(count[0]).toBe(1);
        expect(ctx.be.deviceName).toMatch(/^cpu \((oneDNN|OpenBLAS), \d+ threads\)$/);
        expect(ctx.be.actDtype).toBe("f32");
      } else {
        expect(ctx.be.actDtype).toBe("bf16");
      }
    });

    test("alloc is 256-byte aligned; upload/download/copy/zero round-trip", () => {
      const be = ctx.be;
      const n = 1000;
      const x = ctx.rng(1).randn(n);
      const ptrs = [1, 3, 1000, 4096, 12345].map((bytes) => be.alloc(bytes));
      for (const p of ptrs) expect(p % 256).toBe(0);
      for (const p of ptrs) be.free(p);
      const a = be.alloc(n * 4), b = be.alloc(n * 4);
      try {
        const s = staging(Float32Array, n);
        s.set(x);
        be.upload(a, s);
        be.copy(b, a, n * 4);
        const back = staging(Float32Array, n);
        be.download(back, b);
        expect(Array.from(back)).toEqual(Array.from(x));
        be.zero(b, n * 4);
        be.download(back, b);
        expect(back.every((v) => v === 0)).toBe(true);
        be.fillF32(b, 2.5, n - 1); // last element keeps 0: the count is honoured exactly
        be.download(back, b);
        expect(back.slice(0, n - 1).every((v) => v === 2.5) && back[n - 1] === 0).toBe(true);
      } finally {
        be.free(a);
        be.free(b);
      }
    });

    test("casts f32 -> act -> f32 (bf16: round to nearest even, bit-exact)", () => {
      const x = ctx.rng(2).randn(777, 3);
      x[0] = 1 + 2 ** -8; // a bf16 tie: rounds to even (1.0)
      x[1] = 1 + 3 * 2 ** -8; // tie rounding up to 1 + 2^-6
      withBuffers(ctx.be, (b) => {
        const src = b.f32(x);
        const act = b.nanAct(x.length);
        const back = b.nanF32(x.length);
        b.be.castF32ToAct(act, src, x.length);
        b.be.castActToF32(back, act, x.length);
        const want = b.be.actDtype === "bf16" ? fromBf16Array(toBf16Array(x)) : x;
        expect(Array.from(b.readF32(back, x.length))).toEqual(Array.from(want));
        expect(Array.from(b.readAct(act, x.length))).toEqual(Array.from(want));
      });
    });

    test("add (also in place) and scale_f32", () => {
      const rng = ctx.rng(3);
      const n = 1031;
      const a = ctx.act(rng.randn(n)), c = ctx.act(rng.randn(n));
      checkOp(ctx, "add", {
        run: (b) => {
          const pa = b.act(a), pc = b.act(c), out = b.nanAct(n);
          b.be.add(out, pa, pc, n);
          b.be.add(pa, pa, pc, n); // out aliases a
          return { out: b.readAct(out, n), inPlace: b.readAct(pa, n) };
        },
        ref: () => { const s = a.map((v, i) => v + c[i]); return { out: s, inPlace: s }; },
        tol: 1e-7,
      });
      withBuffers(ctx.be, (b) => {
        const p = b.f32(a);
        b.be.scaleF32(p, -0.75, n);
        expectClose("scale_f32", b.readF32(p, n), Float64Array.from(a, (v) => v * -0.75), 1e-7);
      });
    });
  });

  describe("matmul", () => {
    // the last two are big enough for the CPU library to split C over threads (by rows, by columns)
    const shapes: [number, number, number][] = [[7, 33, 5], [1, 1, 1], [64, 130, 48], [5, 3, 129], [300, 70, 33], [40, 290, 50]];
    for (const [M, N, K] of shapes) {
      for (const tA of [false, true]) for (const tB of [false, true]) {
        test(`M=${M} N=${N} K=${K} transA=${+tA} transB=${+tB}: act (beta 0) and f32 (beta 1)`, () => {
          const rng = ctx.rng(M * 1000 + N * 10 + K + (tA ? 7 : 0) + (tB ? 13 : 0));
          const A = ctx.act(rng.randn(M * K)), B = ctx.act(rng.randn(K * N)), C0 = rng.randn(M * N);
          checkOp(ctx, "matmul", {
            run: (b) => {
              const pa = b.act(A), pb = b.act(B), c = b.nanAct(M * N), cf = b.f32(C0);
              b.be.matmul(c, pa, pb, M, N, K, tA, tB, 0); // beta 0 must ignore NaN in C
              b.be.matmulF32(cf, pa, pb, M, N, K, tA, tB, 1);
              return { C: b.readAct(c, M * N), Cf32: b.readF32(cf, M * N) };
            },
            ref: () => ({ C: R.matmul(A, B, M, N, K, tA, tB), Cf32: R.matmul(A, B, M, N, K, tA, tB, 1, C0) }),
            tol: 1e-5,
          });
        });
      }
    }
    test("beta = 0.5 on an act output; Kd = 0 gives beta * C", () => {
      const rng = ctx.rng(9);
      const [M, N, K] = [6, 10, 4];
      const A = ctx.act(rng.randn(M * K)), B = ctx.act(rng.randn(N * K)), C0 = ctx.act(rng.randn(M * N));
      checkOp(ctx, "matmul beta", {
        run: (b) => {
          const c = b.act(C0), cz = b.nanF32(M * N), ck = b.f32(C0);
          b.be.matmul(c, b.act(A), b.act(B), M, N, K, false, true, 0.5);
          b.be.matmulF32(cz, b.act(A), b.act(B), M, N, 0, false, true, 0);
          b.be.matmulF32(ck, b.act(A), b.act(B), M, N, 0, false, true, 2);
          return { C: b.readAct(c, M * N), zero: b.readF32(cz, M * N), twice: b.readF32(ck, M * N) };
        },
        ref: () => ({ C: R.matmul(A, B, M, N, K, false, true, 0.5, C0), zero: new Float64Array(M * N), twice: C0.map((v) => 2 * v) }),
        tol: 1e-5,
      });
    });
  });

  describe("embedding", () => {
    for (const [N, C, V] of [[7, 33, 130], [1, 1, 1], [64, 48, 5]] as const) {
      test(`forward and backward N=${N} C=${C} V=${V} (repeated ids accumulate)`, () => {
        const rng = ctx.rng(N + C + V);
        const tokens = rng.ints(N, V);
        tokens[N - 1] = V - 1;
        const wte = ctx.act(rng.randn(V * C)), dout = ctx.act(rng.randn(N * C)), dw0 = rng.randn(V * C);
        checkOp(ctx, "embedding", {
          run: (b) => {
            const out = b.nanAct(N * C), dw = b.f32(dw0), tok = b.i32(tokens);
            b.be.embeddingForward(out, tok, b.act(wte), N, C, V);
            b.be.embeddingBackward(dw, b.act(dout), tok, N, C, V);
            return { out: b.readAct(out, N * C), dwte: b.readF32(dw, V * C) };
          },
          ref: () => ({ out: R.embeddingForward(tokens, wte, N, C), dwte: R.embeddingBackward(dw0, dout, tokens, N, C) }),
          tol: 1e-6,
        });
      });
    }
  });

  describe("optimizer", () => {
    for (const n of [1, 1000, 200_003]) {
      test(`norm_squared n=${n} (set and accumulate)`, () => {
        const x = ctx.rng(n).randn(n);
        checkOp(ctx, "norm_squared", {
          run: (b) => {
            const px = b.f32(x), o1 = b.nanF32(1), o2 = b.f32([3]);
            b.be.normSquared(o1, px, n, false);
            b.be.normSquared(o2, px, n, true);
            return { set: b.readF32(o1, 1), acc: b.readF32(o2, 1) };
          },
          ref: () => ({ set: [R.normSquared(x)], acc: [3 + R.normSquared(x)] }),
          tol: 1e-6,
          bf16Tol: 1e-5, // f32 in, f32 out on every backend
        });
      });
    }

    const hps = [
      { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.95 ** 3, gradScale: 0.5 },
      { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0, bc1: 0.1, bc2: 0.001, gradScale: 1 }, // 32B "bug" bc
    ];
    hps.forEach((hp, k) => {
      test(`adamw hp set ${k} (n = 1031, param_act copy)`, () => {
        const rng = ctx.rng(50 + k);
        const n = 1031;
        // the ABI passes hyperparameters as f32: the reference sees the same rounded values
        const hpF32 = Object.fromEntries(Object.entries(hp).map(([k, v]) => [k, Math.fround(v)])) as unknown as R.AdamHp;
        const p0 = rng.randn(n, 0.5), g = rng.randn(n), m0 = rng.randn(n, 0.1), v0 = rng.uniform(n, 0, 0.01);
        const run = (b: Buffers) => {
          const p = b.f32(p0), pa = b.nanAct(n), pm = b.f32(m0), pv = b.f32(v0);
          b.be.adamw(p, pa, b.f32(g), pm, pv, n, hp);
          const q = b.f32(p0), qm = b.f32(m0), qv = b.f32(v0);
          b.be.adamw(q, 0, b.f32(g), qm, qv, n, hp); // param_act NULL
          return { p: b.readF32(p, n), pAct: b.readAct(pa, n), m: b.readF32(pm, n), v: b.readF32(pv, n), pNoAct: b.readF32(q, n) };
        };
        checkOp(ctx, "adamw", {
          run,
          ref: () => { const r = R.adamw(p0, g, m0, v0, hpF32); return { p: r.p, pAct: r.p, m: r.m, v: r.v, pNoAct: r.p }; },
          tol: 1e-6,
          bf16Tol: { p: 1e-5, m: 1e-5, v: 1e-5, pNoAct: 1e-5 }, // fp32 master math everywhere; pAct is bf16
        });
      });
    });
  });
}
