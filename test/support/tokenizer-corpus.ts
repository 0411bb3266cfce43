// A few thousand strings that a tokenizer must split exactly like `olmo prepare`: the Brown corpus
// (whole documents and single sentences), scripts and symbols across Unicode (CJK, emoji sequences,
// combining marks, RTL, the whitespace that regex dialects disagree on), whitespace runs, numbers,
// punctuation, contractions in every case, source code (this repository's own), dolma2's special
// tokens inside text, and seeded random mixtures of all of these. Deterministic.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { brownDocuments } from "../../src/data/brown/corpus.ts";
import { DOLMA2_SPECIAL_TOKENS } from "../../src/data/dolma2-tokenizer.ts";

export interface CorpusGroup {
  name: string;
  strings: string[];
}

const UNICODE = [
  "中文分词测试：今天天气很好，我们去公园散步。", "日本語のテキスト、ひらがなとカタカナと漢字。", "한국어 문장입니다. 띄어쓰기도 있어요!",
  "汉字𠀀𪚥𰻞 (CJK extensions B, C, G)", "Kawi 𑼀𑼁𑼂 and CJK ext. I 𮯰𮯱 (Unicode 15, 15.1)", "🫨🩷🪿 new emoji of Unicode 15",
  "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 1️⃣ keycap, 🇺🇸🇯🇵 flags", "emoji🙂inside🙃words", "❤️ ♥ ☃ ★ ✓ ✗ ⌘ ⎋",
  "e\u0301 vs é; a\u0308\u0304 stacked; Z\u0351\u0354\u0330a\u0362l\u0328g\u0336o", "Ω ≈ ç √ ∫ ˜ µ ≤ ≥ ÷ ∑ ∏ ∂ ∆ ∞",
  "العربية: مرحبا بالعالم ١٢٣", "עברית: שלום עולם", "mixed \u202eRTL override\u202c and \u200fmark\u200e", "فارسی و اردو",
  "हिन्दी देवनागरी लिपि", "தமிழ் எழுத்து", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "ქართული ენა", "Ελληνικά: σοφός ΣΟΦΟΣ",
  "Русский текст с ё и Ё", "Ꭰ Cherokee, ᚠ runes, 𐌰 Gothic, 𓀀 hieroglyph", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 𝟎𝟏𝟐", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
  "ligatures ﬁ ﬂ ﬀ ﬃ ﬅ", "Kelvin \u212a, Angstrom \u212b, long s ſ", "Turkish İstanbul ıi", "½ ¾ ² ³ ① Ⅻ ٣ ৩ ๓",
  "NEL\u0085line", "a\u0085\u0085b \u0085 c", "x \u0085y", "BOM\ufeffinside", "\ufeffleading BOM", "trailing BOM\ufeff", " \ufeff x",
  "nbsp\u00a0here\u00a0\u00a0twice", "ideographic\u3000space\u3000\u3000", "line\u2028sep and para\u2029sep", "thin\u2009space\u200ahair",
  "zero\u200bwidth\u200cjoin\u200dner", "ogham\u1680space", "narrow\u202fnbsp\u205fmath", "mongolian\u180evowel sep",
  "variation\ufe0f selector \ufe0e", "private \ue000\uf8ff use", "noncharacter \ufffe\uffff end", "last plane \u{10fffd}\u{10ffff}",
  "control \u0001\u0002\u0007\u001b[31mred\u001b[0m", "tab\tand\vvertical\ffeed", "null\u0000byte",
  "lone \ud800 high and \udc00 low surrogates", "x\ud83d",
];

const CODE_SNIPPETS = [
  "def f(x):\n    return x ** 2  # square\n", "for (let i = 0; i < 10; i++) { console.log(`i=${i}`); }",
  "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }", "fn main() { let v: Vec<u8> = vec![1, 2, 3]; }",
  "{\"key\": [1, 2.5, -3e-7, true, null], \"nested\": {\"a\": \"b\"}}", "<div class=\"x\">&amp; &lt;tag&gt;</div>",
  "SELECT * FROM users WHERE id = 42 AND name LIKE '%o''brien%';", "$ ls -la | grep '^d' && echo \"done\" >> log.txt 2>&1",
  "\\begin{equation} e^{i\\pi} + 1 = 0 \\end{equation}", "# Title\n\n* item one\n* item two\n\n```js\nx = 1;\n```",
  "https://example.com/path?q=a+b&x=%20y#frag", "user.name+tag@example.co.uk", "C:\\Users\\name\\file.txt", "a==b!=c<=d>=e->f=>g::h",
  "x+=1;y-=2;z*=3;w/=4;v%=5;u**=6;t//=7", "if(a&&b||!c){return;}", "arr[0][1]->field.method()?.opt ?? def",
];

const CONTRACTION_WORDS = ["it", "they", "I", "we", "she", "you", "that", "IT", "THEY"];
const SUFFIXES = ["s", "t", "re", "ve", "m", "ll", "d"];

/** Every case spelling of a suffix: "ll" -> ll, lL, Ll, LL. */
function caseVariants(s: string): string[] {
  return [...s].reduce<string[]>((acc, c) => acc.flatMap((p) => [p + c.toLowerCase(), p + c.toUpperCase()]), [""]).filter((v, i, a) => a.indexOf(v) === i);
}

function rng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

export function tokenizerCorpus(): CorpusGroup[] {
  const docs = brownDocuments();
  const sentences = docs.flatMap((d) => d.split(/(?<=[.!?])\s+/)).filter((s, i) => i % 20 === 0).slice(0, 2500);

  const ws = [" ", "\t", "\n", "\r\n", "\r", " \n", "\n ", "\t ", "\u00a0", "\u3000"];
  const whitespace: string[] = [];
  for (const w of ws) {
    for (const n of [1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 40]) {
      const run = w.repeat(n);
      whitespace.push(run, `word${run}word`, `${run}lead`, `trail${run}`, `x.${run}y`, `${run}1${run}`);
    }
  }
  whitespace.push("  \n\n  \t\t\n \r\n\r\n   end", "a \n b \n\n c", "\n\n\n", " \t \t \n", "end.\n\n\nNext paragraph.\n");

  const numbers: string[] = [];
  for (let n = 1; n <= 30; n++) numbers.push("9876543210".repeat(3).slice(0, n), `x${"1".repeat(n)}y`);
  numbers.push("3.14159265358979", "-0.000001", "1,234,567.89", "1e-10", "0x7fffffff", "2026-12-01T12:34:56Z", "(555) 123-4567", "v1.2.3-rc.4", "10%", "$1,000,000");

  const punctuation = ["...", "?!?!", "—–-", "«quoted» „low” “curly” ‘single’", "!!!???...,,,;;;:::", "(((nested)))", "[[{{<<>>}}]]", "--- *** ___", "¿Qué? ¡Sí!", "«»‹›", "@#$%^&*~`|\\"];

  const contractions: string[] = [];
  for (const w of CONTRACTION_WORDS) for (const s of SUFFIXES) for (const v of caseVariants(s)) contractions.push(`${w}'${v} here`);
  contractions.push("'s", "'S start", "it'ſ long s", "don'T", "rock 'n' roll", "'''", "it's'", "'ll'll'll", "O'Neil's", "l'été", "’s curly");

  const root = resolve(import.meta.dir, "../..");
  const code = [...CODE_SNIPPETS, ...sourceFiles(join(root, "src")).slice(0, 120).map((p) => readFileSync(p, "utf8"))];

  const specials: string[] = [];
  for (const { content } of DOLMA2_SPECIAL_TOKENS) {
    specials.push(content, `a${content}b`, ` ${content} `, `${content}${content}`, `text before\n${content}\ntext after`, content.slice(0, -1), `x${content.slice(1)}`);
  }
  specials.push("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", "doc one<|endoftext|>doc two<|endoftext|>", "<|endoftext|><|pad|><|endoftext|>");

  const pools = [...UNICODE, ...CODE_SNIPPETS, ...punctuation, ws.join(""), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "'", "ſ"]
    .map((s) => Array.from(s));
  const random: string[] = [];
  const r = rng(1234);
  for (let k = 0; k < 2000; k++) {
    let s = "";
    for (let runs = 1 + Math.floor(r() * 12); runs > 0; runs--) {
      const pool = pools[Math.floor(r() * pools.length)];
      for (let n = 1 + Math.floor(r() * 5); n > 0; n--) s += pool[Math.floor(r() * pool.length)];
    }
    random.push(s);
  }

  return [
    { name: "Brown documents", strings: docs },
    { name: "Brown sentences", strings: sentences },
    { name: "unicode", strings: UNICODE },
    { name: "whitespace runs", strings: whitespace },
    { name: "numbers", strings: numbers },
    { name: "punctuation", strings: punctuation },
    { name: "contractions", strings: contractions },
    { name: "code", strings: code },
    { name: "special tokens", strings: specials },
    { name: "random mixtures", strings: random },
  ];
}
