// The per-phase profile: a Backend that forwards every call to the real one and, while recording,
// brackets each kernel call with two timing events (CUDA events on the library stream: device time;
// wall clock on the CPU library) under its kernel class, with the FLOPs or bytes the call does. The
// model code knows nothing of it: bench:step builds the model on profiledBackend(be) instead of be.
//
// Classes: GEMMs by layer role and pass (named from the weight or gradient pointer they touch:
// nameWeights), attention fwd / bwd, norms, RoPE, SwiGLU, cross-entropy, embedding, optimizer,
// residual adds, copies/casts, host transfers, and collectives (src/parallel/comm/profiled-comm.ts).
import type { Backend, DevPtr, EventHandle } from "./backend.ts";

/** what one call did: its kernel class and its work */
export interface Work { cls: string; flops?: number; bytes?: number }

export interface ClassTotals {
  cls: string;
  calls: number;
  ms: number;
  flops: number;
  bytes: number;
}

type Args = number[];
/** args → work, per Backend method (sizes as in cuda/include/olmo.h; a = act bytes) */
type Classifier = (args: Args, a: number, p: Profiler) => Work;

const toNumber = (x: unknown) => Number(x);
const NORMS = "norms";

/** causal attention FLOPs of the forward: QK^T and PV over the T(T+1)/2 visible pairs */
const attnFwdFlops = (B: number, T: number, H: number, D: number) => 4 * B * H * D * ((T * (T + 1)) / 2);

const CLASSIFIERS: Record<string, Classifier> = {
  matmul: ([C, , Bp, M, N, K, , tB], _a, p) => ({ cls: p.gemmClass(C, Bp, !!tB, false), flops: 2 * M * N * K }),
  matmulF32: ([C, , Bp, M, N, K, , tB], _a, p) => ({ cls: p.gemmClass(C, Bp, !!tB, true), flops: 2 * M * N * K }),
  attentionForward: ([, , , , , B, T, H, , D]) => ({ cls: "attention fwd", flops: attnFwdFlops(B, T, H, D) }),
  // FlashAttention-2's backward: 5 products (S, dV, dP, dK, dQ) against the forward's 2
  attentionBackward: ([, , , , , , , , , B, T, H, , D]) => ({ cls: "attention bwd", flops: 2.5 * attnFwdFlops(B, T, H, D) }),
  attentionDecode: ([, , , , B, , len, H, K, D], a) => ({ cls: "attention decode", flops: 4 * B * H * D * len, bytes: 2 * B * len * K * D * a }),
  rmsnormForward: ([, , , , N, C], a) => ({ cls: NORMS, bytes: a * (2 * N * C + C) + 4 * N }),
  rmsnormBackward: ([, , , , , , N, C], a) => ({ cls: NORMS, bytes: a * 3 * N * C + 4 * N + 8 * C }),
  rowSumsq: ([, , N, C], a) => ({ cls: NORMS, bytes: a * N * C + 4 * N }),
  rmsnormApply: ([, , , , , N, C], a) => ({ cls: NORMS, bytes: a * 2 * N * C + 8 * N }),
  rmsnormBwdDot: ([, , , , , N, C], a) => ({ cls: NORMS, bytes: a * 2 * N * C + 8 * N }),
  rmsnormBwdFinish: ([, , , , , , , N, C], a) => ({ cls: NORMS, bytes: a * 3 * N * C + 8 * N + 8 * C }),
  ropeForward: ([, , , , B, T, Hx, D], a) => ({ cls: "rope", bytes: 2 * a * B * T * Hx * D + 4 * T * D }),
  ropeBackward: ([, , , , B, T, Hx, D], a) => ({ cls: "rope", bytes: 2 * a * B * T * Hx * D + 4 * T * D }),
  swigluForward: ([, , N, F], a) => ({ cls: "swiglu", bytes: 3 * a * N * F }),
  swigluBackward: ([, , , N, F], a) => ({ cls: "swiglu", bytes: 5 * a * N * F }),
  crossEntropy: ([, , , , N, V, , g], a) => ({ cls: "cross-entropy", bytes: (g ? 2 : 1) * a * N * V + 12 * N }),
  ceStats: ([, , , , , N, V], a) => ({ cls: "cross-entropy", bytes: a * N * V + 16 * N }),
  ceFinish: ([, , , , , , N, V, , , , g], a) => ({ cls: "cross-entropy", bytes: (g ? 2 : 1) * a * N * V + 20 * N }),
  embeddingForward: ([, , , N, C], a) => ({ cls: "embedding", bytes: 2 * a * N * C + 4 * N }),
  embeddingBackward: ([, , , N, C], a) => ({ cls: "embedding", bytes: a * N * C + 8 * N * C + 4 * N }),
  embeddingForwardRange: ([, , , N, C], a) => ({ cls: "embedding", bytes: 2 * a * N * C + 4 * N }),
  embeddingBackwardRange: ([, , , N, C], a) => ({ cls: "embedding", bytes: a * N * C + 8 * N * C + 4 * N }),
  // AdamW reads p, g, m, v and writes p, m, v (fp32) and the act copy
  adamw: ([, pa, , , , cnt], a) => ({ cls: "optimizer", bytes: cnt * (28 + (pa ? a : 0)) }),
  normSquared: ([, , cnt]) => ({ cls: "optimizer", bytes: 4 * cnt }),
  scaleF32: ([, , cnt]) => ({ cls: "optimizer", bytes: 8 * cnt }),
  add: ([, , , cnt], a) => ({ cls: "residual add", bytes: 3 * a * cnt }),
  copy: ([, , bytes]) => ({ cls: "copies/casts", bytes: 2 * bytes }),
  zero: ([, bytes]) => ({ cls: "copies/casts", bytes }),
  fillF32: ([, , cnt]) => ({ cls: "copies/casts", bytes: 4 * cnt }),
  castF32ToAct: ([, , cnt], a) => ({ cls: "copies/casts", bytes: (4 + a) * cnt }),
  castActToF32: ([, , cnt], a) => ({ cls: "copies/casts", bytes: (4 + a) * cnt }),
};
// upload/download take a typed array: their bytes are its byteLength
const TRANSFERS = new Set(["upload", "download"]);

const GEMM_ROLES: [RegExp, string][] = [
  [/\.(q|k|v)_proj\.weight$/, "qkv"], [/\.o_proj\.weight$/, "o_proj"], [/\.gate_proj\.weight$/, "gate|up"],
  [/\.up_proj\.weight$/, "gate|up"], [/\.down_proj\.weight$/, "down"], [/^lm_head\.weight$/, "lm_head"],
];

/** Collects timed calls. One per profiled backend; record between start() and stop(). */
export class Profiler {
  private readonly weightRole = new Map<DevPtr, string>();
  private readonly gradRole = new Map<DevPtr, string>();
  private pending: { cls: string; flops: number; bytes: number; a: EventHandle; b: EventHandle }[] = [];
  private readonly pool: EventHandle[] = [];
  private readonly totals = new Map<string, ClassTotals>();
  recording = false;

  constructor(private readonly be: Backend) {}

  /** name GEMMs by the weight (forward, dgrad) or gradient (wgrad) they touch: w(name) / g(name) of a ParamStore */
  nameWeights(names: string[], w: (name: string) => DevPtr, g?: (name: string) => DevPtr): void {
    for (const name of names) {
      const role = GEMM_ROLES.find(([re]) => re.test(name))?.[1];
      if (!role) continue;
      this.weightRole.set(w(name), role);
      if (g) this.gradRole.set(g(name), role);
    }
  }

  /** "gemm <role> fwd|dgrad|wgrad"; forward GEMMs read W transposed, dgrad reads W as stored */
  gemmClass(C: DevPtr, B: DevPtr, transB: boolean, f32Out: boolean): string {
    const wg = f32Out ? this.gradRole.get(C) : undefined;
    if (wg) return `gemm ${wg} wgrad`;
    const role = this.weightRole.get(B);
    return role ? `gemm ${role} ${transB ? "fwd" : "dgrad"}` : "gemm other";
  }

  private event(): EventHandle {
    return this.pool.pop() ?? this.be.createEvent();
  }

  /** time fn() under a class (when recording) */
  time<T>(work: Work, fn: () => T): T {
    if (!this.recording) return fn();
    const a = this.event(), b = this.event();
    this.be.recordEvent(a);
    const out = fn();
    this.be.recordEvent(b);
    this.pending.push({ cls: work.cls, flops: work.flops ?? 0, bytes: work.bytes ?? 0, a, b });
    return out;
  }

  /** read the pending events into the totals (waits for the device) and recycle them */
  flush(): void {
    for (const p of this.pending) {
      const t = this.totals.get(p.cls) ?? { cls: p.cls, calls: 0, ms: 0, flops: 0, bytes: 0 };
      t.calls++;
      t.ms += this.be.eventElapsedMs(p.a, p.b);
      t.flops += p.flops;
      t.bytes += p.bytes;
      this.totals.set(p.cls, t);
      this.pool.push(p.a, p.b);
    }
    this.pending = [];
  }

  /** the totals so far, largest time first */
  results(): ClassTotals[] {
    this.flush();
    return [...this.totals.values()].sort((x, y) => y.ms - x.ms);
  }

  reset(): void {
    this.flush();
    this.totals.clear();
  }

  free(): void {
    this.flush();
    for (const e of this.pool.splice(0)) this.be.destroyEvent(e);
  }
}

/**
 * A Backend that times every kernel call through `profiler` while profiler.recording is true (a
 * Proxy: the methods not listed above — alloc, free, synchronize, the events themselves — pass
 * straight through).
 */
export function profiledBackend(be: Backend): { backend: Backend; profiler: Profiler } {
  const profiler = new Profiler(be);
  const a = be.actBytes;
  const wrapped = new Map<PropertyKey, unknown>();
  const backend = new Proxy(be, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      let w = wrapped.get(prop);
      if (w) return w;
      const name = String(prop), cls = CLASSIFIERS[name];
      const fn = value as (...x: unknown[]) => unknown;
      if (cls) w = (...args: unknown[]) => profiler.time(profiler.recording ? cls(args.map(toNumber), a, profiler) : { cls: "" }, () => fn.apply(target, args));
      else if (TRANSFERS.has(name)) {
        w = (...args: unknown[]) => profiler.time({ cls: "host transfers", bytes: (args[name === "upload" ? 1 : 0] as ArrayBufferView).byteLength }, () => fn.apply(target, args));
      } else w = fn.bind(target);
      wrapped.set(prop, w);
      return w;
    },
  });
  return { backend, profiler };
}
