// OLMo-2 forward and backward for one micro-batch of shape [B, T], as explicit kernel calls
// (no autograd tape). Math as OLMo-core trains OLMo-2 (allenai/OLMo-core @ d7301e62:
// src/olmo_core/nn/transformer/block.py ReorderedNormTransformerBlock — the norm on each block's
// output —, nn/attention.py full-width q_norm/k_norm, nn/rope.py NeoX rotate-half, GQA, SwiGLU,
// untied nn/lm_head.py) and as transformers' models/olmo2/modeling_olmo2.py computes it; labels
// shifted by one, loss = (ΣCE + z·Σlse²)/N (OLMo-core nn/functional/cross_entropy_loss.py).
//
// Per layer l the forward saves the buffers of src/model/activations.ts for the backward (x, the
// q/k/v projections and their norms, attention output and lse, o_proj output, h, gate|up, SwiGLU,
// down_proj output, the RMSNorm rstd rows), and the next layer's x = h + norm(f). The head:
// xn = norm(x_L); logits by row chunks. With opts.recompute a layer keeps only part of them
// ("attention": x and a onward; "block": x) and recomputes the rest from x right before its
// backward, with the same kernels on the same inputs, so gradients are bitwise the same.
//
// Tensor parallelism (Megatron; opts.tp = the TP group's communicator): the rank holds the shards of
// src/model/sharding.ts: heads H/tp and kv heads K/tp (q/k/v rows, o_proj columns), F/tp of the
// SwiGLU (gate/up rows, down_proj columns), V/tp vocabulary rows of the embedding and lm_head; norms
// of width C replicated. Activations of width C (the residual stream) are full and identical on all
// ranks. Sum all-reduces over the TP group:
//   forward:  the embedding output (vocab-parallel lookup: other ranks contribute zeros), the QK-norm
//             row sum of squares (full-width norm over Cq / Ck), o_proj and down_proj outputs
//             (row-parallel partial sums) before their norms, the CE statistics (max, then Σ s·e^{m-M}
//             with the target logit), d(xn) of the head;
//   backward: the QK-norm backward dot, the partial input gradients of the q/k/v and gate/up GEMMs
//             before they join the residual gradient.
// Replicated norm weights then get identical gradients on every rank. Without opts.tp the fused
// kernels run (rmsnorm, cross-entropy, embedding); with it the split ones, even at tp = 1.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { PtrComm } from "../parallel/comm/comm.ts";
import { type LayerBuffer, activationLayout, ceChunkRowsFor, isRecomputed, reserveAll, resolveRecompute } from "./activations.ts";
import { type ModelConfig, type RecomputeMode, headDim, paddedVocab } from "./config.ts";
import { Arena } from "./layout.ts";
import type { ParamStore } from "./param-store.ts";
import { ropeTables } from "./rope.ts";
import { checkTpDivides } from "./sharding.ts";

export interface LossSums {
  /** Σ CE over non-ignored tokens */
  ceSum: number;
  /** Σ lse² over non-ignored tokens (z-loss before its multiplier) */
  lseSqSum: number;
  /** number of non-ignored tokens */
  nTokens: number;
}

export const IGNORE_INDEX = -100;

/** OLMo label shift for fixed-length instances: target[t] = token[t+1]; the last position is ignored. */
export function shiftLabels(tokens_BT: Int32Array, B: number, T: number): Int32Array {
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) targets[b * T + t] = tokens_BT[b * T + t + 1];
    targets[b * T + T - 1] = IGNORE_INDEX;
  }
  return targets;
}

export class Olmo2 {
  readonly N: number;
  readonly C: number;
  /** full widths */
  readonly Cq: number;
  readonly Ck: number;
  readonly V: number;
  readonly D: number;
  /** this rank's widths (the full ones without TP): heads, kv heads, q/k widths, FFN, vocab rows from v0 */
  readonly h: number;
  readonly k: number;
  readonly cq: number;
  readonly ck: number;
  readonly F: number;
  readonly vloc: number;
  readonly v0: number;
  /** rows of logits materialized at once (the fused, chunked cross-entropy) */
  readonly ceChunkRows: number;
  /** the TP group (null: no tensor parallelism, fused kernels) */
  readonly tp: PtrComm | null;
  /** what each layer recomputes in the backward */
  readonly recompute: readonly RecomputeMode[];
  private readonly acts = new Arena();
  private readonly bwd = new Arena();
  private readonly be: Backend;
  /** host staging of the CE row statistics under TP (≥ 1 KiB each: small typed arrays can move under FFI) */
  private readonly hostStat: Float32Array[] = [];

  constructor(readonly params: ParamStore, readonly cfg: ModelConfig, readonly B: number, readonly T: number,
    opts: { training: boolean; ceChunkRows?: number; tp?: PtrComm; recompute?: RecomputeMode | readonly RecomputeMode[] }) {
    if (T > cfg.maxSeqLen) throw new Error(`sequence length ${T} exceeds model.maxSeqLen ${cfg.maxSeqLen}`);
    const be = (this.be = params.backend);
    this.tp = opts.tp ?? null;
    const tp = this.tp?.world ?? 1, rank = this.tp?.rank ?? 0;
    checkTpDivides(cfg, tp);
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
    this.F = cfg.ffnHidden / tp;
    this.vloc = this.V / tp;
    this.v0 = rank * this.vloc;
    this.ceChunkRows = Math.min(this.N, opts.ceChunkRows ?? defaultCeChunkRows(be, this.vloc, this.N));
    this.recompute = resolveRecompute(opts.recompute, cfg.nLayers);
    const layout = activationLayout({ B, T, C: this.C, D: this.D, h: this.h, k: this.k, F: this.F, vloc: this.vloc,
      ceChunkRows: this.ceChunkRows, actBytes: be.actBytes, tp: !!this.tp }, this.recompute, opts.training);
    reserveAll(this.acts, layout.acts).alloc(be);
    if (this.tp) for (let i = 0; i < 4; i++) this.hostStat.push(new Float32Array(Math.max(256, 2 * this.ceChunkRows)));
    const { cos_TD2, sin_TD2 } = ropeTables(cfg.ropeTheta, this.D, T);
    be.upload(this.acts.ptr("cos"), cos_TD2);
    be.upload(this.acts.ptr("sin"), sin_TD2);
    if (opts.training) {
      reserveAll(this.bwd, layout.bwd).alloc(be);
      params.allocGrads();
    }
  }

  /** bytes of activation + backward workspace memory */
  get activationBytes(): number {
    return this.acts.bytes + this.bwd.bytes;
  }

  /** layer l's buffer: its own, or the shared scratch when layer l recomputes it */
  private L(l: number, name: LayerBuffer): DevPtr {
    return this.acts.ptr(isRecomputed(this.recompute[l], name) ? `r.${name}` : `${l}.${name}`);
  }

  private lin(out: DevPtr, x: DevPtr, w: DevPtr, outF: number, inF: number, beta = 0): void {
    // y[N,out] = x[N,in] @ W[out,in]^T
    this.be.matmul(out, x, w, this.N, outF, inF, false, true, beta);
  }

  /** under TP: sum all-reduce of an act tensor over the group, in place */
  private allReduceAct(p: DevPtr, n: number): void {
    this.tp?.allReduce(p, p, n, this.be.actDtype, "sum");
  }

  /**
   * Forward (and, when gradScale > 0, backward accumulating into params.grad) for one micro-batch.
   * tokens and targets are [B*T]; targets < 0 are ignored. gradScale is 1/N_total of the whole
   * rank batch (sum-then-divide makes gradient accumulation exact). Under TP every rank of the group
   * passes the same batch and gets the same sums.
   */
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

  /** RMSNorm over rows of width c; under TP the rows are column shards of width cFull (the QK-norm):
   *  sum of squares → all-reduce → apply */
  private rowNorm(out: DevPtr, rstd: DevPtr, x: DevPtr, w: DevPtr, c: number, cFull: number): void {
    const be = this.be, eps = this.cfg.normEps;
    if (!this.tp) return be.rmsnormForward(out, rstd, x, w, this.N, c, eps);
    const ss = this.acts.ptr("stat");
    be.rowSumsq(ss, x, this.N, c);
    this.tp.allReduce(ss, ss, this.N, "f32", "sum");
    be.rmsnormApply(out, rstd, x, w, ss, this.N, c, cFull, eps);
  }

  private rowNormBackward(dx: DevPtr, dw: DevPtr, dout: DevPtr, x: DevPtr, w: DevPtr, rstd: DevPtr, c: number, cFull: number): void {
    const be = this.be;
    if (!this.tp) return be.rmsnormBackward(dx, dw, dout, x, w, rstd, this.N, c);
    const dot = this.acts.ptr("stat");
    be.rmsnormBwdDot(dot, dout, x, w, rstd, this.N, c);
    this.tp.allReduce(dot, dot, this.N, "f32", "sum");
    be.rmsnormBwdFinish(dx, dw, dout, x, w, rstd, dot, this.N, c, cFull);
  }

  /**
   * dx += Σ dy_i W_i over (dy, W, outF) of column-parallel GEMMs. Without TP straight into dx;
   * under TP the rank's partial sum goes through `part`, is all-reduced, then added.
   */
  private addInputGrads(dx: DevPtr, terms: [dy: DevPtr, w: DevPtr, outF: number][]): void {
    const be = this.be, { N, C } = this;
    const part = this.acts.ptr("tmpC");
    terms.forEach(([dy, w, outF], i) => be.matmul(this.tp ? part : dx, dy, w, N, C, outF, false, false, this.tp && i === 0 ? 0 : 1));
    if (!this.tp) return;
    this.allReduceAct(part, N * C);
    be.add(dx, dx, part, N * C);
  }

  private forwardTrunk(): void {
    const be = this.be, p = this.params, { N, C } = this;
    if (this.tp) {
      be.embeddingForwardRange(this.L(0, "x"), this.acts.ptr("tokens"), p.w("model.embed_tokens.weight"), N, C, this.vloc, this.v0, this.V);
      this.allReduceAct(this.L(0, "x"), N * C);
    } else {
      be.embeddingForward(this.L(0, "x"), this.acts.ptr("tokens"), p.w("model.embed_tokens.weight"), N, C, this.V);
    }
    for (let l = 0; l < this.cfg.nLayers; l++) this.forwardLayer(l, true);
    be.rmsnormForward(this.acts.ptr("xn"), this.acts.ptr("xnRstd"), this.acts.ptr("xL"), p.w("model.norm.weight"), N, C, this.cfg.normEps);
  }

  /** q/k/v projections, QK-norm, RoPE and attention of layer l: x → qRaw, kRaw, v, q, k, att, lse */
  private attentionInputs(l: number): void {
    const be = this.be, p = this.params, pre = `model.layers.${l}`;
    const { C, cq, ck, B, T, D, h, k } = this;
    const cos = this.acts.ptr("cos"), sin = this.acts.ptr("sin");
    const x = this.L(l, "x");
    this.lin(this.L(l, "qRaw"), x, p.w(`${pre}.self_attn.q_proj.weight`), cq, C);
    this.lin(this.L(l, "kRaw"), x, p.w(`${pre}.self_attn.k_proj.weight`), ck, C);
    this.lin(this.L(l, "v"), x, p.w(`${pre}.self_attn.v_proj.weight`), ck, C);
    this.rowNorm(this.L(l, "q"), this.L(l, "qRstd"), this.L(l, "qRaw"), p.w(`${pre}.self_attn.q_norm.weight`), cq, this.Cq);
    this.rowNorm(this.L(l, "k"), this.L(l, "kRstd"), this.L(l, "kRaw"), p.w(`${pre}.self_attn.k_norm.weight`), ck, this.Ck);
    be.ropeForward(this.L(l, "q"), this.L(l, "q"), cos, sin, B, T, h, D);
    be.ropeForward(this.L(l, "k"), this.L(l, "k"), cos, sin, B, T, k, D);
    be.attentionForward(this.L(l, "att"), this.L(l, "lse"), this.L(l, "q"), this.L(l, "k"), this.L(l, "v"), B, T, h, k, D);
  }

  /** layer l from its input x; writeNext: also the next layer's input (false when recomputing) */
  private forwardLayer(l: number, writeNext: boolean): void {
    const be = this.be, p = this.params, pre = `model.layers.${l}`;
    const { N, C, cq, F } = this;
    const eps = this.cfg.normEps;
    this.attentionInputs(l);
    this.lin(this.L(l, "a"), this.L(l, "att"), p.w(`${pre}.self_attn.o_proj.weight`), C, cq);
    this.allReduceAct(this.L(l, "a"), N * C); // row-parallel o_proj: partial sums
    const tmp = this.acts.ptr("tmpC");
    be.rmsnormForward(tmp, this.L(l, "aRstd"), this.L(l, "a"), p.w(`${pre}.post_attention_layernorm.weight`), N, C, eps);
    be.add(this.L(l, "h"), this.L(l, "x"), tmp, N * C);
    // gate_proj and up_proj are adjacent in the arena: one [2F, C] GEMM
    this.lin(this.L(l, "gu"), this.L(l, "h"), p.w(`${pre}.mlp.gate_proj.weight`), 2 * F, C);
    be.swigluForward(this.L(l, "sw"), this.L(l, "gu"), N, F);
    this.lin(this.L(l, "f"), this.L(l, "sw"), p.w(`${pre}.mlp.down_proj.weight`), C, F);
    this.allReduceAct(this.L(l, "f"), N * C); // row-parallel down_proj
    be.rmsnormForward(tmp, this.L(l, "fRstd"), this.L(l, "f"), p.w(`${pre}.post_feedforward_layernorm.weight`), N, C, eps);
    if (!writeNext) return;
    be.add(l + 1 < this.cfg.nLayers ? this.L(l + 1, "x") : this.acts.ptr("xL"), this.L(l, "h"), tmp, N * C);
  }

  /** before layer l's backward: refill the buffers its recompute mode dropped (from the saved x) */
  private recomputeLayer(l: number): void {
    const mode = this.recompute[l];
    if (mode === "attention") this.attentionInputs(l);
    else if (mode === "block") this.forwardLayer(l, false);
  }

  /** lm_head + cross-entropy + z-loss by row chunks; with gradScale != 0 also d(xn) and d(lm_head). */
  private head(targets: Int32Array, zLossMult: number, gradScale: number): void {
    const be = this.be, p = this.params, a = be.actBytes;
    const { N, C, vloc } = this;
    const xn = this.acts.ptr("xn"), logits = this.acts.ptr("logits");
    const wOut = p.w("lm_head.weight");
    const dxn = gradScale !== 0 ? this.bwd.ptr("dC") : 0;
    for (let r0 = 0; r0 < N; r0 += this.ceChunkRows) {
      const rows = Math.min(this.ceChunkRows, N - r0);
      const xnRows = xn + r0 * C * a;
      be.matmul(logits, xnRows, wOut, rows, vloc, C, false, true, 0);
      const ce = this.acts.ptr("ce") + r0 * 4, lse = this.acts.ptr("lseRows") + r0 * 4, tg = this.acts.ptr("targets") + r0 * 4;
      if (this.tp) this.vocabParallelCe(targets, r0, rows, zLossMult, gradScale);
      else be.crossEntropy(logits, ce, lse, tg, rows, this.V, zLossMult, gradScale);
      if (gradScale === 0) continue;
      // logits now hold dlogits: d(xn) = dlogits @ W_out; dW_out += dlogits^T @ xn
      be.matmul(dxn + r0 * C * a, logits, wOut, rows, C, vloc, false, false, 0);
      be.matmulF32(p.g("lm_head.weight"), logits, xnRows, vloc, C, rows, true, false, 1);
    }
    if (gradScale !== 0) this.allReduceAct(dxn, N * C);
  }

  /**
   * CE + z-loss of `rows` rows from r0 over this rank's vocabulary slice: local (max, Σ-exp, target
   * logit) → global max → Σ s·e^{m-M} and the target logit summed → lse = M + log Σ on the host →
   * ce, lse and dlogits (in place) by ceFinish.
   */
  private vocabParallelCe(targets: Int32Array, r0: number, rows: number, zLossMult: number, gradScale: number): void {
    const be = this.be, tp = this.tp!, { vloc, v0, V } = this;
    const logits = this.acts.ptr("logits"), tg = this.acts.ptr("targets") + r0 * 4;
    const mx = this.acts.ptr("stat"), mxLocal = this.acts.ptr("stat2"), st = this.acts.ptr("stat3");
    const se = st, tgt = st + rows * 4; // [Σ-exp | target logit]: one all-reduce for both
    be.ceStats(mx, se, tgt, logits, tg, rows, vloc, v0, V);
    be.copy(mxLocal, mx, rows * 4);
    tp.allReduce(mx, mx, rows, "f32", "max");
    const [m, M, s, lse] = this.hostStat.map((x) => x.subarray(0, rows));
    be.download(m, mxLocal);
    be.download(M, mx);
    be.download(s, se);
    for (let i = 0; i < rows; i++) s[i] = s[i] * Math.exp(m[i] - M[i]);
    be.upload(se, s);
    tp.allReduce(st, st, 2 * rows, "f32", "sum");
    be.download(s, se);
    for (let i = 0; i < rows; i++) lse[i] = targets[r0 + i] < 0 ? 0 : M[i] + Math.log(s[i]);
    be.upload(mx, lse);
    be.ceFinish(logits, this.acts.ptr("ce") + r0 * 4, this.acts.ptr("lseRows") + r0 * 4, mx, tgt, tg, rows, vloc, v0, V, zLossMult, gradScale);
  }

  private backwardTrunk(): void {
    const be = this.be, p = this.params, cfg = this.cfg;
    const { N, C, cq, ck, F, B, T, D, h, k } = this;
    const cos = this.acts.ptr("cos"), sin = this.acts.ptr("sin");
    const dx = this.bwd.ptr("dx"), dC = this.bwd.ptr("dC");
    const dq = this.bwd.ptr("dq"), dk = this.bwd.ptr("dk"), dv = this.bwd.ptr("dv");
    const dgu = this.bwd.ptr("dgu"), dsw = this.bwd.ptr("dsw");
    // final norm: dx = d x_L
    be.rmsnormBackward(dx, p.g("model.norm.weight"), dC, this.acts.ptr("xL"), p.w("model.norm.weight"), this.acts.ptr("xnRstd"), N, C);
    for (let l = cfg.nLayers - 1; l >= 0; l--) {
      const pre = `model.layers.${l}`;
      this.recomputeLayer(l);
      // x_{l+1} = h + norm_ff(f): dh = dx (kept in dx), df = norm_ff backward
      be.rmsnormBackward(dC, p.g(`${pre}.post_feedforward_layernorm.weight`), dx, this.L(l, "f"),
        p.w(`${pre}.post_feedforward_layernorm.weight`), this.L(l, "fRstd"), N, C);
      // f = sw Wd^T
      be.matmul(dsw, dC, p.w(`${pre}.mlp.down_proj.weight`), N, F, C, false, false, 0);
      be.matmulF32(p.g(`${pre}.mlp.down_proj.weight`), dC, this.L(l, "sw"), C, F, N, true, false, 1);
      be.swigluBackward(dgu, dsw, this.L(l, "gu"), N, F);
      // gu = h Wgu^T: dh += dgu Wgu; dWgu += dgu^T h
      this.addInputGrads(dx, [[dgu, p.w(`${pre}.mlp.gate_proj.weight`), 2 * F]]);
      be.matmulF32(p.g(`${pre}.mlp.gate_proj.weight`), dgu, this.L(l, "h"), 2 * F, C, N, true, false, 1);
      // h = x + norm_attn(a): dx_l = dh (stays in dx), da = norm_attn backward
      be.rmsnormBackward(dC, p.g(`${pre}.post_attention_layernorm.weight`), dx, this.L(l, "a"),
        p.w(`${pre}.post_attention_layernorm.weight`), this.L(l, "aRstd"), N, C);
      // a = att Wo^T. datt [N,cq] reuses dsw, which is free again and sized max(F, cq).
      const datt = dsw;
      be.matmul(datt, dC, p.w(`${pre}.self_attn.o_proj.weight`), N, cq, C, false, false, 0);
      be.matmulF32(p.g(`${pre}.self_attn.o_proj.weight`), dC, this.L(l, "att"), C, cq, N, true, false, 1);
      be.attentionBackward(dq, dk, dv, datt, this.L(l, "q"), this.L(l, "k"), this.L(l, "v"), this.L(l, "att"), this.L(l, "lse"), B, T, h, k, D);
      be.ropeBackward(dq, dq, cos, sin, B, T, h, D);
      be.ropeBackward(dk, dk, cos, sin, B, T, k, D);
      this.rowNormBackward(dq, p.g(`${pre}.self_attn.q_norm.weight`), dq, this.L(l, "qRaw"), p.w(`${pre}.self_attn.q_norm.weight`),
        this.L(l, "qRstd"), cq, this.Cq);
      this.rowNormBackward(dk, p.g(`${pre}.self_attn.k_norm.weight`), dk, this.L(l, "kRaw"), p.w(`${pre}.self_attn.k_norm.weight`),
        this.L(l, "kRstd"), ck, this.Ck);
      const x = this.L(l, "x");
      const qkv = [[dq, "q_proj", cq], [dk, "k_proj", ck], [dv, "v_proj", ck]] as const;
      this.addInputGrads(dx, qkv.map(([dy, name, outF]) => [dy, p.w(`${pre}.self_attn.${name}.weight`), outF]));
      for (const [dy, name, outF] of qkv) be.matmulF32(p.g(`${pre}.self_attn.${name}.weight`), dy, x, outF, C, N, true, false, 1);
    }
    if (this.tp) {
      be.embeddingBackwardRange(p.g("model.embed_tokens.weight"), dx, this.acts.ptr("tokens"), N, C, this.vloc, this.v0, this.V);
    } else {
      be.embeddingBackward(p.g("model.embed_tokens.weight"), dx, this.acts.ptr("tokens"), N, C, this.V);
    }
  }

  /** fp32 logits [V] of row `row` after the last forward (for sampling; without TP). */
  logitsRow(row: number): Float32Array {
    if (this.tp) throw new Error("logitsRow: the logits of a tensor-parallel rank are a vocabulary slice");
    const be = this.be, a = be.actBytes;
    const logits = this.acts.ptr("logits");
    be.matmul(logits, this.acts.ptr("xn") + row * this.C * a, this.params.w("lm_head.weight"), 1, this.V, this.C, false, true, 0);
    const f32 = be.alloc(this.V * 4);
    be.castActToF32(f32, logits, this.V);
    const out = new Float32Array(this.V);
    be.download(out, f32);
    be.free(f32);
    return out;
  }

  /** forward only (for sampling); follow with logitsRow */
  forward(tokens_BT: Int32Array): void {
    this.be.upload(this.acts.ptr("tokens"), tokens_BT);
    this.forwardTrunk();
  }

  free(): void {
    this.acts.free(this.be);
    this.bwd.free(this.be);
  }
}

/** Chunk rows: ~256 MiB of logits on CPU (>= ~512 rows keeps the lm_head GEMM efficient), 1 GiB on GPU.
 *  V: the vocabulary rows this rank holds. */
export function ceBudgetBytes(be: Backend): number {
  return be.name === "cuda" ? 1 << 30 : 256 << 20;
}

function defaultCeChunkRows(be: Backend, V: number, N: number): number {
  return ceChunkRowsFor(ceBudgetBytes(be), V, be.actBytes, N);
}
