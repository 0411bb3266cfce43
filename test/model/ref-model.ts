// An independent float64 OLMo-2 forward, written straight from OLMo-core's OLMo-2 math (see src/model/olmo2.ts) and HF's
// modeling_olmo2.py (Olmo2Attention: q_norm/k_norm over the full projection, rotate_half RoPE,
// repeat_kv GQA, causal softmax; Olmo2DecoderLayer: residual + post_attention_layernorm(attn),
// residual + post_feedforward_layernorm(mlp)). Plain loops, no kernels shared with the library.
import { type ModelConfig, headDim, paddedVocab } from "../../src/model/config.ts";
import { paramSpecs } from "../../src/model/params.ts";

type Mat = Float64Array; // row-major

function param(arena: Float32Array, cfg: ModelConfig, name: string): Float64Array {
  const s = paramSpecs(cfg).find((p) => p.name === name);
  if (!s) throw new Error(name);
  return Float64Array.from(arena.subarray(s.offset, s.offset + s.numel));
}

/** y[n, o] = sum_i x[n, i] W[o, i] */
function linear(x: Mat, W: Float64Array, n: number, inF: number, outF: number): Mat {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++)
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * W[o * inF + i];
      y[r * outF + o] = s;
    }
  return y;
}

function rmsnorm(x: Mat, w: Float64Array, n: number, c: number, eps: number): Mat {
  const y = new Float64Array(n * c);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let j = 0; j < c; j++) ss += x[r * c + j] ** 2;
    const rstd = 1 / Math.sqrt(ss / c + eps);
    for (let j = 0; j < c; j++) y[r * c + j] = w[j] * x[r * c + j] * rstd;
  }
  return y;
}

function rope(x: Mat, B: number, T: number, H: number, D: number, theta: number): void {
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * D;
        for (let j = 0; j < half; j++) {
          const ang = t / Math.pow(theta, (2 * j) / D);
          const c = Math.cos(ang), s = Math.sin(ang);
          const x1 = x[base + j], x2 = x[base + j + half];
          x[base + j] = x1 * c - x2 * s;
          x[base + j + half] = x2 * c + x1 * s;
        }
      }
}

function attention(q: Mat, k: Mat, v: Mat, B: number, T: number, H: number, K: number, D: number): Mat {
  const out = new Float64Array(B * T * H * D);
  const group = H / K, scale = 1 / Math.sqrt(D);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[((b * T + t) * H + h) * D + d] * k[((b * T + s) * K + kh) * D + d];
          scores[s] = dot * scale;
          mx = Math.max(mx, scores[s]);
        }
        let den = 0;
        for (let s = 0; s <= t; s++) den += (scores[s] = Math.exp(scores[s] - mx));
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) acc += scores[s] * v[((b * T + s) * K + kh) * D + d];
          out[((b * T + t) * H + h) * D + d] = acc / den;
        }
      }
    }
  return out;
}

export interface RefLoss {
  ce: number;
  z: number;
  loss: number;
  nTokens: number;
}

/** loss = (ΣCE + zMult·Σlse²)/N with OLMo's label shift (last position ignored). */
export function refLoss(cfg: ModelConfig, arena: Float32Array, tokens: Int32Array, B: number, T: number, zMult: number): RefLoss {
  const C = cfg.dModel, H = cfg.nHeads, K = cfg.nKvHeads, D = headDim(cfg), F = cfg.ffnHidden, V = paddedVocab(cfg);
  const N = B * T, eps = cfg.normEps;
  const wte = param(arena, cfg, "model.embed_tokens.weight");
  let x = new Float64Array(N * C);
  for (let i = 0; i < N; i++) for (let j = 0; j < C; j++) x[i * C + j] = wte[tokens[i] * C + j];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = (n: string) => param(arena, cfg, `model.layers.${l}.${n}.weight`);
    const q = rmsnorm(linear(x, p("self_attn.q_proj"), N, C, H * D), p("self_attn.q_norm"), N, H * D, eps);
    const k = rmsnorm(linear(x, p("self_attn.k_proj"), N, C, K * D), p("self_attn.k_norm"), N, K * D, eps);
    const v = linear(x, p("self_attn.v_proj"), N, C, K * D);
    rope(q, B, T, H, D, cfg.ropeTheta);
    rope(k, B, T, K, D, cfg.ropeTheta);
    const a = linear(attention(q, k, v, B, T, H, K, D), p("self_attn.o_proj"), N, H * D, C);
    const an = rmsnorm(a, p("post_attention_layernorm"), N, C, eps);
    const h = x.map((xi, i) => xi + an[i]);
    const g = linear(h, p("mlp.gate_proj"), N, C, F), u = linear(h, p("mlp.up_proj"), N, C, F);
    const sw = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
    const fn = rmsnorm(linear(sw, p("mlp.down_proj"), N * 1, F, C), p("post_feedforward_layernorm"), N, C, eps);
    x = h.map((hi, i) => hi + fn[i]);
  }
  const xn = rmsnorm(x, param(arena, cfg, "model.norm.weight"), N, C, eps);
  const logits = linear(xn, param(arena, cfg, "lm_head.weight"), N, C, V);
  let ce = 0, zs = 0, n = 0;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T - 1; t++) {
      const row = (b * T + t) * V, target = tokens[b * T + t + 1];
      let mx = -Infinity;
      for (let j = 0; j < V; j++) mx = Math.max(mx, logits[row + j]);
      let se = 0;
      for (let j = 0; j < V; j++) se += Math.exp(logits[row + j] - mx);
      const lse = mx + Math.log(se);
      ce += lse - logits[row + target];
      zs += lse * lse;
      n++;
    }
  return { ce: ce / n, z: (zMult * zs) / n, loss: (ce + zMult * zs) / n, nTokens: n };
}
