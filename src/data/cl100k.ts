// cl100k_base, the byte-level BPE under dolma2: its mergeable ranks (js-tiktoken's copy of OpenAI's
// table, ids 0..100255) and its split rule. `olmo prepare` encodes with both (data/prepare.ts), and
// the Hugging Face export writes both into tokenizer.json (checkpoint/hf/tokenizer.ts), so the two
// give the same ids.
//
// The split rule is tiktoken's, in the dialect that tiktoken (Rust regex), Oniguruma (Hugging Face
// tokenizers) and Python's regex read alike. It is the classic form that transformers' tiktoken
// converter writes (huggingface/transformers @ 00111b31, src/transformers/convert_slow_tokenizer.py,
// TikTokenConverter); openai/tiktoken @ 6cc3a46c (tiktoken_ext/openai_public.py) now ships an
// equivalent form with possessive quantifiers.
//
// A JavaScript RegExp reads two parts of it differently, and js-tiktoken's own pattern inherits both:
// `\s` there also matches U+FEFF and not U+0085 (NEL), where the others use Unicode's White_Space
// (NEL yes, U+FEFF no); and js-tiktoken spells the contractions as case variants ('s|'S|…), so
// "'ſ" (U+017F, which case-folds to s) is no contraction for it. The JS form below keeps the
// original's meaning: `\p{White_Space}` for `\s`, and the inline (?i:…) group, which JavaScript's
// u-mode folds like the others.
export const CL100K_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** CL100K_PATTERN for `new RegExp(p, "u")`: the same matches as tiktoken's. */
export const CL100K_PATTERN_JS = CL100K_PATTERN.replaceAll(String.raw`\s`, String.raw`\p{White_Space}`).replaceAll(String.raw`\S`, String.raw`\P{White_Space}`);

/** js-tiktoken's serialized table: `pat_str`, the special tokens, and `bpe_ranks` ("! OFFSET b64 b64 …" lines). */
export interface Cl100kTable {
  pat_str: string;
  special_tokens: Record<string, number>;
  bpe_ranks: string;
}

/** js-tiktoken's cl100k_base table with our split rule (what a js-tiktoken `Tiktoken` is built from). */
export function cl100kTable(): Cl100kTable {
  // required, not imported: the table is 1.6 MB of code, loaded only by the commands that tokenize
  // (a literal require, so that `bun build --compile` bundles it)
  const table = require("js-tiktoken/ranks/cl100k_base") as Cl100kTable;
  return { ...table, pat_str: CL100K_PATTERN_JS };
}

/** The bytes of every mergeable token, indexed by rank (= token id). */
export function cl100kTokenBytes(table: Cl100kTable = cl100kTable()): Uint8Array[] {
  const tokens: Uint8Array[] = [];
  for (const line of table.bpe_ranks.split("\n")) {
    if (!line) continue;
    const [, offsetText, ...b64] = line.split(" ");
    const offset = Number(offsetText);
    b64.forEach((t, i) => {
      tokens[offset + i] = Uint8Array.from(Buffer.from(t, "base64"));
    });
  }
  for (let id = 0; id < tokens.length; id++) if (!tokens[id]) throw new Error(`cl100k_base table: no token at rank ${id}`);
  return tokens;
}
