// The tensor-parallel kernels (olmo.h "tensor parallelism") on the CPU library: with Cfull = C and
// no all-reduce the split RMSNorm equals olmo_rmsnorm_forward/backward bitwise; a manual 2-way
// split (column halves, statistics summed on the host as the TP all-reduce would) equals the
// unsharded norm; vocab-parallel CE over 2 shards (stats combined in rank order) equals
// olmo_cross_entropy; the range embedding summed over shards equals the full lookup. Where a GPU is
// usable, the CUDA kernels are compared with the CPU library (skipped otherwise, visibly).
import { describe, expect, test } from "bun:test";
import { expectBitwiseEqual, expectClose } from "../support/compare.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { roundBf16Array } from "../support/bf16.ts";
import { type Buffers, cudaStatus, openBackend, withBuffers } from "../support/native.ts";
import { Rng } from "../support/random.ts";

const be = () => openBackend("cpu");

/** columns [c0, c1) of a row-major [N, C] matrix */
function cols(x: Float32Array, N: number, C: number, c0: number, c1: number): Float32Array {
  const out = new Float32Array(N * (c1 - c0));
  for (let i = 0; i < N; i++) out.set(x.subarray(i * C + c0, i * C + c1), i * (c1 - c0));
  return out;
}
function joinCols(parts: Float32Array[], N: number): Float32Array {
  const widths = parts.map((p) => p.length / N), C = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(N * C);
  for (let i = 0; i < N; i++) {
    let c0 = 0;
    parts.forEach((p, r) => { out.set(p.subarray(i * widths[r], (i + 1) * widths[r]), i * C + c0); c0 += widths[r]; });
  }
  return out;
}
const add = (a: Float32Array, b: Float32Array) => a.map((v, i) => v + b[i]);

describe("split RMSNorm (full-width QK-norm under TP)", () => {
  const N = 37, C = 96, eps = 1e-6;
  const rng = new Rng(7);
  const x = rng.randn(N * C, 1.5), w = rng.randn(C, 0.3, 1), dout = rng.randn(N * C);

  function full() {
    return withBuffers(be(), (b) => {
      const out = b.nanAct(N * C), rstd = b.nanF32(N), xp = b.act(x), wp = b.act(w);
      be().rmsnormForward(out, rstd, xp, wp, N, C, eps);
      const dx = b.nanAct(N * C), dw = b.f32(new Float32Array(C).fill(0.25));
      be().rmsnormBackward(dx, dw, b.act(dout), xp, wp, rstd, N, C);
      return { out: b.readAct(out, N * C), rstd: b.readF32(rstd, N), dx: b.readAct(dx, N * C), dw: b.readF32(dw, C) };
    });
  }

  /** one TP rank's half: stage 1 (sumsq / dot) for columns [c0,c1) */
  function split(parts: [number, number][]) {
    return withBuffers(be(), (b) => {
      const xs = parts.map(([c0, c1]) => b.act(cols(x, N, C, c0, c1)));
      const ws = parts.map(([c0, c1]) => b.act(w.subarray(c0, c1)));
      const ss = parts.map(([c0, c1], r) => { const p = b.nanF32(N); be().rowSumsq(p, xs[r], N, c1 - c0); return b.readF32(p, N); });
      const ssAll = ss.reduce(add); // the TP all-reduce (sum, rank order)
      const rstd = parts.map(() => b.nanF32(N));
      const outs = parts.map(([c0, c1], r) => {
        const o = b.nanAct(N * (c1 - c0));
        be().rmsnormApply(o, rstd[r], xs[r], ws[r], b.f32(ssAll), N, c1 - c0, C, eps);
        return b.readAct(o, N * (c1 - c0));
      });
      const douts = parts.map(([c0, c1]) => b.act(cols(dout, N, C, c0, c1)));
      const dots = parts.map(([c0, c1], r) => {
        const p = b.nanF32(N);
        be().rmsnormBwdDot(p, douts[r], xs[r], ws[r], rstd[r], N, c1 - c0);
        return b.readF32(p, N);
      });
      const dotAll = b.f32(dots.reduce(add));
      const dxs: Float32Array[] = [], dws: Float32Array[] = [];
      parts.forEach(([c0, c1], r) => {
        const dx = b.nanAct(N * (c1 - c0)), dw = b.f32(new Float32Array(c1 - c0).fill(0.25));
        be().rmsnormBwdFinish(dx, dw, douts[r], xs[r], ws[r], rstd[r], dotAll, N, c1 - c0, C);
        dxs.push(b.readAct(dx, N * (c1 - c0)));
        dws.push(b.readF32(dw, c1 - c0));
      });
      const dw = new Float32Array(C);
      let o = 0;
      for (const d of dws) { dw.set(d, o); o += d.length; }
      return { out: joinCols(outs, N), rstd: b.readF32(rstd[0], N), dx: joinCols(dxs, N), dw };
    });
  }

  test("with Cfull = C and no all-reduce it is bitwise olmo_rmsnorm_forward/backward", () => {
    const a = full(), s = split([[0, C]]);
    for (const k of ["out", "rstd", "dx", "dw"] as const) expectBitwiseEqual(`split(1) ${k}`, s[k], a[k]);
  });

  test("a 2-way column split with summed statistics equals the unsharded norm", () => {
    const a = full(), s = split([[0, C / 2], [C / 2, C]]);
    for (const k of ["out", "rstd", "dx", "dw"] as const) expectClose(`split(2) ${k}`, s[k], a[k], 1e-6);
  });

  test("dx may alias dout (in place, as the model calls it)", () => {
    const a = full();
    const dx = withBuffers(be(), (b) => {
      const xp = b.act(x), wp = b.act(w), ss = b.nanF32(N), rstd = b.nanF32(N), out = b.nanAct(N * C), dot = b.nanF32(N);
      be().rowSumsq(ss, xp, N, C);
      be().rmsnormApply(out, rstd, xp, wp, ss, N, C, C, eps);
      const d = b.act(dout);
      be().rmsnormBwdDot(dot, d, xp, wp, rstd, N, C);
      be().rmsnormBwdFinish(d, b.f32(new Float32Array(C)), d, xp, wp, rstd, dot, N, C, C);
      return b.readAct(d, N * C);
    });
    expectBitwiseEqual("in-place dx", dx, a.dx);
  });
});

describe("vocab-parallel cross-entropy + z-loss", () => {
  const N = 23, V = 64, z = 1e-4, gs = 1 / 17;
  const rng = new Rng(11);
  const logits = rng.randn(N * V, 3);
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 5 === 4 ? -100 : rng.int(V)));

  function full() {
    return withBuffers(be(), (b) => {
      const l = b.act(logits), ce = b.nanF32(N), lse = b.nanF32(N);
      be().crossEntropy(l, ce, lse, b.i32(targets), N, V, z, gs);
      return { ce: b.readF32(ce, N), lse: b.readF32(lse, N), dlogits: b.readAct(l, N * V) };
    });
  }

  function sharded(nShards: number, gradScale: number) {
    const Vloc = V / nShards;
    return withBuffers(be(), (b) => {
      const tg = b.i32(targets);
      const ls = Array.from({ length: nShards }, (_, r) => b.act(cols(logits, N, V, r * Vloc, (r + 1) * Vloc)));
      const stats = ls.map((l, r) => {
        const m = b.nanF32(N), s = b.nanF32(N), t = b.nanF32(N);
        be().ceStats(m, s, t, l, tg, N, Vloc, r * Vloc, V);
        return { m: b.readF32(m, N), s: b.readF32(s, N), t: b.readF32(t, N) };
      });
      // combine in rank order: M = max m_r, S = sum s_r exp(m_r - M), lse = M + log S; tgt summed
      const lseIn = new Float32Array(N), tgt = new Float32Array(N);
      for (let i = 0; i < N; i++) {
        const M = Math.max(...stats.map((st) => st.m[i]));
        let S = 0;
        for (const st of stats) S += st.s[i] * Math.exp(st.m[i] - M);
        lseIn[i] = M + Math.log(S);
        for (const st of stats) tgt[i] += st.t[i];
      }
      const outs = ls.map((l, r) => {
        const ce = b.nanF32(N), lse = b.nanF32(N);
        be().ceFinish(l, ce, lse, b.f32(lseIn), b.f32(tgt), tg, N, Vloc, r * Vloc, V, z, gradScale);
        return { ce: b.readF32(ce, N), lse: b.readF32(lse, N), d: b.readAct(l, N * Vloc) };
      });
      return { ce: outs[0].ce, lse: outs[0].lse, ce1: outs[nShards - 1].ce, dlogits: joinCols(outs.map((o) => o.d), N) };
    });
  }

  for (const n of [1, 2, 4]) {
    test(`${n} shard(s) equal olmo_cross_entropy`, () => {
      const a = full(), s = sharded(n, gs);
      expectClose("ce", s.ce, a.ce, 1e-6);
      expectBitwiseEqual("ce is the same on every rank", s.ce1, s.ce);
      expectClose("lse", s.lse, a.lse, 1e-6);
      expectClose("dlogits", s.dlogits, a.dlogits, 1e-5);
      for (let i = 0; i < N; i++) if (targets[i] < 0) expect(s.ce[i]).toBe(0);
    });
  }

  test("grad_scale = 0 evaluates only (logits untouched)", () => {
    const s = sharded(2, 0);
    expectBitwiseEqual("logits", s.dlogits, logits);
  });

  test("a target >= V is an error naming it", () => {
    withBuffers(be(), (b) => {
      const f = b.nanF32(1);
      expect(() => be().ceStats(f, f, f, b.act([1, 2]), b.i32([5]), 1, 2, 0, 4)).toThrow(/target 5 .*V=4/);
    });
  });
});

describe("vocab-parallel embedding", () => {
  const N = 19, C = 24, V = 40;
  const rng = new Rng(3);
  const wte = rng.randn(V * C), dout = rng.randn(N * C);
  const tokens = Int32Array.from({ length: N }, () => rng.int(V));

  test("forward summed over 2 shards equals the full lookup; backward equals the full gradient's rows", () => {
    withBuffers(be(), (b) => {
      const tok = b.i32(tokens), d = b.act(dout);
      const full = b.nanAct(N * C), dfull = b.f32(new Float32Array(V * C));
      be().embeddingForward(full, tok, b.act(wte), N, C, V);
      be().embeddingBackward(dfull, d, tok, N, C, V);
      const want = b.readAct(full, N * C), dwant = b.readF32(dfull, V * C);
      let sum = new Float32Array(N * C);
      const dparts: Float32Array[] = [];
      for (const [v0, v1] of [[0, 16], [16, 40]]) {
        const out = b.nanAct(N * C), dw = b.f32(new Float32Array((v1 - v0) * C));
        be().embeddingForwardRange(out, tok, b.act(wte.subarray(v0 * C, v1 * C)), N, C, v1 - v0, v0, V);
        be().embeddingBackwardRange(dw, d, tok, N, C, v1 - v0, v0, V);
        sum = add(sum, b.readAct(out, N * C));
        dparts.push(b.readF32(dw, (v1 - v0) * C));
      }
      expectBitwiseEqual("forward", sum, want);
      const dj = new Float32Array(V * C);
      dj.set(dparts[0], 0);
      dj.set(dparts[1], 16 * C);
      expectBitwiseEqual("backward", dj, dwant);
      expect(() => be().embeddingForwardRange(b.nanAct(C), b.i32([V]), b.act(wte), 1, C, V, 0, V)).toThrow(/token id 40/);
    });
  });
});


// The CUDA kernels (cuda/gpu/tp.cu) against the CPU library on the same bf16-rounded inputs, where
// a GPU is usable (bf16 activations: 1e-2 relative error norm, f32 statistics 1e-3).
function runAll(b: Buffers, be: Backend, bf16Inputs: boolean) {
  const N = 29, C = 40, V = 48, Vloc = 24, v0 = 24, rng = new Rng(21);
  const act = (x: Float32Array) => (bf16Inputs ? roundBf16Array(x) : Float32Array.from(x));
  const x = act(rng.randn(N * C, 1.5)), w = act(rng.randn(C, 0.3, 1)), dout = act(rng.randn(N * C));
  const logits = act(rng.randn(N * Vloc, 3)), wte = act(rng.randn(Vloc * C));
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 7 === 6 ? -100 : rng.int(V)));
  const tokens = Int32Array.from({ length: N }, () => rng.int(V));
  const out: Record<string, Float32Array> = {};
  const xp = b.act(x), wp = b.act(w), ss = b.nanF32(N), rstd = b.nanF32(N), y = b.nanAct(N * C), dot = b.nanF32(N);
  be.rowSumsq(ss, xp, N, C);
  out.ss = b.readF32(ss, N);
  be.rmsnormApply(y, rstd, xp, wp, b.f32(Float32Array.from(out.ss, (v) => 2 * v)), N, C, 2 * C, 1e-6);
  out.y = b.readAct(y, N * C);
  out.rstd = b.readF32(rstd, N);
  const d = b.act(dout), dw = b.f32(new Float32Array(C).fill(0.5));
  be.rmsnormBwdDot(dot, d, xp, wp, rstd, N, C);
  out.dot = b.readF32(dot, N);
  be.rmsnormBwdFinish(d, dw, d, xp, wp, rstd, dot, N, C, 2 * C);
  out.dx = b.readAct(d, N * C);
  out.dw = b.readF32(dw, C);
  const l = b.act(logits), tg = b.i32(targets), mx = b.nanF32(N), se = b.nanF32(N), tt = b.nanF32(N);
  be.ceStats(mx, se, tt, l, tg, N, Vloc, v0, V);
  out.mx = b.readF32(mx, N);
  out.se = b.readF32(se, N);
  out.tgt = b.readF32(tt, N);
  const lse = Float32Array.from(out.mx, (m, i) => m + Math.log(out.se[i]) + 0.5);
  const ce = b.nanF32(N), lo = b.nanF32(N);
  be.ceFinish(l, ce, lo, b.f32(lse), tt, tg, N, Vloc, v0, V, 1e-4, 0.25);
  out.ce = b.readF32(ce, N);
  out.dlogits = b.readAct(l, N * Vloc);
  const tok = b.i32(tokens), e = b.nanAct(N * C), de = b.f32(new Float32Array(Vloc * C));
  be.embeddingForwardRange(e, tok, b.act(wte), N, C, Vloc, v0, V);
  be.embeddingBackwardRange(de, b.act(dout), tok, N, C, Vloc, v0, V);
  out.emb = b.readAct(e, N * C);
  out.demb = b.readF32(de, Vloc * C);
  return out;
}

describe("TP kernels [cuda] against the CPU library", () => {
  const cuda = cudaStatus();
  if (cuda !== true) {
    test.skip(`cuda: ${cuda}`, () => {});
    return;
  }
  test("split RMSNorm, CE stats/finish, range embedding", () => {
    const gpu = openBackend("cuda");
    // inputs rounded to bf16 on both sides, so only the kernels differ
    const got = withBuffers(gpu, (b) => runAll(b, gpu, true));
    const want = withBuffers(be(), (b) => runAll(b, be(), true));
    for (const k of Object.keys(want)) expectClose(`cuda ${k}`, got[k], want[k], k === "y" || k === "dx" || k === "dlogits" || k === "emb" ? 1e-2 : 1e-3);
  });
});

test("the CUDA comparison runs end to end on the CPU library (checks the test itself)", () => {
  const a = withBuffers(be(), (b) => runAll(b, be(), true)), c = withBuffers(be(), (b) => runAll(b, be(), true));
  for (const k of Object.keys(a)) {
    expect(a[k].length).toBeGreaterThan(0);
    expect(a[k].every(Number.isFinite)).toBe(true);
    expectBitwiseEqual(k, c[k], a[k]);
  }
});

