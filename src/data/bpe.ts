// A tiktoken byte-pair encoder (cl100k_base and the like) that is near-linear in its input. The
// tables, the pre-tokenizer regex and the special-token rules are js-tiktoken's (its ranks files
// and Tiktoken.encode, js-tiktoken 1.0.21 dist/chunk-*.js), and so is the merge rule: within one
// pre-token, repeatedly merge the adjacent pair whose bytes have the lowest rank, the leftmost
// one among equal ranks, until no pair is in the vocabulary. js-tiktoken rescans every pair after
// each merge (O(n²) or worse in the length of one pre-token: a 16 KB run of spaces or dashes is
// one pre-token and took ~30 s); here the candidate pairs wait in a heap keyed by (rank, position)
// and only the two pairs around a merge are re-ranked, so one pre-token of n bytes costs
// O(n log n) and every token id is the same (test/data/bpe.test.ts checks against js-tiktoken).
import { UserError } from "../errors.ts";

/** A ranks file as js-tiktoken ships it (js-tiktoken/ranks/<name>). */
export interface BpeRanks {
  pat_str: string;
  special_tokens: Record<string, number>;
  /** lines "! <first rank> <base64 token> <base64 token> ...": consecutive ranks */
  bpe_ranks: string;
}

const escapeRegex = (s: string) => s.replace(/[\\^$*+?.()|[\]{}]/g, "\\$&");

/** A piece's UTF-8 bytes as a string of char codes 0-255 (the rank table's keys). */
function byteString(piece: string): string {
  // ASCII is its own UTF-8
  if (/^[\x00-\x7f]*$/.test(piece)) return piece;
  const bytes = new TextEncoder().encode(piece);
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** A min-heap of numbers (rank · 2^32 + position: lowest rank first, then leftmost). */
class NumberHeap {
  private a = new Float64Array(64);
  size = 0;
  push(x: number): void {
    if (this.size === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    const a = this.a;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.a, top = a[0], x = a[--this.size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.size) break;
      if (c + 1 < this.size && a[c + 1] < a[c]) c++;
      if (a[c] >= x) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = x;
    return top;
  }
}

const POS = 2 ** 32;

export class BpeEncoder {
  private readonly ranks = new Map<string, number>();
  private readonly bytesOf = new Map<number, Uint8Array>();
  private readonly specials: Map<string, number>;
  private readonly specialBytes = new Map<number, Uint8Array>();
  private readonly pattern: string;

  constructor(table: BpeRanks) {
    this.pattern = table.pat_str;
    for (const line of table.bpe_ranks.split("\n")) {
      if (!line) continue;
      const [, first, ...tokens] = line.split(" ");
      const base = Number.parseInt(first, 10);
      tokens.forEach((b64, i) => {
        const key = atob(b64); // one char per byte
        this.ranks.set(key, base + i);
        this.bytesOf.set(base + i, Uint8Array.from(key, (c) => c.charCodeAt(0)));
      });
    }
    this.specials = new Map(Object.entries(table.special_tokens));
    for (const [text, id] of this.specials) this.specialBytes.set(id, new TextEncoder().encode(text));
  }

  /**
   * Token ids of `text`. Special-token text is a special token where `allowedSpecial` lists it (or
   * "all"); where it is disallowed (by default: every one not allowed) the text is refused; else it
   * is ordinary text.
   */
  encode(text: string, allowedSpecial: string[] | "all" = [], disallowedSpecial: string[] | "all" = "all"): number[] {
    const names = [...this.specials.keys()];
    const allowed = new Set(allowedSpecial === "all" ? names : allowedSpecial);
    const disallowed = disallowedSpecial === "all" ? names.filter((x) => !allowed.has(x)) : disallowedSpecial;
    if (disallowed.length > 0) {
      const m = text.match(new RegExp(disallowed.map(escapeRegex).join("|")));
      if (m) throw new UserError(`the text holds the special token ${m[0]}, which is not allowed here`);
    }
    const out: number[] = [];
    const specialRe = new RegExp(names.map(escapeRegex).join("|"), "g");
    const pieces = new RegExp(this.pattern, "ug");
    let start = 0;
    for (;;) {
      // the next special token that is allowed; the others stay ordinary text
      let next: RegExpExecArray | null = null;
      for (specialRe.lastIndex = start; (next = specialRe.exec(text)) !== null && !allowed.has(next[0]); specialRe.lastIndex = next.index + 1);
      const end = next?.index ?? text.length;
      for (const m of text.substring(start, end).matchAll(pieces)) this.encodePiece(byteString(m[0]), out);
      if (next === null) return out;
      out.push(this.specials.get(next[0])!);
      start = next.index + next[0].length;
    }
  }

  /** Text of token ids (unknown ids are skipped, as js-tiktoken does). */
  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (const id of ids) {
      const b = this.bytesOf.get(id) ?? this.specialBytes.get(id);
      if (b) {
        parts.push(b);
        n += b.length;
      }
    }
    const all = new Uint8Array(n);
    let at = 0;
    for (const b of parts) {
      all.set(b, at);
      at += b.length;
    }
    return new TextDecoder("utf-8").decode(all);
  }

  /** One pre-token (its bytes as char codes): its own token, or the merges of its bytes. */
  private encodePiece(key: string, out: number[]): void {
    const whole = this.ranks.get(key);
    if (whole !== undefined) {
      out.push(whole);
      return;
    }
    const n = key.length;
    // the parts are runs [i, next[i]) of the piece; rankAt[i] is the rank of the part at i merged
    // with the one after it (Infinity: not in the vocabulary, or no part after it, or i is no
    // longer a part's start)
    const next = new Int32Array(n), prev = new Int32Array(n), rankAt = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    const heap = new NumberHeap();
    const rerank = (i: number) => {
      const j = next[i];
      const r = j >= n ? undefined : this.ranks.get(key.slice(i, next[j]));
      rankAt[i] = r ?? Infinity;
      if (r !== undefined) heap.push(r * POS + i);
    };
    for (let i = 0; i < n; i++) rerank(i);
    while (heap.size > 0) {
      const top = heap.pop();
      const i = top % POS, r = (top - i) / POS;
      if (rankAt[i] !== r) continue; // a pair that changed since it was queued
      const j = next[i];
      next[i] = next[j];
      if (next[j] < n) prev[next[j]] = i;
      rankAt[j] = Infinity;
      rerank(i);
      if (prev[i] >= 0) rerank(prev[i]);
    }
    for (let i = 0; i < n; i = next[i]) out.push(this.ranks.get(key.slice(i, next[i]))!);
  }
}
