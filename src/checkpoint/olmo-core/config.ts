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
import type { ParamGroupValues } from "./param-groups.ts";

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

/** OLMo-core's view of the run that trained a checkpoint olmo exports (the CLI builds it from the run config). */
export interface OlmoCoreRunSettings {
  /** the AdamW settings, lr at the checkpoint's step */
  paramGroups: ParamGroupValues;
  /** the schedule (src/optim/schedule.ts's shape; OLMo-core's Scheduler callbacks) */
  schedule: { kind: "cosine" | "linear" | "constant"; warmupSteps: number; alpha?: number; tMaxSteps?: number };
  maxGradNorm: number;
  zLossMult: number;
  /** the skip rule (SkipStepAdamW's rolling_interval_length, sigma_factor), or null */
  skipStep: { window: number; sigmas: number } | null;
  /** the run's total steps (OLMo-core's max_steps) */
  maxSteps: number;
  sequenceLength: number;
  /** data.maxTargetSeqLen, null when the run has none (OLMo-core's max_target_sequence_length) */
  maxTargetSequenceLength: number | null;
  globalBatchTokens: number;
  dataSeed: number;
  dtype: "uint16" | "uint32";
  tokenizer: { identifier: string; vocabSize: number; eosTokenId: number | null; padTokenId: number | null };
}

/**
 * OLMo-core's scheduler config for our schedule. Class names are bare, as the OLMo-2 32B's own
 * config.json has them (OLMo-core wrote module-qualified names only from #156, 2025-02-06, after
 * the run began) and as the anneal script at d7301e62 asserts (`scheduler_config.pop("_CLASS_") ==
 * CosWithWarmup.__name__`); the fields are those of optim/scheduler.py at d7301e62.
 */
function schedulerJson(s: OlmoCoreRunSettings["schedule"]): Json {
  const t = s.tMaxSteps !== undefined ? { t_max: s.tMaxSteps } : {};
  const base = { lr_field: "lr", initial_lr_field: "initial_lr" };
  switch (s.kind) {
    case "cosine":
      return { _CLASS_: "CosWithWarmup", ...base, warmup_steps: s.warmupSteps, alpha_f: s.alpha ?? 0.1, ...t, warmup_min_lr: 0.0 };
    case "linear":
      return { _CLASS_: "LinearWithWarmup", ...base, alpha_f: s.alpha ?? 0, ...t, warmup_steps: s.warmupSteps, warmup_min_lr: 0.0 };
    case "constant":
      return s.warmupSteps > 0 ? { _CLASS_: "ConstantWithWarmup", ...base, warmup_steps: s.warmupSteps, warmup_min_lr: 0.0 } : { _CLASS_: "ConstantScheduler", ...base };
  }
}

/**
 * An OLMo-core experiment config for our model: the model section modelConfigFromOlmoCore reads
 * back, and, for a checkpoint olmo trained, what OLMo-core's anneal script reads of it
 * (src/scripts/train/anneal/OLMo2-32B-anneal.py at d7301e62: `optim.lr`, the base LR, and
 * `trainer.callbacks.lr_scheduler.scheduler`) with the dataset, data loader and trainer settings
 * of the run. `compiledLr`: the run's optimizer kept OLMo-core's tensor lr (OptimConfig.compile).
 */
export function olmoCoreConfigJson(m: ModelConfig, dataSeed: number | null, run?: OlmoCoreRunSettings, compiledLr = false): Json {
  const norm = { name: "rms", eps: m.normEps, bias: false };
  const model = {
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
  };
  if (!run) return { model, data_loader: { seed: dataSeed } };
  const g = run.paramGroups, tok = run.tokenizer;
  const optim = {
    _CLASS_: run.skipStep ? "SkipStepAdamWConfig" : "AdamWConfig",
    lr: g.initialLr, betas: g.betas, eps: g.eps, weight_decay: g.weightDecay,
    group_overrides: [{ params: ["embeddings.weight"], opts: { weight_decay: 0.0 }, _CLASS_: "OptimGroupOverride" }],
    compile: compiledLr, fixed_fields: ["initial_lr"],
    ...(run.skipStep ? { rolling_interval_length: run.skipStep.window, sigma_factor: run.skipStep.sigmas } : {}),
  };
  const dataset = {
    _CLASS_: "NumpyDatasetConfig", name: "fsl", sequence_length: run.sequenceLength,
    ...(run.maxTargetSequenceLength !== null ? { max_target_sequence_length: run.maxTargetSequenceLength } : {}), dtype: run.dtype,
    tokenizer: { _CLASS_: "TokenizerConfig", vocab_size: tok.vocabSize, eos_token_id: tok.eosTokenId, pad_token_id: tok.padTokenId, identifier: tok.identifier },
  };
  const trainer = {
    _CLASS_: "TrainerConfig", z_loss_multiplier: run.zLossMult, max_duration: { _CLASS_: "Duration", value: run.maxSteps, unit: "steps" },
    callbacks: {
      lr_scheduler: { _CLASS_: "SchedulerCallback", scheduler: schedulerJson(run.schedule) },
      grad_clipper: { _CLASS_: "GradClipperCallback", max_grad_norm: run.maxGradNorm },
    },
  };
  return { model, optim, dataset, data_loader: { _CLASS_: "NumpyDataLoaderConfig", seed: run.dataSeed, global_batch_size: run.globalBatchTokens }, trainer };
}
