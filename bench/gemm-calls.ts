// The GEMM calls of a training step, recorded and replayed alone: bench:step's GEMM-only bound.
// recordGemmCalls wraps a Backend (a Proxy, like src/backend/profile.ts) and, while `recording` is
// true, notes the shape, transposes, beta and output dtype of every matmul / matmulF32 call.
// replayGemmMs then runs exactly that list on its own buffers (random inputs, the output of each
// `+=` call pre-filled) and returns the wall time of one pass: the time the step would take if it
// did nothing but its GEMMs, at the rate the GEMM library reaches on those very shapes right now.
import type { Backend, DevPtr } from "../src/backend/backend.ts";

export interface GemmCall { f32: boolean; M: number; N: number; K: number; tA: boolean; tB: boolean; beta: number }

export interface GemmRecorder { backend: Backend; calls: GemmCall[]; recording: boolean }

export function recordGemmCalls(be: Backend): GemmRecorder {
  const rec: GemmRecorder = { backend: be, calls: [], recording: false };
  const note = (f32: boolean, a: unknown[]) => {
    if (!rec.recording) return;
    const [, , , M, N, K, tA, tB, beta] = a as [DevPtr, DevPtr, DevPtr, number, number, number, boolean, boolean, number];
    rec.calls.push({ f32, M, N, K, tA, tB, beta });
  };
  rec.backend = new Proxy(be, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      const fn = value as (...x: unknown[]) => unknown;
      if (prop === "matmul" || prop === "matmulF32") {
        const f32 = prop === "matmulF32";
        return (...args: unknown[]) => { note(f32, args); return fn.apply(target, args); };
      }
      return fn.bind(target);
    },
  });
  return rec;
}

export const gemmFlops = (calls: GemmCall[]) => calls.reduce((s, c) => s + 2 * c.M * c.N * c.K, 0);

/** One buffer set big enough for every call of the list (A, B, an act C and an fp32 C), filled once. */
export class GemmReplay {
  private readonly ptrs: DevPtr[];
  constructor(private readonly be: Backend, private readonly calls: GemmCall[]) {
    const a = be.actBytes;
    const maxA = Math.max(...calls.map((c) => c.M * c.K)), maxB = Math.max(...calls.map((c) => c.K * c.N));
    const maxC = Math.max(...calls.map((c) => c.M * c.N));
    this.ptrs = [be.alloc(maxA * a), be.alloc(maxB * a), be.alloc(maxC * a), be.alloc(maxC * 4)];
    const fill = (p: DevPtr, n: number, seed: number) => {
      const host = new Float32Array(n);
      let x = seed >>> 0 || 1;
      for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; host[i] = (x / 2 ** 32 - 0.5) * 0.1; }
      const f = be.alloc(n * 4);
      be.upload(f, host);
      be.castF32ToAct(p, f, n);
      be.free(f);
    };
    fill(this.ptrs[0], maxA, 17);
    fill(this.ptrs[1], maxB, 91);
    be.zero(this.ptrs[2], maxC * a);
    be.fillF32(this.ptrs[3], 0.5, maxC);
  }

  /** wall ms of one pass over the calls (synchronized at both ends) */
  passMs(): number {
    const [A, B, C, Cf] = this.ptrs;
    this.be.synchronize();
    const t0 = performance.now();
    for (const c of this.calls) {
      if (c.f32) this.be.matmulF32(Cf, A, B, c.M, c.N, c.K, c.tA, c.tB, c.beta);
      else this.be.matmul(C, A, B, c.M, c.N, c.K, c.tA, c.tB, c.beta);
    }
    this.be.synchronize();
    return performance.now() - t0;
  }

  free(): void {
    for (const p of this.ptrs) this.be.free(p);
  }
}

/** the distinct shapes of a call list with their counts, largest FLOPs first (for the table) */
export function gemmShapeSummary(calls: GemmCall[]): { key: string; count: number; flops: number }[] {
  const m = new Map<string, { key: string; count: number; flops: number }>();
  for (const c of calls) {
    const key = `${c.M}x${c.N}x${c.K} ${c.tA ? "T" : "N"}${c.tB ? "T" : "N"}${c.f32 ? " f32" : ""}${c.beta ? ` beta${c.beta}` : ""}`;
    const e = m.get(key) ?? { key, count: 0, flops: 0 };
    e.count++;
    e.flops += 2 * c.M * c.N * c.K;
    m.set(key, e);
  }
  return [...m.values()].sort((x, y) => y.flops - x.flops);
}
