// The tokenizer files of an exported Hugging Face folder: dolma2 (data/dolma2-tokenizer.ts) as
// `AutoTokenizer.from_pretrained(folder)` reads it, giving the ids `olmo prepare` gives.
//
// tokenizer.json is Hugging Face tokenizers' own format (huggingface/tokenizers @ f383101a, v0.22.2:
// tokenizer/serialization.rs, models/bpe/serialization.rs, pre_tokenizers/{split,byte_level}.rs,
// tokenizer/added_vocabulary.rs), laid out as transformers builds it from a tiktoken table
// (huggingface/transformers @ 00111b31, src/transformers/convert_slow_tokenizer.py, TikTokenConverter):
//   - vocab: each mergeable token's bytes through GPT-2's byte-to-unicode alphabet, id = rank;
//   - merges: for every token, each split into two halves that are both tokens, ordered by the
//     token's rank, then by the halves' ranks (so BPE merges in tiktoken's order);
//   - ignore_merges: a piece that is a token whole is that token (tiktoken looks it up first);
//   - pre-tokenizer: Split on cl100k's pattern (Isolated), then ByteLevel without its own regex;
//   - decoder ByteLevel, post-processor ByteLevel without offset trimming (adds no tokens);
//   - the special tokens as added tokens at their ids. All 22 are `special`, so that tokenizers'
//     encode_special_tokens=True (the text mode `olmo prepare` uses for them) splits each as text.
// tokenizer_config.json and special_tokens_map.json are what transformers' GPT2TokenizerFast writes
// (tokenization_utils_base.py save_pretrained @ 598a3dc3; GPT2TokenizerFast's defaults @ 035a197c:
// bos = eos = unk = <|endoftext|>, no prefix space, no BOS added), with dolma2's EOS and PAD as
// transformers' OLMo-2 converter sets them (src/transformers/models/olmo2/
// convert_olmo2_weights_to_hf.py @ 57235cda). Decoding does not clean up spaces, so decode(encode(s))
// is s.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CL100K_PATTERN, cl100kTokenBytes } from "../../data/cl100k.ts";
import { DOLMA2_EOS_TOKEN, DOLMA2_PAD_TOKEN, DOLMA2_SPECIAL_TOKENS } from "../../data/dolma2-tokenizer.ts";
import { DOLMA2_VOCAB, type ModelConfig, paddedVocab } from "../../model/config.ts";

export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] as const;

/** Whether the model's embedding has a row for every dolma2 id (a toy vocabulary gets no tokenizer). */
export function holdsDolma2(m: ModelConfig): boolean {
  return paddedVocab(m) >= DOLMA2_VOCAB;
}

/** GPT-2's byte-to-unicode alphabet: printable bytes stand for themselves, the rest map to U+0100…. */
export function byteLevelAlphabet(): string[] {
  const chars = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : next++);
  return chars;
}

/** tokenizer.json for a byte-level BPE given its tokens' bytes by rank, its split pattern and special tokens. */
export function tokenizerJson(tokens: Uint8Array[], pattern: string, specials: readonly { id: number; content: string }[]): string {
  const alphabet = byteLevelAlphabet();
  const spell = (b: Uint8Array) => {
    let s = "";
    for (const x of b) s += alphabet[x];
    return s;
  };
  const key = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");
  const rankOf = new Map<string, number>(tokens.map((t, r) => [key(t), r]));
  const merges: { rank: number; left: number; right: number }[] = [];
  tokens.forEach((t, rank) => {
    for (let i = 1; i < t.length; i++) {
      const left = rankOf.get(key(t.subarray(0, i))), right = rankOf.get(key(t.subarray(i)));
      if (left !== undefined && right !== undefined) merges.push({ rank, left, right });
    }
  });
  merges.sort((a, b) => a.rank - b.rank || a.left - b.left || a.right - b.right);
  const spelled = tokens.map(spell);
  // written by hand, in id order: a JS object would put integer-like keys ("0", "12") first
  const vocab = spelled.map((s, id) => `${JSON.stringify(s)}:${id}`).join(",");
  const mergeList = merges.map((m) => `[${JSON.stringify(spelled[m.left])},${JSON.stringify(spelled[m.right])}]`).join(",");
  const head = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s) => ({ id: s.id, content: s.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  };
  const model = `{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,` +
    `"fuse_unk":false,"byte_fallback":false,"ignore_merges":true,"vocab":{${vocab}},"merges":[${mergeList}]}`;
  return `${JSON.stringify(head).slice(0, -1)},"model":${model}}\n`;
}

let dolma2Json: string | null = null;

/** dolma2's tokenizer.json (built once per process: about a second). */
export function dolma2TokenizerJson(): string {
  return (dolma2Json ??= tokenizerJson(cl100kTokenBytes(), CL100K_PATTERN, DOLMA2_SPECIAL_TOKENS));
}

/** tokenizer_config.json: transformers' GPT2TokenizerFast over tokenizer.json, keys sorted as it writes them. */
export function tokenizerConfigJson(maxSeqLen: number): Record<string, unknown> {
  const added: Record<string, unknown> = {};
  for (const s of DOLMA2_SPECIAL_TOKENS) added[String(s.id)] = { content: s.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: added,
    bos_token: DOLMA2_EOS_TOKEN,
    clean_up_tokenization_spaces: false,
    eos_token: DOLMA2_EOS_TOKEN,
    model_max_length: maxSeqLen,
    pad_token: DOLMA2_PAD_TOKEN,
    tokenizer_class: "GPT2Tokenizer",
    unk_token: DOLMA2_EOS_TOKEN,
  };
}

export function specialTokensMapJson(): Record<string, string> {
  return { bos_token: DOLMA2_EOS_TOKEN, eos_token: DOLMA2_EOS_TOKEN, pad_token: DOLMA2_PAD_TOKEN, unk_token: DOLMA2_EOS_TOKEN };
}

/** Write dolma2's tokenizer files into an HF folder being written; false (nothing written) for a toy vocabulary. */
export function writeDolma2Tokenizer(dir: string, m: ModelConfig): boolean {
  if (!holdsDolma2(m)) return false;
  writeFileSync(join(dir, "tokenizer.json"), dolma2TokenizerJson());
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfigJson(m.maxSeqLen), null, 2) + "\n");
  writeFileSync(join(dir, "special_tokens_map.json"), JSON.stringify(specialTokensMapJson(), null, 2) + "\n");
  return true;
}
