// OLMo-2 forward and backward under Megatron tensor parallelism (one TP rank of `tp`), beside the
// TP=1 Olmo2 class (which stays untouched). The rank holds the shards of src/model/tp-plan.ts:
//   heads H/tp and kv heads K/tp (q/k/v rows, o_proj columns), F/tp of the SwiGLU (gate/up rows,
//   down_proj columns), V/tp vocabulary rows of the embedding and lm_head; norms of width C
//   replicated. Activations of width C (the residual stream) are full and identical on all ranks.
// Collectives (sum all-reduces over the TP group, deterministic in rank order):
//   forward:  embedding output (vocab-parallel lookup: other ranks contribute zeros), the QK-norm
//             row sum of squares (full-width norm over Cq / Ck), o_proj and down_proj outputs
//             (row-parallel partial sums) before their norms, the CE stats (max, then Σ s·e^{m-M},
//             and the target logit), d(xn) of the head;
//   backward: the QK-norm backward dot, the partial input gradients of the q/k/v and gate/up GEMMs
//             before they join the residual gradient.
// Replicated norm weights then get identical gradients on every rank.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { Comm, PtrComm } from "../parallel/comm.ts";
import { type ModelConfig, headDim, paddedVocab } from "./config.ts";
import { Arena } from "./layout.ts";
import type { LossSums } from "./olmo2.ts";
import type { ParamStore } from "./param-store.ts";
import { ropeTables } from "./rope.ts";
import { checkTpDivides } from "./tp-plan.ts";

const LAYER_BUFFERS = ["x", "qRaw", "kRaw", "v", "q", "k", "att", "lse", "a", "h", "gu", "sw", "f", "qRstd", "kRstd", "aRstd", "fRstd"] as const;

export interface TpComms {
  /** host collectives of the TP group (small per-row statistics) */
  host: Comm;
  /** the same group on device pointers (activations) */
  ptr: PtrComm;
}

export class Olmo2Tp {
  readonly N: number;
  readonly C: number;
  /** full widths */
  readonly Cq: number;
  readonly Ck: number;
  readonly V: number;
  /** local widths */
  readonly cq: number;
  readonly ck: number;
  readonly f: number;
  readonly vloc: number;
  readonly v0: number;
  readonly h: number;
  readonly k: number;
  readonly D: number;
  readonly tp: number;
  readonly ceChunkRows: number;
  private readonly acts = new Arena();
  private readonly bwd = new Arena();
  private readonly be: Backend;
  /** host staging of the CE row statistics (≥ 1 KiB each: small typed arrays can move under FFI) */
  private readonly hostStat: Float32Array[];

  constructor(readonly params: ParamStore, readonly cfg: ModelConfig, readonly B: number, readonly T: number,
    readonly comms: TpComms, opts: { training: boolean; ceChunkRows?: number }) {
    if (T > cfg.maxSeqLen) throw new Error(`sequence length ${T} exceeds model.maxSeqLen ${cfg.maxSeqLen}`);
    const tp = (this.tp = comms.host.world), rank = comms.host.rank;
    checkTpDivides(cfg, tp);
    const be = (this.be = params.backend);
    this.N = B * T;
    this.C = cfg.dModel;
    this.D = headDim(cfg);
    this.Cq = cfg.nHeads * this.D;
    this.Ck = cfg.nKvHeads * this.D;
    this.V = paddedVocab(cfg);
    this.h = cfg.nHeads / tp;
    this.k = cfg.nKvHeads / tp;
    this.cq = this.h * this.D;
    this.ck = this.k * this.D;
    this.f = cfg.ffnHidden / tp;
    this.vloc = this.V / tp;
    this.v0 = rank * this.vloc;
    this.ceChunkRows = Math.min(this.N, opts.ceChunkRows ?? Math.max(1, Math.floor((be.name === "cuda" ? 1 << 30 : 256 << 20) / (this.vloc * be.actBytes))));
    const a = be.actBytes, N = this.N;
    const sizes: Record<(typeof LAYER_BUFFERS)[number], number> = {
      x: N * this.C * a, qRaw: N * this.cq * a, kRaw: N * this.ck * a, v: N * this.ck * a,
      q: N * this.cq * a, k: N * this.ck * a, att: N * this.cq * a, lse: B * this.h * T * 4,
      a: N * this.C * a, h: N * this.C * a, gu: N * 2 * this.f * a, sw: N * this.f * a, f: N * this.C * a,
      qRstd: N * 4, kRstd: N * 4, aRstd: N * 4, fRstd: N * 4,
    };
    for (let l = 0; l < cfg.nLayers; l++) for (const name of LAYER_BUFFERS) this.acts.reserve(`${l}.${name}`, sizes[name]);
    for (const [name, bytes] of [["xL", N * this.C * a], ["xn", N * this.C * a], ["xnRstd", N * 4], ["tmpC", N * this.C * a],
      ["tokens", N * 4], ["targets", N * 4], ["ce", N * 4], ["lseRows", N * 4], ["stat", N * 4], ["stat2", N * 4],
      ["logits", this.ceChunkRows * this.vloc * a]] as const) this.acts.reserve(name, bytes);
    this.hostStat = Array.from({ length: 5 }, () => new Float32Array(Math.max(256, this.ceChunkRows)));
    const { cos_TD2, sin_TD2 } = ropeTables(cfg.ropeTheta, this.D, T);
    this.acts.reserve("cos", cos_TD2.byteLength);
    this.acts.reserve("sin", sin_TD2.byteLength);
    this.acts.alloc(be);
    be.upload(this.acts.ptr("cos"), cos_TD2);
    be.upload(this.acts.ptr("sin"), sin_TD2);
    if (opts.training) {
      for (const [name, bytes] of [["dx", N * this.C * a], ["dC", N * this.C * a], ["dq", N * this.cq * a], ["dk", N * this.ck * a],
        ["dv", N * this.ck * a], ["dgu", N * 2 * this.f * a], ["dsw", N * Math.max(this.f, this.cq) * a]] as const) this.bwd.reserve(name, bytes);
      this.bwd.alloc(be);
      params.allocGrads();
    }
  }

  get activationBytes(): number {
    return this.acts.bytes + this.bwd.bytes;
  }

  private L(l: number, name: (typeof LAYER_BUFFERS)[number]): DevPtr {
    return this.acts.ptr(`${l}.${name}`);
  }

  private lin(out: DevPtr, x: DevPtr, w: DevPtr, outF: number, inF: number, beta = 0): void {
    this.be.matmul(out, x, w, this.N, outF, inF, false, true, beta);
  }

  /** sum all-reduce of an act tensor over the TP group, in place */
  private allReduceAct(p: DevPtr, n: number): void {
    this.comms.ptr.allReduce(p, p, n, this.be.actDtype, "sum");
  }

  private allReduceF32(p: DevPtr, n: number): void {
    this.comms.ptr.allReduce(p, p, n, "f32", "sum");
  }

  /** As Olmo2.step: loss sums over this micro-batch (identical on every TP rank). */
  step(tokens_BT: Int32Array, targets_BT: Int32Array, zLossMult: number, gradScale: number): LossSums {
    const be = this.be;
    if (tokens_BT.length !== this.N || targets_BT.length !== this.N) throw new Error(`expected ${this.N} tokens, got ${tokens_BT.length}`);
    be.upload(this.acts.ptr("tokens"), tokens_BT);
    be.upload(this.acts.ptr("targets"), targets_BT);
    this.forwardTrunk();
    this.head(targets_BT, zLossMult, gradScale);
    if (gradScale !== 0) this.backwardTrunk();
    const ce = new Float32Array(this.N), lse = new Float32Array(this.N);
    be.download(ce, this.acts.ptr("ce"));
    be.download(lse, this.acts.ptr("lseRows"));
    let ceSum = 0, lseSqSum = 0, nTokens = 0;
    for (let i = 0; i < this.N; i++) {
      if (targets_BT[i] < 0) continue;
      ceSum += ce[i];
      lseSqSum += lse[i] * lse[i];
      nTokens++;
    }
    return { ceSum, lseSqSum, nTokens };
  }

  /** full-width RMSNorm of a column-sharded [N, c] tensor (the QK-norm): sumsq → all-reduce → apply */
  private splitNorm(out: DevPtr, rstd: DevPtr, x: DevPtr, w: DevPtr, c: number, cFull: number): void {
    const ss = this.acts.ptr("stat");
    this.be.rowSumsq(ss, x, this.N, c);
    this.allReduceF32(ss, this.N);
    this.be.rmsnormApply(out, rstd, x, w, ss, this.N, c, cFull, this.cfg.normEps);
  }

  private splitNormBackward(dx: DevPtr, dw: DevPtr, dout: DevPtr, x: DevPtr, w: DevPtr, rstd: DevPtr, c: number, cFull: number): void {
    const dot = this.acts.ptr("stat");
    this.be.rmsnormBwdDot(dot, dout, x, w, rstd, this.N, c);
    this.allReduceF32(dot, this.N);
    this.be.rmsnormBwdFinish(dx, dw, dout, x, w, rstd, dot, this.N, c, cFull);
  }

  private forwardTrunk(): void {
    const be = this.be, p = this.params, cfg = this.cfg;
    const { N, C, cq, ck, f, B, T, D } = this;
    const eps = cfg.normEps;
    const cos = this.acts.ptr("cos"), sin = this.acts.ptr("sin");
    be.embeddingForwardRange(this.L(0, "x"), this.acts.ptr("tokens"), p.w("model.embed_tokens.weight"), N, C, this.vloc, this.v0, this.V);
    this.allReduceAct(this.L(0, "x"), N * C);
    for (let l = 0; l < cfg.nLayers; l++) {
      const pre = `model.layers.${l}`;
      const x = this.L(l, "x");
      const xNext = l + 1 < cfg.nLayers ? this.L(l + 1, "x") : this.acts.ptr("xL");
      this.lin(this.L(l, "qRaw"), x, p.w(`${pre}.self_attn.q_proj.weight`), cq, C);
      this.lin(this.L(l, "kRaw"), x, p.w(`${pre}.self_attn.k_proj.weight`), ck, C);
      this.lin(this.L(l, "v"), x, p.w(`${pre}.self_attn.v_proj.weight`), ck, C);
      this.splitNorm(this.L(l, "q"), this.L(l, "qRstd"), this.L(l, "qRaw"), p.w(`${pre}.self_attn.q_norm.weight`), cq, this.Cq);
      this.splitNorm(this.L(l, "k"), this.L(l, "kRstd"), this.L(l, "kRaw"), p.w(`${pre}.self_attn.k_norm.weight`), ck, this.Ck);
      be.ropeForward(this.L(l, "q"), this.L(l, "q"), cos, sin, B, T, this.h, D);
      be.ropeForward(this.L(l, "k"), this.L(l, "k"), cos, sin, B, T, this.k, D);
      be.attentionForward(this.L(l, "att"), this.L(l, "lse"), this.L(l, "q"), this.L(l, "k"), this.L(l, "v"), B, T, this.h, this.k, D);
      this.lin(this.L(l, "a"), this.L(l, "att"), p.w(`${pre}.self_attn.o_proj.weight`), C, cq);
      this.allReduceAct(this.L(l, "a"), N * C);
      const tmp = this.acts.ptr("tmpC");
      be.rmsnormForward(tmp, this.L(l, "aRstd"), this.L(l, "a"), p.w(`${pre}.post_attention_layernorm.weight`), N, C, eps);
      be.add(this.L(l, "h"), x, tmp, N * C);
      this.lin(this.L(l, "gu"), this.L(l, "h"), p.w(`${pre}.mlp.gate_proj.weight`), 2 * f, C);
      be.swigluForward(this.L(l, "sw"), this.L(l, "gu"), N, f);
      this.lin(this.L(l, "f"), this.L(l, "sw"), p.w(`${pre}.mlp.down_proj.weight`), C, f);
      this.allReduceAct(this.L(l, "f"), N * C);
      be.rmsnormForward(tmp, this.L(l, "fRstd"), this.L(l, "f"), p.w(`${pre}.post_feedforward_layernorm.weight`), N, C, eps);
      be.add(xNext, this.L(l, "h"), tmp, N * C);
    }
    be.rmsnormForward(this.acts.ptr("xn"), this.acts.ptr("xnRstd"), this.acts.ptr("xL"), p.w("model.norm.weight"), N, C, eps);
  }

  /** vocab-parallel lm_head + CE + z-loss by row chunks; d(xn) all-reduced over TP at the end */
  private head(targets: Int32Array, zLossMult: number, gradScale: number): void {
    const be = this.be, p = this.params, a = be.actBytes, host = this.comms.host;
    const { N, C, vloc, v0, V } = this;
    const xn = this.acts.ptr("xn"), logits = this.acts.ptr("logits");
    const wOut = p.w("lm_head.weight");
    const dxn = gradScale !== 0 ? this.bwd.ptr("dC") : 0;
    const mxP = this.acts.ptr("stat"), seP = this.acts.ptr("stat2"), tgP = this.acts.ptr("lseRows");
    for (let r0 = 0; r0 < N; r0 += this.ceChunkRows) {
      const rows = Math.min(this.ceChunkRows, N - r0);
      const xnRows = xn + r0 * C * a;
      const tg = this.acts.ptr("targets") + r0 * 4;
      be.matmul(logits, xnRows, wOut, rows, vloc, C, false, true, 0);
      // lseRows + r0 holds the rank's target logits until ceFinish overwrites it with lse
      const tgRows = tgP + r0 * 4;
      be.ceStats(mxP, seP, tgRows, logits, tg, rows, vloc, v0, V);
      const m = this.hostStat[0].subarray(0, rows), s = this.hostStat[1].subarray(0, rows), t = this.hostStat[2].subarray(0, rows);
      be.download(m, mxP);
      be.download(s, seP);
      be.download(t, tgRows);
      const M = this.hostStat[3].subarray(0, rows);
      M.set(m);
      host.allReduce(M, "max");
      for (let i = 0; i < rows; i++) s[i] = s[i] * Math.exp(m[i] - M[i]);
      host.allReduce(s, "sum");
      host.allReduce(t, "sum");
      const lse = this.hostStat[4].subarray(0, rows);
      for (let i = 0; i < rows; i++) lse[i] = targets[r0 + i] < 0 ? 0 : M[i] + Math.log(s[i]);
      be.upload(mxP, lse);
      be.upload(seP, t);
      be.ceFinish(logits, this.acts.ptr("ce") + r0 * 4, this.acts.ptr("lseRows") + r0 * 4, mxP, seP, tg, rows, vloc, v0, V, zLossMult, gradScale);
      if (gradScale === 0) continue;
      be.matmul(dxn + r0 * C * a, logits, wOut, rows, C, vloc, false, false, 0);
      be.matmulF32(p.g("lm_head.weight"), logits, xnRows, vloc, C, rows, true, false, 1);
    }
    if (gradScale !== 0) this.allReduceAct(dxn, N * C);
  }

  private backwardTrunk(): void {
    const be = this.be, p = this.params, cfg = this.cfg;
    const { N, C, cq, ck, f, B, T, D } = this;
    const cos = this.acts.ptr("cos"), sin = this.acts.ptr("sin");
    const dx = this.bwd.ptr("dx"), dC = this.bwd.ptr("dC");
    const dq = this.bwd.ptr("dq"), dk = this.bwd.ptr("dk"), dv = this.bwd.ptr("dv");
    const dgu = this.bwd.ptr("dgu"), dsw = this.bwd.ptr("dsw");
    const part = this.acts.ptr("tmpC"); // partial input gradients of column-parallel GEMMs
    be.rmsnormBackward(dx, p.g("model.norm.weight"), dC, this.acts.ptr("xL"), p.w("model.norm.weight"), this.acts.ptr("xnRstd"), N, C);
    for (let l = cfg.nLayers - 1; l >= 0; l--) {
      const pre = `model.layers.${l}`;
      be.rmsnormBackward(dC, p.g(`${pre}.post_feedforward_layernorm.weight`), dx, this.L(l, "f"),
        p.w(`${pre}.post_feedforward_layernorm.weight`), this.L(l, "fRstd"), N, C);
      be.matmul(dsw, dC, p.w(`${pre}.mlp.down_proj.weight`), N, f, C, false, false, 0);
      be.matmulF32(p.g(`${pre}.mlp.down_proj.weight`), dC, this.L(l, "sw"), C, f, N, true, false, 1);
      be.swigluBackward(dgu, dsw, this.L(l, "gu"), N, f);
      be.matmul(part, dgu, p.w(`${pre}.mlp.gate_proj.weight`), N, C, 2 * f, false, false, 0);
      this.allReduceAct(part, N * C);
      be.add(dx, dx, part, N * C);
      be.matmulF32(p.g(`${pre}.mlp.gate_proj.weight`), dgu, this.L(l, "h"), 2 * f, C, N, true, false, 1);
      be.rmsnormBackward(dC, p.g(`${pre}.post_attention_layernorm.weight`), dx, this.L(l, "a"),
        p.w(`${pre}.post_attention_layernorm.weight`), this.L(l, "aRstd"), N, C);
      const datt = dsw;
      be.matmul(datt, dC, p.w(`${pre}.self_attn.o_proj.weight`), N, cq, C, false, false, 0);
      be.matmulF32(p.g(`${pre}.self_attn.o_proj.weight`), dC, this.L(l, "att"), C, cq, N, true, false, 1);
      be.attentionBackward(dq, dk, dv, datt, this.L(l, "q"), this.L(l, "k"), this.L(l, "v"), this.L(l, "att"), this.L(l, "lse"),
        B, T, this.h, this.k, D);
      be.ropeBackward(dq, dq, cos, sin, B, T, this.h, D);
      be.ropeBackward(dk, dk, cos, sin, B, T, this.k, D);
      this.splitNormBackward(dq, p.g(`${pre}.self_attn.q_norm.weight`), dq, this.L(l, "qRaw"), p.w(`${pre}.self_attn.q_norm.weight`),
        this.L(l, "qRstd"), cq, this.Cq);
      this.splitNormBackward(dk, p.g(`${pre}.self_attn.k_norm.weight`), dk, this.L(l, "kRaw"), p.w(`${pre}.self_attn.k_norm.weight`),
        this.L(l, "kRstd"), ck, this.Ck);
      const x = this.L(l, "x");
      let beta = 0;
      for (const [dy, name, outF] of [[dq, "q_proj", cq], [dk, "k_proj", ck], [dv, "v_proj", ck]] as const) {
        be.matmul(part, dy, p.w(`${pre}.self_attn.${name}.weight`), N, C, outF, false, false, beta);
        beta = 1;
        be.matmulF32(p.g(`${pre}.self_attn.${name}.weight`), dy, x, outF, C, N, true, false, 1);
      }
      this.allReduceAct(part, N * C);
      be.add(dx, dx, part, N * C);
    }
    be.embeddingBackwardRange(p.g("model.embed_tokens.weight"), dx, this.acts.ptr("tokens"), N, C, this.vloc, this.v0, this.V);
  }

  free(): void {
    this.acts.free(this.be);
    this.bwd.free(this.be);
  }
}
