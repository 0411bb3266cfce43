// The config sections that watch a run: `eval` (in-loop perplexity sets and multiple-choice tasks,
// src/train/in-loop-eval.ts) and `monitor` (throughput/MFU, memory, loss and grad-norm spikes,
// TensorBoard; src/train/monitors.ts).
import { z } from "zod";
import { DOLMA2_EOS } from "../model/config.ts";

export const EvalSetSchema = z
  .object({
    /** the set's name in metrics.jsonl and the report; a mix file's sets are named by their labels */
    name: z.string().min(1).optional(),
    /** raw token files, evaluated together as one set */
    paths: z.array(z.string().min(1)).optional(),
    /** an OLMo-core mix list ("label,path" lines): one set per label (v3-small-ppl-validation: 11) */
    mixFile: z.string().min(1).optional(),
    /** root the mix file's paths are joined to */
    baseDir: z.string().optional(),
    /** replaces {TOKENIZER} in the mix paths (OLMo-core's v3-small sets: "dolma2-tokenizer") */
    tokenizer: z.string().default("allenai/dolma2-tokenizer"),
    /** "brown-heldout": the documents of the embedded corpus that data.embedded never trains on */
    embedded: z.enum(["brown-heldout"]).optional(),
    dtype: z.enum(["uint16", "uint32"]).default("uint32"),
    /** "documents": one instance per EOS-terminated document, cut to train.seqLen and padded (OLMo-core's
     *  padded FSL eval data); "windows": consecutive train.seqLen-token windows (the training layout) */
    instances: z.enum(["documents", "windows"]).default("documents"),
    /** the token that ends a document ("documents"; dolma2 / cl100k_base EOS) */
    eosId: z.number().int().nonnegative().default(DOLMA2_EOS),
    /** evaluate at most this many tokens of the set (instances in file order) */
    maxTokens: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const n = Number(!!s.paths?.length) + Number(!!s.mixFile) + Number(!!s.embedded);
    if (n !== 1) ctx.addIssue({ code: "custom", path: ["paths"], message: "set exactly one of paths, mixFile, embedded" });
  });

export const EvalTaskSchema = z
  .object({
    /** the task's name in metrics.jsonl (default: the file name without .jsonl) */
    name: z.string().min(1).optional(),
    /** JSON lines: {"context": "...", "choices": [" a", " b", ...], "gold": 0, "uncond"?: "Answer:"} */
    path: z.string().min(1),
    /** score at most this many questions (the file's first) */
    maxQuestions: z.number().int().positive().optional(),
  })
  .strict();

export const EvalSchema = z
  .object({
    /** evaluate every N steps (0: only at the start and the end, as set below) */
    everySteps: z.number().int().nonnegative().default(0),
    /** before the first step (the initial model; OLMo-core's callback does not) */
    atStart: z.boolean().default(false),
    /** after the last step */
    atEnd: z.boolean().default(true),
    sets: z.array(EvalSetSchema).default([]),
    tasks: z.array(EvalTaskSchema).default([]),
  })
  .strict();

export const MonitorSchema = z
  .object({
    /** write TensorBoard event files (events.out.tfevents.*) into the run folder */
    tensorboard: z.boolean().default(true),
    /** a loss or grad-norm spike: more than spikeSigmas standard deviations above the mean of the previous spikeWindow steps */
    spikeWindow: z.number().int().min(2).default(128),
    spikeSigmas: z.number().positive().default(6),
    /** peak dense bf16 FLOP/s of one device for MFU (default: from the device name; none on the CPU) */
    peakFlops: z.number().positive().optional(),
  })
  .strict();

export type EvalConfig = z.output<typeof EvalSchema>;
export type EvalSetConfig = z.output<typeof EvalSetSchema>;
export type EvalTaskConfig = z.output<typeof EvalTaskSchema>;
export type MonitorConfig = z.output<typeof MonitorSchema>;
