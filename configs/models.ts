// OLMo-2 model presets with the exact dimensions of the released models (allenai/OLMo-core @
// d7301e62 src/olmo_core/nn/transformer/config.py TransformerConfig.olmo2_*; the HF config.json of
// allenai/OLMo-2-0325-32B). Spread one into a run config's `model`. Written out as
// literals so a reader sees the shapes; test/recipe checks they match src/model/config.ts and the
// released parameter counts (32B = 32,234,279,936 with the padded vocabulary and untied head).
import type { ModelConfigInput } from "../src/model/config.ts";

/** dolma2 tokenizer: 100278 ids, padded to 100352 rows (multiple of 128) in embedding and head */
const vocab = { vocabSize: 100278, vocabPadMultiple: 128, maxSeqLen: 4096 } as const;

/** olmo2_1B_v2 = the released OLMo-2-0425-1B (16 layers; OLMo-core's olmo2_1B has 18) */
export const olmo2_1b = { dModel: 2048, nLayers: 16, nHeads: 16, nKvHeads: 16, ffnHidden: 8192, ...vocab } satisfies ModelConfigInput;
export const olmo2_7b = { dModel: 4096, nLayers: 32, nHeads: 32, nKvHeads: 32, ffnHidden: 11008, ...vocab } satisfies ModelConfigInput;
export const olmo2_13b = { dModel: 5120, nLayers: 40, nHeads: 40, nKvHeads: 40, ffnHidden: 13824, ...vocab } satisfies ModelConfigInput;
/** GQA: 40 query heads over 8 key/value heads; SwiGLU hidden 27648 per branch */
export const olmo2_32b = { dModel: 5120, nLayers: 64, nHeads: 40, nKvHeads: 8, ffnHidden: 27648, ...vocab } satisfies ModelConfigInput;

export const models = { "olmo2-1b": olmo2_1b, "olmo2-7b": olmo2_7b, "olmo2-13b": olmo2_13b, "olmo2-32b": olmo2_32b };
