// dolma2 (allenai/dolma2-tokenizer), OLMo-2's tokenizer: cl100k_base's 100,256 mergeable tokens
// (data/cl100k.ts) and 22 special tokens at ids 100256..100277, 100,278 ids in all.
//
// Sources: OLMo-core's TokenizerConfig.dolma2() (allenai/OLMo-core @ d7301e62,
// src/olmo_core/data/tokenizer.py: vocab_size 100278, eos 100257, pad 100277); tiktoken's cl100k_base
// special ids (openai/tiktoken @ 6cc3a46c, tiktoken_ext/openai_public.py: <|endoftext|> 100257,
// <|fim_prefix|> 100258, <|fim_middle|> 100259, <|fim_suffix|> 100260, <|endofprompt|> 100276); and
// the model card of allenai/dolma2-tokenizer-special-tokens-v3-lc-reasoner on the Hugging Face Hub,
// which lists the 22 tokens in this order. That order puts all five cl100k ids and dolma2's pad where
// the two sources above say, so we take it for the ids in between. Not checked against the released
// tokenizer.json itself. dolma's own test (allenai/dolma @ 669f534, tests/python/test_tokenizer.py,
// TestTokenizeSpecialTokens) encodes "|||PHONE_NUMBER|||" alike with and without
// encode_special_tokens, so the released file likely does not mark the three |||…||| placeholders
// special; our export marks all 22 special (checkpoint/hf/tokenizer.ts says why).
import { DOLMA2_EOS, DOLMA2_PAD, DOLMA2_VOCAB } from "../model/config.ts";

/** cl100k_base's mergeable tokens are ids 0..CL100K_MERGEABLE-1; the special tokens follow. */
export const CL100K_MERGEABLE = 100256;

const NAMES = [
  "<|extra_id_0|>",
  "<|endoftext|>",
  "<|fim_prefix|>",
  "<|fim_middle|>",
  "<|fim_suffix|>",
  "|||PHONE_NUMBER|||",
  "|||EMAIL_ADDRESS|||",
  "|||IP_ADDRESS|||",
  "<|im_start|>",
  "<|im_end|>",
  ...Array.from({ length: 10 }, (_, i) => `<|extra_id_${i + 1}|>`),
  "<|endofprompt|>",
  "<|pad|>",
];

export interface SpecialToken {
  id: number;
  content: string;
}

/** dolma2's special tokens, by id. */
export const DOLMA2_SPECIAL_TOKENS: readonly SpecialToken[] = NAMES.map((content, i) => ({ id: CL100K_MERGEABLE + i, content }));
if (CL100K_MERGEABLE + NAMES.length !== DOLMA2_VOCAB) throw new Error(`dolma2: ${NAMES.length} special tokens after ${CL100K_MERGEABLE} do not make ${DOLMA2_VOCAB} ids`);

export const DOLMA2_EOS_TOKEN = DOLMA2_SPECIAL_TOKENS[DOLMA2_EOS - CL100K_MERGEABLE].content;
export const DOLMA2_PAD_TOKEN = DOLMA2_SPECIAL_TOKENS[DOLMA2_PAD - CL100K_MERGEABLE].content;
