// The special token ids of a run's tokenizer, which OLMo-core's dataset fingerprint hashes
// (NumpyDatasetBase.fingerprint: "pad_token_id=…,eos_token_id=…"). The presets are OLMo-core's
// TokenizerConfig classmethods (allenai/OLMo-core @ d7301e62, src/olmo_core/data/tokenizer.py:
// dolma2, gpt_neox_olmo_dolma_v1_5, gpt2); data.eosTokenId / data.padTokenId set them for any other
// tokenizer and win over a preset.
import { DOLMA2_EOS, DOLMA2_PAD, DOLMA2_VOCAB } from "../model/config.ts";

export interface TokenizerIds {
  eos: number;
  pad: number;
}

const PRESETS: Record<string, TokenizerIds & { vocabSize: number }> = {
  "allenai/dolma2-tokenizer": { vocabSize: DOLMA2_VOCAB, eos: DOLMA2_EOS, pad: DOLMA2_PAD },
  "allenai/gpt-neox-olmo-dolma-v1_5": { vocabSize: 50280, eos: 50279, pad: 1 },
  gpt2: { vocabSize: 50257, eos: 50256, pad: 50256 },
};

/** The ids a run's data config names (preset by identifier, overridden field by field), or null when unknown. */
export function tokenizerIds(identifier: string, eosTokenId?: number, padTokenId?: number): TokenizerIds | null {
  const p = PRESETS[identifier];
  const eos = eosTokenId ?? p?.eos, pad = padTokenId ?? p?.pad;
  return eos === undefined || pad === undefined ? null : { eos, pad };
}

/** The tokenizer's vocabulary size when it is a preset (OLMo-core's TokenizerConfig.vocab_size), else null. */
export function presetVocabSize(identifier: string): number | null {
  return PRESETS[identifier]?.vocabSize ?? null;
}
