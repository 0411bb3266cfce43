// OLMo-core's experiment config (the config.json that ConfigSaverCallback writes next to the
// checkpoints: allenai/OLMo-core src/olmo_core/train/callbacks/config_saver.py at d7301e62) → our
// ModelConfig, and the reverse for export. The model section is a TransformerConfig
// (src/olmo_core/nn/transformer/config.py at d7301e62, TransformerConfig.llama_like / olmo2_32B):
//   model.d_model, model.n_layers, model.vocab_size (the padded embedding rows),
//   model.block.name ("reordered_norm" for OLMo-2), model.block.attention.{n_heads, n_kv_heads, bias,
//   rope.theta, rope.scaling, qk_norm}, model.block.feed_forward.{hidden_size, bias},
//   model.block.layer_norm.eps, model.init_std
// and the data order's seed is data_loader.seed.
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "../../errors.ts";
import { parseJson } from "../../input.ts";
import { type ModelConfig, ModelConfigSchema, paddedVocab } from "../../model/config.ts";

type Json = Record<string, any>;

/** Read a JSON object file; one-line errors for a missing or malformed file. */
export function readJsonObject(path: string, what: string): Json {
  if (!existsSync(path)) throw new UserError(`${path}: no ${what} (file not found)`);
  let j: unknown;
  try {
    j = parseJson(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new UserError(`${path}: not a JSON object`);
  return j as Json;
}

/** The model of an OLMo-core experiment config; what we cannot represent is a one-line error. */
export function modelConfigFromOlmoCore(j: Json, path: string): ModelConfig {
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  const m = j.model;
  if (typeof m !== "object" || m === null) bad("no model section (not an OLMo-core experiment config)");
  const block = m.block ?? bad("model.block is missing");
  const att = block.attention ?? bad("model.block.attention is missing");
  const ff = block.feed_forward ?? bad("model.block.feed_forward is missing");
  const int = (v: unknown, name: string): number => (Number.isInteger(v) && (v as number) > 0 ? (v as number) : bad(`${name} must be a positive integer, got ${JSON.stringify(v)}`));
  if (block.name !== undefined && block.name !== "reordered_norm") bad(`model.block.name is ${JSON.stringify(block.name)}; OLMo-2 uses "reordered_norm" blocks`);
  if (att.qk_norm == null) bad("model.block.attention.qk_norm is null; OLMo-2 normalizes queries and keys");
  if (att.bias === true || ff.bias === true) bad("the attention or feed-forward has biases; OLMo-2 has none");
  if (att.rope?.scaling != null) bad(`model.block.attention.rope.scaling ${JSON.stringify(att.rope.scaling)} is not supported (OLMo-2 uses plain RoPE)`);
  const nHeads = int(att.n_heads, "model.block.attention.n_heads");
  const V = int(m.vocab_size, "model.vocab_size");
  const parsed = ModelConfigSchema.safeParse({
    dModel: int(m.d_model, "model.d_model"),
    nLayers: int(m.n_layers, "model.n_layers"),
    nHeads,
    nKvHeads: att.n_kv_heads == null ? nHeads : int(att.n_kv_heads, "model.block.attention.n_kv_heads"),
    ffnHidden: int(ff.hidden_size, "model.block.feed_forward.hidden_size"),
    vocabSize: V,
    vocabPadMultiple: V % 128 === 0 ? 128 : 1,
    maxSeqLen: Number.isInteger(j.dataset?.sequence_length) ? j.dataset.sequence_length : 4096, // OLMo-core's RoPE has no fixed range
    ropeTheta: att.rope?.theta ?? 500_000,
    normEps: block.layer_norm?.eps ?? 1e-6,
    initStd: m.init_std ?? 0.02,
  });
  if (!parsed.success) bad(`config does not describe a valid model: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data!;
}

/** A minimal OLMo-core experiment config for our model: what modelConfigFromOlmoCore reads back. */
export function olmoCoreConfigJson(m: ModelConfig, dataSeed: number | null): Json {
  const norm = { name: "rms", eps: m.normEps, bias: false };
  return {
    model: {
      name: "transformer",
      d_model: m.dModel,
      n_layers: m.nLayers,
      vocab_size: paddedVocab(m),
      init_std: m.initStd,
      block: {
        name: "reordered_norm",
        attention: { name: "default", n_heads: m.nHeads, n_kv_heads: m.nKvHeads, bias: false, rope: { name: "default", theta: m.ropeTheta, scaling: null }, qk_norm: norm },
        feed_forward: { hidden_size: m.ffnHidden, bias: false },
        layer_norm: norm,
      },
      lm_head: { layer_norm: norm, bias: false },
    },
    data_loader: { seed: dataSeed },
  };
}
