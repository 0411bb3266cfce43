// KV-cached decoding for `olmo generate`: one token at a time through every layer, with per-layer
// K/V caches [1, maxLen, K, D] (act). The math is forwardTrunk's (src/model/olmo2.ts) with N = 1:
// embedding, q/k/v projections, full-width QK-norm, RoPE at position pos, write k/v into the
// caches at pos, attention of the one query over cache positions [0, pos] (olmo_attention_decode),
// o_proj, post-attention norm + residual, SwiGLU MLP, post-feedforward norm + residual, final
// norm, lm_head. Prefill is step() over the prompt tokens one by one.
//
// Also the sampler: greedy (temperature 0) or temperature + top-p nucleus over the real
// vocabulary (never a padding id >= vocabSize), driven by a small seeded PRNG (splitmix32), so a
// given seed reproduces its text.
import type { Backend, DevPtr } from "../backend/backend.ts";
import { type ModelConfig, headDim, paddedVocab } from "./config.ts";
import { Arena } from "./layout.ts";
import type { ParamStore } from "./param-store.ts";
import { ropeTables } from "./rope.ts";

export class Olmo2Decoder {
  readonly C: number;
  readonly Cq: number;
  readonly Ck: number;
  readonly F: number;
  readonly V: number;
  readonly D: number;
  private readonly be: Backend;
  private readonly bufs = new Arena();
  // host staging: >= 1 KiB backing buffers (small typed arrays can move under the JIT)
  private readonly tokenHost = new Int32Array(256);
  private readonly logitsHost: Float32Array;

  constructor(readonly params: ParamStore, readonly cfg: ModelConfig, readonly maxLen: number) {
    if (!Number.isInteger(maxLen) || maxLen < 1) throw new Error(`decoder maxLen must be a positive integer, got ${maxLen}`);
    if (maxLen > cfg.maxSeqLen) throw new Error(`decoder maxLen ${maxLen} exceeds model.maxSeqLen ${cfg.maxSeqLen}`);
    const be = (this.be = params.backend);
    this.C = cfg.dModel;
    this.D = headDim(cfg);
    this.Cq = cfg.nHeads * this.D;
    this.Ck = cfg.nKvHeads * this.D;
    this.F = cfg.ffnHidden;
    this.V = paddedVocab(cfg);
    const a = be.actBytes;
    for (let l = 0; l < cfg.nLayers; l++) {
      this.bufs.reserve(`${l}.kcache`, maxLen * this.Ck * a);
      this.bufs.reserve(`${l}.vcache`, maxLen * this.Ck * a);
    }
    const one: [string, number][] = [["x", this.C * a], ["q", this.Cq * a], ["k", this.Ck * a], ["v", this.Ck * a],
      ["att", this.Cq * a], ["a", this.C * a], ["tmp", this.C * a], ["h", this.C * a], ["gu", 2 * this.F * a],
      ["sw", this.F * a], ["f", this.C * a], ["xn", this.C * a], ["rstd", 4], ["token", 4], ["logits", this.V * a], ["logitsF32", this.V * 4]];
    for (const [name, bytes] of one) this.bufs.reserve(name, bytes);
    const { cos_TD2, sin_TD2 } = ropeTables(cfg.ropeTheta, this.D, maxLen);
    this.bufs.reserve("cos", cos_TD2.byteLength);
    this.bufs.reserve("sin", sin_TD2.byteLength);
    this.bufs.alloc(be);
    be.upload(this.bufs.ptr("cos"), cos_TD2);
    be.upload(this.bufs.ptr("sin"), sin_TD2);
    this.logitsHost = new Float32Array(Math.max(this.V, 256));
  }

  /** device bytes of the caches and one-token buffers */
  get bytes(): number {
    return this.bufs.bytes;
  }

  private p(name: string): DevPtr {
    return this.bufs.ptr(name);
  }

  /** y[1,out] = x[1,in] @ W[out,in]^T */
  private lin(out: DevPtr, x: DevPtr, w: DevPtr, outF: number, inF: number): void {
    this.be.matmul(out, x, w, 1, outF, inF, false, true, 0);
  }

  /**
   * Run `token` at position `pos` through the model (caches hold positions [0, pos) already) and
   * return the fp32 logits of the real vocabulary (length cfg.vocabSize) predicting position pos+1.
   */
  step(token: number, pos: number): Float32Array {
    const be = this.be, w = this.params, cfg = this.cfg;
    const { C, Cq, Ck, F, V, D } = this;
    const H = cfg.nHeads, K = cfg.nKvHeads, eps = cfg.normEps, a = be.actBytes;
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.maxLen) throw new Error(`decoder position ${pos} outside [0, ${this.maxLen})`);
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new Error(`token id ${token} outside the vocabulary [0, ${V})`);
    this.tokenHost[0] = token;
    be.upload(this.p("token"), this.tokenHost.subarray(0, 1));
    const x = this.p("x"), q = this.p("q"), k = this.p("k"), v = this.p("v"), att = this.p("att");
    const aOut = this.p("a"), tmp = this.p("tmp"), h = this.p("h"), gu = this.p("gu"), sw = this.p("sw"), f = this.p("f");
    const rstd = this.p("rstd");
    const half = D / 2;
    const cos = this.p("cos") + pos * half * 4, sin = this.p("sin") + pos * half * 4;
    be.embeddingForward(x, this.p("token"), w.w("model.embed_tokens.weight"), 1, C, V);
    for (let l = 0; l < cfg.nLayers; l++) {
      const pre = `model.layers.${l}`;
      this.lin(q, x, w.w(`${pre}.self_attn.q_proj.weight`), Cq, C);
      this.lin(k, x, w.w(`${pre}.self_attn.k_proj.weight`), Ck, C);
      this.lin(v, x, w.w(`${pre}.self_attn.v_proj.weight`), Ck, C);
      be.rmsnormForward(q, rstd, q, w.w(`${pre}.self_attn.q_norm.weight`), 1, Cq, eps);
      be.rmsnormForward(k, rstd, k, w.w(`${pre}.self_attn.k_norm.weight`), 1, Ck, eps);
      be.ropeForward(q, q, cos, sin, 1, 1, H, D);
      be.ropeForward(k, k, cos, sin, 1, 1, K, D);
      const kc = this.p(`${l}.kcache`), vc = this.p(`${l}.vcache`);
      be.copy(kc + pos * Ck * a, k, Ck * a);
      be.copy(vc + pos * Ck * a, v, Ck * a);
      be.attentionDecode(att, q, kc, vc, 1, this.maxLen, pos + 1, H, K, D);
      this.lin(aOut, att, w.w(`${pre}.self_attn.o_proj.weight`), C, Cq);
      be.rmsnormForward(tmp, rstd, aOut, w.w(`${pre}.post_attention_layernorm.weight`), 1, C, eps);
      be.add(h, x, tmp, C);
      // gate_proj and up_proj are adjacent in the arena: one [2F, C] GEMM
      this.lin(gu, h, w.w(`${pre}.mlp.gate_proj.weight`), 2 * F, C);
      be.swigluForward(sw, gu, 1, F);
      this.lin(f, sw, w.w(`${pre}.mlp.down_proj.weight`), C, F);
      be.rmsnormForward(tmp, rstd, f, w.w(`${pre}.post_feedforward_layernorm.weight`), 1, C, eps);
      be.add(x, h, tmp, C);
    }
    const xn = this.p("xn"), logits = this.p("logits"), logitsF32 = this.p("logitsF32");
    be.rmsnormForward(xn, rstd, x, w.w("model.norm.weight"), 1, C, eps);
    this.lin(logits, xn, w.w("lm_head.weight"), V, C);
    be.castActToF32(logitsF32, logits, V);
    const host = this.logitsHost.subarray(0, V);
    be.download(host, logitsF32);
    return host.slice(0, cfg.vocabSize);
  }

  free(): void {
    this.bufs.free(this.be);
  }
}

/** splitmix32: a small, fast, seeded PRNG; next() is uniform in [0, 1). */
export class SplitMix32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x9e3779b9) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  }
}

export interface SampleOptions {
  /** 0 = greedy (argmax, lowest id on ties) */
  temperature: number;
  /** nucleus: keep the most probable ids whose probabilities sum to >= topP (0 < topP <= 1) */
  topP: number;
}

/** Pick the next id from fp32 logits of the real vocabulary (every index is a real token id). */
export function sampleToken(logits: Float32Array, opts: SampleOptions, rng: SplitMix32): number {
  const n = logits.length;
  let best = 0;
  for (let j = 1; j < n; j++) if (logits[j] > logits[best]) best = j;
  if (opts.temperature === 0) return best;
  const mx = logits[best], invT = 1 / opts.temperature;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += probs[j] = Math.exp((logits[j] - mx) * invT);
  // The nucleus: the most probable ids whose mass reaches topP * sum (at least one id). A native
  // numeric sort of the probabilities finds the threshold tau and the count k; the kept ids are
  // those above tau plus, in id order, enough of those equal to tau. Sampling walks them in id order.
  const sorted = probs.slice().sort();
  let k = 0, mass = 0;
  while (k < n) {
    mass += sorted[n - 1 - k++];
    if (mass >= opts.topP * sum) break;
  }
  const tau = sorted[n - k];
  let ties = k;
  for (let j = 0; j < n; j++) if (probs[j] > tau) ties--;
  const keep = (j: number) => probs[j] > tau || (probs[j] === tau && ties-- > 0);
  const kept: number[] = [];
  mass = 0;
  for (let j = 0; j < n; j++) if (keep(j)) { kept.push(j); mass += probs[j]; }
  let u = rng.next() * mass;
  for (const j of kept) {
    u -= probs[j];
    if (u < 0) return j;
  }
  return kept[kept.length - 1];
}

export interface GenerateOptions extends SampleOptions {
  maxTokens: number;
  seed: number;
  /** stop after this id (it is included in the result) */
  eos?: number;
}

/**
 * Prompt ids -> generated ids: at most maxTokens, stopping after eos or when prompt + generated
 * reaches the model's maxSeqLen (as greedySample does). onToken sees each id as it is chosen.
 */
export function generateIds(store: ParamStore, cfg: ModelConfig, promptIds: number[], opts: GenerateOptions,
  onToken?: (id: number) => void): number[] {
  if (promptIds.length < 1) throw new Error("generateIds: empty prompt");
  const T = Math.min(cfg.maxSeqLen, promptIds.length + opts.maxTokens);
  const out: number[] = [];
  if (promptIds.length >= T) return out;
  const dec = new Olmo2Decoder(store, cfg, T);
  const rng = new SplitMix32(opts.seed);
  try {
    let logits: Float32Array = new Float32Array(0);
    for (let i = 0; i < promptIds.length; i++) logits = dec.step(promptIds[i], i);
    let n = promptIds.length;
    for (;;) {
      const next = sampleToken(logits, opts, rng);
      out.push(next);
      n++;
      onToken?.(next);
      if (next === opts.eos || n >= T) break;
      logits = dec.step(next, n - 1);
    }
  } finally {
    dec.free();
  }
  return out;
}
