// The parameter spec table: HF names, shapes, weight-decay group and TP style, in arena order.
// Everything that lays out, initializes, shards, saves or exports parameters derives from it.
import { type ModelConfig, headDim, paddedVocab } from "./config.ts";

export type TpStyle = "colwise" | "rowwise" | "replicated" | "vocab";

export interface ParamSpec {
  /** HF name, e.g. "model.layers.3.self_attn.q_proj.weight" */
  name: string;
  shape: number[];
  /** number of elements */
  numel: number;
  /** decoupled weight decay applies (OLMo-2: everything except the input embedding) */
  decay: boolean;
  /** "ones" for RMSNorm weights, "normal" for truncated-normal(0, std, ±3 std) */
  init: "ones" | "normal";
  tp: TpStyle;
  /** element offset inside the parameter arena */
  offset: number;
}

/**
 * Arena order: embedding first (so the no-decay group is one contiguous prefix), then per layer
 * q,k,v,o, q_norm,k_norm, post_attention_layernorm, gate,up (adjacent: one [2F,C] GEMM), down,
 * post_feedforward_layernorm; then model.norm and lm_head.
 */
export function paramSpecs(m: ModelConfig): ParamSpec[] {
  const C = m.dModel, F = m.ffnHidden, D = headDim(m), V = paddedVocab(m);
  const Cq = m.nHeads * D, Ck = m.nKvHeads * D;
  const out: ParamSpec[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], init: ParamSpec["init"], tp: TpStyle, decay = true) => {
    const numel = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, numel, decay, init, tp, offset });
    offset += numel;
  };
  add("model.embed_tokens.weight", [V, C], "normal", "vocab", false);
  for (let i = 0; i < m.nLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.self_attn.q_proj.weight`, [Cq, C], "normal", "colwise");
    add(`${p}.self_attn.k_proj.weight`, [Ck, C], "normal", "colwise");
    add(`${p}.self_attn.v_proj.weight`, [Ck, C], "normal", "colwise");
    add(`${p}.self_attn.o_proj.weight`, [C, Cq], "normal", "rowwise");
    add(`${p}.self_attn.q_norm.weight`, [Cq], "ones", "colwise");
    add(`${p}.self_attn.k_norm.weight`, [Ck], "ones", "colwise");
    add(`${p}.post_attention_layernorm.weight`, [C], "ones", "replicated");
    add(`${p}.mlp.gate_proj.weight`, [F, C], "normal", "colwise");
    add(`${p}.mlp.up_proj.weight`, [F, C], "normal", "colwise");
    add(`${p}.mlp.down_proj.weight`, [C, F], "normal", "rowwise");
    add(`${p}.post_feedforward_layernorm.weight`, [C], "ones", "replicated");
  }
  add("model.norm.weight", [C], "ones", "replicated");
  add("lm_head.weight", [V, C], "normal", "vocab");
  return out;
}

export function totalParams(specs: ParamSpec[]): number {
  return specs.reduce((a, s) => a + s.numel, 0);
}

/** Elements in the no-decay prefix of the arena (the input embedding). */
export function noDecayPrefix(specs: ParamSpec[]): number {
  let n = 0;
  for (const s of specs) {
    if (s.decay) break;
    n += s.numel;
  }
  if (specs.some((s, i) => !s.decay && specs.slice(0, i).some((t) => t.decay))) {
    throw new Error("no-decay parameters must form a prefix of the arena");
  }
  return n;
}
