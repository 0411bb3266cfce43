// cl100k's split rule in JavaScript (what `olmo prepare` splits text with, data/cl100k.ts) cuts every
// string of the tokenizer corpus exactly where Oniguruma — the regex engine of Hugging Face
// tokenizers — cuts it with the pattern as tiktoken writes it. js-tiktoken's own pattern does not
// (U+0085 and U+FEFF as whitespace, "'ſ" as a contraction), which is why prepare does not use it.
import { expect, test } from "bun:test";
import { Tokenizer } from "tokenizers";
import { CL100K_PATTERN, CL100K_PATTERN_JS, cl100kTable, cl100kTokenBytes } from "../../src/data/cl100k.ts";
import { tokenizerCorpus } from "../support/tokenizer-corpus.ts";

const strings = tokenizerCorpus().flatMap((g) => g.strings);

/** Hugging Face tokenizers' Split pre-tokenizer (Regex, Isolated) on its own. */
const oniguruma = Tokenizer.fromString(JSON.stringify({
  version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
  pre_tokenizer: { type: "Split", pattern: { Regex: CL100K_PATTERN }, behavior: "Isolated", invert: false },
  post_processor: null, decoder: null, model: { type: "BPE", vocab: {}, merges: [] },
})).getPreTokenizer()!;

function disagreements(jsPattern: string) {
  const re = new RegExp(jsPattern, "gu");
  const bad = strings.flatMap((s) => {
    // a lone surrogate reaches Rust as U+FFFD (and prepare's bytes are U+FFFD's): compare those
    const js = [...s.matchAll(re)].map((m) => m[0].toWellFormed());
    const onig = oniguruma.preTokenizeString(s).map(([piece]) => piece);
    return js.join("\u0000") === onig.join("\u0000") ? [] : [{ s, js, onig }];
  });
  return { count: bad.length, first: bad.slice(0, 3) };
}

test(`the JS form of the split rule cuts ${strings.length} strings where Oniguruma cuts tiktoken's pattern`, () => {
  expect(disagreements(CL100K_PATTERN_JS)).toEqual({ count: 0, first: [] });
  expect(cl100kTable().pat_str).toBe(CL100K_PATTERN_JS);
});

test("js-tiktoken's own pattern does not (the reason prepare replaces it)", () => {
  const stock = (require("js-tiktoken/ranks/cl100k_base") as { pat_str: string }).pat_str;
  const d = disagreements(stock);
  expect(d.count).toBeGreaterThan(0);
  const odd = new Set(d.first.flatMap((x) => [...x.s].filter((c) => c === "\u0085" || c === "\ufeff" || c === "ſ")));
  expect(odd.size).toBeGreaterThan(0);
});

test("the table holds cl100k_base's 100,256 mergeable tokens: every byte alone, the rest distinct", () => {
  const tokens = cl100kTokenBytes();
  expect(tokens.length).toBe(100256);
  const singles = tokens.filter((t) => t.length === 1).map((t) => t[0]).sort((a, b) => a - b);
  expect(singles).toEqual(Array.from({ length: 256 }, (_, i) => i));
  expect(new Set(tokens.map((t) => Buffer.from(t).toString("latin1"))).size).toBe(100256);
});
