// olmo_attention_decode (one query per batch row against a KV cache) on every backend found:
// against the float64 reference (CPU) or the CPU library (bf16 backends), and against the last row
// of the full causal olmo_attention_forward over the same len positions on the same backend. Cache
// positions >= len and the outputs are NaN-poisoned, so reading past len or skipping a write shows.
import { describe, expect, test } from "bun:test";
import type { BackendName } from "../../src/backend/backend.ts";
import { expectClose } from "../support/compare.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { cudaStatus, withBuffers } from "../support/native.ts";
import * as R from "../support/reference.ts";
import { checkOp, makeCtx, type OpsCtx } from "./harness.ts";

interface DecodeShape { B: number; Tmax: number; len: number; H: number; K: number; D: number }

/** q_full [B,len,H,D], k/v [B,len,K,D] -> the decode inputs: last query row [B,H,D], caches [B,Tmax,K,D] (NaN past len). */
function decodeInputs(s: DecodeShape, q: Float32Array, k: Float32Array, v: Float32Array) {
  const { B, Tmax, len, H, K, D } = s;
  const qLast = new Float32Array(B * H * D);
  const kc = new Float32Array(B * Tmax * K * D).fill(NaN), vc = new Float32Array(B * Tmax * K * D).fill(NaN);
  for (let b = 0; b < B; b++) {
    qLast.set(q.subarray(((b * len + len - 1) * H) * D, ((b * len + len) * H) * D), b * H * D);
    kc.set(k.subarray(b * len * K * D, (b + 1) * len * K * D), b * Tmax * K * D);
    vc.set(v.subarray(b * len * K * D, (b + 1) * len * K * D), b * Tmax * K * D);
  }
  return { qLast, kc, vc };
}

/** rows t = len-1 of a [B,len,H,D] tensor -> [B,H,D] */
function lastRows(x: ArrayLike<number>, s: DecodeShape): Float64Array {
  const { B, len, H, D } = s;
  const r = new Float64Array(B * H * D);
  for (let b = 0; b < B; b++) for (let i = 0; i < H * D; i++) r[b * H * D + i] = x[(b * len + len - 1) * H * D + i];
  return r;
}

function describeDecode(ctx: OpsCtx): void {
  describe(`attention decode [${ctx.name}]`, () => {
    const shapes: DecodeShape[] = [
      { B: 1, Tmax: 8, len: 5, H: 4, K: 2, D: 6 },
      { B: 2, Tmax: 7, len: 7, H: 3, K: 3, D: 5 },
      { B: 2, Tmax: 40, len: 33, H: 4, K: 1, D: 16 },
      { B: 1, Tmax: 4, len: 1, H: 2, K: 2, D: 8 },
      { B: 2, Tmax: 9, len: 3, H: 6, K: 2, D: 7 },
      { B: 2, Tmax: 200, len: 130, H: 4, K: 2, D: 64 },
      { B: 2, Tmax: 80, len: 70, H: 2, K: 1, D: 128 },
      // more positions than one CUDA tile (1024): the online softmax across tiles
      { B: 1, Tmax: 1200, len: 1100, H: 2, K: 1, D: 64 },
    ];
    for (const s of shapes) {
      test(`B=${s.B} Tmax=${s.Tmax} len=${s.len} H=${s.H} K=${s.K} D=${s.D}`, () => {
        const { B, Tmax, len, H, K, D } = s;
        const rng = ctx.rng(B * 13 + len * 7 + H * 3 + D);
        const q = ctx.act(rng.randn(B * len * H * D)), k = ctx.act(rng.randn(B * len * K * D)), v = ctx.act(rng.randn(B * len * K * D));
        const { qLast, kc, vc } = decodeInputs(s, q, k, v);
        const got = checkOp(ctx, "attention decode", {
          run: (b) => {
            const out = b.nanAct(B * H * D);
            b.be.attentionDecode(out, b.act(qLast), b.act(kc), b.act(vc), B, Tmax, len, H, K, D);
            return { out: b.readAct(out, B * H * D) };
          },
          ref: () => ({ out: lastRows(R.attentionForward(q, k, v, B, len, H, K, D).out, s) }),
          tol: { out: 1e-5 },
          bf16Tol: { out: 1e-2 },
        });
        // the full causal forward on the same backend: its last row is the decode output
        const full = withBuffers(ctx.be, (b) => {
          const out = b.nanAct(B * len * H * D), lse = b.nanF32(B * H * len);
          b.be.attentionForward(out, lse, b.act(q), b.act(k), b.act(v), B, len, H, K, D);
          return b.readAct(out, B * len * H * D);
        });
        expectClose(`${ctx.name} decode vs forward last row`, got.out, lastRows(full, s), ctx.exact ? 1e-6 : 1e-2);
      });
    }

    test("bad arguments are errors with a message, never a crash", () => {
      withBuffers(ctx.be, (b) => {
        const out = b.nanAct(2 * 4 * 8), q = b.act(new Float32Array(2 * 4 * 8)), kc = b.act(new Float32Array(2 * 4 * 2 * 8));
        const call = (Tmax: number, len: number, H: number, K: number) => () => b.be.attentionDecode(out, q, kc, kc, 2, Tmax, len, H, K, 8);
        expect(call(4, 0, 4, 2)).toThrow(/len = 0 outside \[1, Tmax = 4\]/);
        expect(call(4, 5, 4, 2)).toThrow(/len = 5 outside/);
        expect(call(4, 2, 4, 3)).toThrow(/not a multiple/);
        expect(call(4, 2, 0, 2)).toThrow(/must be positive/);
        expect(() => b.be.attentionDecode(out, 0, kc, kc, 2, 4, 2, 4, 2, 8)).toThrow(/NULL/);
        call(4, 4, 4, 2)(); // and a good call still works afterwards
        b.be.synchronize();
      });
    });
  });
}

ensureNativeBuilt("cpu");
describeDecode(makeCtx("cpu"));
const cuda = cudaStatus();
if (cuda === true) describeDecode(makeCtx("cuda" as BackendName));
else test.skip(`attention decode [cuda]: ${cuda}`, () => {});
