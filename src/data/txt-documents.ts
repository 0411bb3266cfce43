// How a plain-text file becomes documents for `olmo prepare` (each document gets its own EOS):
// "paragraphs" (the default) splits at blank lines, "lines" makes every non-blank line a document,
// "file" keeps the whole file as one. A document is kept as written, minus the line breaks that
// separate it from its neighbours; blank-only pieces are dropped.
import { UserError } from "../errors.ts";

export const TXT_SPLITS = ["paragraphs", "lines", "file"] as const;
export type TxtSplit = (typeof TXT_SPLITS)[number];

export function txtSplit(v: string, source: string): TxtSplit {
  if (!(TXT_SPLITS as readonly string[]).includes(v)) throw new UserError(`${source} must be one of ${TXT_SPLITS.join(", ")}, got "${v}"`);
  return v as TxtSplit;
}

/** The documents of one .txt file's text. */
export function splitText(text: string, how: TxtSplit): string[] {
  const pieces = how === "file" ? [text]
    : how === "lines" ? text.split(/\r?\n/)
    // a blank line: a line break, then only spaces or tabs up to the next line break (any number of them)
    : text.split(/\r?\n(?:[ \t]*\r?\n)+/);
  return pieces.map((p) => (how === "file" ? p : p.replace(/^(?:[ \t]*\r?\n)+|(?:\r?\n)+$/g, ""))).filter((p) => p.trim() !== "");
}

/** "12 documents (split at blank lines)" */
export function describeSplit(n: number, how: TxtSplit): string {
  const what = how === "paragraphs" ? "split at blank lines" : how === "lines" ? "one per line" : "the whole file";
  return `${n} document${n === 1 ? "" : "s"} (${what})`;
}
