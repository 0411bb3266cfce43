// cl100k_base through our encoder (src/data/bpe.ts, what cl100k() hands out) gives exactly
// js-tiktoken's token ids — every Brown document, hand-picked unicode / whitespace / punctuation
// strings, seeded random strings of the characters the pre-tokenizer treats differently, special
// tokens allowed or not — and one long pre-token (a run of spaces or dashes) costs milliseconds,
// not the seconds of a quadratic merge.
import { expect, test } from "bun:test";
import { getEncoding } from "js-tiktoken";
import { brownDocuments } from "../../src/data/brown/corpus.ts";
import { cl100k } from "../../src/data/prepare.ts";
import { UserError } from "../../src/errors.ts";
import { Rng } from "../support/random.ts";

const reference = getEncoding("cl100k_base");
const ours = await cl100k();

const sameIds = (texts: string[], allowed: string[] | "all" = [], disallowed: string[] | "all" = []) => {
  const diff = texts.filter((t) => ours.encode(t, allowed, disallowed).join(",") !== reference.encode(t, allowed, disallowed).join(","));
  expect(diff.map((t) => JSON.stringify(t.slice(0, 80)))).toEqual([]);
};

test("every Brown document tokenizes to js-tiktoken's ids", () => {
  const docs = brownDocuments();
  expect(docs.length).toBe(500);
  sameIds(docs);
});

const HAND_PICKED = [
  "", " ", "  ", "\n", "\r\n", "\t\t x", " \n \n ", "a  b   c    d", "word\n\n\nnext", "   leading", "trailing   ", "tabs\tand\u000bvertical\ftabs",
  "naïve café — 日本語 🙂 and 👩‍👩‍👧‍👦 family", "e\u0301 (combining) vs é", "Ελληνικά Русский עברית العربية हिन्दी 한국어 ไทย",
  "'s 'S 't 're 'VE 'll 'd I'm you're THEY'LL", "don't won’t it's", "12345678901 3.14159 1,000,000 ٣٤٥ ⅫⅦ",
  "--- ... !!! ??? ;;; *** ___ ~~~ ``` \"\"\" ''' <<< >>> ||| \\\\\\", "a--b—c–d", "http://example.com/a?b=c&d=e#f",
  "<|endoftext|>", "x<|endoftext|>y<|fim_prefix|>z", "<|endoftext", "<|endofprompt|> <|fim_suffix|>",
  "\u0000\u0001\u001f\u007f\u0080\u00a0\u2028\u2029\ufeff", "\ud83d", "lone \udc00 surrogate", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙",
  " ".repeat(300), "-".repeat(300), "=".repeat(257) + "\n" + "#".repeat(129), "ab".repeat(200), "\n".repeat(100), " \t".repeat(150),
  "1".repeat(100), "é".repeat(120), "🙂".repeat(60),
];

test("unicode, whitespace and punctuation strings tokenize to js-tiktoken's ids", () => {
  sameIds(HAND_PICKED);
  sameIds(HAND_PICKED, "all", []); // special-token text as special tokens
  expect(ours.encode("a<|endoftext|>b", "all").join(",")).toBe(reference.encode("a<|endoftext|>b", "all").join(","));
});

test("seeded random strings of the pre-tokenizer's character classes tokenize to js-tiktoken's ids", () => {
  const alphabet = [" ", "  ", "\n", "\r", "\t", "a", "Z", "é", "ß", "日", "🙂", "1", "٣", "-", "—", ".", "'", "'s", "'LL", "\"", "<|endoftext|>", "\u00a0", "\u0301", "_", "$", "\\"];
  const rng = new Rng(21);
  const texts = Array.from({ length: 400 }, () => Array.from({ length: 1 + rng.int(60) }, () => alphabet[rng.int(alphabet.length)]).join(""));
  sameIds(texts);
});

test("disallowed special-token text is refused in one line (UserError), as js-tiktoken refuses it", () => {
  expect(() => reference.encode("a<|endoftext|>")).toThrow(/special token/);
  expect(() => ours.encode("a<|endoftext|>")).toThrow(UserError);
  expect(() => ours.encode("a<|endoftext|>")).toThrow(/special token <\|endoftext\|>/);
});

test("decode inverts encode", () => {
  for (const t of HAND_PICKED.filter((s) => !/[\ud800-\udfff]/.test(s))) expect(ours.decode(ours.encode(t, [], []))).toBe(t);
});

test("one long pre-token is near-linear: 16 KB and 64 KB runs of spaces, dashes, letters take milliseconds", () => {
  // js-tiktoken's merge takes ~21 s for 16 KB of spaces on this machine (quadratic); the bound is
  // far below that and far above ours, so load on the machine cannot make it flaky
  for (const unit of [" ", "-", "=", "ab", "é"]) {
    for (const bytes of [16 << 10, 64 << 10]) {
      const text = unit.repeat(bytes / new TextEncoder().encode(unit).length);
      const t0 = performance.now();
      const ids = ours.encode(text, [], []);
      const ms = performance.now() - t0;
      expect({ unit, bytes, ms: ms < 2000 }).toEqual({ unit, bytes, ms: true });
      expect(ours.decode(ids)).toBe(text);
    }
  }
});
