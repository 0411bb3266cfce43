// OLMo-2 model configuration and the presets (dimensions: allenai/OLMo-core @ d7301e62,
// src/olmo_core/nn/transformer/config.py TransformerConfig.olmo2_*). All fields literal, no hidden derivation
// beyond headDim = dModel / nHeads and the padded vocabulary.
import { z } from "zod";

/** what a layer recomputes in the backward instead of keeping it (src/model/activations.ts) */
export const RecomputeModeSchema = z.enum(["none", "attention", "block"]);
export type RecomputeMode = z.output<typeof RecomputeModeSchema>;

export const ModelConfigSchema = z
  .object({
    /** width of the residual stream */
    dModel: z.number().int().positive(),
    nLayers: z.number().int().positive(),
    nHeads: z.number().int().positive(),
    /** key/value heads (GQA); equals nHeads for MHA */
    nKvHeads: z.number().int().positive(),
    /** SwiGLU hidden size per branch (gate and up each have this many rows) */
    ffnHidden: z.number().int().positive(),
    /** tokenizer vocabulary (dolma2: 100278); the embedding is padded to a multiple of 128 */
    vocabSize: z.number().int().positive(),
    vocabPadMultiple: z.number().int().positive().default(128),
    /** longest sequence the RoPE tables are built for */
    maxSeqLen: z.number().int().positive().default(4096),
    ropeTheta: z.number().positive().default(500_000),
    normEps: z.number().positive().default(1e-6),
    initStd: z.number().positive().default(0.02),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.dModel % m.nHeads !== 0) ctx.addIssue({ code: "custom", path: ["nHeads"], message: `dModel ${m.dModel} is not divisible by nHeads ${m.nHeads}` });
    if (m.nHeads % m.nKvHeads !== 0) ctx.addIssue({ code: "custom", path: ["nKvHeads"], message: `nHeads ${m.nHeads} is not divisible by nKvHeads ${m.nKvHeads}` });
    if ((m.dModel / m.nHeads) % 2 !== 0) ctx.addIssue({ code: "custom", path: ["nHeads"], message: "head dim must be even for RoPE" });
  });

export type ModelConfigInput = z.input<typeof ModelConfigSchema>;
export type ModelConfig = z.output<typeof ModelConfigSchema>;

export function headDim(m: ModelConfig): number {
  return m.dModel / m.nHeads;
}

export function paddedVocab(m: ModelConfig): number {
  return Math.ceil(m.vocabSize / m.vocabPadMultiple) * m.vocabPadMultiple;
}

export const DOLMA2_VOCAB = 100278;
export const DOLMA2_EOS = 100257;
export const DOLMA2_PAD = 100277;

/** OLMo-2 presets (OLMo-core TransformerConfig.olmo2_*), written out as literals. */
export const presets = {
  "olmo2-1b": { dModel: 2048, nLayers: 16, nHeads: 16, nKvHeads: 16, ffnHidden: 8192, vocabSize: DOLMA2_VOCAB },
  "olmo2-7b": { dModel: 4096, nLayers: 32, nHeads: 32, nKvHeads: 32, ffnHidden: 11008, vocabSize: DOLMA2_VOCAB },
  "olmo2-13b": { dModel: 5120, nLayers: 40, nHeads: 40, nKvHeads: 40, ffnHidden: 13824, vocabSize: DOLMA2_VOCAB },
  "olmo2-32b": { dModel: 5120, nLayers: 64, nHeads: 40, nKvHeads: 8, ffnHidden: 27648, vocabSize: DOLMA2_VOCAB },
} satisfies Record<string, ModelConfigInput>;
