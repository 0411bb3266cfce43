// The one table of parameter names between Hugging Face's Olmo2ForCausalLM (our names,
// src/model/params.ts) and OLMo-core's Transformer with reordered-norm blocks. Source:
// allenai/OLMo-core src/olmo_core/nn/hf/convert.py at fa6c5014 (OLMO_CORE_TO_HF_WEIGHT_MAPPINGS);
// the same names are the state-dict keys of the OLMo-2 32B checkpoints (OLMo-core d7301e62).
// Note the MLP: OLMo-core's w1 is gate_proj, w3 is up_proj and w2 is down_proj.
import { UserError } from "../../errors.ts";

// Both tables are in OLMo-core's module order (its named_parameters order, which is the order of
// the param groups' `params` lists in its checkpoints): the embedding, the blocks, then the head.
const GLOBAL_NAMES: [hf: string, olmoCore: string][] = [
  ["model.embed_tokens.weight", "embeddings.weight"],
  ["model.norm.weight", "lm_head.norm.weight"],
  ["lm_head.weight", "lm_head.w_out.weight"],
];

const LAYER_NAMES: [hf: string, olmoCore: string][] = [
  ["self_attn.q_proj.weight", "attention.w_q.weight"],
  ["self_attn.k_proj.weight", "attention.w_k.weight"],
  ["self_attn.v_proj.weight", "attention.w_v.weight"],
  ["self_attn.o_proj.weight", "attention.w_out.weight"],
  ["self_attn.q_norm.weight", "attention.q_norm.weight"],
  ["self_attn.k_norm.weight", "attention.k_norm.weight"],
  ["post_attention_layernorm.weight", "attention_norm.weight"],
  ["mlp.gate_proj.weight", "feed_forward.w1.weight"],
  ["mlp.down_proj.weight", "feed_forward.w2.weight"],
  ["mlp.up_proj.weight", "feed_forward.w3.weight"],
  ["post_feedforward_layernorm.weight", "feed_forward_norm.weight"],
];

const hfLayer = /^model\.layers\.(\d+)\.(.+)$/;
const ocLayer = /^blocks\.(\d+)\.(.+)$/;

/** HF name → OLMo-core name (e.g. model.layers.3.mlp.gate_proj.weight → blocks.3.feed_forward.w1.weight). */
export function olmoCoreName(hf: string): string {
  const g = GLOBAL_NAMES.find(([h]) => h === hf);
  if (g) return g[1];
  const m = hfLayer.exec(hf);
  const l = m && LAYER_NAMES.find(([h]) => h === m[2]);
  if (!m || !l) throw new Error(`no OLMo-core name for parameter ${hf}`);
  return `blocks.${m[1]}.${l[1]}`;
}

/** OLMo-core name → HF name; null for a name outside the OLMo-2 table. */
export function hfName(olmoCore: string): string | null {
  const g = GLOBAL_NAMES.find(([, o]) => o === olmoCore);
  if (g) return g[0];
  const m = ocLayer.exec(olmoCore);
  const l = m && LAYER_NAMES.find(([, o]) => o === m[2]);
  return m && l ? `model.layers.${m[1]}.${l[0]}` : null;
}

/** Like hfName, but a name we cannot map is a user error naming the checkpoint. */
export function hfNameOrThrow(olmoCore: string, where: string): string {
  const n = hfName(olmoCore);
  if (n === null) throw new UserError(`${where}: tensor ${olmoCore} is not a parameter of an OLMo-2 model (reordered-norm Transformer)`);
  return n;
}

/** OLMo-core names of `hfNames`, in OLMo-core's module order (the embedding first, the head last). */
export function olmoCoreOrder(hfNames: string[]): string[] {
  const rank = (hf: string): [number, number, number] => {
    const g = GLOBAL_NAMES.findIndex(([h]) => h === hf);
    if (g === 0) return [0, 0, 0];
    if (g > 0) return [2, 0, g];
    const m = hfLayer.exec(hf)!;
    return [1, Number(m[1]), LAYER_NAMES.findIndex(([h]) => h === m[2])];
  };
  const keyed = hfNames.map((n) => ({ n, k: rank(n) }));
  keyed.sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.k[2] - b.k[2]);
  return keyed.map((x) => olmoCoreName(x.n));
}
